//! The PodVolumeBackup reconciler against an in-memory API server (kube-fake-client) and a
//! real repository on disk.

mod common;

use arca_agent::pod_volume_backup::{reconcile, Outcome};
use arca_api::common::VolumePhase;
use common::*;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backs_up_a_volume_then_only_the_changes_after_the_pod_moves() {
    let w = world(
        true,
        vec![
            pvb("b1", "node-a", "uid-1", "data"),
            pvb("b2", "node-a", "uid-2", "data"),
        ],
    )
    .await;
    let ctx = context(&w);

    assert_eq!(
        reconcile(&get(&w, "b1").await, &ctx).await.unwrap(),
        Outcome::Completed
    );
    let first = get(&w, "b1").await.status.unwrap();
    assert_eq!(first.phase, VolumePhase::Completed);
    let first_id = first.snapshot_id.clone().unwrap();
    assert_eq!(first.parent_snapshot_id, None);
    let p = first.progress.unwrap();
    assert_eq!((p.total_files, p.files_done), (2, 2));
    assert_eq!(p.bytes_done, (5 << 20) + 13);
    assert!(first.incremental_bytes.unwrap() > 0);
    assert!(first.start_timestamp.is_some() && first.completion_timestamp.is_some());
    // The finished object is left alone.
    assert_eq!(
        reconcile(&get(&w, "b1").await, &ctx).await.unwrap(),
        Outcome::Ignored
    );

    // The pod is recreated (new UID, same claim); one small file changes.
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(w.client.clone(), "shop");
    pods.delete("web-0", &Default::default()).await.unwrap();
    pods.create(&Default::default(), &app_pod("uid-2"))
        .await
        .unwrap();
    std::fs::create_dir_all(w.pods.join("uid-2")).unwrap();
    std::fs::rename(w.pods.join("uid-1/volumes"), w.pods.join("uid-2/volumes")).unwrap();
    std::fs::write(
        w.pods
            .join("uid-2/volumes/kubernetes.io~csi/pv-data/mount/notes.txt"),
        b"second",
    )
    .unwrap();
    assert_eq!(
        reconcile(&get(&w, "b2").await, &ctx).await.unwrap(),
        Outcome::Completed
    );
    let second = get(&w, "b2").await.status.unwrap();
    assert_eq!(
        second.parent_snapshot_id.as_deref(),
        Some(first_id.as_str())
    );
    let added = second.incremental_bytes.unwrap();
    assert!(
        added < 64 << 10,
        "only the change is stored, not {added} bytes"
    );

    // The snapshots carry the tags restic users filter on.
    let repo = arca_engine::Repository::open(arca_storage::open(&w.url).unwrap(), PASSWORD)
        .await
        .unwrap();
    let snaps = arca_engine::snapshots::load_all(&repo).await.unwrap();
    assert_eq!(snaps.len(), 2);
    for t in ["pvc-uid=pvc-1", "volume=data", "backup=b2"] {
        assert!(
            snaps[1].tags.iter().any(|x| x == t),
            "missing tag {t}: {:?}",
            snaps[1].tags
        );
    }
    assert_eq!(snaps[1].hostname, "arca");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_nodes_work_is_left_alone_and_bad_input_fails_with_a_reason() {
    let w = world(
        true,
        vec![
            pvb("elsewhere", "node-b", "uid-1", "data"),
            pvb("no-volume", "node-a", "uid-1", "logs"),
            pvb("no-pod", "node-a", "uid-9", "data"),
        ],
    )
    .await;
    let ctx = context(&w);
    assert_eq!(
        reconcile(&get(&w, "elsewhere").await, &ctx).await.unwrap(),
        Outcome::Ignored
    );
    assert!(get(&w, "elsewhere").await.status.is_none());

    let Outcome::Failed(msg) = reconcile(&get(&w, "no-volume").await, &ctx).await.unwrap() else {
        panic!("a missing volume must fail");
    };
    assert!(msg.contains("volume logs of pod uid-1 not found"), "{msg}");
    let st = get(&w, "no-volume").await.status.unwrap();
    assert_eq!(st.phase, VolumePhase::Failed);
    assert_eq!(st.message.as_deref(), Some(msg.as_str()));

    let Outcome::Failed(msg) = reconcile(&get(&w, "no-pod").await, &ctx).await.unwrap() else {
        panic!("a missing pod must fail");
    };
    assert!(msg.contains("shop/web-0 (uid-9) no longer exists"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_that_is_not_ready_makes_the_backup_wait_not_fail() {
    let w = world(false, vec![pvb("b1", "node-a", "uid-1", "data")]).await;
    let ctx = Arc::new(context(&w));
    let Outcome::WaitingForRepository(msg) = reconcile(&get(&w, "b1").await, &ctx).await.unwrap()
    else {
        panic!("must wait");
    };
    assert_eq!(
        msg,
        "BackupRepository shop-default is not ready: cannot reach the store"
    );
    let phase = get(&w, "b1")
        .await
        .status
        .map(|s| s.phase)
        .unwrap_or_default();
    assert!(!phase.is_final(), "{phase:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_cut_off_by_a_restart_runs_again_and_running_work_is_not_doubled() {
    // The agent died while this backup ran: it is InProgress, and no process works on it.
    let mut cut_off = pvb("b1", "node-a", "uid-1", "data");
    cut_off.status = Some(arca_api::PodVolumeBackupStatus {
        phase: VolumePhase::InProgress,
        ..Default::default()
    });
    let w = world(true, vec![cut_off]).await;
    let ctx = context(&w);

    // While this process runs it, another look leaves it alone.
    let uid = get(&w, "b1").await.metadata.uid.unwrap();
    let running = ctx.begin(&uid).expect("not yet running");
    assert_eq!(
        reconcile(&get(&w, "b1").await, &ctx).await.unwrap(),
        Outcome::Ignored
    );
    drop(running);

    // After a restart nobody runs it: it runs again, to the end, and says so.
    assert_eq!(
        reconcile(&get(&w, "b1").await, &ctx).await.unwrap(),
        Outcome::Completed
    );
    let st = get(&w, "b1").await.status.unwrap();
    assert_eq!(st.phase, VolumePhase::Completed);
    assert!(st.snapshot_id.is_some());
    assert_eq!(
        st.message.as_deref(),
        Some("resumed after an agent restart")
    );
}

/// Maintenance holds the repository exclusively: the volume backup waits (its status says for
/// whom and how long) instead of failing, and completes once the lock is gone, recording the
/// wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_waits_for_maintenance_and_shows_the_wait() {
    let w = world(true, vec![pvb("b1", "node-a", "uid-1", "data")]).await;
    let ctx = Arc::new(context(&w));
    let repo = arca_engine::Repository::open(arca_storage::open(&w.url).unwrap(), PASSWORD)
        .await
        .unwrap();
    let maintenance = arca_engine::lock::LockGuard::acquire(&repo, true)
        .await
        .unwrap();
    let work = {
        let (ctx, pvb) = (ctx.clone(), get(&w, "b1").await);
        // On a thread of its own, as the controller runs it (the future is not `Send`).
        let rt = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || rt.block_on(reconcile(&pvb, &ctx)))
    };
    // Wait until the status says it waits (no deadline but the test's own: the status is the
    // only thing that moves it on).
    let said = loop {
        let st = get(&w, "b1").await.status.unwrap_or_default();
        if let Some(m) = st.message.filter(|m| m.starts_with("waiting for")) {
            break m;
        }
        assert!(!work.is_finished(), "ended without waiting");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(
        said.contains("waiting for the repository lock") && said.contains("exclusive"),
        "{said}"
    );
    assert!(
        said.contains(&maintenance.id().short()),
        "names the holder: {said}"
    );
    assert!(!get(&w, "b1").await.status.unwrap().phase.is_final());
    assert!(
        !work.is_finished(),
        "must still wait while the lock is held"
    );

    maintenance.release().await.unwrap();
    assert_eq!(work.await.unwrap().unwrap(), Outcome::Completed);
    let st = get(&w, "b1").await.status.unwrap();
    assert_eq!(st.phase, VolumePhase::Completed);
    assert!(st.snapshot_id.is_some());
    assert!(st.lock_wait_seconds.unwrap_or(0) >= 1, "{st:?}");
    assert_eq!(st.message, None, "the waiting message is gone: {st:?}");
    // Its own lock is gone too.
    let locks = repo.list_ids(arca_storage::FileType::Lock).await.unwrap();
    assert_eq!(locks.len(), 0);
}

/// Without waiting long enough, the backup fails naming the holder, and leaves no lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_that_waited_too_long_fails_naming_the_holder() {
    let w = world(true, vec![pvb("b1", "node-a", "uid-1", "data")]).await;
    let mut ctx = context(&w);
    ctx.lock_retry.up_to = std::time::Duration::from_millis(200);
    let repo = arca_engine::Repository::open(arca_storage::open(&w.url).unwrap(), PASSWORD)
        .await
        .unwrap();
    let maintenance = arca_engine::lock::LockGuard::acquire(&repo, true)
        .await
        .unwrap();
    let Outcome::Failed(msg) = reconcile(&get(&w, "b1").await, &ctx).await.unwrap() else {
        panic!("must fail once the wait is over");
    };
    assert!(msg.contains("exclusive"), "{msg}");
    let locks = repo.list_ids(arca_storage::FileType::Lock).await.unwrap();
    assert_eq!(locks.len(), 1, "only maintenance's lock");
    maintenance.release().await.unwrap();
}
