//! Backup sync: a cluster that never saw a Backup finds it in the bucket, with its status and
//! volumes, through the location's recovery key; a Backup gone from the bucket leaves the
//! cluster that only synced it. Against in-memory API servers (kube-fake-client), one per
//! cluster, and a real repository on disk standing for the bucket.

mod common;
use arca_api::backup::{BackupSpec, BackupStatus, SYNCED_FROM_LABEL};
use arca_api::common::OperationOutcome;
use arca_api::common::{OperationPhase, PodReference, SecretKeyRef, VolumePhase};
use arca_api::location::{AccessMode, Provider};
use arca_api::podvolume::{PodVolumeBackupSpec, PodVolumeBackupStatus};
use arca_api::repository::RepositoryPhase;
use arca_api::*;
use arca_engine::recovery::RecoveryKey;
use arca_operator::context::Context;
use arca_operator::repository::name_for;
use arca_operator::store::BackupRecord;
use arca_operator::{backup, location, repository, store, sync};
use common::listing;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::ObjectMeta;
use kube::{Api, ResourceExt};
use std::path::Path;

const NS: &str = "arca-system";

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(NS.into()),
        ..Default::default()
    }
}

fn location_in(store: &Path, access: AccessMode) -> BackupStorageLocation {
    BackupStorageLocation {
        metadata: meta("default"),
        spec: BackupStorageLocationSpec {
            provider: Provider::Local,
            bucket: store.display().to_string(),
            access_mode: access,
            recovery_key: Some(SecretKeyRef {
                name: "dr-key".into(),
                key: "recovery-key".into(),
            }),
            ..Default::default()
        },
        status: None,
    }
}

/// One cluster: an empty API server with the location and its recovery key Secret.
async fn cluster(bsl: &BackupStorageLocation, key: &RecoveryKey) -> Context {
    let client = kube_fake_client::ClientBuilder::new()
        .with_resource::<BackupStorageLocation>()
        .with_status_subresource::<BackupStorageLocation>()
        .with_resource::<BackupRepository>()
        .with_status_subresource::<BackupRepository>()
        .with_resource::<Backup>()
        .with_status_subresource::<Backup>()
        .with_resource::<PodVolumeBackup>()
        .with_status_subresource::<PodVolumeBackup>()
        .with_object(bsl.clone())
        .build()
        .await
        .unwrap();
    let mut ctx = Context::new(client, NS);
    ctx.kdf = arca_format::keyfile::KdfParams { n: 16, r: 1, p: 1 };
    let secret = Secret {
        metadata: meta("dr-key"),
        data: Some(
            [(
                "recovery-key".to_string(),
                k8s_openapi::ByteString(key.expose().as_bytes().to_vec()),
            )]
            .into(),
        ),
        ..Default::default()
    };
    Api::<Secret>::namespaced(ctx.client.clone(), NS)
        .create(&Default::default(), &secret)
        .await
        .unwrap();
    ctx
}

fn time(s: &str) -> Time {
    Time(s.parse().unwrap())
}

/// What cluster A leaves in the bucket for Backup `name`: a manifest and the record.
async fn backed_up_in_cluster_a(a: &Context, bsl: &BackupStorageLocation, name: &str) -> String {
    let repo = repository::ensure(a, backup::RESOURCES_REPOSITORY, bsl)
        .await
        .unwrap();
    assert_eq!(
        repository::reconcile(&repo, a).await.unwrap(),
        RepositoryPhase::Ready
    );
    let repo = Api::<BackupRepository>::namespaced(a.client.clone(), NS)
        .get(&repo.name_any())
        .await
        .unwrap();
    let b = Backup {
        metadata: ObjectMeta {
            labels: Some([("team".to_string(), "shop".to_string())].into()),
            ..meta(name)
        },
        spec: BackupSpec {
            storage_location: Some("old-name-of-the-location".into()),
            ttl: Some("720h".into()),
            ..Default::default()
        },
        status: None,
    };
    let status = BackupStatus {
        outcome: OperationOutcome {
            phase: OperationPhase::Completed,
            start_timestamp: Some(time("2026-12-01T10:00:00Z")),
            completion_timestamp: Some(time("2026-12-01T10:01:00Z")),
            errors: 0,
            warnings: 1,
            messages: vec!["one warning".into()],
            ..Default::default()
        },
        expiration: Some(time("2026-12-31T10:00:00Z")),
        ..Default::default()
    };
    let pvb = PodVolumeBackup {
        metadata: meta(&format!("{name}-web-0-data")),
        spec: PodVolumeBackupSpec {
            node: "node-a".into(),
            pod: PodReference {
                namespace: "shop".into(),
                name: "web-0".into(),
                uid: "old-pod-uid".into(),
            },
            volume: "data".into(),
            pvc_uid: Some("old-claim-uid".into()),
            repository: "shop-old-name-of-the-location".into(),
            ..Default::default()
        },
        status: Some(PodVolumeBackupStatus {
            phase: VolumePhase::Completed,
            snapshot_id: Some("ab".repeat(32)),
            ..Default::default()
        }),
    };
    let record = BackupRecord::new(&b, status, &[pvb]);
    let manifest = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "shop"}, "data": {"a": "b"}});
    store::save_manifests(a, &repo, name, &[manifest], &record)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_cluster_finds_the_buckets_backups_and_loses_those_that_left_it() {
    let bucket = tempfile::tempdir().unwrap();
    let key = RecoveryKey::generate();
    let bsl = location_in(bucket.path(), AccessMode::ReadWrite);
    let a = cluster(&bsl, &key).await;
    let snapshot = backed_up_in_cluster_a(&a, &bsl, "b1").await;

    // Cluster B: only the location and its key. The first sync waits for the resource
    // repository, which its controller opens with the recovery key.
    let b = cluster(&bsl, &key).await;
    let first = sync::sync(&b, &bsl).await.unwrap();
    assert!(first.waiting && first.created.is_empty(), "{first:?}");
    let res = Api::<BackupRepository>::namespaced(b.client.clone(), NS)
        .get(&name_for("resources.arca", "default"))
        .await
        .unwrap();
    assert_eq!(
        repository::reconcile(&res, &b).await.unwrap(),
        RepositoryPhase::Ready
    );
    let second = sync::sync(&b, &bsl).await.unwrap();
    assert_eq!(second.created, ["b1"]);

    let got = Api::<Backup>::namespaced(b.client.clone(), NS)
        .get("b1")
        .await
        .unwrap();
    assert_eq!(got.labels()[SYNCED_FROM_LABEL], "default");
    assert_eq!(got.labels()["team"], "shop");
    assert_eq!(got.spec.storage_location.as_deref(), Some("default"));
    assert_eq!(got.spec.ttl.as_deref(), Some("720h"));
    let st = got.status.clone().unwrap();
    assert_eq!(st.outcome.phase, OperationPhase::Completed);
    assert_eq!(st.resources_snapshot_id.as_deref(), Some(snapshot.as_str()));
    assert_eq!(
        st.outcome.completion_timestamp,
        Some(time("2026-12-01T10:01:00Z"))
    );
    assert_eq!(st.outcome.warnings, 1);
    assert_eq!(st.outcome.messages, ["one warning"]);
    // A record of work done elsewhere: the Backup controller leaves it alone, also in the
    // moment between its creation and its status.
    assert_eq!(
        backup::reconcile(&got, &b, &[]).await.unwrap(),
        backup::Outcome::Ignored
    );
    let mut bare = got.clone();
    bare.status = None;
    assert_eq!(
        backup::reconcile(&bare, &b, &[]).await.unwrap(),
        backup::Outcome::Ignored
    );
    let pvbs = Api::<PodVolumeBackup>::namespaced(b.client.clone(), NS)
        .list(&Default::default())
        .await
        .unwrap()
        .items;
    assert_eq!(pvbs.len(), 1);
    let p = &pvbs[0];
    assert_eq!(p.name_any(), "b1-web-0-data");
    assert_eq!(
        p.labels()[arca_api::backup::BACKUP_UID_LABEL],
        got.uid().unwrap()
    );
    assert_eq!(p.labels()[SYNCED_FROM_LABEL], "default");
    assert_eq!(
        p.spec.repository,
        name_for("shop", "default"),
        "this cluster's repository name"
    );
    assert_eq!(p.spec.pvc_uid.as_deref(), Some("old-claim-uid"));
    let ps = p.status.clone().unwrap();
    assert_eq!(ps.phase, VolumePhase::Completed);
    assert_eq!(ps.snapshot_id, Some("ab".repeat(32)));

    // Nothing new: nothing done.
    let again = sync::sync(&b, &bsl).await.unwrap();
    assert!(again.created.is_empty() && again.removed.is_empty());

    // Cluster A expires b1 (its snapshot leaves the bucket): B removes what it synced.
    let res_a = Api::<BackupRepository>::namespaced(a.client.clone(), NS)
        .get(&name_for("resources.arca", "default"))
        .await
        .unwrap();
    let opened = repository::open(&a, &res_a).await.unwrap();
    let id: arca_format::Id = snapshot.parse().unwrap();
    for (_, r) in arca_engine::forget::remove_snapshots(&opened, &[id]).await {
        r.unwrap();
    }
    let gone = sync::sync(&b, &bsl).await.unwrap();
    assert_eq!(gone.removed, ["b1"]);
    assert!(Api::<Backup>::namespaced(b.client.clone(), NS)
        .get_opt("b1")
        .await
        .unwrap()
        .is_none());
    assert!(Api::<PodVolumeBackup>::namespaced(b.client.clone(), NS)
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .is_empty());
}

/// A ReadOnly location syncs without writing: the bucket's files are the same before and
/// after, and what it synced never expires here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_location_syncs_without_writing() {
    let bucket = tempfile::tempdir().unwrap();
    let key = RecoveryKey::generate();
    let rw = location_in(bucket.path(), AccessMode::ReadWrite);
    let a = cluster(&rw, &key).await;
    backed_up_in_cluster_a(&a, &rw, "b1").await;
    let before = listing(bucket.path());

    let ro = location_in(bucket.path(), AccessMode::ReadOnly);
    let b = cluster(&ro, &key).await;
    assert!(sync::sync(&b, &ro).await.unwrap().waiting);
    let res = Api::<BackupRepository>::namespaced(b.client.clone(), NS)
        .get(&name_for("resources.arca", "default"))
        .await
        .unwrap();
    assert_eq!(
        repository::reconcile(&res, &b).await.unwrap(),
        RepositoryPhase::Ready
    );
    assert_eq!(sync::sync(&b, &ro).await.unwrap().created, ["b1"]);
    location::reconcile(&ro, &b).await.unwrap();
    let got = Api::<Backup>::namespaced(b.client.clone(), NS)
        .get("b1")
        .await
        .unwrap();
    // Long expired by its recorded time; a ReadOnly location still keeps it.
    let far = jiff::Timestamp::from_second(4_000_000_000).unwrap();
    assert_eq!(
        arca_operator::gc::reconcile(&got, &b, far).await.unwrap(),
        arca_operator::gc::Outcome::NotExpiring
    );
    assert_eq!(listing(bucket.path()), before);
}
