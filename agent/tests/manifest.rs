//! The DaemonSet in deploy/ runs this binary with arguments it accepts: started outside a
//! cluster with them, it gets as far as looking for the API server.

use std::process::Command;

#[test]
fn the_daemonset_arguments_are_accepted() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/agent.yaml"))
            .unwrap();
    let ds: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let c = &ds["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["command"][0], "/usr/local/bin/arca-agent");
    let args: Vec<String> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = a.as_str().unwrap();
            // The kubelet expands $(VAR) from the container's env.
            a.replace("$(NODE_NAME)", "node-a")
                .replace("$(POD_NAMESPACE)", "arca-system")
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_arca-agent"))
        .args(&args)
        .env("KUBECONFIG", dir.path().join("no-kubeconfig"))
        .env("HOME", dir.path())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the Kubernetes API"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
