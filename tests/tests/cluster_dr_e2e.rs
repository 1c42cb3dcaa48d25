//! Whole-cluster loss on real control planes: cluster A (a control plane of this test's own)
//! backs up two namespaces to MinIO and is then thrown away, etcd and Secrets with it. In
//! cluster B, a second empty control plane, only `deploy/`, the location, its credentials and
//! the recovery key exported from A are created; the Backup must come back by backup sync, a
//! Restore of it must give every file and the manifests back, and the next backup of a
//! restored claim must find its parent among A's snapshots. Before B, a cluster C migrates
//! the same Backup through the location marked ReadOnly: the bucket's files (names and sizes,
//! locks and keys included) must be the same after its sync and restore as before.
//!
//! As in `cluster_e2e.rs`, the test is the kubelet and the scheduler, and the Arca processes
//! run under their own ServiceAccounts.

mod cluster;
use cluster::*;

use arca_api::backup::{BACKUP_NAME_LABEL, SYNCED_FROM_LABEL};
use arca_api::common::OperationPhase;
use arca_api::location::LocationPhase;
use arca_api::*;
use arca_tests::*;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{ListParams, PostParams};
use kube::ResourceExt;
use rand::RngCore;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// A cluster of this test: its control plane and the E2e handle on it.
async fn new_cluster(base: &Bench, root: &Path, name: &str, suffix: &str) -> (ControlPlane, E2e) {
    let cp = ControlPlane::start(&root.join(format!("control-plane-{name}")));
    let bench = cp.bench(base);
    let e = E2e::new(bench, format!("node-{name}-{suffix}"), String::new()).await;
    install_deploy(&e);
    e.add_node(json!({})).await;
    (cp, e)
}

/// Namespace `ns` with a ConfigMap and pod web-0 (a claim `data` and an emptyDir `cache`,
/// both annotated for backup) running on the node, its volumes filled; returns a copy of the
/// volumes (`<originals>/<ns>/{data,cache}`).
async fn application(e: &E2e, ns: &str, seed: u64, originals: &Path) -> PathBuf {
    apply(
        e,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    );
    apply(
        e,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": ns}, "data": {"seed": seed.to_string()}}),
    );
    apply(
        e,
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": ns},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "", "resources": {"requests": {"storage": "1Gi"}}}}),
    );
    apply(
        e,
        json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": ns, "annotations": {"backup.arca.dev/backup-volumes": "data,cache"}},
        "spec": {"nodeName": e.node, "containers": [{"name": "app", "image": "registry.invalid/app:1"}],
                 "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                             {"name": "cache", "emptyDir": {}}]}}),
    );
    let pod = e.api::<Pod>(ns).get("web-0").await.unwrap();
    e.kubelet_starts_in(ns, &pod, false).await;
    let copy = originals.join(ns);
    std::fs::create_dir_all(&copy).unwrap();
    for (v, s) in [("data", seed), ("cache", seed + 1)] {
        let dir = e.mounted_dir(ns, &pod, v).await;
        write_files(&dir, s);
        cp_a(&dir, &copy.join(v));
    }
    copy
}

/// Restore Backup `backup` as `restore` in cluster `e` (as the scheduler and kubelet: bind each
/// restored pod, start its restore-wait container, run the real helper), then compare every
/// volume with its copy and check the manifests; returns (namespace, restored data folder).
async fn restore_everything(
    e: &E2e,
    restore: &str,
    backup: &str,
    namespaces: &[String],
    copies: &[PathBuf],
) -> Vec<(String, PathBuf)> {
    arca_ok(e, &["restore", "create", restore, "--from-backup", backup]);
    let mounts = e.dir.path().join("restores");
    let mut data_dirs = Vec::new();
    for (ns, copy) in namespaces.iter().zip(copies) {
        let pod = e
            .until(e.api::<Pod>(ns), "web-0", "restored pod", |_| true)
            .await;
        e.api::<Pod>(ns)
            .create_subresource::<Value, Value>(
                "binding",
                "web-0",
                &PostParams::default(),
                &json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web-0"},
                        "target": {"apiVersion": "v1", "kind": "Node", "name": e.node}}),
            )
            .await
            .unwrap();
        let pod = e.api::<Pod>(ns).get(&pod.name_any()).await.unwrap();
        e.kubelet_starts_in(ns, &pod, true).await;
        for v in ["data", "cache"] {
            e.until_volume_restored(&arca_operator::naming::volume_operation_name(
                restore, ns, "web-0", v,
            ))
            .await;
        }
        let here = mounts.join(ns);
        std::fs::create_dir_all(&here).unwrap();
        let data = e.mounted_dir(ns, &pod, "data").await;
        let cache = e.mounted_dir(ns, &pod, "cache").await;
        std::os::unix::fs::symlink(&data, here.join("data")).unwrap();
        std::os::unix::fs::symlink(&cache, here.join("cache")).unwrap();
        let r = e.api::<Restore>(NS).get(restore).await.unwrap();
        restore_wait_succeeds(&r.uid().unwrap(), &here);
        let opts = CompareOptions {
            root_metadata: false,
            ..Default::default()
        };
        compare_trees_with(&copy.join("data"), &data, &opts).unwrap();
        compare_trees_with(&copy.join("cache"), &cache, &opts).unwrap();
        let cm = e.api::<ConfigMap>(ns).get("settings").await.unwrap();
        assert!(cm.data.unwrap().contains_key("seed"));
        data_dirs.push((ns.clone(), data));
    }
    let r = e.until_restore_ends(restore).await;
    let rs = r.status.unwrap();
    assert_eq!(
        rs.outcome.phase,
        OperationPhase::Completed,
        "{:?}",
        rs.outcome.messages
    );
    data_dirs
}

/// `arca cluster …` against cluster `e`, which must succeed.
fn arca_ok(e: &E2e, args: &[&str]) -> String {
    ok(
        &e.arca_cluster(args),
        &format!("arca cluster {}", args.join(" ")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_cluster_is_lost_and_a_new_one_restores_everything_from_the_bucket() {
    let Some(base) = bench() else { return };
    let suffix = format!("{:06x}", rand::thread_rng().next_u64() & 0xff_ffff);
    let root = tempfile::tempdir().unwrap();
    let originals = root.path().join("originals");
    let prefix = format!("dr-{suffix}");
    let namespaces = [format!("shop-{suffix}"), format!("blog-{suffix}")];

    // --- Cluster A: two namespaces with data, a Backup of both. ------------------------------
    let (cp_a, mut a) = new_cluster(&base, root.path(), "a", &suffix).await;
    let mut copies = Vec::new();
    for (i, ns) in namespaces.iter().enumerate() {
        copies.push(application(&a, ns, 10 * i as u64 + 1, &originals).await);
    }
    minio_location(&a, "default", &prefix, json!({}));
    start_arca(&mut a);
    let phase = |l: &BackupStorageLocation| l.status.as_ref().and_then(|s| s.phase);
    a.until(
        a.api::<BackupStorageLocation>(NS),
        "default",
        "cluster A's location Available",
        move |l| phase(l) == Some(LocationPhase::Available),
    )
    .await;
    let included = namespaces.join(",");
    arca_ok(
        &a,
        &[
            "backup",
            "create",
            "dr1",
            "--include-namespaces",
            &included,
            "--wait",
        ],
    );
    let dr1 = a.api::<Backup>(NS).get("dr1").await.unwrap();
    let st = dr1.status.clone().unwrap();
    assert_eq!(
        st.outcome.phase,
        OperationPhase::Completed,
        "{:?}\n{}",
        st.outcome.messages,
        a.logs()
    );
    let pvbs = a
        .api::<PodVolumeBackup>(NS)
        .list(&ListParams::default().labels(&format!("{BACKUP_NAME_LABEL}=dr1")))
        .await
        .unwrap()
        .items;
    assert_eq!(pvbs.len(), 4, "two volumes in each namespace: {st:?}");
    let old_data_snapshot = pvbs
        .iter()
        .find(|p| p.spec.pod.namespace == namespaces[0] && p.spec.volume == "data")
        .and_then(|p| p.status.clone()?.snapshot_id)
        .expect("the data volume's snapshot");
    let recovery_key = arca_ok(&a, &["location", "export-recovery-key", "default"])
        .trim()
        .to_string();

    // --- Cluster A is lost: its processes, its API server and its etcd. ----------------------
    a.procs.clear();
    cp_a.stop();
    std::fs::remove_dir_all(&cp_a.dir).unwrap();
    drop(a);

    // --- Migration: cluster C restores from the location marked ReadOnly, and the bucket is
    // the same before and after (no key, no lock, no snapshot written). -----------------------
    let (cp_c, mut c) = new_cluster(&base, root.path(), "c", &suffix).await;
    apply(
        &c,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dr-recovery", "namespace": NS},
        "stringData": {"recovery-key": recovery_key}}),
    );
    minio_location(
        &c,
        "default",
        &prefix,
        json!({"accessMode": "ReadOnly", "recoveryKey": {"name": "dr-recovery", "key": "recovery-key"}}),
    );
    let bsl = c
        .api::<BackupStorageLocation>(NS)
        .get("default")
        .await
        .unwrap();
    let repos: Vec<&str> = namespaces
        .iter()
        .map(String::as_str)
        .chain(["resources.arca"])
        .collect();
    let before = c.bucket_listing(&bsl, &repos).await;
    start_arca(&mut c);
    c.until(
        c.api::<Backup>(NS),
        "dr1",
        "Backup dr1 synced (ReadOnly)",
        |x: &Backup| {
            x.status
                .as_ref()
                .is_some_and(|s| s.outcome.phase == OperationPhase::Completed)
        },
    )
    .await;
    restore_everything(&c, "r-migrate", "dr1", &namespaces, &copies).await;
    assert_eq!(
        c.bucket_listing(&bsl, &repos).await,
        before,
        "a ReadOnly location changed the bucket"
    );
    c.procs.clear();
    drop(cp_c);
    drop(c);

    // --- Cluster B: deploy/, the credentials, the recovery key and the location. -------------
    let (_cp_b, mut b) = new_cluster(&base, root.path(), "b", &suffix).await;
    apply(
        &b,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dr-recovery", "namespace": NS},
        "stringData": {"recovery-key": recovery_key}}),
    );
    minio_location(
        &b,
        "default",
        &prefix,
        json!({"recoveryKey": {"name": "dr-recovery", "key": "recovery-key"}}),
    );
    start_arca(&mut b);
    // Within one sync period (1m), the Backup is back with its phase.
    let synced = b
        .until(
            b.api::<Backup>(NS),
            "dr1",
            "Backup dr1 synced from the bucket",
            |x: &Backup| {
                x.status
                    .as_ref()
                    .is_some_and(|s| s.outcome.phase == OperationPhase::Completed)
            },
        )
        .await;
    assert_eq!(synced.labels()[SYNCED_FROM_LABEL], "default");
    assert_eq!(
        synced.status.as_ref().unwrap().outcome.completion_timestamp,
        st.outcome.completion_timestamp
    );

    // --- A Restore of it: every namespace, every file, the manifests. ------------------------
    let new_data_dirs = restore_everything(&b, "r-dr", "dr1", &namespaces, &copies).await;

    // --- The next backup of a restored claim is incremental: its parent is A's snapshot. -----
    let (ns, data) = &new_data_dirs[0];
    std::fs::write(data.join("nested/notes.txt"), b"changed in cluster B\n").unwrap();
    let pod = b.api::<Pod>(ns).get("web-0").await.unwrap();
    b.kubelet_starts_in(ns, &pod, false).await;
    arca_ok(
        &b,
        &[
            "backup",
            "create",
            "dr2",
            "--include-namespaces",
            ns,
            "--wait",
        ],
    );
    let dr2 = b.api::<Backup>(NS).get("dr2").await.unwrap();
    assert_eq!(
        dr2.status.as_ref().unwrap().outcome.phase,
        OperationPhase::Completed,
        "{:?}",
        dr2.status
    );
    let new_snapshot = b
        .api::<PodVolumeBackup>(NS)
        .list(&ListParams::default().labels(&format!("{BACKUP_NAME_LABEL}=dr2")))
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|p| p.spec.volume == "data")
        .and_then(|p| p.status?.snapshot_id)
        .expect("dr2's data snapshot");
    let arca = b
        .arca_on(&arca_operator::repository::name_for(ns, "default"))
        .await;
    let snaps = arca.run_json(["snapshots", "--json"]);
    let snap = snaps
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == new_snapshot.as_str())
        .expect("dr2's snapshot in the repository")
        .clone();
    assert_eq!(snap["parent"], old_data_snapshot.as_str(), "{snap:#}");
    let added = snap["summary"]["data_added"].as_u64().unwrap();
    assert!(
        added < 100_000,
        "only the changed file is new: {added} bytes added"
    );
    // The recovery key is in no log line of cluster B's processes, and no secret of cluster
    // B (its storage credentials, recovery key and repository passwords) was shown anywhere.
    for p in &b.procs {
        assert!(
            !p.text().contains(&recovery_key),
            "{} logs the recovery key",
            p.name
        );
    }
    b.assert_no_secret_shown(std::slice::from_ref(&recovery_key))
        .await;
}
