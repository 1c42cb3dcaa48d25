//! Backup expiry: once a finished Backup's time to live has passed, its volume snapshots
//! and its resources snapshot are forgotten in their repositories, and its PodVolumeBackups
//! and the Backup itself are deleted. The data they alone held is freed by the next
//! repository maintenance (prune). `arca cluster backup delete` expires a Backup at once by
//! setting its TTL to zero.

use crate::backup::{storage_location, RESOURCES_REPOSITORY};
use crate::context::Context;
use crate::repository;
use crate::{Error, Result};
use arca_api::backup::{BACKUP_UID_LABEL, SYNCED_FROM_LABEL};
use arca_api::location::AccessMode;
use arca_api::{Backup, BackupRepository, PodVolumeBackup};
use arca_format::id::Id;
use arca_reconcile::one_line;
use arca_reconcile::status::patch_status;
use arca_reconcile::Wrap as _;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use std::time::Duration;

/// When a failed deletion is tried again.
const RETRY: Duration = Duration::from_secs(300);

/// When `backup` expires: its recorded expiration, or earlier if its TTL was shortened
/// since (counted from its start). None while it runs or when it never started.
pub fn expiry(backup: &Backup) -> Option<jiff::Timestamp> {
    let status = backup.status.as_ref()?;
    if !status.outcome.phase.is_final() {
        return None;
    }
    let recorded = status.expiration.as_ref().map(|t| t.0);
    let from_ttl = match (&backup.spec.ttl, &status.outcome.start_timestamp) {
        (Some(ttl), Some(start)) => humantime::parse_duration(ttl)
            .ok()
            .and_then(|d| jiff::SignedDuration::try_from(d).ok())
            .and_then(|d| start.0.checked_add(d).ok()),
        _ => None,
    };
    match (recorded, from_ttl) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What the expiry check did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not finished, or never expires.
    NotExpiring,
    /// Look again after this long.
    ExpiresIn(Duration),
    /// Forgotten and deleted.
    Deleted,
}

/// Delete `backup` if it has expired at `now`.
pub async fn reconcile(backup: &Backup, ctx: &Context, now: jiff::Timestamp) -> Result<Outcome> {
    let Some(at) = expiry(backup) else {
        return Ok(Outcome::NotExpiring);
    };
    // Only a location's read-write owner expires its backups: a ReadOnly location is never
    // written, and what it syncs stays until its owner removes it from the bucket.
    if backup.labels().contains_key(SYNCED_FROM_LABEL) {
        let bsl = storage_location(ctx, backup.spec.storage_location.as_deref()).await?;
        if bsl.spec.access_mode == AccessMode::ReadOnly {
            return Ok(Outcome::NotExpiring);
        }
    }
    if at > now {
        let secs = at.duration_since(now).as_secs_f64().max(1.0);
        return Ok(Outcome::ExpiresIn(Duration::from_secs_f64(secs)));
    }
    let name = backup.name_any();
    let api: Api<Backup> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    if let Err(e) = delete(backup, ctx).await {
        // Say why on the Backup and try again later, rather than lose track of the data.
        tracing::warn!(backup = %name, "cannot delete the expired backup: {e}");
        patch_status(
            &api,
            &name,
            &json!({"failureReason": format!("deleting the expired backup: {e}")}),
        )
        .await?;
        return Ok(Outcome::ExpiresIn(RETRY));
    }
    Ok(Outcome::Deleted)
}

/// Forget snapshots `ids` in repository `repo`, with one session and one exclusive lock
/// (already forgotten is fine; so is a repository that is gone).
async fn forget(ctx: &Context, repo: &str, ids: &[String]) -> Result<()> {
    let repos: Api<BackupRepository> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let Some(r) = repos
        .get_opt(repo)
        .await
        .map_err(Error::api(format!("reading BackupRepository {repo}")))?
    else {
        return Ok(()); // the repository and its snapshots are gone already
    };
    let ids = ids
        .iter()
        .map(|id| {
            id.parse()
                .map_err(|e| Error::Refused(format!("snapshot ID {id}: {e}")))
        })
        .collect::<Result<Vec<Id>>>()?;
    // Removing snapshot files needs no index.
    let opened = repository::open_unindexed(ctx, &r).await?;
    let (lock, _) =
        arca_engine::lock::acquire_retrying(&opened, true, ctx.lock_retry, |holder, _| {
            tracing::info!(repository = %repo, "expiry waits for the lock {holder}");
            async {}
        })
        .await
        .map_err(Error::engine(repo))?;
    let result = arca_engine::forget::remove_snapshots(&opened, &ids).await;
    let _ = lock.release().await;
    for (id, r) in result {
        match r {
            Ok(())
            | Err(arca_engine::Error::Storage(arca_storage::StorageError::NotFound { .. })) => {}
            Err(e) => {
                return Err(Error::Refused(format!(
                    "{repo}: forgetting {}: {}",
                    id.short(),
                    one_line(&e)
                )))
            }
        }
    }
    Ok(())
}

async fn delete(backup: &Backup, ctx: &Context) -> Result<()> {
    let uid = backup.uid().unwrap_or_default();
    let pvbs: Api<PodVolumeBackup> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let list = pvbs
        .list(&ListParams::default().labels(&format!("{BACKUP_UID_LABEL}={uid}")))
        .await
        .map_err(Error::api("listing PodVolumeBackups"))?
        .items;
    let mut by_repository: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for p in &list {
        if let Some(id) = p.status.as_ref().and_then(|s| s.snapshot_id.clone()) {
            by_repository
                .entry(&p.spec.repository)
                .or_default()
                .push(id);
        }
    }
    for (repo, ids) in &by_repository {
        forget(ctx, repo, ids).await?;
    }
    if let Some(id) = backup
        .status
        .as_ref()
        .and_then(|s| s.resources_snapshot_id.clone())
    {
        let bsl = storage_location(ctx, backup.spec.storage_location.as_deref()).await?;
        forget(
            ctx,
            &repository::name_for(RESOURCES_REPOSITORY, &bsl.name_any()),
            &[id],
        )
        .await?;
    }
    for p in &list {
        match pvbs.delete(&p.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                return Err(Error::api(format!(
                    "deleting PodVolumeBackup {}",
                    p.name_any()
                ))(e))
            }
        }
    }
    let api: Api<Backup> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    match api
        .delete(&backup.name_any(), &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(Error::api(format!("deleting Backup {}", backup.name_any()))(e)),
    }
}
