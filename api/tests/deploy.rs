//! Every manifest in deploy/ parses into the Kubernetes API type of its kind, with no field
//! the type does not know (a typo would otherwise be dropped silently by the API server),
//! and the CRDs there are the ones generated from api/.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::path::PathBuf;

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Parse `doc` as `T` and check that nothing was lost on the way.
fn typed<T: DeserializeOwned + Serialize>(doc: &Value, file: &str) -> T {
    let t: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{file}: {} {}: {e}", doc["kind"], doc["metadata"]["name"]));
    let back = serde_json::to_value(&t).unwrap();
    assert_eq!(
        strip_empty(back),
        strip_empty(doc.clone()),
        "{file}: {} {} has fields its type does not know",
        doc["kind"],
        doc["metadata"]["name"]
    );
    t
}

/// Drop nulls and empty objects, which serialisation may add or leave out.
fn strip_empty(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, strip_empty(v)))
                .filter(|(_, v)| !v.is_null() && *v != Value::Object(Default::default()))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_empty).collect()),
        v => v,
    }
}

#[test]
fn manifests_parse_into_kubernetes_types() {
    let mut kinds = Vec::new();
    let mut crds = Vec::new();
    let mut daemonsets = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(deploy_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    entries.sort();
    for path in entries {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{file}: not YAML: {e}"));
        for doc in docs.iter().filter(|d| !d.is_null()) {
            let kind = doc["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("{file}: no kind"));
            kinds.push(kind.to_string());
            match kind {
                "Namespace" => drop(typed::<Namespace>(doc, &file)),
                "ServiceAccount" => drop(typed::<ServiceAccount>(doc, &file)),
                "ClusterRole" => drop(typed::<ClusterRole>(doc, &file)),
                "ClusterRoleBinding" => drop(typed::<ClusterRoleBinding>(doc, &file)),
                "Role" => drop(typed::<Role>(doc, &file)),
                "RoleBinding" => drop(typed::<RoleBinding>(doc, &file)),
                "Deployment" => drop(typed::<Deployment>(doc, &file)),
                "DaemonSet" => daemonsets.push(typed::<DaemonSet>(doc, &file)),
                "CustomResourceDefinition" => {
                    crds.push(typed::<CustomResourceDefinition>(doc, &file))
                }
                "Kustomization" => {
                    for r in doc["resources"].as_array().unwrap() {
                        let r = r.as_str().unwrap();
                        assert!(
                            deploy_dir().join(r).exists(),
                            "kustomization lists missing {r}"
                        );
                    }
                }
                other => panic!("{file}: unexpected kind {other}"),
            }
        }
    }
    for k in [
        "Namespace",
        "ClusterRole",
        "Deployment",
        "DaemonSet",
        "Kustomization",
    ] {
        assert!(kinds.iter().any(|x| x == k), "deploy/ has no {k}");
    }
    assert_eq!(
        crds,
        arca_api::crds(),
        "deploy/crds.yaml differs from the generated CRDs"
    );

    // The agent sees the kubelet's pod directories, and mounts made after it started.
    let ds = &daemonsets[0];
    let pod = ds.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let host = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.host_path.is_some())
        .unwrap();
    assert_eq!(
        host.host_path.as_ref().unwrap().path,
        "/var/lib/kubelet/pods"
    );
    let mount = pod.containers[0]
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.name == host.name)
        .unwrap();
    assert_eq!(mount.mount_propagation.as_deref(), Some("HostToContainer"));
}

/// No wildcard verb anywhere, and a wildcard group or resource only in read-only rules (the
/// operator's discovery-driven `list`): nothing grants exec, proxy, tokens or writes by
/// wildcard. The agent may not escalate or write beyond its own objects' status.
#[test]
fn rbac_has_no_wildcard_beyond_read_only_discovery() {
    let text = std::fs::read_to_string(deploy_dir().join("rbac.yaml")).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let mut wildcard_rules = 0;
    for doc in docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
    {
        let name = format!("{} {}", doc["kind"], doc["metadata"]["name"]);
        for rule in doc["rules"].as_array().unwrap() {
            let strings = |field: &str| -> Vec<String> {
                rule[field]
                    .as_array()
                    .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default()
            };
            let verbs = strings("verbs");
            assert!(
                !verbs.iter().any(|v| v == "*"),
                "{name}: wildcard verb in {rule}"
            );
            let wild = strings("apiGroups").iter().any(|g| g == "*")
                || strings("resources").iter().any(|r| r.contains('*'));
            if wild {
                wildcard_rules += 1;
                assert_eq!(
                    verbs,
                    ["list"],
                    "{name}: a wildcard rule may only list: {rule}"
                );
                assert_eq!(doc["metadata"]["name"], "arca-operator", "{name}: {rule}");
            }
        }
        if doc["metadata"]["name"] == "arca-agent" {
            for rule in doc["rules"].as_array().unwrap() {
                for v in rule["verbs"].as_array().unwrap() {
                    assert!(
                        ["get", "list", "watch", "patch"].contains(&v.as_str().unwrap()),
                        "{name}: {rule}"
                    );
                }
                if rule["verbs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|v| v == "patch")
                {
                    for r in rule["resources"].as_array().unwrap() {
                        assert!(r.as_str().unwrap().ends_with("/status"), "{name}: {rule}");
                    }
                }
            }
        }
    }
    assert_eq!(wildcard_rules, 1, "exactly the operator's discovery rule");
}

/// What kubectl's client-side validation (1.27 to 1.32) and older API servers refused in
/// the CRDs (issue 12): a `null` among enum values, and defaults under `status`. kubectl
/// 1.36 no longer validates client-side, so the end-to-end test cannot see it: this can.
#[test]
fn crds_have_no_null_enum_value_and_no_status_default() {
    fn walk(v: &Value, under_status: bool, at: &str, problems: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::Array(values)) = m.get("enum") {
                    if values.iter().any(Value::is_null) {
                        problems.push(format!("{at}: null among enum values"));
                    }
                }
                if under_status && m.contains_key("default") {
                    problems.push(format!("{at}: a default under status"));
                }
                for (k, child) in m {
                    let status = under_status || (k == "status" && at.ends_with("properties"));
                    walk(child, status, &format!("{at}.{k}"), problems);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, under_status, &format!("{at}[{i}]"), problems);
                }
            }
            _ => {}
        }
    }
    let text = std::fs::read_to_string(deploy_dir().join("crds.yaml")).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let mut problems = Vec::new();
    for doc in docs.iter().filter(|d| !d.is_null()) {
        walk(
            doc,
            false,
            doc["metadata"]["name"].as_str().unwrap(),
            &mut problems,
        );
        assert_ne!(
            doc["spec"]["preserveUnknownFields"],
            Value::Bool(true),
            "{}",
            doc["metadata"]["name"]
        );
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
