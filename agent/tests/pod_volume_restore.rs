//! The PodVolumeRestore reconciler: a volume backed up by the agent comes back into a new
//! pod's volume once the pod's restore-wait container runs, with the marker that container
//! waits for; failures leave a failure marker with the reason.

mod common;

use arca_agent::pod_volume_restore::{reconcile, Outcome};
use arca_agent::restore_wait;
use arca_api::common::{PodReference, VolumePhase};
use arca_api::{PodVolumeRestore, PodVolumeRestoreSpec};
use common::*;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateWaiting, ContainerStatus, Pod, PodSpec,
    PodStatus, Volume,
};
use kube::api::ObjectMeta;
use kube::Api;

fn pod(uid: &str, node: &str, init_running: bool) -> Pod {
    let state = if init_running {
        ContainerState {
            running: Some(ContainerStateRunning::default()),
            ..Default::default()
        }
    } else {
        ContainerState {
            waiting: Some(ContainerStateWaiting::default()),
            ..Default::default()
        }
    };
    Pod {
        metadata: ObjectMeta {
            name: Some("web-1".into()),
            namespace: Some("shop".into()),
            uid: Some(uid.into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some(node.into()),
            // Restored into emptyDirs: the agent finds them by name.
            volumes: Some(
                ["data", "data-r1", "data-r2"]
                    .map(|v| Volume {
                        name: v.into(),
                        empty_dir: Some(Default::default()),
                        ..Default::default()
                    })
                    .to_vec(),
            ),
            ..Default::default()
        }),
        status: Some(PodStatus {
            init_container_statuses: Some(vec![ContainerStatus {
                name: "restore-wait".into(),
                state: Some(state),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

fn pvr(name: &str, pod_uid: &str, snapshot: &str) -> PodVolumeRestore {
    PodVolumeRestore {
        metadata: meta(name),
        spec: PodVolumeRestoreSpec {
            pod: PodReference {
                namespace: "shop".into(),
                name: "web-1".into(),
                uid: pod_uid.into(),
            },
            volume: "data".into(),
            backup_storage_location: "default".into(),
            repository: "shop-default".into(),
            repo_identifier: "unused".into(),
            snapshot_id: snapshot.into(),
            source_namespace: "shop".into(),
            restore_uid: "restore-uid-1".into(),
            cancel: false,
            allow_privileged_files: false,
        },
        status: None,
    }
}

async fn get_pvr(w: &World, name: &str) -> PodVolumeRestore {
    Api::<PodVolumeRestore>::namespaced(w.client.clone(), NS)
        .get(name)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restores_into_the_new_pods_volume_and_marks_it_done() {
    // Back up the volume of pod uid-1 first.
    let w = world_with(true, vec![pvb("b1", "node-a", "uid-1", "data")], |b| {
        b.with_resource::<PodVolumeRestore>()
            .with_status_subresource::<PodVolumeRestore>()
    })
    .await;
    let ctx = context(&w);
    let out = arca_agent::pod_volume_backup::reconcile(&get(&w, "b1").await, &ctx)
        .await
        .unwrap();
    assert_eq!(out, arca_agent::pod_volume_backup::Outcome::Completed);
    let snapshot = get(&w, "b1").await.status.unwrap().snapshot_id.unwrap();

    // The namespace is gone and comes back: a new pod, an empty volume on node-a.
    let new_vol = w.pods.join("uid-new/volumes/kubernetes.io~empty-dir/data");
    std::fs::create_dir_all(&new_vol).unwrap();
    let pods: Api<Pod> = Api::namespaced(w.client.clone(), "shop");
    pods.create(&Default::default(), &pod("uid-new", "node-a", false))
        .await
        .unwrap();
    let restores: Api<PodVolumeRestore> = Api::namespaced(w.client.clone(), NS);
    restores
        .create(&Default::default(), &pvr("r1", "uid-new", &snapshot))
        .await
        .unwrap();

    // Not before the restore-wait container runs.
    assert_eq!(
        reconcile(&get_pvr(&w, "r1").await, &ctx).await.unwrap(),
        Outcome::Waiting
    );
    assert!(std::fs::read_dir(&new_vol).unwrap().next().is_none());

    // The kubelet starts the init container (status is a subresource).
    let mut p = pods.get("web-1").await.unwrap();
    p.status = pod("uid-new", "node-a", true).status;
    pods.replace_status("web-1", &Default::default(), &p)
        .await
        .unwrap();
    // An earlier agent was cut off half way: the restore is InProgress and the volume
    // holds partial files. The restore runs again over them.
    restores
        .patch_status(
            "r1",
            &Default::default(),
            &kube::api::Patch::Merge(serde_json::json!({"status": {"phase": "InProgress"}})),
        )
        .await
        .unwrap();
    std::fs::create_dir_all(new_vol.join("db")).unwrap();
    std::fs::write(new_vol.join("db/table.bin"), vec![9u8; 100 << 10]).unwrap();
    std::fs::write(
        new_vol.join("notes.txt"),
        b"partial, and longer than the original file",
    )
    .unwrap();
    assert_eq!(
        reconcile(&get_pvr(&w, "r1").await, &ctx).await.unwrap(),
        Outcome::Completed
    );
    let st = get_pvr(&w, "r1").await.status.unwrap();
    assert_eq!(st.phase, VolumePhase::Completed);
    assert_eq!(st.node.as_deref(), Some("node-a"));
    assert_eq!(st.progress.unwrap().bytes_done, (5 << 20) + 13);
    let old_vol = w.pods.join(DATA_DIR);
    for f in ["db/table.bin", "notes.txt"] {
        assert_eq!(
            std::fs::read(new_vol.join(f)).unwrap(),
            std::fs::read(old_vol.join(f)).unwrap(),
            "{f}"
        );
    }
    // What the init container sees: every volume marked, so it exits 0 and cleans up.
    let mounts = new_vol.parent().unwrap();
    let n = restore_wait::wait(
        mounts,
        "restore-uid-1",
        std::time::Duration::from_secs(5),
        std::time::Duration::from_millis(10),
    )
    .unwrap();
    assert_eq!(n, 1);
    assert!(!new_vol.join(".arca").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_snapshot_fails_and_tells_the_waiting_pod_why() {
    let w = world_with(true, vec![], |b| {
        b.with_resource::<PodVolumeRestore>()
            .with_status_subresource::<PodVolumeRestore>()
            .with_object(pod("uid-new", "node-a", true))
            .with_object(pvr("r1", "uid-new", &"ab".repeat(32)))
    })
    .await;
    let vol = w.pods.join("uid-new/volumes/kubernetes.io~empty-dir/data");
    std::fs::create_dir_all(&vol).unwrap();
    let ctx = context(&w);
    let Outcome::Failed(msg) = reconcile(&get_pvr(&w, "r1").await, &ctx).await.unwrap() else {
        panic!("must fail");
    };
    assert!(
        msg.starts_with(&format!("snapshot {}", "ab".repeat(32))),
        "{msg}"
    );
    assert_eq!(
        get_pvr(&w, "r1").await.status.unwrap().phase,
        VolumePhase::Failed
    );
    let err = restore_wait::wait(
        vol.parent().unwrap(),
        "restore-uid-1",
        std::time::Duration::from_secs(5),
        std::time::Duration::from_millis(10),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("restore of volume data failed: {msg}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_on_other_nodes_are_not_this_agents_business() {
    let w = world_with(true, vec![], |b| {
        b.with_resource::<PodVolumeRestore>()
            .with_status_subresource::<PodVolumeRestore>()
            .with_object(pod("uid-new", "node-b", true))
            .with_object(pvr("r1", "uid-new", &"ab".repeat(32)))
    })
    .await;
    let ctx = context(&w);
    assert_eq!(
        reconcile(&get_pvr(&w, "r1").await, &ctx).await.unwrap(),
        Outcome::Ignored
    );
    assert!(get_pvr(&w, "r1").await.status.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_whose_pod_is_not_scheduled_yet_waits_on_every_node() {
    let mut unscheduled = pod("uid-new", "node-a", false);
    unscheduled.spec.as_mut().unwrap().node_name = None;
    unscheduled.status = None;
    let w = world_with(true, vec![], |b| {
        b.with_resource::<PodVolumeRestore>()
            .with_status_subresource::<PodVolumeRestore>()
            .with_object(unscheduled)
            .with_object(pvr("r1", "uid-new", &"ab".repeat(32)))
    })
    .await;
    let ctx = context(&w);
    assert_eq!(
        reconcile(&get_pvr(&w, "r1").await, &ctx).await.unwrap(),
        Outcome::Waiting
    );
    assert!(get_pvr(&w, "r1").await.status.is_none());
}

/// The volume is the tenant's: a `.arca` symlink put there (by the tenant, or by the restored
/// snapshot) is not followed by the root agent writing its marker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marker_symlink_in_the_volume_is_not_followed() {
    let w = world_with(true, vec![], |b| {
        b.with_resource::<PodVolumeRestore>()
            .with_status_subresource::<PodVolumeRestore>()
            .with_object(pod("uid-new", "node-a", true))
            .with_object(pvr("r1", "uid-new", &"ab".repeat(32)))
    })
    .await;
    let vol = w.pods.join("uid-new/volumes/kubernetes.io~empty-dir/data");
    std::fs::create_dir_all(&vol).unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), vol.join(".arca")).unwrap();
    let ctx = context(&w);
    let out = reconcile(&get_pvr(&w, "r1").await, &ctx).await.unwrap();
    assert!(matches!(out, Outcome::Failed(_)), "{out:?}");
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "the marker was written through the symlink"
    );
    let markers = std::fs::symlink_metadata(vol.join(".arca")).unwrap();
    assert!(markers.is_dir(), "the marker folder is a real folder");
    assert!(vol.join(".arca/restore-uid-1.failed").is_file());
}

/// The agent restores as root into a volume whose contents a tenant chose: by default a
/// setuid file comes back without its setuid bit and a device node not at all, and the
/// status says so; `allowPrivilegedFiles` restores them as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileged_files_are_left_out_unless_the_restore_allows_them() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let w = world_with(true, vec![pvb("b1", "node-a", "uid-1", "data")], |b| {
        b.with_resource::<PodVolumeRestore>()
            .with_status_subresource::<PodVolumeRestore>()
    })
    .await;
    let old_vol = w.pods.join(DATA_DIR);
    let tool = old_vol.join("tool");
    std::fs::write(&tool, b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let root = arca_engine::sys::is_root();
    if root {
        // A character device like /dev/null.
        rustix::fs::mknodat(
            rustix::fs::CWD,
            old_vol.join("null"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .expect("mknod as root");
    }
    let ctx = context(&w);
    let out = arca_agent::pod_volume_backup::reconcile(&get(&w, "b1").await, &ctx)
        .await
        .unwrap();
    assert_eq!(out, arca_agent::pod_volume_backup::Outcome::Completed);
    let snapshot = get(&w, "b1").await.status.unwrap().snapshot_id.unwrap();

    let pods: Api<Pod> = Api::namespaced(w.client.clone(), "shop");
    pods.create(&Default::default(), &pod("uid-new", "node-a", true))
        .await
        .unwrap();
    let restores: Api<PodVolumeRestore> = Api::namespaced(w.client.clone(), NS);
    for (name, allow) in [("r1", false), ("r2", true)] {
        let vol = w.pods.join(format!(
            "uid-new/volumes/kubernetes.io~empty-dir/data-{name}"
        ));
        std::fs::create_dir_all(&vol).unwrap();
        let mut r = pvr(name, "uid-new", &snapshot);
        r.spec.volume = format!("data-{name}");
        r.spec.allow_privileged_files = allow;
        restores.create(&Default::default(), &r).await.unwrap();
        assert_eq!(
            reconcile(&get_pvr(&w, name).await, &ctx).await.unwrap(),
            Outcome::Completed
        );
        let mode = std::fs::metadata(vol.join("tool"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777;
        let st = get_pvr(&w, name).await.status.unwrap();
        if allow {
            assert_eq!(mode, 0o4755, "{name}");
            if root {
                let dev = std::fs::symlink_metadata(vol.join("null")).unwrap();
                assert!(dev.file_type().is_char_device(), "{name}");
            }
        } else {
            assert_eq!(mode, 0o755, "{name}: setuid dropped");
            assert!(!vol.join("null").exists(), "{name}: no device node");
            if root {
                let msg = st.message.unwrap_or_default();
                assert!(msg.contains("privileged item(s) left out"), "{msg}");
            }
        }
    }
}

/// Maintenance holds the repository exclusively: the volume restore waits (saying so in its
/// status, and the pod's init container keeps waiting) and restores once the lock is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_waits_for_maintenance_and_shows_the_wait() {
    let w = world_with(true, vec![pvb("b1", "node-a", "uid-1", "data")], |b| {
        b.with_resource::<PodVolumeRestore>()
            .with_status_subresource::<PodVolumeRestore>()
    })
    .await;
    let ctx = std::sync::Arc::new(context(&w));
    let out = arca_agent::pod_volume_backup::reconcile(&get(&w, "b1").await, &ctx)
        .await
        .unwrap();
    assert_eq!(out, arca_agent::pod_volume_backup::Outcome::Completed);
    let snapshot = get(&w, "b1").await.status.unwrap().snapshot_id.unwrap();
    let new_vol = w.pods.join("uid-new/volumes/kubernetes.io~empty-dir/data");
    std::fs::create_dir_all(&new_vol).unwrap();
    Api::<Pod>::namespaced(w.client.clone(), "shop")
        .create(&Default::default(), &pod("uid-new", "node-a", true))
        .await
        .unwrap();
    Api::<PodVolumeRestore>::namespaced(w.client.clone(), NS)
        .create(&Default::default(), &pvr("r1", "uid-new", &snapshot))
        .await
        .unwrap();

    let repo = arca_engine::Repository::open(arca_storage::open(&w.url).unwrap(), PASSWORD)
        .await
        .unwrap();
    let maintenance = arca_engine::lock::LockGuard::acquire(&repo, true)
        .await
        .unwrap();
    let work = {
        let (ctx, pvr) = (ctx.clone(), get_pvr(&w, "r1").await);
        // On a thread of its own, as the controller runs it (the future is not `Send`).
        let rt = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || rt.block_on(reconcile(&pvr, &ctx)))
    };
    let said = loop {
        let st = get_pvr(&w, "r1").await.status.unwrap_or_default();
        if let Some(m) = st.message.filter(|m| m.starts_with("waiting for")) {
            break m;
        }
        assert!(!work.is_finished(), "ended without waiting");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(said.contains(&maintenance.id().short()), "{said}");
    assert!(
        !work.is_finished(),
        "must still wait while the lock is held"
    );
    assert!(
        !new_vol.join(".arca").exists(),
        "no marker yet: the pod keeps waiting"
    );

    maintenance.release().await.unwrap();
    assert_eq!(work.await.unwrap().unwrap(), Outcome::Completed);
    let st = get_pvr(&w, "r1").await.status.unwrap();
    assert_eq!(st.phase, VolumePhase::Completed);
    assert!(st.lock_wait_seconds.unwrap_or(0) >= 1, "{st:?}");
    assert_eq!(
        std::fs::read(new_vol.join("notes.txt")).unwrap(),
        std::fs::read(w.pods.join(format!("{DATA_DIR}/notes.txt"))).unwrap()
    );
    assert!(new_vol.join(".arca/restore-uid-1").exists());
    assert!(repo
        .list_ids(arca_storage::FileType::Lock)
        .await
        .unwrap()
        .is_empty());
}
