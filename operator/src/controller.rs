//! The operator's controllers: one kube-runtime Controller per kind (storage locations,
//! repositories, Backups, Restores, Schedules) calling the reconcilers, plus what they
//! report: Prometheus metrics and Kubernetes Events on the objects acted on.

use crate::context::Context;
use crate::metrics::Metrics;
use crate::resources::Kind;
use crate::{backup, gc, location, maintenance, repository, resources, restore, schedule};
use crate::{Error, Result};
use arca_api::backup::BACKUP_NAME_LABEL;
use arca_api::common::OperationPhase;
use arca_api::location::{LocationPhase, RECOVERY_KEY_CONDITION};
use arca_api::repository::{MaintenanceResult, RepositoryPhase, ROTATE_KEY_ANNOTATION};
use arca_api::restore::RESTORE_NAME_LABEL;
use arca_api::{
    Backup, BackupRepository, BackupStorageLocation, PodVolumeBackup, PodVolumeRestore, Restore,
    Schedule,
};
use futures::StreamExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// Finished objects are looked at again at least this often (expiry, maintenance).
const MAX_REQUEUE: Duration = Duration::from_secs(3600);

/// What every controller shares.
pub struct Operator {
    pub ctx: Context,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    /// The API's kinds from the last discovery, and when it ran: a Backup waiting for its
    /// volumes is looked at every few seconds, and discovery is dozens of requests.
    kinds: tokio::sync::Mutex<Option<(std::time::Instant, Arc<Vec<Kind>>)>>,
}

/// How long a discovery's result is used (new CRDs show up after at most this long).
const DISCOVERY_TTL: Duration = Duration::from_secs(60);

impl Operator {
    pub fn new(ctx: Context, metrics: Arc<Metrics>) -> Operator {
        let reporter = Reporter {
            controller: "arca-operator".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Operator {
            recorder: Recorder::new(ctx.client.clone(), reporter),
            ctx,
            metrics,
            kinds: tokio::sync::Mutex::new(None),
        }
    }

    /// Record an Event on `obj` (best effort: a lost Event is no reason to fail).
    async fn event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        let ev = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note),
            action: reason.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::debug!("cannot record event {reason}: {e}");
        }
    }
}

/// The note of a finished operation's Event: why it failed, or how it went.
fn outcome_note(failure: Option<String>, errors: i32, warnings: i32) -> String {
    failure.unwrap_or_else(|| format!("{errors} error(s), {warnings} warning(s)"))
}

fn capped(d: Duration) -> Action {
    Action::requeue(d.min(MAX_REQUEUE))
}

async fn kinds(op: &Operator) -> Result<Arc<Vec<Kind>>> {
    let mut cached = op.kinds.lock().await;
    if let Some((at, kinds)) = cached.as_ref() {
        if at.elapsed() < DISCOVERY_TTL {
            return Ok(kinds.clone());
        }
    }
    let kinds = Arc::new(resources::discover(&op.ctx.client).await?);
    *cached = Some((std::time::Instant::now(), kinds.clone()));
    Ok(kinds)
}

pub async fn on_location(bsl: Arc<BackupStorageLocation>, op: Arc<Operator>) -> Result<Action> {
    // The location's own status patches come back as changes: no reason to check again.
    if let Some(wait) = location::nothing_due(&op.ctx, &bsl).await {
        return Ok(Action::requeue(wait));
    }
    let before = bsl.status.as_ref().and_then(|s| s.phase);
    let said_generated = bsl.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == RECOVERY_KEY_CONDITION)
    });
    let (o, b) = (op.clone(), bsl.clone());
    let checked =
        arca_reconcile::detached::run(move |rt| rt.block_on(location::reconcile(&b, &o.ctx)))
            .await?;
    if checked.generated_recovery_key && !said_generated {
        let note = location::generated_key_message(&bsl);
        op.event(&*bsl, true, "RecoveryKeyGenerated", note).await;
    }
    match &checked.synced {
        Some(Ok(s)) if !s.created.is_empty() || !s.removed.is_empty() => {
            let note = format!(
                "from the bucket: {} Backup(s) created ({}), {} removed ({})",
                s.created.len(),
                s.created.join(", "),
                s.removed.len(),
                s.removed.join(", ")
            );
            op.event(&*bsl, false, "BackupsSynced", note).await
        }
        Some(Err(e)) => {
            op.event(&*bsl, true, "BackupSyncFailed", e.to_string())
                .await
        }
        _ => {}
    }
    if Some(checked.phase) != before {
        match checked.phase {
            LocationPhase::Unavailable => {
                let why = checked.problem.clone().unwrap_or_default();
                op.event(&*bsl, true, "Unavailable", why).await
            }
            LocationPhase::Available => {
                op.event(&*bsl, false, "Available", "the store answers".into())
                    .await
            }
        }
    }
    Ok(capped(checked.again))
}

pub async fn on_repository(repo: Arc<BackupRepository>, op: Arc<Operator>) -> Result<Action> {
    let name = repo.name_any();
    let ready = repo.status.as_ref().and_then(|s| s.phase) == Some(RepositoryPhase::Ready);
    if !ready || repository::recovery_key_outdated(&op.ctx, &repo).await {
        let (o, r) = (op.clone(), repo.clone());
        let phase =
            arca_reconcile::detached::run(move |rt| rt.block_on(repository::reconcile(&r, &o.ctx)))
                .await?;
        if phase == RepositoryPhase::New {
            // The store failed for a while: again soon; those who need it wait meanwhile.
            return Ok(Action::requeue(Duration::from_secs(5)));
        }
        if phase != RepositoryPhase::Ready {
            op.event(
                &*repo,
                true,
                "NotReady",
                format!("repository {name} is not ready"),
            )
            .await;
            return Ok(Action::requeue(Duration::from_secs(60)));
        }
        // Ready now: the status change brings it back for maintenance.
        return Ok(Action::await_change());
    }
    if repo.annotations().contains_key(ROTATE_KEY_ANNOTATION) {
        let (o, r) = (op.clone(), repo.clone());
        return Ok(
            match arca_reconcile::detached::run(move |rt| {
                rt.block_on(repository::rotate_key(&r, &o.ctx))
            })
            .await
            {
                Ok(()) => {
                    op.event(
                        &*repo,
                        false,
                        "KeyRotated",
                        format!("repository {name} has a new key"),
                    )
                    .await;
                    Action::await_change()
                }
                Err(e) => {
                    op.event(&*repo, true, "KeyRotationFailed", e.to_string())
                        .await;
                    Action::requeue(Duration::from_secs(60))
                }
            },
        );
    }
    let (o, r) = (op.clone(), repo.clone());
    let out = arca_reconcile::detached::run(move |rt| {
        rt.block_on(maintenance::reconcile(&r, &o.ctx, jiff::Timestamp::now()))
    })
    .await?;
    Ok(match out {
        maintenance::Outcome::NotReady => Action::requeue(Duration::from_secs(60)),
        maintenance::Outcome::DueIn(d) => capped(d),
        maintenance::Outcome::Ran(result) => {
            op.metrics.maintenance_ran(&name, result);
            let failed = result == MaintenanceResult::Failed;
            op.event(
                &*repo,
                failed,
                if failed {
                    "MaintenanceFailed"
                } else {
                    "Maintained"
                },
                format!("maintenance of {name}: {result:?}"),
            )
            .await;
            capped(maintenance::frequency(&repo))
        }
    })
}

pub async fn on_backup(b: Arc<Backup>, op: Arc<Operator>) -> Result<Action> {
    let name = b.name_any();
    let (o, bb) = (op.clone(), b.clone());
    match arca_reconcile::detached::run(move |rt| {
        rt.block_on(gc::reconcile(&bb, &o.ctx, jiff::Timestamp::now()))
    })
    .await?
    {
        gc::Outcome::Deleted => {
            tracing::info!(backup = %name, "expired: deleted");
            return Ok(Action::await_change());
        }
        gc::Outcome::ExpiresIn(d) => return Ok(capped(d)),
        gc::Outcome::NotExpiring => {}
    }
    if b.status
        .as_ref()
        .is_some_and(|s| s.outcome.phase.is_final())
    {
        return Ok(Action::await_change());
    }
    // Only the second half (collecting manifests) needs the API's kinds.
    let in_progress = b
        .status
        .as_ref()
        .is_some_and(|s| s.outcome.phase == OperationPhase::InProgress);
    let kinds = if in_progress {
        kinds(&op).await?
    } else {
        Arc::default()
    };
    let (o, bb) = (op.clone(), b.clone());
    let out = arca_reconcile::detached::run(move |rt| {
        rt.block_on(backup::reconcile(&bb, &o.ctx, &kinds))
    })
    .await?;
    tracing::info!(backup = %name, outcome = ?out, "reconciled");
    Ok(match out {
        backup::Outcome::Waiting(d) => Action::requeue(d),
        backup::Outcome::Ignored => Action::await_change(),
        backup::Outcome::Finished(phase) => {
            let api: Api<Backup> = Api::namespaced(op.ctx.client.clone(), &op.ctx.namespace);
            if let Ok(done) = api.get(&name).await {
                op.metrics.backup_finished(&done);
                let st = done.status.unwrap_or_default();
                let note = outcome_note(
                    st.outcome.failure_reason,
                    st.outcome.errors,
                    st.outcome.warnings,
                );
                let reason = format!("Backup{phase:?}");
                op.event(&*b, phase != OperationPhase::Completed, &reason, note)
                    .await;
            }
            // Back for expiry.
            Action::requeue(Duration::from_secs(1))
        }
    })
}

pub async fn on_restore(r: Arc<Restore>, op: Arc<Operator>) -> Result<Action> {
    let name = r.name_any();
    if r.status
        .as_ref()
        .is_some_and(|s| s.outcome.phase.is_final())
    {
        return Ok(Action::await_change());
    }
    let kinds = kinds(&op).await?;
    let (o, rr) = (op.clone(), r.clone());
    let out = arca_reconcile::detached::run(move |rt| {
        rt.block_on(restore::reconcile(&rr, &o.ctx, &kinds))
    })
    .await?;
    tracing::info!(restore = %name, outcome = ?out, "reconciled");
    Ok(match out {
        restore::Outcome::Waiting(d) => Action::requeue(d),
        restore::Outcome::Ignored => Action::await_change(),
        restore::Outcome::Finished(phase) => {
            let api: Api<Restore> = Api::namespaced(op.ctx.client.clone(), &op.ctx.namespace);
            if let Ok(done) = api.get(&name).await {
                op.metrics.restore_finished(&done);
                let st = done.status.unwrap_or_default();
                let note = outcome_note(
                    st.outcome.failure_reason,
                    st.outcome.errors,
                    st.outcome.warnings,
                );
                let reason = format!("Restore{phase:?}");
                op.event(&*r, phase != OperationPhase::Completed, &reason, note)
                    .await;
            }
            Action::await_change()
        }
    })
}

pub async fn on_schedule(s: Arc<Schedule>, op: Arc<Operator>) -> Result<Action> {
    let again = schedule::reconcile(&s, &op.ctx, jiff::Timestamp::now()).await?;
    Ok(capped(again))
}

/// The error policy: count the failure by kind in the metrics, and try again after a pause.
fn retry<K: Resource<DynamicType = ()>>(_: Arc<K>, e: &Error, op: Arc<Operator>) -> Action {
    op.metrics.failures.retry_after(&K::kind(&()), e)
}

/// One kind's controller: watch `K` in the operator's namespace and call `reconcile` on
/// each change and requeue, until the process is stopped. `also` adds the watches of what
/// the kind waits for.
pub async fn watch<K, F, Fut>(
    op: Arc<Operator>,
    reconcile: F,
    also: impl FnOnce(Controller<K>, &Operator) -> Controller<K>,
) where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    F: FnMut(Arc<K>, Arc<Operator>) -> Fut,
    Fut: std::future::Future<Output = Result<Action>> + Send + 'static,
{
    let mut reconcile = reconcile;
    // kube-rs is inside its "reconciling object" span (which names the object and why it
    // is reconciled) only while the future is made: carry that span into the work, so that
    // each line it logs says what woke it (a change, a child's change, or a timer).
    let traced = move |obj: Arc<K>, op: Arc<Operator>| {
        reconcile(obj, op).instrument(tracing::Span::current())
    };
    let api = Api::<K>::namespaced(op.ctx.client.clone(), &op.ctx.namespace);
    also(Controller::new(api, watcher::Config::default()), &op)
        .shutdown_on_signal()
        .run(traced, retry, op)
        .for_each(|_| async {})
        .await
}

/// Run every controller until the process is stopped.
pub async fn run(op: Arc<Operator>) {
    tracing::info!(namespace = %op.ctx.namespace, "operator running");
    futures::join!(
        watch::<BackupStorageLocation, _, _>(op.clone(), on_location, location_waits_for),
        watch::<BackupRepository, _, _>(op.clone(), on_repository, repository_waits_for),
        watch::<Backup, _, _>(op.clone(), on_backup, backup_waits_for),
        watch::<Restore, _, _>(op.clone(), on_restore, restore_waits_for),
        watch::<Schedule, _, _>(op.clone(), on_schedule, nothing),
    );
}

/// For kinds that wait for nothing else.
fn nothing<K: Resource + Clone + std::fmt::Debug + 'static>(
    c: Controller<K>,
    _: &Operator,
) -> Controller<K>
where
    K::DynamicType: Eq + std::hash::Hash,
{
    c
}

/// A Backup goes on when one of its PodVolumeBackups changes, and a new one when a
/// repository becomes ready.
pub fn backup_waits_for(c: Controller<Backup>, op: &Operator) -> Controller<Backup> {
    let ns = op.ctx.namespace.clone();
    let pvbs = Api::<PodVolumeBackup>::namespaced(op.ctx.client.clone(), &ns);
    let repos = Api::<BackupRepository>::namespaced(op.ctx.client.clone(), &ns);
    let store = c.store();
    c.watches(
        pvbs,
        watcher::Config::default().labels(BACKUP_NAME_LABEL),
        move |p| owner_by_label(&p, BACKUP_NAME_LABEL, &ns),
    )
    .watches(repos, watcher::Config::default(), move |_| {
        store
            .state()
            .iter()
            .filter(|b| {
                !b.status
                    .as_ref()
                    .is_some_and(|s| s.outcome.phase.is_final())
            })
            .map(|b| ObjectRef::from_obj(b.as_ref()))
            .collect::<Vec<_>>()
    })
}

/// A location is looked at again when its resource repository changes (made ready: the
/// backups in its bucket can be synced now).
fn location_waits_for(
    c: Controller<BackupStorageLocation>,
    op: &Operator,
) -> Controller<BackupStorageLocation> {
    let repos = Api::<BackupRepository>::namespaced(op.ctx.client.clone(), &op.ctx.namespace);
    let ns = op.ctx.namespace.clone();
    c.watches(repos, watcher::Config::default(), move |r| {
        (r.spec.volume_namespace == backup::RESOURCES_REPOSITORY)
            .then(|| ObjectRef::new(&r.spec.backup_storage_location).within(&ns))
    })
}

/// A repository is looked at again when its location's recovery key is not the one it holds
/// (a key replaced, or the location's first check).
fn repository_waits_for(
    c: Controller<BackupRepository>,
    op: &Operator,
) -> Controller<BackupRepository> {
    let locations =
        Api::<BackupStorageLocation>::namespaced(op.ctx.client.clone(), &op.ctx.namespace);
    let store = c.store();
    c.watches(locations, watcher::Config::default(), move |bsl| {
        let name = bsl.name_any();
        let wanted = bsl.status.and_then(|s| s.recovery_key_fingerprint);
        store
            .state()
            .iter()
            .filter(|r| r.spec.backup_storage_location == name)
            .filter(|r| {
                wanted.is_some()
                    && r.status
                        .as_ref()
                        .and_then(|s| s.recovery_key_fingerprint.as_ref())
                        != wanted.as_ref()
            })
            .map(|r| ObjectRef::from_obj(r.as_ref()))
            .collect::<Vec<_>>()
    })
}

/// A Restore goes on when one of its PodVolumeRestores changes, and a new one when a
/// repository it waits for becomes ready.
fn restore_waits_for(c: Controller<Restore>, op: &Operator) -> Controller<Restore> {
    let ns = op.ctx.namespace.clone();
    let pvrs = Api::<PodVolumeRestore>::namespaced(op.ctx.client.clone(), &ns);
    let repos = Api::<BackupRepository>::namespaced(op.ctx.client.clone(), &ns);
    let store = c.store();
    c.watches(
        pvrs,
        watcher::Config::default().labels(RESTORE_NAME_LABEL),
        move |p| owner_by_label(&p, RESTORE_NAME_LABEL, &ns),
    )
    .watches(repos, watcher::Config::default(), move |_| {
        store
            .state()
            .iter()
            .filter(|r| {
                r.status
                    .as_ref()
                    .is_none_or(|s| s.outcome.phase == OperationPhase::New)
            })
            .map(|r| ObjectRef::from_obj(r.as_ref()))
            .collect::<Vec<_>>()
    })
}

/// The object of the operator's namespace that `obj`'s label `label` names.
fn owner_by_label<K, O>(obj: &O, label: &str, ns: &str) -> Option<ObjectRef<K>>
where
    K: Resource<DynamicType = ()>,
    O: Resource,
{
    obj.labels()
        .get(label)
        .map(|name| ObjectRef::new(name).within(ns))
}
