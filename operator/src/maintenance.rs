//! Repository maintenance, what Ark's ResticRepository controller did with `restic check`
//! and `restic prune`, done with the engine: every `maintenanceFrequency` (a week by
//! default) a Ready repository is checked (structure, not data) and, when sound, pruned of
//! the data no snapshot uses any more (expired Backups leave such data behind). Each run is
//! recorded in the repository's status, the last few kept.

use crate::context::Context;
use crate::repository;
use crate::{Error, Result};
use arca_api::repository::{MaintenanceResult, MaintenanceRun, RepositoryPhase};
use arca_api::BackupRepository;
use arca_reconcile::status::patch_status;
use arca_reconcile::Wrap as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Api, ResourceExt};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_FREQUENCY: Duration = Duration::from_secs(7 * 24 * 3600);
/// Maintenance runs kept in the status.
pub const RUNS_KEPT: usize = 3;

/// How often `repo` is maintained.
pub fn frequency(repo: &BackupRepository) -> Duration {
    repo.spec
        .maintenance_frequency
        .as_deref()
        .and_then(|f| humantime::parse_duration(f).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_FREQUENCY)
}

/// When `repo` is next due: a frequency after its last maintenance (or its creation).
pub fn due(repo: &BackupRepository) -> Option<jiff::Timestamp> {
    let since = repo
        .status
        .as_ref()
        .and_then(|s| s.last_maintenance_time.as_ref())
        .or(repo.metadata.creation_timestamp.as_ref())?;
    let f = jiff::SignedDuration::try_from(frequency(repo)).ok()?;
    since.0.checked_add(f).ok()
}

/// What the maintenance pass did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not Ready: nothing to maintain yet.
    NotReady,
    /// Not due: look again after this long.
    DueIn(Duration),
    /// Ran, with this result; due again after a frequency.
    Ran(MaintenanceResult),
}

/// Maintain `repo` if it is due at `now`.
pub async fn reconcile(
    repo: &BackupRepository,
    ctx: &Context,
    now: jiff::Timestamp,
) -> Result<Outcome> {
    if repo.status.as_ref().and_then(|s| s.phase) != Some(RepositoryPhase::Ready) {
        return Ok(Outcome::NotReady);
    }
    if let Some(at) = due(repo).filter(|at| *at > now) {
        let secs = at.duration_since(now).as_secs_f64().max(1.0);
        return Ok(Outcome::DueIn(Duration::from_secs_f64(secs)));
    }
    let name = repo.name_any();
    let started = jiff::Timestamp::now();
    let (result, message) = match run(repo, ctx).await {
        Ok(m) => (MaintenanceResult::Succeeded, m),
        Err(e) => {
            tracing::warn!(repository = %name, "maintenance failed: {e}");
            (MaintenanceResult::Failed, e.to_string())
        }
    };
    let mut runs = repo
        .status
        .as_ref()
        .map(|s| s.recent_maintenance.clone())
        .unwrap_or_default();
    runs.push(MaintenanceRun {
        result,
        start_timestamp: Time(started),
        complete_timestamp: Time(jiff::Timestamp::now()),
        message,
    });
    let drop = runs.len().saturating_sub(RUNS_KEPT);
    runs.drain(..drop);
    let api: Api<BackupRepository> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    patch_status(
        &api,
        &name,
        &json!({"lastMaintenanceTime": Time(now), "recentMaintenance": runs, "maintenanceWaiting": null}),
    )
    .await?;
    Ok(Outcome::Ran(result))
}

/// Check, then prune: returns the one-line summary of what was done.
async fn run(repo: &BackupRepository, ctx: &Context) -> Result<String> {
    let url = &repo.spec.repository_url;
    // check loads the index (and hands it to the repository for prune): not twice.
    let mut opened = repository::open_unindexed(ctx, repo).await?;
    // Running volume backups hold shared locks: maintenance waits for them to end, saying
    // so in the repository's status.
    let api: Api<BackupRepository> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let name = repo.name_any();
    let locked = arca_engine::lock::acquire_retrying(&opened, true, ctx.lock_retry, |holder, _| {
        tracing::info!(repository = %url, "maintenance waits for the lock {holder}");
        let (api, name) = (&api, &name);
        async move {
            let waiting = json!({"maintenanceWaiting": format!("waiting for the lock {holder}")});
            let _ = patch_status(api, name, &waiting).await;
        }
    })
    .await;
    let (lock, waited) = locked.map_err(Error::engine(url))?;
    let waited = (!waited.is_zero()).then(|| {
        format!(
            "waited {} for the lock of running work; ",
            humantime::format_duration(std::time::Duration::from_secs(waited.as_secs().max(1)))
        )
    });
    let none = arca_engine::progress::NoProgress;
    let result = async {
        let report =
            arca_engine::check::check(&mut opened, arca_engine::check::ReadData::None, &none)
                .await
                .map_err(Error::engine(format!("{url}: check")))?;
        if let Some(e) = report.errors.first() {
            // Never prune a damaged repository: that could delete what a repair needs.
            return Err(Error::Refused(format!(
                "{url}: check found {} error(s), not pruning: {e}",
                report.errors.len()
            )));
        }
        let p = arca_engine::prune::prune(Arc::new(opened), &Default::default(), &none)
            .await
            .map_err(Error::engine(format!("{url}: prune")))?;
        Ok(format!(
            "{}checked {} snapshot(s), {} tree(s); deleted {} pack(s), repacked {}, freed {} bytes",
            waited.unwrap_or_default(),
            report.snapshots,
            report.trees,
            p.packs_delete,
            p.packs_repack,
            p.delete.bytes + p.repack_removes.bytes + p.unreferenced_bytes
        ))
    }
    .await;
    let _ = lock.release().await;
    result
}
