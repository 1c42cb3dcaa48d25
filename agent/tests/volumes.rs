//! Finding pod volumes under a directory laid out like the kubelet's.

use arca_agent::volumes::{check_kubelet_pods, volume_dir, Mount};
use std::path::Path;

fn pod(root: &Path, uid: &str, plugin: &str, volume: &str) {
    std::fs::create_dir_all(root.join(uid).join("volumes").join(plugin).join(volume)).unwrap();
}

#[test]
fn finds_a_volume_under_any_plugin() {
    let root = tempfile::tempdir().unwrap();
    pod(root.path(), "uid-a", "kubernetes.io~empty-dir", "cache");
    pod(root.path(), "uid-a", "kubernetes.io~csi", "pv-data/mount");
    let csi = Mount {
        name: "pv-data".into(),
        csi: true,
    };
    assert_eq!(
        volume_dir(root.path(), "uid-a", &csi).unwrap(),
        root.path()
            .join("uid-a/volumes/kubernetes.io~csi/pv-data/mount")
    );
    assert_eq!(
        volume_dir(root.path(), "uid-a", &Mount::own("cache")).unwrap(),
        root.path()
            .join("uid-a/volumes/kubernetes.io~empty-dir/cache")
    );
}

#[test]
fn says_what_is_missing() {
    let root = tempfile::tempdir().unwrap();
    pod(root.path(), "uid-a", "kubernetes.io~empty-dir", "cache");
    let e = volume_dir(root.path(), "uid-b", &Mount::own("cache"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("pod directory") && e.contains("uid-b") && e.contains("--kubelet-pods"),
        "{e}"
    );
    let e = volume_dir(root.path(), "uid-a", &Mount::own("data"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("volume data of pod uid-a not found"), "{e}");
    pod(root.path(), "uid-a", "kubernetes.io~csi", "cache");
    let e = volume_dir(root.path(), "uid-a", &Mount::own("cache"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("several plugins"), "{e}");
    let e = volume_dir(root.path(), "../etc", &Mount::own("cache"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid pod UID"), "{e}");
}

#[test]
fn start_up_check_recognises_a_wrong_pods_directory() {
    let root = tempfile::tempdir().unwrap();
    pod(root.path(), "uid-a", "kubernetes.io~empty-dir", "cache");
    assert!(check_kubelet_pods(root.path(), &["uid-a".into(), "uid-gone".into()]).is_ok());
    assert!(check_kubelet_pods(root.path(), &[]).is_ok());
    let e = check_kubelet_pods(root.path(), &["uid-x".into(), "uid-y".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds none of the 2 pods"), "{e}");
    let e = check_kubelet_pods(&root.path().join("nope"), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not exist"), "{e}");
}
