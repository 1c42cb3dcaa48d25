//! Turning stored manifests back into objects to create: in dependency order, cleaned of
//! what the old cluster assigned, moved by the namespace mapping, and (for pods with volume
//! snapshots) given the restore-wait init container.

use arca_api::backup::{CLAIM_SNAPSHOT_ANNOTATION, SNAPSHOT_ANNOTATION_PREFIX};
use arca_api::podvolume::PVC_ORIGIN_ANNOTATION;
use arca_api::restore::{RESTORE_UID_LABEL, RESTORE_WAIT_CONTAINER};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Creation order: namespaces, then storage, then configuration and identities, then
/// roles before the bindings that name them (a binding to a missing Role is refused), then
/// services and workloads, pods, and custom resources last.
pub fn priority(kind: &str, api_version: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "CustomResourceDefinition" => 1,
        "StorageClass" | "PersistentVolume" => 2,
        "PersistentVolumeClaim" => 3,
        "Secret" | "ConfigMap" | "ServiceAccount" | "LimitRange" | "ResourceQuota" => 4,
        "Role" | "ClusterRole" => 5,
        "RoleBinding" | "ClusterRoleBinding" => 6,
        "Service" | "Endpoints" | "EndpointSlice" | "Ingress" | "NetworkPolicy" => 7,
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "CronJob"
        | "ReplicationController" => 8,
        "Pod" => 9,
        _ if api_version.starts_with("v1") || !api_version.contains('.') => 10,
        _ => 11,
    }
}

/// Sort manifests into creation order (stable within a kind: by namespace, then name).
pub fn order(objects: &mut [Value]) {
    objects.sort_by(|a, b| {
        let key = |o: &Value| {
            (
                priority(
                    o["kind"].as_str().unwrap_or(""),
                    o["apiVersion"].as_str().unwrap_or(""),
                ),
                o["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                o["metadata"]["name"].as_str().unwrap_or("").to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
}

/// A stored manifest made ready to create: fields the old cluster assigned removed, its
/// namespace (and a Namespace's own name) mapped.
pub fn prepare(mut obj: Value, mapping: &BTreeMap<String, String>) -> Value {
    if obj["kind"] == "PersistentVolumeClaim" {
        // Keep the claim's identity for the parent lookup of later backups.
        let origin = obj["metadata"]["annotations"][PVC_ORIGIN_ANNOTATION]
            .as_str()
            .or(obj["metadata"]["uid"].as_str())
            .map(String::from);
        if let (Some(origin), Some(meta)) = (origin, obj["metadata"].as_object_mut()) {
            let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
            // A manifest may say `annotations: null`.
            if !annotations.is_object() {
                *annotations = json!({});
            }
            if let Some(a) = annotations.as_object_mut() {
                a.insert(PVC_ORIGIN_ANNOTATION.into(), json!(origin));
            }
        }
    }
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "selfLink",
            "generation",
            "ownerReferences",
            "deletionTimestamp",
        ] {
            meta.remove(f);
        }
        if let Some(ns) = meta.get("namespace").and_then(Value::as_str) {
            if let Some(to) = mapping.get(ns) {
                meta.insert("namespace".into(), json!(to));
            }
        }
    }
    if let Some(o) = obj.as_object_mut() {
        o.remove("status");
    }
    match obj["kind"].as_str() {
        Some("Namespace") => {
            let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
            if let Some(to) = mapping.get(&name) {
                obj["metadata"]["name"] = json!(to);
            }
        }
        // A new cluster assigns its own service addresses.
        Some("Service") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                if spec.get("clusterIP").and_then(Value::as_str) != Some("None") {
                    spec.remove("clusterIP");
                    spec.remove("clusterIPs");
                }
            }
        }
        // The claim gets a fresh volume, which the pod volume restore fills.
        Some("PersistentVolumeClaim") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("volumeName");
            }
            if let Some(a) = obj["metadata"]
                .get_mut("annotations")
                .and_then(Value::as_object_mut)
            {
                a.retain(|k, _| {
                    k != CLAIM_SNAPSHOT_ANNOTATION
                        && !k.starts_with("pv.kubernetes.io/")
                        && !k.starts_with("volume.beta.kubernetes.io/")
                        && !k.starts_with("volume.kubernetes.io/")
                });
            }
        }
        Some("Pod") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("nodeName");
                drop_token_volumes(spec);
            }
        }
        _ => {}
    }
    obj
}

/// Remove the service-account token volumes the old cluster's admission added, and their
/// mounts: their Secret (a legacy token) is deleted with the old service account, so the
/// kubelet could not start the pod, and the new cluster's admission adds its own.
fn drop_token_volumes(spec: &mut serde_json::Map<String, Value>) {
    let account = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    let is_token = |v: &Value| {
        let name = v["name"].as_str().unwrap_or("");
        (name.starts_with("kube-api-access-") && v.get("projected").is_some())
            || v["secret"]["secretName"]
                .as_str()
                .is_some_and(|s| s.starts_with(&format!("{account}-token-")))
    };
    let Some(Value::Array(volumes)) = spec.get_mut("volumes") else {
        return;
    };
    let dropped: Vec<String> = volumes
        .iter()
        .filter(|v| is_token(v))
        .filter_map(|v| v["name"].as_str().map(String::from))
        .collect();
    volumes.retain(|v| !is_token(v));
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(containers)) = spec.get_mut(list) {
            for c in containers {
                if let Some(Value::Array(mounts)) = c.get_mut("volumeMounts") {
                    mounts.retain(|m| {
                        !dropped
                            .iter()
                            .any(|d| m["name"].as_str() == Some(d.as_str()))
                    });
                }
            }
        }
    }
}

/// The volume snapshots a backed-up pod's annotations name: only for volumes the pod has,
/// and only well-formed snapshot IDs (older backups may hold annotations a tenant set).
pub fn volume_snapshots(pod: &Value) -> Vec<(String, String)> {
    let volumes: Vec<&str> = pod["spec"]["volumes"]
        .as_array()
        .map(|v| v.iter().filter_map(|v| v["name"].as_str()).collect())
        .unwrap_or_default();
    let Some(annotations) = pod["metadata"]["annotations"].as_object() else {
        return Vec::new();
    };
    annotations
        .iter()
        .filter_map(|(k, v)| {
            let volume = k.strip_prefix(SNAPSHOT_ANNOTATION_PREFIX)?;
            let id = v.as_str()?;
            let well_formed = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
            (volumes.contains(&volume) && well_formed).then(|| (volume.to_string(), id.to_string()))
        })
        .collect()
}

/// The snapshot a backed-up claim's manifest names (taken through a helper pod), if it is
/// a claim and the ID is well formed.
pub fn claim_snapshot(claim: &Value) -> Option<String> {
    if claim["kind"] != "PersistentVolumeClaim" {
        return None;
    }
    let id = claim["metadata"]["annotations"][CLAIM_SNAPSHOT_ANNOTATION].as_str()?;
    let well_formed = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
    well_formed.then(|| id.to_string())
}

/// Put the restore-wait init container first in a pod, with each restored volume mounted at
/// `/restores/<volume>`, waiting for restore `restore_uid`.
pub fn add_restore_wait(pod: &mut Value, image: &str, restore_uid: &str, volumes: &[String]) {
    // The label lets each agent watch just the pods waiting for a restore.
    if let Some(meta) = pod.get_mut("metadata").and_then(Value::as_object_mut) {
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.insert(RESTORE_UID_LABEL.into(), json!(restore_uid));
        }
    }
    let mounts: Vec<Value> = volumes
        .iter()
        .map(|v| json!({"name": v, "mountPath": format!("/restores/{v}")}))
        .collect();
    let container = json!({
        "name": RESTORE_WAIT_CONTAINER,
        "image": image,
        "command": ["/usr/local/bin/arca-agent"],
        "args": ["restore-wait", restore_uid],
        "volumeMounts": mounts,
    });
    let spec = &mut pod["spec"];
    match spec.get_mut("initContainers").and_then(Value::as_array_mut) {
        Some(list) => {
            list.retain(|c| c["name"] != RESTORE_WAIT_CONTAINER);
            list.insert(0, container);
        }
        None => spec["initContainers"] = json!([container]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_snapshots_of_the_pods_own_volumes_with_sound_ids_are_restored() {
        let id = "ab".repeat(32);
        let pod = json!({
            "metadata": {"annotations": {
                "snapshot.arca.dev/data": id,
                "snapshot.arca.dev/not-a-volume": id,
                "snapshot.arca.dev/cache": "../../etc",
                "other": id}},
            "spec": {"volumes": [{"name": "data"}, {"name": "cache"}]}});
        assert_eq!(volume_snapshots(&pod), vec![("data".to_string(), id)]);
        assert!(volume_snapshots(&json!({"metadata": {}})).is_empty());
    }

    #[test]
    fn a_claims_own_snapshot_is_read_and_not_restored_as_an_annotation() {
        let id = "cd".repeat(32);
        let claim = json!({"kind": "PersistentVolumeClaim", "apiVersion": "v1",
            "metadata": {"name": "reports", "namespace": "shop",
                         "annotations": {CLAIM_SNAPSHOT_ANNOTATION: id, "team": "a"}}});
        assert_eq!(claim_snapshot(&claim), Some(id.clone()));
        let restored = prepare(claim.clone(), &BTreeMap::new());
        assert_eq!(
            restored["metadata"]["annotations"].get(CLAIM_SNAPSHOT_ANNOTATION),
            None
        );
        let mut forged = claim.clone();
        forged["metadata"]["annotations"][CLAIM_SNAPSHOT_ANNOTATION] = json!("../x");
        assert_eq!(claim_snapshot(&forged), None);
        let mut pod = claim;
        pod["kind"] = json!("Pod");
        assert_eq!(claim_snapshot(&pod), None);
    }

    #[test]
    fn objects_come_back_in_dependency_order() {
        let o = |kind: &str, api: &str, ns: &str, name: &str| json!({"kind": kind, "apiVersion": api, "metadata": {"name": name, "namespace": ns}});
        let mut objs = vec![
            o("Pod", "v1", "shop", "web-0"),
            o("Deployment", "apps/v1", "shop", "web"),
            o("Widget", "example.com/v1", "shop", "w"),
            o("Secret", "v1", "shop", "db"),
            o("PersistentVolumeClaim", "v1", "shop", "data"),
            o("Namespace", "v1", "", "shop"),
            o("ConfigMap", "v1", "shop", "cfg"),
            o("Service", "v1", "shop", "web"),
        ];
        order(&mut objs);
        let kinds: Vec<&str> = objs.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "PersistentVolumeClaim",
                "ConfigMap",
                "Secret",
                "Service",
                "Deployment",
                "Pod",
                "Widget"
            ]
        );
    }

    #[test]
    fn manifests_lose_what_the_old_cluster_assigned_and_follow_the_mapping() {
        let mapping: BTreeMap<String, String> =
            [("shop".to_string(), "shop-copy".to_string())].into();
        let pod = prepare(
            json!({"kind": "Pod", "apiVersion": "v1",
                   "metadata": {"name": "web-0", "namespace": "shop", "uid": "u", "resourceVersion": "7", "ownerReferences": [{"uid": "x"}]},
                   "spec": {"nodeName": "node-a", "containers": []}, "status": {"phase": "Running"}}),
            &mapping,
        );
        assert_eq!(
            pod,
            json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "web-0", "namespace": "shop-copy"}, "spec": {"containers": []}})
        );
        let ns = prepare(
            json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "shop"}}),
            &mapping,
        );
        assert_eq!(ns["metadata"]["name"], "shop-copy");
        let svc = prepare(
            json!({"kind": "Service", "apiVersion": "v1", "metadata": {"name": "s", "namespace": "blog"}, "spec": {"clusterIP": "10.0.0.7", "clusterIPs": ["10.0.0.7"], "ports": []}}),
            &mapping,
        );
        assert_eq!(svc["spec"], json!({"ports": []}));
        assert_eq!(svc["metadata"]["namespace"], "blog");
        let headless = prepare(
            json!({"kind": "Service", "apiVersion": "v1", "metadata": {"name": "h"}, "spec": {"clusterIP": "None"}}),
            &mapping,
        );
        assert_eq!(headless["spec"]["clusterIP"], "None");
        let pvc = prepare(
            json!({"kind": "PersistentVolumeClaim", "apiVersion": "v1", "metadata": {"name": "data", "namespace": "shop", "uid": "pvc-1", "annotations": {"pv.kubernetes.io/bind-completed": "yes", "team": "a"}}, "spec": {"volumeName": "pv-123", "resources": {}}}),
            &mapping,
        );
        assert_eq!(pvc["spec"], json!({"resources": {}}));
        assert_eq!(
            pvc["metadata"]["annotations"],
            json!({"team": "a", PVC_ORIGIN_ANNOTATION: "pvc-1"})
        );
        assert_eq!(pvc["metadata"].get("uid"), None);
        let null = prepare(
            json!({"kind": "PersistentVolumeClaim", "apiVersion": "v1", "metadata": {"name": "d", "uid": "pvc-9", "annotations": null}}),
            &mapping,
        );
        assert_eq!(
            null["metadata"]["annotations"],
            json!({PVC_ORIGIN_ANNOTATION: "pvc-9"})
        );
        // Restored again: the first claim stays the origin.
        let mut again = pvc.clone();
        again["metadata"]["uid"] = json!("pvc-2");
        let again = prepare(again, &mapping);
        assert_eq!(
            again["metadata"]["annotations"][PVC_ORIGIN_ANNOTATION],
            "pvc-1"
        );
    }

    #[test]
    fn roles_come_before_their_bindings() {
        assert!(
            priority("Role", "rbac.authorization.k8s.io/v1")
                < priority("RoleBinding", "rbac.authorization.k8s.io/v1")
        );
        assert!(
            priority("ClusterRole", "rbac.authorization.k8s.io/v1")
                < priority("ClusterRoleBinding", "rbac.authorization.k8s.io/v1")
        );
        assert!(
            priority("ServiceAccount", "v1")
                < priority("RoleBinding", "rbac.authorization.k8s.io/v1")
        );
    }

    #[test]
    fn restored_pods_lose_the_old_clusters_token_volumes() {
        let pod = prepare(
            json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p", "namespace": "shop"},
                   "spec": {"serviceAccountName": "web",
                     "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                                 {"name": "kube-api-access-x2k9", "projected": {"sources": []}},
                                 {"name": "web-token-abcde", "secret": {"secretName": "web-token-abcde"}},
                                 {"name": "certs", "secret": {"secretName": "certs"}}],
                     "containers": [{"name": "c", "volumeMounts": [
                         {"name": "data", "mountPath": "/data"},
                         {"name": "kube-api-access-x2k9", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"},
                         {"name": "web-token-abcde", "mountPath": "/t"},
                         {"name": "certs", "mountPath": "/certs"}]}]}}),
            &BTreeMap::new(),
        );
        let names = |v: &Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(names(&pod["spec"]["volumes"]), ["data", "certs"]);
        assert_eq!(
            names(&pod["spec"]["containers"][0]["volumeMounts"]),
            ["data", "certs"]
        );
    }

    #[test]
    fn restore_wait_goes_first_with_every_restored_volume() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"initContainers": [{"name": "migrate"}], "containers": []}});
        add_restore_wait(
            &mut pod,
            "arca:1",
            "r-uid",
            &["data".into(), "cache".into()],
        );
        let init = pod["spec"]["initContainers"].as_array().unwrap();
        assert_eq!(init.len(), 2);
        assert_eq!(init[0]["name"], "restore-wait");
        assert_eq!(init[0]["args"], json!(["restore-wait", "r-uid"]));
        assert_eq!(
            init[0]["volumeMounts"][1],
            json!({"name": "cache", "mountPath": "/restores/cache"})
        );
        assert_eq!(init[1]["name"], "migrate");
        assert_eq!(pod["metadata"]["labels"][RESTORE_UID_LABEL], "r-uid");
        // Applied twice (a retried restore), still one.
        add_restore_wait(&mut pod, "arca:1", "r-uid", &["data".into()]);
        assert_eq!(pod["spec"]["initContainers"].as_array().unwrap().len(), 2);
        let mut bare = json!({"spec": {"containers": []}});
        add_restore_wait(&mut bare, "arca:1", "u", &["data".into()]);
        assert_eq!(bare["spec"]["initContainers"][0]["name"], "restore-wait");
    }
}
