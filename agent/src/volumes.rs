//! Where a pod's volume lives on its node: `<kubelet pods>/<pod uid>/volumes/<plugin>/<name>`
//! (the plugin being `kubernetes.io~empty-dir`, `kubernetes.io~csi`, …).

use crate::{Error, Result};
use arca_reconcile::Wrap as _;
use std::path::{Path, PathBuf};

/// The directory of volume `volume` of the pod with UID `pod_uid`, or why it cannot be used.
pub fn volume_dir(kubelet_pods: &Path, pod_uid: &str, volume: &str) -> Result<PathBuf> {
    // Both come from objects a tenant may write: only what Kubernetes itself allows (a UID,
    // a DNS label) is joined to a path, so `..` or `a/b` can never leave the pods folder.
    if !is_uid(pod_uid) || !is_dns_label(volume) {
        return Err(Error::Volume(format!(
            "invalid pod UID {pod_uid:?} or volume name {volume:?}"
        )));
    }
    let pod_dir = kubelet_pods.join(pod_uid);
    if !pod_dir.is_dir() {
        return Err(Error::Volume(format!(
            "pod directory {} is missing on this node (is the pod running here, and is \
             --kubelet-pods the kubelet's pods directory?)",
            pod_dir.display()
        )));
    }
    let plugins = pod_dir.join("volumes");
    let entries = std::fs::read_dir(&plugins).map_err(|e| {
        Error::Volume(format!(
            "{}: {e} (the pod has no volumes on this node)",
            plugins.display()
        ))
    })?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(Error::io(plugins.display().to_string()))?;
        let candidate = entry.path().join(volume);
        if candidate.is_dir() {
            found.push(candidate);
        }
    }
    match found.len() {
        1 => Ok(found.pop().expect("one match")),
        0 => Err(Error::Volume(format!(
            "volume {volume} of pod {pod_uid} not found under {} (not mounted on this node?)",
            plugins.display()
        ))),
        _ => Err(Error::Volume(format!(
            "volume {volume} of pod {pod_uid} found under several plugins: {}",
            found
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// A pod UID (a UUID from the API server): letters, digits, dashes; never a dot or slash.
fn is_uid(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A volume name as Kubernetes validates it (RFC 1123 label): lower-case letters, digits
/// and dashes, starting and ending alphanumeric, at most 63 characters.
fn is_dns_label(s: &str) -> bool {
    let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| ok(b) || b == b'-')
        && s.bytes().next().is_some_and(ok)
        && s.bytes().last().is_some_and(ok)
}

/// Check at start-up that `kubelet_pods` looks like the kubelet's pods directory: it exists,
/// and each of `expected_uids` (pods the API server places on this node) has its directory
/// there. A wrong path fails here with one clear line, not later on every volume.
pub fn check_kubelet_pods(kubelet_pods: &Path, expected_uids: &[String]) -> Result<()> {
    if !kubelet_pods.is_dir() {
        return Err(Error::Volume(format!(
            "kubelet pods directory {} does not exist: mount the kubelet's pods directory \
             (e.g. /var/lib/kubelet/pods; k3s: /var/lib/rancher/k3s/agent/kubelet/pods) there",
            kubelet_pods.display()
        )));
    }
    if expected_uids.is_empty() {
        return Ok(());
    }
    let missing: Vec<&String> = expected_uids
        .iter()
        .filter(|uid| !kubelet_pods.join(uid).is_dir())
        .collect();
    if missing.len() == expected_uids.len() {
        return Err(Error::Volume(format!(
            "{} holds none of the {} pods running on this node (first: {}): it is not the \
             kubelet's pods directory, or the mount lacks HostToContainer propagation",
            kubelet_pods.display(),
            expected_uids.len(),
            expected_uids[0]
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_pods_folder_are_refused() {
        let pods = tempfile::tempdir().unwrap();
        let uid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
        std::fs::create_dir_all(
            pods.path()
                .join(uid)
                .join("volumes/kubernetes.io~empty-dir/data"),
        )
        .unwrap();
        assert!(volume_dir(pods.path(), uid, "data").is_ok());
        for (uid, volume) in [
            (uid, ".."),
            (uid, "."),
            (uid, "a/b"),
            (uid, "Data"),
            (uid, ""),
            ("..", "data"),
            ("../x", "data"),
            ("", "data"),
        ] {
            let err = volume_dir(pods.path(), uid, volume).unwrap_err();
            assert!(
                err.to_string().starts_with("invalid pod UID"),
                "{uid:?} {volume:?}: {err}"
            );
        }
    }
}
