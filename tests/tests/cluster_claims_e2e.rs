//! Claims no running pod mounts, on a real control plane of this test's own: backed up and
//! restored through the operator's short-lived helper pods, which are gone afterwards, also
//! when the backup fails. There is no kubelet here: the test is the node's (it mounts the
//! claim by filling the helper's volume folder where the kubelet mounts a CSI volume, reports
//! the helper running, finishes the deletion the operator asks for), the scheduler's (it binds
//! the restore's helper) and the provisioner's (a volume for the restored claim); the API
//! server, the controller-manager (binding claims to volumes), the operator and the agent are
//! real.
//!
//! Steps: a claim last used by a finished Job-like pod, backed up with
//! `snapshotUnmountedVolumes` through a helper on that pod's node (read-only, no token),
//! lineage the claim's UID; a second Backup whose helper's volume is missing (PartiallyFailed,
//! the helper still removed); the first Backup restored into another namespace, the claim's
//! contents byte-identical, the restore's helper removed.

mod cluster;
use cluster::*;

use arca_api::backup::{CLAIM_HELPER_LABEL, CLAIM_SNAPSHOT_ANNOTATION};
use arca_api::common::{OperationPhase, VolumePhase};
use arca_api::podvolume::PVC_UID_LABEL;
use arca_api::*;
use arca_tests::*;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use rand::RngCore;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_with_no_running_pod_are_backed_up_and_restored_through_helper_pods() {
    let Some(base) = bench() else { return };
    let root = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start(&root.path().join("control-plane"));
    let bench = cp.bench(&base);
    let suffix = format!("{:06x}", rand::thread_rng().next_u64() & 0xff_ffff);
    let mut e = E2e::new(bench, format!("node-{suffix}"), format!("reports-{suffix}")).await;
    install_deploy(&e);
    e.add_node(json!({})).await;
    minio_location(&e, "default", &format!("claims-{suffix}"), json!({}));
    start_arca(&mut e);

    // --- A claim bound to its volume, last used by a pod that has finished. ---------------
    let app = e.app.clone();
    apply(
        &e,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": app}}),
    );
    let pv = format!("pv-{suffix}");
    apply(
        &e,
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "storageClassName": "manual",
                 "csi": {"driver": "disk.csi.arca.test", "volumeHandle": pv},
                 "claimRef": {"namespace": app, "name": "reports"}}}),
    );
    apply(
        &e,
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "reports", "namespace": app},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "manual", "volumeName": pv,
                 "resources": {"requests": {"storage": "1Gi"}}}}),
    );
    let claim = e
        .until(
            e.api::<PersistentVolumeClaim>(&app),
            "reports",
            "the controller-manager binds the claim",
            |c: &PersistentVolumeClaim| {
                c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
            },
        )
        .await;
    apply(
        &e,
        json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "report-job-1", "namespace": app},
        "spec": {"nodeName": e.node, "restartPolicy": "Never",
                 "containers": [{"name": "report", "image": "registry.invalid/report:1"}],
                 "volumes": [{"name": "out", "persistentVolumeClaim": {"claimName": "reports"}}]}}),
    );
    e.api::<Pod>(&app)
        .patch_status(
            "report-job-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Succeeded"}})),
        )
        .await
        .unwrap();

    // --- b1: the claim through a helper on the last user's node. ---------------------------
    create_backup(&e, "b1");
    let helper = until_helper(&e, &app, "backup").await;
    let spec = helper.spec.clone().unwrap();
    assert_eq!(
        spec.node_name.as_deref(),
        Some(e.node.as_str()),
        "the last user's node"
    );
    assert_eq!(spec.automount_service_account_token, Some(false));
    let source = spec.volumes.as_ref().unwrap()[0]
        .persistent_volume_claim
        .clone()
        .unwrap();
    assert_eq!(
        (source.claim_name.as_str(), source.read_only),
        ("reports", Some(true))
    );
    // As the kubelet: the claim mounted in the helper's volume folder, the helper running.
    let mounted = e.mounted_dir(&app, &helper, "claim").await;
    assert!(
        mounted.ends_with(format!("kubernetes.io~csi/{pv}/mount")),
        "{mounted:?}"
    );
    std::fs::create_dir_all(&mounted).unwrap();
    write_files(&mounted, 17);
    let originals = e.dir.path().join("originals");
    cp_a(&mounted, &originals);
    kubelet_runs(&e, &helper).await;
    let b1 = until_backup_ends(&e, "b1").await;
    let st = b1.status.clone().unwrap();
    assert_eq!(
        st.outcome.phase,
        OperationPhase::Completed,
        "{st:?}\n{}",
        e.logs()
    );
    assert!(st.pending_claim_helpers.is_empty());
    let pvbs = pvbs_of(&e, "b1").await;
    assert_eq!(pvbs.len(), 1, "{pvbs:?}");
    assert_eq!(pvbs[0].spec.pod.name, helper.name_any());
    assert_eq!(
        pvbs[0].labels().get(PVC_UID_LABEL),
        claim.uid().as_ref(),
        "the claim's UID is the lineage"
    );
    assert_eq!(
        pvbs[0].status.as_ref().unwrap().phase,
        VolumePhase::Completed
    );
    helper_removed(&e, &helper).await;

    // --- b2: the helper's volume is not there: PartiallyFailed, the helper still removed. --
    create_backup(&e, "b2");
    let helper2 = until_helper(&e, &app, "backup").await;
    assert_ne!(helper2.uid(), helper.uid());
    kubelet_runs(&e, &helper2).await;
    let b2 = until_backup_ends(&e, "b2").await;
    let st = b2.status.clone().unwrap();
    assert_eq!(st.outcome.phase, OperationPhase::PartiallyFailed, "{st:?}");
    assert!(
        st.outcome.messages.iter().any(|m| m.contains("claim")),
        "{:?}",
        st.outcome.messages
    );
    helper_removed(&e, &helper2).await;

    // --- r1: b1 into another namespace; the claim's contents come back through a helper. --
    let to = format!("{app}-r");
    apply(
        &e,
        json!({"apiVersion": "arca.dev/v1alpha1", "kind": "Restore",
        "metadata": {"name": "r1", "namespace": NS},
        "spec": {"backupName": "b1", "namespaceMapping": {app.clone(): to},
                 "includedResources": ["namespaces", "persistentvolumeclaims"]}}),
    );
    let restored = e
        .until(
            e.api::<PersistentVolumeClaim>(&to),
            "reports",
            "the restored claim",
            |_| true,
        )
        .await;
    assert_eq!(
        restored.annotations().get(CLAIM_SNAPSHOT_ANNOTATION),
        None,
        "the snapshot's ID is not left on the restored claim"
    );
    let rhelper = until_helper(&e, &to, "restore").await;
    assert_eq!(
        rhelper
            .spec
            .as_ref()
            .unwrap()
            .init_containers
            .as_ref()
            .unwrap()[0]
            .name,
        "restore-wait"
    );
    // As the kubelet and the scheduler: restore-wait starts, the helper is bound here.
    // As the provisioner: a new volume for the restored claim.
    let target = e.mounted_dir(&to, &rhelper, "claim").await;
    std::fs::create_dir_all(&target).unwrap();
    e.api::<Pod>(&to)
        .patch_status(
            &rhelper.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Pending", "initContainerStatuses": [{
                "name": "restore-wait", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
                "state": {"running": {"startedAt": jiff::Timestamp::now().to_string()}}}]}})),
        )
        .await
        .unwrap();
    e.api::<Pod>(&to)
        .create_subresource::<serde_json::Value, serde_json::Value>(
            "binding",
            &rhelper.name_any(),
            &PostParams::default(),
            &json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": rhelper.name_any()},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": e.node}}),
        )
        .await
        .unwrap();
    let pvr = arca_operator::naming::volume_operation_name("r1", &to, &rhelper.name_any(), "claim");
    e.until_volume_restored(&pvr).await;
    // The helper's restore-wait, the real one, then the contents compared.
    let r1 = e.api::<Restore>(NS).get("r1").await.unwrap();
    let mounts = e.dir.path().join("restores");
    std::fs::create_dir_all(&mounts).unwrap();
    std::os::unix::fs::symlink(&target, mounts.join("claim")).unwrap();
    restore_wait_succeeds(&r1.uid().unwrap(), &mounts);
    let opts = CompareOptions {
        root_metadata: false,
        ..Default::default()
    };
    compare_trees_with(&originals, &target, &opts).unwrap();
    let r1 = e.until_restore_ends("r1").await;
    let st = r1.status.unwrap();
    assert_eq!(
        st.outcome.phase,
        OperationPhase::Completed,
        "{st:?}\n{}",
        e.logs()
    );
    helper_removed(&e, &rhelper).await;

    e.assert_no_secret_shown(&[]).await;
    drop(cp);
}

fn create_backup(e: &E2e, name: &str) {
    apply(
        e,
        json!({"apiVersion": "arca.dev/v1alpha1", "kind": "Backup",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"includedNamespaces": [e.app], "snapshotUnmountedVolumes": true}}),
    );
}

/// The helper pod of `kind` (`backup` or `restore`) in `ns` not yet being deleted, once the
/// operator has made it.
async fn until_helper(e: &E2e, ns: &str, kind: &str) -> Pod {
    let deadline = Instant::now() + STEP;
    loop {
        let found = e
            .api::<Pod>(ns)
            .list(&ListParams::default().labels(&format!("{CLAIM_HELPER_LABEL}={kind}")))
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|p| p.metadata.deletion_timestamp.is_none());
        if let Some(p) = found {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "no {kind} helper pod in {ns}\n{}",
            e.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// As the kubelet: the pod's containers run.
async fn kubelet_runs(e: &E2e, pod: &Pod) {
    e.api::<Pod>(&pod.namespace().unwrap())
        .patch_status(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}]}})),
        )
        .await
        .unwrap();
}

/// The operator has asked for `pod`'s deletion; as the kubelet, finish it (the container
/// stopped), and the pod is gone.
async fn helper_removed(e: &E2e, pod: &Pod) {
    let pods = e.api::<Pod>(&pod.namespace().unwrap());
    let name = pod.name_any();
    let asked = e
        .until(
            pods.clone(),
            &name,
            "the operator deletes the helper",
            |p: &Pod| p.metadata.deletion_timestamp.is_some(),
        )
        .await;
    assert_eq!(asked.uid(), pod.uid());
    pods.delete(&name, &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let deadline = Instant::now() + STEP;
    while pods.get_opt(&name).await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "helper {name} is still there");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn until_backup_ends(e: &E2e, name: &str) -> Backup {
    e.until(
        e.api::<Backup>(NS),
        name,
        &format!("Backup {name} ends"),
        |b: &Backup| {
            b.status
                .as_ref()
                .is_some_and(|s| s.outcome.phase.is_final())
        },
    )
    .await
}

async fn pvbs_of(e: &E2e, backup: &str) -> Vec<PodVolumeBackup> {
    e.api::<PodVolumeBackup>(NS)
        .list(&ListParams::default().labels(&format!("arca.dev/backup-name={backup}")))
        .await
        .unwrap()
        .items
}
