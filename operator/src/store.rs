//! Keeping a Backup's manifests as a snapshot of the location's resource repository, in the
//! same encrypted, deduplicated format as the volume data: `restic ls` lists them. Beside them
//! goes the Backup's own record (its spec, final status and PodVolumeBackups), from which a
//! cluster that never saw the Backup can rebuild it.

use crate::backup::RESOURCES_REPOSITORY;
use crate::context::Context;
use crate::repository;
use crate::{Error, Result};
use arca_api::backup::BackupStatus;
use arca_api::{Backup, BackupRepository, BackupStorageLocation, PodVolumeBackup};
use arca_engine::backup::{BackupOptions, SelectAll};
use arca_engine::progress::NoProgress;
use arca_reconcile::Wrap as _;
use kube::api::ObjectMeta;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a manifest goes in the snapshot: `<backup>/resources/<group>/<kind>/<ns>/<name>.json`
/// (`core` for the core group, `_cluster` for cluster-scoped objects).
pub fn manifest_path(backup: &str, m: &Value) -> PathBuf {
    let api = m["apiVersion"].as_str().unwrap_or("v1");
    let group = api.rsplit_once('/').map(|(g, _)| g).unwrap_or("core");
    let kind = m["kind"].as_str().unwrap_or("Unknown");
    let ns = m["metadata"]["namespace"].as_str().unwrap_or("_cluster");
    let name = m["metadata"]["name"].as_str().unwrap_or("unnamed");
    PathBuf::from(backup)
        .join("resources")
        .join(group)
        .join(kind)
        .join(ns)
        .join(format!("{name}.json"))
}

/// Where a Backup's record goes in its snapshot: `<backup>/arca/backup.json` (beside
/// `<backup>/resources/`, so no manifest path can take it).
pub fn record_path(backup: &str) -> PathBuf {
    PathBuf::from(backup).join("arca").join("backup.json")
}

/// What the bucket keeps of a Backup besides its manifests: the Backup with its final status
/// and the outcome of each of its PodVolumeBackups (pod, volume, claim and its UID, snapshot,
/// repository), without what only its cluster knows (UIDs, versions, owners).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct BackupRecord {
    pub backup: Backup,
    pub pod_volume_backups: Vec<PodVolumeBackup>,
}

impl BackupRecord {
    pub fn new(backup: &Backup, status: BackupStatus, pvbs: &[PodVolumeBackup]) -> BackupRecord {
        let mut backup = backup.clone();
        backup.metadata = portable(&backup.metadata);
        backup.status = Some(status);
        let pod_volume_backups = pvbs
            .iter()
            .map(|p| {
                let mut p = p.clone();
                p.metadata = portable(&p.metadata);
                p
            })
            .collect();
        BackupRecord {
            backup,
            pod_volume_backups,
        }
    }
}

/// An object's metadata as another cluster can take it: name, labels and annotations.
fn portable(m: &ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        name: m.name.clone(),
        labels: m.labels.clone(),
        annotations: m.annotations.clone(),
        ..Default::default()
    }
}

/// The record of `backup` in `snapshot` of an opened (indexed) resource repository, `None` for
/// a snapshot made before records were kept.
pub async fn read_record(
    repo: &arca_engine::Repository,
    snapshot: &arca_format::snapshot::Snapshot,
    backup: &str,
) -> Result<Option<BackupRecord>> {
    use arca_format::pack::BlobType;
    let path = record_path(backup);
    let path = path.to_str().expect("backup names are UTF-8");
    let (_, node) = match arca_engine::walk::resolve(repo, &snapshot.tree, path).await {
        Ok(found) => found,
        Err(arca_engine::Error::PathNotFound(_)) => return Ok(None),
        Err(e) => return Err(Error::engine(format!("reading {path}"))(e)),
    };
    let Some(node) = node else {
        return Ok(None);
    };
    let mut json = Vec::new();
    for id in node.content.iter().flatten() {
        let blob = repo
            .read_blob(BlobType::Data, id)
            .await
            .map_err(Error::engine(format!("reading {path}")))?;
        json.extend_from_slice(&blob);
    }
    serde_json::from_slice(&json)
        .map(Some)
        .map_err(Error::json(format!(
            "{path} of snapshot {}",
            snapshot.id.short()
        )))
}

/// The resource repository of `bsl` if it is Ready; otherwise why not (`None`: its
/// controller has not looked at it yet).
pub async fn resource_repository(
    ctx: &Context,
    bsl: &BackupStorageLocation,
) -> Result<Result<BackupRepository, Option<String>>> {
    let repo = repository::ensure(ctx, RESOURCES_REPOSITORY, bsl).await?;
    Ok(match repository::readiness(&repo) {
        repository::Readiness::Ready => Ok(repo),
        repository::Readiness::Pending => Err(None),
        repository::Readiness::NotReady(why) => Err(Some(why)),
    })
}

/// Store `manifests` of backup `backup` in `repo`, a Ready resource repository, with the
/// Backup's record; returns the snapshot ID.
pub async fn save_manifests(
    ctx: &Context,
    repo: &BackupRepository,
    backup: &str,
    manifests: &[Value],
    record: &BackupRecord,
) -> Result<String> {
    let opened = repository::open(ctx, repo).await?;
    let dir = tempfile::tempdir().map_err(Error::io("temporary directory"))?;
    let record_file = dir.path().join(record_path(backup));
    std::fs::create_dir_all(record_file.parent().expect("the record path has a parent"))
        .map_err(Error::io(record_file.display().to_string()))?;
    let json = serde_json::to_vec_pretty(record).map_err(Error::json("the Backup's record"))?;
    std::fs::write(&record_file, json).map_err(Error::io(record_file.display().to_string()))?;
    for m in manifests {
        let path = dir.path().join(manifest_path(backup, m));
        std::fs::create_dir_all(path.parent().expect("manifest paths have parents"))
            .map_err(Error::io(path.display().to_string()))?;
        let json = serde_json::to_vec_pretty(m).map_err(Error::json("a manifest"))?;
        std::fs::write(&path, json).map_err(Error::io(path.display().to_string()))?;
    }
    let opts = BackupOptions {
        paths: vec![dir.path().to_path_buf()],
        tags: vec![format!("backup={backup}"), "arca-resources".into()],
        hostname: "arca".into(),
        parent: None,
        force: false,
        with_atime: false,
        excludes: vec![],
        selector: Arc::new(SelectAll),
        writer: Default::default(),
        time: None,
        threads: 2,
        program_version: format!("arca-operator {}", env!("CARGO_PKG_VERSION")),
        contents_of: true,
        skip_if_unchanged: false,
        ignore: Default::default(),
    };
    let (lock, _) =
        arca_engine::lock::acquire_retrying(&opened, false, ctx.lock_retry, |holder, _| {
            tracing::info!("storing manifests waits for the lock {holder}");
            async {}
        })
        .await
        .map_err(Error::engine("locking the resource repository"))?;
    let result = arca_engine::backup::backup(Arc::new(opened), opts, Arc::new(NoProgress)).await;
    let _ = lock.release().await;
    let result = result.map_err(Error::engine("storing the manifests"))?;
    result
        .snapshot
        .map(|s| s.id.to_hex())
        .ok_or_else(|| Error::Refused("storing the manifests wrote no snapshot".into()))
}
