//! Where a pod's volume lives on its node: `<kubelet pods>/<pod uid>/volumes/<plugin>/<name>`
//! (the plugin being `kubernetes.io~empty-dir`, `kubernetes.io~csi`, …; the name a claim's
//! PersistentVolume's; a CSI volume's files in `mount` below it).

use crate::{Error, Result};
use arca_reconcile::Wrap as _;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::{Api, ResourceExt};
use std::path::{Path, PathBuf};

/// How the kubelet names a volume's folder under `<pod>/volumes/<plugin>/`: a claim's by its
/// PersistentVolume's name, any other volume by its own name; a CSI volume's files are in
/// `mount` below that folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub name: String,
    pub csi: bool,
}

impl Mount {
    /// A volume of the pod's own (emptyDir and the like), by its name.
    pub fn own(volume: &str) -> Mount {
        Mount {
            name: volume.to_string(),
            csi: false,
        }
    }
}

/// The folder of volume `volume` of `pod`, as the kubelet lays it out: for a claim, the
/// PersistentVolume it is bound to (read through the API), as Velero's node agent finds it.
pub async fn mount_of(client: &kube::Client, pod: &Pod, volume: &str) -> Result<Mount> {
    let ns = pod.namespace().unwrap_or_default();
    let v = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .and_then(|vs| vs.iter().find(|v| v.name == volume))
        .ok_or_else(|| {
            Error::Volume(format!(
                "pod {ns}/{} has no volume {volume}",
                pod.name_any()
            ))
        })?;
    let Some(claim) = &v.persistent_volume_claim else {
        return Ok(Mount {
            name: volume.to_string(),
            csi: v.csi.is_some(),
        });
    };
    let claim = &claim.claim_name;
    let pvc = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns)
        .get_opt(claim)
        .await
        .map_err(Error::api(format!("reading claim {ns}/{claim}")))?
        .ok_or_else(|| Error::Volume(format!("claim {ns}/{claim} of volume {volume} is gone")))?;
    let pv_name = pvc
        .spec
        .and_then(|s| s.volume_name)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            Error::Volume(format!(
                "claim {ns}/{claim} of volume {volume} is not bound to a volume"
            ))
        })?;
    let pv = Api::<PersistentVolume>::all(client.clone())
        .get_opt(&pv_name)
        .await
        .map_err(Error::api(format!("reading persistent volume {pv_name}")))?
        .ok_or_else(|| {
            Error::Volume(format!(
                "persistent volume {pv_name} of claim {ns}/{claim} is gone"
            ))
        })?;
    Ok(Mount {
        name: pv_name,
        csi: pv.spec.is_some_and(|s| s.csi.is_some()),
    })
}

/// The directory of `mount` of the pod with UID `pod_uid`, or why it cannot be used.
pub fn volume_dir(kubelet_pods: &Path, pod_uid: &str, mount: &Mount) -> Result<PathBuf> {
    let volume = mount.name.as_str();
    // Both come from objects a tenant may write: only what Kubernetes itself allows (a UID,
    // a DNS name) is joined to a path, so `..` or `a/b` can never leave the pods folder.
    if !is_uid(pod_uid) || !is_dns_name(volume) {
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
        let mut candidate = entry.path().join(volume);
        if mount.csi {
            candidate.push("mount");
        }
        if candidate.is_dir() {
            found.push(candidate);
        }
    }
    match found.len() {
        1 => Ok(found.pop().expect("one match")),
        0 => Err(Error::Volume(format!(
            "volume {volume}{} of pod {pod_uid} not found under {} (not mounted on this node?)",
            if mount.csi { "/mount" } else { "" },
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

/// A volume or PersistentVolume name as Kubernetes validates it (RFC 1123): lower-case
/// letters, digits, dashes and dots, starting and ending alphanumeric, at most 253 characters;
/// so never `.`, `..` or a slash.
fn is_dns_name(s: &str) -> bool {
    let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 253
        && s.bytes().all(|b| ok(b) || b == b'-' || b == b'.')
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
        assert!(volume_dir(pods.path(), uid, &Mount::own("data")).is_ok());
        for (uid, volume) in [
            (uid, ".."),
            (uid, "."),
            (uid, "a/b"),
            (uid, "Data"),
            (uid, ""),
            (uid, ".hidden"),
            ("..", "data"),
            ("../x", "data"),
            ("", "data"),
        ] {
            let err = volume_dir(pods.path(), uid, &Mount::own(volume)).unwrap_err();
            assert!(
                err.to_string().starts_with("invalid pod UID"),
                "{uid:?} {volume:?}: {err}"
            );
        }
    }

    #[test]
    fn a_csi_volume_is_found_in_its_mount_folder() {
        let pods = tempfile::tempdir().unwrap();
        let uid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
        let csi = pods
            .path()
            .join(uid)
            .join("volumes/kubernetes.io~csi/pvc-8c1e.example/mount");
        std::fs::create_dir_all(&csi).unwrap();
        let mount = Mount {
            name: "pvc-8c1e.example".into(),
            csi: true,
        };
        assert_eq!(volume_dir(pods.path(), uid, &mount).unwrap(), csi);
        std::fs::remove_dir(&csi).unwrap();
        let err = volume_dir(pods.path(), uid, &mount).unwrap_err();
        assert!(err.to_string().contains("pvc-8c1e.example/mount"), "{err}");
    }
}
