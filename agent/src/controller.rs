//! The agent's controllers: watch PodVolumeBackups and PodVolumeRestores and run the
//! reconcilers on them, after checking that the kubelet pods directory is the right one.

use crate::context::Context;
use crate::{pod_volume_backup, pod_volume_restore, volumes};
use crate::{Error, Result};
use arca_api::restore::RESTORE_UID_LABEL;
use arca_api::{BackupRepository, PodVolumeBackup, PodVolumeRestore};
use arca_reconcile::Wrap as _;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use std::sync::Arc;
use std::time::Duration;

/// A waiting object is looked at again when what it waits for changes (the pod watch, the
/// repository watch); this is only the safety net should an event be missed.
pub const WAITING_RECHECK: Duration = Duration::from_secs(60);

/// When to look at an object again after a reconcile.
pub fn next_backup(o: &pod_volume_backup::Outcome) -> Action {
    match o {
        pod_volume_backup::Outcome::WaitingForRepository(_) => Action::requeue(WAITING_RECHECK),
        pod_volume_backup::Outcome::Ignored
        | pod_volume_backup::Outcome::Completed
        | pod_volume_backup::Outcome::Failed(_)
        | pod_volume_backup::Outcome::Canceled => Action::await_change(),
    }
}

pub fn next_restore(o: &pod_volume_restore::Outcome) -> Action {
    match o {
        pod_volume_restore::Outcome::Waiting => Action::requeue(WAITING_RECHECK),
        _ => Action::await_change(),
    }
}

/// The unfinished objects of `store` that `pick` selects, as references to reconcile.
fn unfinished<K, F>(store: &Store<K>, pick: F) -> Vec<ObjectRef<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
    F: Fn(&K) -> bool,
{
    store
        .state()
        .iter()
        .filter(|o| pick(o))
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

async fn backup(pvb: Arc<PodVolumeBackup>, ctx: Arc<Context>) -> Result<Action> {
    let name = pvb.name_any();
    let out = arca_reconcile::detached::run(move |rt| {
        rt.block_on(pod_volume_backup::reconcile(&pvb, &ctx))
    })
    .await?;
    tracing::info!(pvb = %name, outcome = ?out, "reconciled");
    Ok(next_backup(&out))
}

async fn restore(pvr: Arc<PodVolumeRestore>, ctx: Arc<Context>) -> Result<Action> {
    let name = pvr.name_any();
    let out = arca_reconcile::detached::run(move |rt| {
        rt.block_on(pod_volume_restore::reconcile(&pvr, &ctx))
    })
    .await?;
    tracing::info!(pvr = %name, outcome = ?out, "reconciled");
    Ok(next_restore(&out))
}

/// The error policy: count the failure by kind in the metrics, and try again after a pause.
fn retry<K: kube::Resource<DynamicType = ()>>(_: Arc<K>, e: &Error, ctx: Arc<Context>) -> Action {
    ctx.failures.retry_after(&K::kind(&()), e)
}

/// Check the pods directory against the pods the API server places on this node.
pub async fn check_start_up(ctx: &Context) -> Result<()> {
    let pods: Api<Pod> = Api::all(ctx.client.clone());
    let on_node = pods
        .list(&ListParams::default().fields(&format!("spec.nodeName={}", ctx.node)))
        .await
        .map_err(Error::api(format!(
            "cannot list the pods of node {}",
            ctx.node
        )))?;
    let uids: Vec<String> = on_node.items.iter().filter_map(|p| p.uid()).collect();
    volumes::check_kubelet_pods(&ctx.kubelet_pods, &uids)
}

/// Run both controllers until the process is stopped.
pub async fn run(ctx: Arc<Context>) -> Result<()> {
    check_start_up(&ctx).await?;
    let pvbs: Api<PodVolumeBackup> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let pvrs: Api<PodVolumeRestore> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let repos: Api<BackupRepository> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    // A backup waiting for its repository goes on when the repository changes.
    let backups = Controller::new(pvbs, watcher::Config::default());
    let store = backups.store();
    let backups = backups
        .watches(repos.clone(), watcher::Config::default(), move |r| {
            let name = r.name_any();
            unfinished(&store, |p: &PodVolumeBackup| {
                p.spec.repository == name && !p.status.as_ref().is_some_and(|s| s.phase.is_final())
            })
        })
        .shutdown_on_signal()
        .run(backup, retry, ctx.clone())
        .for_each(|_| async {});
    // A restore goes on when its pod is scheduled or its restore-wait container starts (the
    // operator labels the pods it restores), or when its repository changes.
    let restores = Controller::new(pvrs, watcher::Config::default());
    let (by_pod, by_repo) = (restores.store(), restores.store());
    let restored_pods: Api<Pod> = Api::all(ctx.client.clone());
    let restores = restores
        .watches(
            restored_pods,
            watcher::Config::default().labels(RESTORE_UID_LABEL),
            move |pod| {
                let uid = pod.uid().unwrap_or_default();
                unfinished(&by_pod, |p: &PodVolumeRestore| {
                    p.spec.pod.uid == uid && !p.status.as_ref().is_some_and(|s| s.phase.is_final())
                })
            },
        )
        .watches(repos, watcher::Config::default(), move |r| {
            let name = r.name_any();
            unfinished(&by_repo, |p: &PodVolumeRestore| {
                p.spec.repository == name && !p.status.as_ref().is_some_and(|s| s.phase.is_final())
            })
        })
        .shutdown_on_signal()
        .run(restore, retry, ctx.clone())
        .for_each(|_| async {});
    tracing::info!(node = %ctx.node, pods = %ctx.kubelet_pods.display(), "agent running");
    futures::join!(backups, restores);
    Ok(())
}
