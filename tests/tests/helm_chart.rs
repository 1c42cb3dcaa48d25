//! The Helm chart (`deploy/chart`) against the kustomization (`deploy/`): `helm lint --strict`
//! passes, the default render is object for object what the kustomization lists (its `images`
//! override applied), and each value changes its fields and nothing else.
//!
//! Helm comes from `ARCA_TEST_HELM` (`scripts/go-tools.sh` builds it) or PATH; under `CI=true`
//! a missing helm fails, elsewhere the tests skip loudly.
//!
//! The chart adds no labels or annotations of Helm's own (`helm.sh/chart`,
//! `app.kubernetes.io/managed-by`, ...), so nothing is stripped before comparing: objects must be
//! equal as parsed, YAML comments and key order aside.

use arca_tests::{tool_or_return, workspace_root};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy_dir() -> PathBuf {
    workspace_root().join("deploy")
}

fn chart_dir() -> PathBuf {
    deploy_dir().join("chart")
}

/// Run helm, panicking with its output when it fails; its stdout.
fn helm(helm: &Path, args: &[&str]) -> String {
    let out = Command::new(helm)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", helm.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "helm {} failed ({}):\n{stdout}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The documents of a multi-document YAML text, empty ones left out.
fn documents(text: &str, what: &str) -> Vec<Value> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).unwrap_or_else(|e| panic!("{what}: not YAML: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// `apiVersion kind namespace/name` (no namespace: cluster-scoped).
fn key_of(obj: &Value) -> String {
    let meta = &obj["metadata"];
    format!(
        "{} {} {}/{}",
        obj["apiVersion"].as_str().unwrap_or("?"),
        obj["kind"].as_str().unwrap_or("?"),
        meta["namespace"].as_str().unwrap_or(""),
        meta["name"].as_str().unwrap_or("?")
    )
}

fn by_key(objects: Vec<Value>, what: &str) -> BTreeMap<String, Value> {
    let mut map = BTreeMap::new();
    for obj in objects {
        let key = key_of(&obj);
        assert!(
            map.insert(key.clone(), obj).is_none(),
            "{what}: {key} twice"
        );
    }
    map
}

/// One kustomize `images:` entry applied to an image reference.
fn retag(image: &str, rule: &Value) -> String {
    // The name ends at the digest, or at a tag's colon (one after the last slash: not a port).
    let name_end = image.find('@').unwrap_or_else(|| match image.rfind(':') {
        Some(colon) if colon > image.rfind('/').unwrap_or(0) => colon,
        _ => image.len(),
    });
    let (name, suffix) = image.split_at(name_end);
    if rule["name"].as_str() != Some(name) {
        return image.to_owned();
    }
    let new_name = rule["newName"].as_str().unwrap_or(name);
    if let Some(digest) = rule["digest"].as_str() {
        format!("{new_name}@{digest}")
    } else if let Some(tag) = rule["newTag"].as_str() {
        format!("{new_name}:{tag}")
    } else {
        format!("{new_name}{suffix}")
    }
}

/// Apply the kustomization's `images:` to every container and init container.
fn apply_images(v: &mut Value, rules: &[Value]) {
    match v {
        Value::Object(map) => {
            for (field, inner) in map.iter_mut() {
                if field == "containers" || field == "initContainers" {
                    for container in inner.as_array_mut().into_iter().flatten() {
                        if let Some(image) = container["image"].as_str() {
                            let image = rules.iter().fold(image.to_owned(), |i, r| retag(&i, r));
                            container["image"] = Value::String(image);
                        }
                    }
                }
                apply_images(inner, rules);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| apply_images(i, rules)),
        _ => {}
    }
}

/// What `kubectl apply -k deploy/` creates: the resources the kustomization lists, with its
/// `images:` applied. It must use nothing else of kustomize's, or this would compare wrongly.
fn kustomization_objects() -> Vec<Value> {
    let path = deploy_dir().join("kustomization.yaml");
    let kustomization = documents(&std::fs::read_to_string(&path).unwrap(), "kustomization")
        .pop()
        .expect("deploy/kustomization.yaml is empty");
    for field in kustomization.as_object().unwrap().keys() {
        assert!(
            ["apiVersion", "kind", "resources", "images"].contains(&field.as_str()),
            "deploy/kustomization.yaml uses `{field}`, which this test does not apply: teach it"
        );
    }
    let rules = kustomization["images"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut objects = Vec::new();
    for file in kustomization["resources"].as_array().unwrap() {
        let file = file.as_str().unwrap();
        let text = std::fs::read_to_string(deploy_dir().join(file)).unwrap();
        objects.extend(documents(&text, file));
    }
    for obj in &mut objects {
        apply_images(obj, &rules);
    }
    objects
}

/// The namespace deploy/ installs into (its one Namespace object).
fn deploy_namespace(objects: &[Value]) -> String {
    let names: Vec<&str> = objects
        .iter()
        .filter(|o| o["kind"] == "Namespace")
        .filter_map(|o| o["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names.len(), 1, "deploy/ should create one Namespace");
    names[0].to_owned()
}

/// `helm template arca deploy/chart --include-crds -n NAMESPACE [EXTRA...]`, as objects.
fn render(helm_bin: &Path, namespace: &str, extra: &[&str]) -> Vec<Value> {
    let chart = chart_dir();
    let mut args = vec![
        "template",
        "arca",
        chart.to_str().unwrap(),
        "--include-crds",
        "--namespace",
        namespace,
    ];
    args.extend_from_slice(extra);
    documents(&helm(helm_bin, &args), "helm template")
}

/// Where two values differ, one line per place: `path: expected … / rendered …`.
fn differences(at: &str, expected: &Value, rendered: &Value, out: &mut Vec<String>) {
    match (expected, rendered) {
        (Value::Object(a), Value::Object(b)) => {
            let fields: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for f in fields {
                match (a.get(f), b.get(f)) {
                    (Some(x), Some(y)) => differences(&format!("{at}.{f}"), x, y, out),
                    (x, y) => out.push(format!(
                        "  {at}.{f}: expected {} / rendered {}",
                        show(x),
                        show(y)
                    )),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differences(&format!("{at}[{i}]"), x, y, out);
            }
        }
        _ if expected != rendered => out.push(format!(
            "  {at}: expected {} / rendered {}",
            show(Some(expected)),
            show(Some(rendered))
        )),
        _ => {}
    }
}

fn show(v: Option<&Value>) -> String {
    v.map_or("(absent)".into(), |v| v.to_string())
}

/// Panic with every missing, extra and differing object (and where it differs) unless the two
/// sets are equal.
fn assert_same_objects(expected: Vec<Value>, rendered: Vec<Value>, what: &str) {
    let expected = by_key(expected, "expected");
    let rendered = by_key(rendered, "helm template");
    let mut report = Vec::new();
    for (key, want) in &expected {
        match rendered.get(key) {
            None => report.push(format!("{key}: not rendered by the chart")),
            Some(got) => {
                let mut diff = Vec::new();
                differences("", want, got, &mut diff);
                if !diff.is_empty() {
                    report.push(format!("{key} differs:\n{}", diff.join("\n")));
                }
            }
        }
    }
    for key in rendered.keys().filter(|k| !expected.contains_key(*k)) {
        report.push(format!("{key}: rendered by the chart, not expected"));
    }
    assert!(
        report.is_empty(),
        "{what}:\n{}\n({} objects expected, {} rendered)",
        report.join("\n"),
        expected.len(),
        rendered.len()
    );
}

/// Set the field at JSON pointer `path`, which must exist.
fn set(obj: &mut Value, path: &str, v: Value) {
    let key = key_of(obj);
    *obj.pointer_mut(path)
        .unwrap_or_else(|| panic!("{key} has no {path}")) = v;
}

#[test]
fn helm_lint_passes() {
    let helm_bin = tool_or_return!("helm");
    let chart = chart_dir();
    let out = helm(&helm_bin, &["lint", "--strict", chart.to_str().unwrap()]);
    assert!(out.contains("0 chart(s) failed"), "helm lint said:\n{out}");
}

#[test]
fn default_render_equals_the_kustomization() {
    let helm_bin = tool_or_return!("helm");
    let expected = kustomization_objects();
    let namespace = deploy_namespace(&expected);
    let rendered = render(&helm_bin, &namespace, &[]);
    assert_same_objects(
        expected,
        rendered,
        "deploy/chart with default values does not render what deploy/kustomization.yaml does",
    );
}

/// Each value changes the fields it is for, in the object it is for, and nothing else: the
/// expected objects are the default render with exactly those fields changed.
#[test]
fn values_land_in_their_fields() {
    let helm_bin = tool_or_return!("helm");
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(
        &values,
        r#"
image:
  repository: registry.example/backup/arca
  tag: "0.9.1"
  pullPolicy: Always
operator:
  metricsPort: 9185
  resources:
    requests: {cpu: 250m, memory: 256Mi}
    limits: {memory: 2Gi}
agent:
  metricsPort: 9186
  resources:
    requests: {cpu: 50m, memory: 64Mi}
    limits: {memory: 4Gi}
  nodeSelector:
    kubernetes.io/os: linux
    backups: "yes"
  tolerations:
    - key: node-role.kubernetes.io/control-plane
      operator: Exists
      effect: NoSchedule
locations:
  - name: primary
    spec:
      provider: s3
      bucket: backups
      prefix: cluster-a
      default: true
      config: {region: eu-west-1, pathStyle: true}
      credential: {name: s3-credentials}
"#,
    )
    .unwrap();
    let values = values.to_str().unwrap();
    let chart = chart_dir();
    helm(
        &helm_bin,
        &["lint", "--strict", chart.to_str().unwrap(), "-f", values],
    );

    let namespace = deploy_namespace(&kustomization_objects());
    let mut expected = render(&helm_bin, &namespace, &[]);
    let rendered = render(&helm_bin, &namespace, &["-f", values]);

    let image = "registry.example/backup/arca:0.9.1";
    for obj in &mut expected {
        let pod = "/spec/template/spec";
        let container = "/spec/template/spec/containers/0";
        let (name, port, resources) = match obj["metadata"]["name"].as_str() {
            Some("arca-operator") if obj["kind"] == "Deployment" => (
                "operator",
                9185,
                json!({"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "2Gi"}}),
            ),
            Some("arca-agent") if obj["kind"] == "DaemonSet" => (
                "agent",
                9186,
                json!({"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "4Gi"}}),
            ),
            _ => continue,
        };
        set(obj, &format!("{container}/image"), json!(image));
        obj.pointer_mut(container).unwrap()["imagePullPolicy"] = json!("Always");
        let args = obj.pointer_mut(&format!("{container}/args")).unwrap();
        let address = args
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .skip_while(|a| a.as_str() != Some("--metrics-address"))
            .nth(1)
            .unwrap_or_else(|| panic!("the {name} has no --metrics-address"));
        *address = json!(format!("0.0.0.0:{port}"));
        set(
            obj,
            &format!("{container}/ports/0/containerPort"),
            json!(port),
        );
        set(obj, &format!("{container}/resources"), resources);
        if name == "operator" {
            set(
                obj,
                "/spec/template/metadata/annotations/prometheus.io~1port",
                json!(port.to_string()),
            );
        } else {
            let spec = obj.pointer_mut(pod).unwrap();
            spec["nodeSelector"] = json!({"kubernetes.io/os": "linux", "backups": "yes"});
            spec["tolerations"] = json!([{
                "key": "node-role.kubernetes.io/control-plane",
                "operator": "Exists",
                "effect": "NoSchedule"
            }]);
        }
    }
    let location = json!({
        "apiVersion": "arca.dev/v1alpha1",
        "kind": "BackupStorageLocation",
        "metadata": {"name": "primary", "namespace": namespace},
        "spec": {
            "provider": "s3",
            "bucket": "backups",
            "prefix": "cluster-a",
            "default": true,
            "config": {"region": "eu-west-1", "pathStyle": true},
            "credential": {"name": "s3-credentials"}
        }
    });
    // The operator's own type reads it (a misspelt field would be an error there or here).
    let typed: arca_api::BackupStorageLocation = serde_json::from_value(location.clone())
        .expect("the rendered location is not a BackupStorageLocation");
    assert_eq!(typed.spec.bucket, "backups");
    expected.push(location);

    assert_same_objects(
        expected,
        rendered,
        "deploy/chart with overridden values renders other than expected",
    );
}

/// `-n` moves every namespaced object and the RBAC subjects; `createNamespace: false` leaves
/// the Namespace out.
#[test]
fn namespace_follows_the_release() {
    let helm_bin = tool_or_return!("helm");
    let rendered = render(&helm_bin, "backups", &[]);
    let mut namespaces = 0;
    for obj in &rendered {
        let key = key_of(obj);
        if obj["kind"] == "Namespace" {
            assert_eq!(obj["metadata"]["name"], "backups", "{key}");
            namespaces += 1;
        }
        if let Some(ns) = obj["metadata"]["namespace"].as_str() {
            assert_eq!(ns, "backups", "{key}");
        }
        for subject in obj["subjects"].as_array().into_iter().flatten() {
            assert_eq!(subject["namespace"], "backups", "{key}: subject {subject}");
        }
    }
    assert_eq!(namespaces, 1);

    let rendered = render(&helm_bin, "backups", &["--set", "createNamespace=false"]);
    assert!(
        !rendered.iter().any(|o| o["kind"] == "Namespace"),
        "createNamespace=false still renders a Namespace"
    );
}
