//! Shared set-up of the agent's reconciler tests: an in-memory API server holding a storage
//! location, a repository and its key, a real repository on disk, and a kubelet-like pods
//! directory with one volume.
#![allow(dead_code)]

use arca_agent::context::Context;
use arca_api::common::{PodReference, SecretKeyRef};
use arca_api::location::{AccessMode, Provider};
use arca_api::repository::RepositoryPhase;
use arca_api::*;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::ByteString;
use kube::api::ObjectMeta;
use kube::Api;
use std::path::{Path, PathBuf};

pub const NS: &str = "arca-system";
pub const PASSWORD: &str = "a-random-repository-password";

pub fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(NS.into()),
        uid: Some(format!("uid-of-{name}")),
        ..Default::default()
    }
}

pub fn location(store: &Path) -> BackupStorageLocation {
    BackupStorageLocation {
        metadata: meta("default"),
        spec: BackupStorageLocationSpec {
            provider: Provider::Local,
            bucket: store.display().to_string(),
            prefix: None,
            config: None,
            credential: None,
            default: true,
            access_mode: AccessMode::ReadWrite,
            recovery_key: None,
            backup_sync_period: None,
            validation_frequency: None,
        },
        status: None,
    }
}

pub fn repository(url: &str, ready: bool) -> BackupRepository {
    BackupRepository {
        metadata: meta("shop-default"),
        spec: BackupRepositorySpec {
            volume_namespace: "shop".into(),
            backup_storage_location: "default".into(),
            repository_url: url.into(),
            key_secret: Some(SecretKeyRef {
                name: "shop-default-key".into(),
                key: "repository-password".into(),
            }),
            maintenance_frequency: None,
        },
        status: Some(BackupRepositoryStatus {
            phase: Some(if ready {
                RepositoryPhase::Ready
            } else {
                RepositoryPhase::NotReady
            }),
            message: (!ready).then(|| "cannot reach the store".into()),
            ..Default::default()
        }),
    }
}

pub fn key_secret() -> Secret {
    Secret {
        metadata: meta("shop-default-key"),
        data: Some(
            [(
                "repository-password".to_string(),
                ByteString(PASSWORD.as_bytes().to_vec()),
            )]
            .into(),
        ),
        ..Default::default()
    }
}

pub fn pvb(name: &str, node: &str, pod_uid: &str, volume: &str) -> PodVolumeBackup {
    PodVolumeBackup {
        metadata: meta(name),
        spec: PodVolumeBackupSpec {
            node: node.into(),
            pod: PodReference {
                namespace: "shop".into(),
                name: "web-0".into(),
                uid: pod_uid.into(),
            },
            volume: volume.into(),
            backup_storage_location: "default".into(),
            repository: "shop-default".into(),
            repo_identifier: "unused".into(),
            pvc_uid: Some("pvc-1".into()),
            tags: [("backup".to_string(), name.to_string())].into(),
            cancel: false,
        },
        status: None,
    }
}

/// Where the kubelet mounts volume `data` (claim `data`, bound to CSI volume `pv-data`) of
/// pod web-0 (uid-1), under the pods folder.
pub const DATA_DIR: &str = "uid-1/volumes/kubernetes.io~csi/pv-data/mount";

/// Pod shop/web-0 with UID `uid`: volume `data` is claim `data`, `logs` an emptyDir.
pub fn app_pod(uid: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web-0", "namespace": "shop", "uid": uid},
        "spec": {"nodeName": "node-a", "containers": [],
                 "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                             {"name": "logs", "emptyDir": {}}]}}))
    .unwrap()
}

pub fn claim() -> PersistentVolumeClaim {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "data", "namespace": "shop", "uid": "pvc-1"},
        "spec": {"volumeName": "pv-data"}}))
    .unwrap()
}

pub fn persistent_volume() -> PersistentVolume {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "pv-data"},
        "spec": {"csi": {"driver": "disk.csi.example", "volumeHandle": "vol-1"}}}))
    .unwrap()
}

pub struct World {
    pub _dir: tempfile::TempDir,
    pub pods: PathBuf,
    pub url: String,
    pub client: kube::Client,
}

pub async fn world(ready: bool, objects: Vec<PodVolumeBackup>) -> World {
    world_with(ready, objects, |b| b).await
}

/// [`world`], with more objects or resources added to the fake API server.
pub async fn world_with(
    ready: bool,
    objects: Vec<PodVolumeBackup>,
    more: impl FnOnce(kube_fake_client::ClientBuilder) -> kube_fake_client::ClientBuilder,
) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let bsl = location(&store);
    let url = bsl.spec.repository_url("shop");
    let backend = arca_storage::open(&url).unwrap();
    arca_engine::Repository::init(
        backend,
        PASSWORD,
        2,
        None,
        arca_format::keyfile::KdfParams { n: 16, r: 1, p: 1 },
    )
    .await
    .unwrap();
    let pods = dir.path().join("pods");
    let vol = pods.join(DATA_DIR);
    std::fs::create_dir_all(vol.join("db")).unwrap();
    std::fs::write(vol.join("db/table.bin"), vec![3u8; 5 << 20]).unwrap();
    std::fs::write(vol.join("notes.txt"), b"first version").unwrap();
    let mut b = kube_fake_client::ClientBuilder::new()
        .with_resource::<BackupStorageLocation>()
        .with_resource::<BackupRepository>()
        .with_resource::<PodVolumeBackup>()
        .with_status_subresource::<PodVolumeBackup>()
        .with_object(bsl)
        .with_object(repository(&url, ready))
        .with_object(key_secret())
        .with_object(app_pod("uid-1"))
        .with_object(claim())
        .with_object(persistent_volume());
    for o in objects {
        b = b.with_object(o);
    }
    b = more(b);
    World {
        pods,
        url,
        client: b.build().await.unwrap(),
        _dir: dir,
    }
}

pub fn context(w: &World) -> Context {
    let mut c = Context::new(w.client.clone(), "node-a", NS, w.pods.clone());
    c.progress_interval = std::time::Duration::from_millis(50);
    c.lock_retry.first_pause = std::time::Duration::from_millis(50);
    c
}

pub async fn get(w: &World, name: &str) -> PodVolumeBackup {
    Api::<PodVolumeBackup>::namespaced(w.client.clone(), NS)
        .get(name)
        .await
        .unwrap()
}
