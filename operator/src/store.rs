//! Keeping a Backup's manifests as a snapshot of the location's resource repository, in the
//! same encrypted, deduplicated format as the volume data: `restic ls` lists them.

use crate::backup::RESOURCES_REPOSITORY;
use crate::context::Context;
use crate::repository;
use arca_api::{BackupRepository, BackupStorageLocation};
use arca_engine::backup::{BackupOptions, SelectAll};
use arca_engine::progress::NoProgress;
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

/// The resource repository of `bsl` if it is Ready; otherwise why not (`None`: its
/// controller has not looked at it yet).
pub async fn resource_repository(
    ctx: &Context,
    bsl: &BackupStorageLocation,
) -> Result<Result<BackupRepository, Option<String>>, String> {
    let repo = repository::ensure(ctx, RESOURCES_REPOSITORY, bsl).await?;
    Ok(match repository::readiness(&repo) {
        repository::Readiness::Ready => Ok(repo),
        repository::Readiness::Pending => Err(None),
        repository::Readiness::NotReady(why) => Err(Some(why)),
    })
}

/// Store `manifests` of backup `backup` in `repo`, a Ready resource repository; returns the
/// snapshot ID.
pub async fn save_manifests(
    ctx: &Context,
    repo: &BackupRepository,
    backup: &str,
    manifests: &[Value],
) -> Result<String, String> {
    let opened = repository::open(ctx, repo).await?;
    let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    for m in manifests {
        let path = dir.path().join(manifest_path(backup, m));
        std::fs::create_dir_all(path.parent().expect("manifest paths have parents"))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let json = serde_json::to_vec_pretty(m).map_err(|e| e.to_string())?;
        std::fs::write(&path, json).map_err(|e| format!("{}: {e}", path.display()))?;
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
    };
    let lock = arca_engine::lock::LockGuard::acquire(&opened, false)
        .await
        .map_err(|e| format!("locking the resource repository: {e}"))?;
    let result = arca_engine::backup::backup(Arc::new(opened), opts, Arc::new(NoProgress)).await;
    let _ = lock.release().await;
    let result = result.map_err(|e| format!("storing the manifests: {e}"))?;
    result
        .snapshot
        .map(|s| s.id.to_hex())
        .ok_or_else(|| "storing the manifests wrote no snapshot".to_string())
}
