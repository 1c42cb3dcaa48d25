//! The Backup controller against an in-memory API server and real repositories: it creates
//! a PodVolumeBackup per annotated volume (the agent's part is played by hand here; the
//! cluster simulation runs the real agent), then stores the manifests, each pod annotated
//! with its volumes' snapshots, in the location's resource repository.

use arca_api::backup::BACKUP_VOLUMES_ANNOTATION;
use arca_api::common::{OperationPhase, ResourceScope, VolumePhase};
use arca_api::location::Provider;
use arca_api::*;
use arca_operator::backup::{reconcile, Outcome};
use arca_operator::context::Context;
use arca_operator::naming::volume_operation_name;
use arca_operator::repository::name_for;
use arca_operator::resources::Kind;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodSpec, Volume,
};
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams};
use kube::Api;
use serde_json::json;

const NS: &str = "arca-system";

fn obj(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(ns.into()),
        uid: Some(format!("uid-{name}")),
        ..Default::default()
    }
}

fn pod(annotation: &str) -> Pod {
    let mut meta = obj("shop", "web-0");
    meta.annotations = Some(
        [(
            BACKUP_VOLUMES_ANNOTATION.to_string(),
            annotation.to_string(),
        )]
        .into(),
    );
    Pod {
        metadata: meta,
        spec: Some(PodSpec {
            node_name: Some("node-a".into()),
            volumes: Some(vec![Volume {
                name: "data".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: "data-claim".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

fn backup(name: &str, location: Option<&str>) -> Backup {
    Backup {
        metadata: obj(NS, name),
        spec: BackupSpec {
            scope: ResourceScope {
                included_namespaces: vec!["shop".into()],
                ..Default::default()
            },
            storage_location: location.map(String::from),
            ..Default::default()
        },
        status: None,
    }
}

async fn world(store: &std::path::Path, annotation: &str) -> Context {
    let bsl = BackupStorageLocation {
        metadata: obj(NS, "default"),
        spec: BackupStorageLocationSpec {
            provider: Provider::Local,
            bucket: store.display().to_string(),
            default: true,
            ..Default::default()
        },
        status: None,
    };
    let client = kube_fake_client::ClientBuilder::new()
        .with_resource::<BackupStorageLocation>()
        .with_status_subresource::<BackupStorageLocation>()
        .with_resource::<BackupRepository>()
        .with_status_subresource::<BackupRepository>()
        .with_resource::<Backup>()
        .with_status_subresource::<Backup>()
        .with_resource::<PodVolumeBackup>()
        .with_status_subresource::<PodVolumeBackup>()
        .with_resource::<Restore>()
        .with_status_subresource::<Restore>()
        .with_resource::<PodVolumeRestore>()
        .with_status_subresource::<PodVolumeRestore>()
        .with_object(bsl)
        .with_object(pod(annotation))
        .with_object(PersistentVolumeClaim {
            metadata: obj("shop", "data-claim"),
            ..Default::default()
        })
        .with_object(ConfigMap {
            metadata: obj("shop", "settings"),
            ..Default::default()
        })
        .with_object(backup("b1", None))
        .with_object(backup("lost", Some("nowhere")))
        .build()
        .await
        .unwrap();
    let mut ctx = Context::new(client, NS);
    ctx.kdf = arca_format::keyfile::KdfParams { n: 16, r: 1, p: 1 };
    ctx.agent_image = Some("arca:test".into());
    ctx
}

/// Reconcile a new Backup, with the repository controller making each repository it waits
/// for ready in between (as the operator's repository watch does), until it has started.
async fn start(ctx: &Context, name: &str) -> Outcome {
    for _ in 0..4 {
        let out = reconcile(&get(ctx, name).await, ctx, &kinds())
            .await
            .unwrap();
        let phase = get(ctx, name)
            .await
            .status
            .map(|s| s.outcome.phase)
            .unwrap_or_default();
        if phase != OperationPhase::New {
            return out;
        }
        assert!(matches!(out, Outcome::Waiting(_)), "{out:?}");
        let repos = Api::<BackupRepository>::namespaced(ctx.client.clone(), NS);
        for r in repos.list(&ListParams::default()).await.unwrap().items {
            arca_operator::repository::reconcile(&r, ctx).await.unwrap();
        }
    }
    panic!("backup {name} did not start");
}

fn kinds() -> Vec<Kind> {
    vec![
        Kind::of::<Pod>(true),
        Kind::of::<ConfigMap>(true),
        Kind::of::<PersistentVolumeClaim>(true),
    ]
}

async fn get(ctx: &Context, name: &str) -> Backup {
    Api::<Backup>::namespaced(ctx.client.clone(), NS)
        .get(name)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_then_manifests_annotated_with_their_snapshots() {
    let store = tempfile::tempdir().unwrap();
    let ctx = world(store.path(), "data,missing").await;
    // Nothing is started until the repositories are ready, and only their controller
    // makes them so.
    assert!(matches!(
        reconcile(&get(&ctx, "b1").await, &ctx, &kinds())
            .await
            .unwrap(),
        Outcome::Waiting(_)
    ));
    assert_eq!(
        get(&ctx, "b1")
            .await
            .status
            .map(|s| s.outcome.phase)
            .unwrap_or_default(),
        OperationPhase::New
    );
    assert!(
        std::fs::read_dir(store.path())
            .map(|d| d.count())
            .unwrap_or(0)
            == 0
    );
    assert!(matches!(start(&ctx, "b1").await, Outcome::Waiting(_)));
    let st = get(&ctx, "b1").await.status.unwrap();
    assert_eq!(st.outcome.phase, OperationPhase::InProgress);
    assert_eq!(st.progress.as_ref().unwrap().total_volumes, 1);
    assert_eq!(st.outcome.warnings, 1);
    assert_eq!(
        st.outcome.messages,
        ["pod shop/web-0: volume missing named in its annotation does not exist in the pod"]
    );
    assert!(st.expiration.is_some());

    let pvbs = Api::<PodVolumeBackup>::namespaced(ctx.client.clone(), NS);
    let list = pvbs.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(list.len(), 1);
    let pvb = &list[0];
    assert_eq!(
        pvb.metadata.name.as_deref(),
        Some(volume_operation_name("b1", "shop", "web-0", "data").as_str())
    );
    assert_eq!(pvb.spec.node, "node-a");
    assert_eq!(pvb.spec.pvc_uid.as_deref(), Some("uid-data-claim"));
    assert_eq!(pvb.spec.repository, name_for("shop", "default"));
    assert_eq!(pvb.spec.pod.uid, "uid-web-0");
    // The namespace's repository was made ready on the way, with its own key.
    let repo = Api::<BackupRepository>::namespaced(ctx.client.clone(), NS)
        .get(&name_for("shop", "default"))
        .await
        .unwrap();
    assert_eq!(
        repo.spec.repository_url,
        format!("{}/shop", store.path().display())
    );

    // Still running: the backup waits.
    assert!(matches!(
        reconcile(&get(&ctx, "b1").await, &ctx, &kinds())
            .await
            .unwrap(),
        Outcome::Waiting(_)
    ));
    // The agent finishes it.
    let snap = "ab".repeat(32);
    pvbs.patch_status(&volume_operation_name("b1", "shop", "web-0", "data"), &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": VolumePhase::Completed, "snapshotId": snap, "progress": {"totalBytes": 10, "bytesDone": 10, "totalFiles": 1, "filesDone": 1}}})))
        .await
        .unwrap();
    assert_eq!(
        reconcile(&get(&ctx, "b1").await, &ctx, &kinds())
            .await
            .unwrap(),
        Outcome::Finished(OperationPhase::Completed)
    );
    let st = get(&ctx, "b1").await.status.unwrap();
    assert_eq!(st.outcome.phase, OperationPhase::Completed);
    assert_eq!(st.outcome.errors, 0);
    assert_eq!(st.progress.as_ref().unwrap().items_backed_up, 3);
    let id = st.resources_snapshot_id.unwrap();

    // The manifests are a snapshot of the resource repository; the pod carries its snapshot.
    let res = Api::<BackupRepository>::namespaced(ctx.client.clone(), NS)
        .get(&name_for("resources.arca", "default"))
        .await
        .unwrap();
    let repo = arca_operator::repository::open(&ctx, &res).await.unwrap();
    let sn = arca_engine::snapshots::find(&repo, &id, &Default::default())
        .await
        .unwrap();
    assert!(sn.tags.iter().any(|t| t == "backup=b1"));
    // Beside the manifests, the Backup's record: its spec, final status and volumes, without
    // what only this cluster knows.
    let record = arca_operator::store::read_record(&repo, &sn, "b1")
        .await
        .unwrap()
        .expect("a record");
    let b1 = get(&ctx, "b1").await;
    assert_eq!(record.backup.metadata.name.as_deref(), Some("b1"));
    assert_eq!(record.backup.metadata.uid, None);
    assert_eq!(record.backup.metadata.resource_version, None);
    assert_eq!(
        serde_json::to_value(&record.backup.spec).unwrap(),
        serde_json::to_value(&b1.spec).unwrap()
    );
    let recorded = record.backup.status.clone().unwrap();
    let mut in_cluster = b1.status.clone().unwrap();
    assert_eq!(
        recorded.resources_snapshot_id, None,
        "the snapshot's own ID"
    );
    in_cluster.resources_snapshot_id = None;
    assert_eq!(
        serde_json::to_value(&recorded).unwrap(),
        serde_json::to_value(&in_cluster).unwrap()
    );
    assert_eq!(record.pod_volume_backups.len(), 1);
    let rp = &record.pod_volume_backups[0];
    assert_eq!(
        rp.metadata.name.as_deref(),
        Some(volume_operation_name("b1", "shop", "web-0", "data").as_str())
    );
    assert_eq!(rp.spec.pvc_uid.as_deref(), Some("uid-data-claim"));
    assert_eq!(rp.spec.repository, name_for("shop", "default"));
    assert_eq!(
        rp.status.as_ref().unwrap().snapshot_id.as_deref(),
        Some(snap.as_str())
    );
    let out = tempfile::tempdir().unwrap();
    arca_engine::restore::restore(
        std::sync::Arc::new(repo),
        sn.tree,
        &arca_engine::restore::RestoreOptions::everything(out.path().to_path_buf()),
        &arca_engine::progress::NoProgress,
    )
    .await
    .unwrap();
    let pod: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.path().join("b1/resources/core/Pod/shop/web-0.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        pod["metadata"]["annotations"]["snapshot.arca.dev/data"],
        snap
    );
    assert!(out
        .path()
        .join("b1/resources/core/ConfigMap/shop/settings.json")
        .exists());
    // The namespace's objects are lost, then restored, once as they were and once into
    // another namespace.
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), "shop");
    pods.delete("web-0", &Default::default()).await.unwrap();
    Api::<ConfigMap>::namespaced(ctx.client.clone(), "shop")
        .delete("settings", &Default::default())
        .await
        .unwrap();
    Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), "shop")
        .delete("data-claim", &Default::default())
        .await
        .unwrap();
    let restores: Api<Restore> = Api::namespaced(ctx.client.clone(), NS);
    for (name, mapping) in [("r1", None), ("r2", Some(("shop", "shop-copy")))] {
        let mut r = Restore {
            metadata: obj(NS, name),
            spec: RestoreSpec {
                backup_name: "b1".into(),
                ..Default::default()
            },
            status: None,
        };
        if let Some((from, to)) = mapping {
            r.spec.namespace_mapping = [(from.to_string(), to.to_string())].into();
        }
        restores.create(&Default::default(), &r).await.unwrap();
        let r = restores.get(name).await.unwrap();
        assert!(matches!(
            arca_operator::restore::reconcile(&r, &ctx, &kinds())
                .await
                .unwrap(),
            arca_operator::restore::Outcome::Waiting(_)
        ));
        let ns = mapping.map_or("shop", |(_, to)| to);
        let st = restores.get(name).await.unwrap().status.unwrap();
        assert_eq!(
            (
                st.outcome.errors,
                st.progress.as_ref().unwrap().items_restored,
                st.progress.as_ref().unwrap().total_volumes
            ),
            (0, 3, 1),
            "{:?}",
            st.outcome.messages
        );
        let pod = Api::<Pod>::namespaced(ctx.client.clone(), ns)
            .get("web-0")
            .await
            .unwrap();
        let init = &pod.spec.as_ref().unwrap().init_containers.as_ref().unwrap()[0];
        assert_eq!(init.name, "restore-wait");
        assert_eq!(init.args.as_ref().unwrap()[1], format!("uid-{name}"));
        assert_eq!(
            init.volume_mounts.as_ref().unwrap()[0].mount_path,
            "/restores/data"
        );
        assert!(Api::<ConfigMap>::namespaced(ctx.client.clone(), ns)
            .get("settings")
            .await
            .is_ok());
        let pvr = Api::<PodVolumeRestore>::namespaced(ctx.client.clone(), NS)
            .get(&volume_operation_name(name, ns, "web-0", "data"))
            .await
            .unwrap();
        assert_eq!(pvr.spec.snapshot_id, snap);
        assert_eq!(pvr.spec.source_namespace, "shop");
        assert_eq!(pvr.spec.repository, name_for("shop", "default"));
        assert_eq!(pvr.spec.pod.namespace, ns);
        assert_eq!(pvr.spec.pod.uid, pod.metadata.uid.clone().unwrap());
        assert_eq!(pvr.spec.restore_uid, format!("uid-{name}"));
        // The agent restores the volume; the Restore completes.
        Api::<PodVolumeRestore>::namespaced(ctx.client.clone(), NS)
            .patch_status(
                &volume_operation_name(name, ns, "web-0", "data"),
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"phase": VolumePhase::Completed}})),
            )
            .await
            .unwrap();
        let r = restores.get(name).await.unwrap();
        assert_eq!(
            arca_operator::restore::reconcile(&r, &ctx, &kinds())
                .await
                .unwrap(),
            arca_operator::restore::Outcome::Finished(OperationPhase::Completed)
        );
    }
}

#[tokio::test]
async fn a_restore_of_a_backup_that_does_not_exist_fails_with_the_reason() {
    let store = tempfile::tempdir().unwrap();
    let ctx = world(store.path(), "data").await;
    let restores: Api<Restore> = Api::namespaced(ctx.client.clone(), NS);
    let r = Restore {
        metadata: obj(NS, "r"),
        spec: RestoreSpec {
            backup_name: "nope".into(),
            ..Default::default()
        },
        status: None,
    };
    restores.create(&Default::default(), &r).await.unwrap();
    let r = restores.get("r").await.unwrap();
    assert_eq!(
        arca_operator::restore::reconcile(&r, &ctx, &kinds())
            .await
            .unwrap(),
        arca_operator::restore::Outcome::Finished(OperationPhase::Failed)
    );
    assert_eq!(
        restores
            .get("r")
            .await
            .unwrap()
            .status
            .unwrap()
            .outcome
            .failure_reason
            .as_deref(),
        Some("Backup nope not found")
    );
}

#[tokio::test]
async fn a_missing_storage_location_fails_with_the_reason() {
    let store = tempfile::tempdir().unwrap();
    let ctx = world(store.path(), "data").await;
    assert_eq!(
        reconcile(&get(&ctx, "lost").await, &ctx, &kinds())
            .await
            .unwrap(),
        Outcome::Finished(OperationPhase::Failed)
    );
    let st = get(&ctx, "lost").await.status.unwrap();
    assert_eq!(
        st.outcome.failure_reason.as_deref(),
        Some("BackupStorageLocation nowhere not found")
    );
}
