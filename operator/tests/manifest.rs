//! The Deployment in deploy/ runs this binary with arguments it accepts: started outside a
//! cluster with them, it gets as far as looking for the API server, and says in one line
//! that there is none.

use std::process::Command;

#[test]
fn the_deployment_arguments_are_accepted() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/operator.yaml"
    ))
    .unwrap();
    let deployment: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let c = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["command"][0], "/usr/local/bin/arca-operator");
    let args: Vec<String> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            // The kubelet expands $(VAR) from the container's env; a free port stands in for
            // the metrics port, which this machine may use.
            a.as_str()
                .unwrap()
                .replace("$(POD_NAMESPACE)", "arca-system")
                .replace("0.0.0.0:8085", "127.0.0.1:0")
        })
        .collect();
    assert!(args.iter().any(|a| a == "--metrics-address"), "{args:?}");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_arca-operator"))
        .args(&args)
        .env("KUBECONFIG", dir.path().join("no-kubeconfig"))
        .env("HOME", dir.path())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("Fatal: cannot reach the Kubernetes API"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // A bad flag value is refused by name.
    let out = Command::new(env!("CARGO_BIN_EXE_arca-operator"))
        .args(["--metrics-address", "not-an-address"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("Fatal: --metrics-address \"not-an-address\""),
        "{err}"
    );
}
