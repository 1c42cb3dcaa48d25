//! The PodVolumeRestore controller of one node: once the restored pod's restore-wait init
//! container runs, restore the snapshot into the pod's volume and leave the marker the
//! container waits for (or a failure marker with the reason, so the pod does not hang).

use crate::access;
use crate::context::Context;
use crate::repo_lock::{self, Locked};
use crate::{Error, Result};
use arca_api::common::{now, VolumePhase, VolumeProgress};
use arca_api::restore::{FAILED_MARKER_SUFFIX, MARKER_DIR, RESTORE_WAIT_CONTAINER};
use arca_api::PodVolumeRestore;
use arca_engine::progress::Progress;
use arca_engine::restore::{self, RestoreOptions};
use arca_reconcile::status::patch_status;
use arca_reconcile::Failure;
use arca_reconcile::Wrap as _;
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, ResourceExt};
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What the reconciler did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not this node's pod, or already finished.
    Ignored,
    /// The pod is not scheduled yet, or its restore-wait container is not running yet, or
    /// the repository is not Ready: look again when that changes.
    Waiting,
    Completed,
    Failed(String),
    Canceled,
}

/// Whether the pod's restore-wait init container is running (the volumes are mounted and
/// the application has not started).
fn waiting_for_us(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.init_container_statuses.as_ref())
        .and_then(|c| c.iter().find(|c| c.name == RESTORE_WAIT_CONTAINER))
        .and_then(|c| c.state.as_ref())
        .is_some_and(|s| s.running.is_some())
}

/// Handle one PodVolumeRestore.
pub async fn reconcile(pvr: &PodVolumeRestore, ctx: &Context) -> Result<Outcome> {
    let status = pvr.status.clone().unwrap_or_default();
    if status.phase.is_final() {
        return Ok(Outcome::Ignored);
    }
    let name = pvr.name_any();
    let api: Api<PodVolumeRestore> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &pvr.spec.pod.namespace);
    let pod = match pods.get_opt(&pvr.spec.pod.name).await {
        Ok(Some(p)) if p.uid().as_deref() == Some(pvr.spec.pod.uid.as_str()) => p,
        Ok(_) => {
            // The pod is gone or was replaced: nobody waits for this restore any more. Only
            // the agent of the node it was meant for may say so, or it would be every agent.
            if status.node.as_deref() != Some(ctx.node.as_str()) {
                return Ok(Outcome::Ignored);
            }
            let msg = format!(
                "pod {}/{} ({}) no longer exists",
                pvr.spec.pod.namespace, pvr.spec.pod.name, pvr.spec.pod.uid
            );
            patch_status(
                &api,
                &name,
                &json!({"phase": VolumePhase::Failed, "message": msg, "completionTimestamp": now()}),
            )
            .await?;
            return Ok(Outcome::Failed(msg));
        }
        Err(e) => {
            return Err(Error::api(format!(
                "cannot read pod {}/{}",
                pvr.spec.pod.namespace, pvr.spec.pod.name
            ))(e))
        }
    };
    match pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
        // Not scheduled yet (a claim being provisioned, say): every agent waits for the
        // pod's binding, which their pod watch brings them.
        None => return Ok(Outcome::Waiting),
        Some(node) if node != ctx.node => return Ok(Outcome::Ignored),
        Some(_) => {}
    }
    if pvr.spec.cancel {
        patch_status(&api, &name, &json!({"phase": VolumePhase::Canceled, "completionTimestamp": now(), "message": "canceled"})).await?;
        return Ok(Outcome::Canceled);
    }
    if !waiting_for_us(&pod) {
        return Ok(Outcome::Waiting);
    }
    let uid = pvr.uid().unwrap_or_default();
    let Some(_running) = ctx.begin(&uid) else {
        return Ok(Outcome::Ignored);
    };
    // As for backups: the cache may predate our own final status update.
    let fresh = api
        .get(&name)
        .await
        .map_err(Error::api(format!("cannot read PodVolumeRestore {name}")))?;
    let status = fresh.status.clone().unwrap_or_default();
    if status.phase.is_final() || fresh.uid() != pvr.uid() {
        return Ok(Outcome::Ignored);
    }
    let access = match access::repository(ctx, &pvr.spec.repository).await {
        Ok(a) => Ok(a),
        Err(Error::RepositoryNotReady(why)) => {
            tracing::info!(pvr = %name, "waiting: {why}");
            return Ok(Outcome::Waiting);
        }
        Err(e) => Err(e),
    };
    let resumed = status.phase == VolumePhase::InProgress;
    let result = run(pvr, &pod, ctx, &api, &name, resumed, access).await;
    // The in-flight mark (`_running`) stays until the outcome is recorded.
    match result {
        Ok((progress, note)) => {
            patch_status(&api, &name, &json!({"phase": VolumePhase::Completed, "completionTimestamp": now(), "progress": progress, "message": note})).await?;
            Ok(Outcome::Completed)
        }
        Err(e) => {
            let msg = e.to_string();
            tracing::warn!(pvr = %name, kind = e.metric_label(), "restore failed: {msg}");
            patch_status(
                &api,
                &name,
                &json!({"phase": VolumePhase::Failed, "completionTimestamp": now(), "message": msg}),
            )
            .await?;
            Ok(Outcome::Failed(msg))
        }
    }
}

#[derive(Default)]
struct Bytes {
    total: AtomicU64,
    done: AtomicU64,
}

impl Progress for Bytes {
    fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }
    fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }
}

/// Leave the done marker (or the failure marker holding `failure`) in the volume.
///
/// The volume belongs to the tenant (and holds what the snapshot put there): `.arca` may be
/// a symlink to anywhere, swapped in at any moment. The agent runs as root, so the marker is
/// written relative to a handle on `.arca` opened without following links, never by path.
fn mark(volume: &Path, restore_uid: &str, failure: Option<&str>) -> Result<()> {
    let dir = volume.join(MARKER_DIR);
    let say = |e: std::io::Error| Error::io(dir.display().to_string())(e);
    match std::fs::symlink_metadata(&dir) {
        Ok(md) if md.is_dir() => {}
        // A link or file in the way is the tenant's or the snapshot's: replaced, not followed.
        Ok(_) => std::fs::remove_file(&dir).map_err(say)?,
        Err(_) => {}
    }
    match std::fs::create_dir(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        other => other.map_err(say)?,
    }
    let (name, content) = match failure {
        None => (restore_uid.to_string(), String::new()),
        Some(reason) => (
            format!("{restore_uid}{FAILED_MARKER_SUFFIX}"),
            format!("{reason}\n"),
        ),
    };
    write_in_dir(&dir, &name, content.as_bytes()).map_err(say)
}

/// Write `name` inside directory `dir`, following no symlink: `dir` itself is opened with
/// `O_NOFOLLOW | O_DIRECTORY` and the file created relative to it, also `O_NOFOLLOW`.
fn write_in_dir(dir: &Path, name: &str, content: &[u8]) -> std::io::Result<()> {
    use rustix::fs::{Mode, OFlags};
    use std::io::Write;
    let dir_fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let fd = rustix::fs::openat(
        &dir_fd,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    std::fs::File::from(fd).write_all(content)
}

async fn run(
    pvr: &PodVolumeRestore,
    pod: &Pod,
    ctx: &Context,
    api: &Api<PodVolumeRestore>,
    name: &str,
    resumed: bool,
    access: Result<access::RepoAccess>,
) -> Result<(VolumeProgress, Option<String>)> {
    let spec = &pvr.spec;
    let mount = crate::volumes::mount_of(&ctx.client, pod, &spec.volume).await?;
    let dir = crate::volumes::volume_dir(&ctx.kubelet_pods, &spec.pod.uid, &mount)?;
    // From here on a failure also goes into the volume, for the waiting init container.
    let result = match access {
        Ok(access) => restore_into(pvr, ctx, api, name, resumed, &dir, &access).await,
        Err(why) => Err(why),
    };
    match &result {
        Ok(_) => mark(&dir, &spec.restore_uid, None)?,
        Err(e) => mark(&dir, &spec.restore_uid, Some(&e.to_string()))?,
    }
    result
}

async fn restore_into(
    pvr: &PodVolumeRestore,
    ctx: &Context,
    api: &Api<PodVolumeRestore>,
    name: &str,
    resumed: bool,
    dir: &Path,
    access: &access::RepoAccess,
) -> Result<(VolumeProgress, Option<String>)> {
    // A shared lock, as restic's restore takes: a prune must not remove packs being read.
    // Taken before a transfer slot, as for backups.
    let Locked { repo, lock, waited } = repo_lock::open_locked(access, ctx, api, name).await?;
    let _slot = ctx
        .transfers
        .acquire()
        .await
        .map_err(|e| Error::Refused(e.to_string()))?;
    patch_status(
        api,
        name,
        &json!({
            "phase": VolumePhase::InProgress,
            "node": ctx.node,
            "startTimestamp": now(),
            "message": if resumed { Some("resumed after an agent restart") } else { None },
            "lockWaitSeconds": repo_lock::wait_seconds(waited),
        }),
    )
    .await?;
    let result = restore_locked(pvr, ctx, api, name, dir, repo).await;
    let _ = lock.release().await;
    result
}

async fn restore_locked(
    pvr: &PodVolumeRestore,
    ctx: &Context,
    api: &Api<PodVolumeRestore>,
    name: &str,
    dir: &Path,
    repo: arca_engine::Repository,
) -> Result<(VolumeProgress, Option<String>)> {
    let spec = &pvr.spec;
    let snapshot = arca_engine::snapshots::find(&repo, &spec.snapshot_id, &Default::default())
        .await
        .map_err(Error::engine(format!("snapshot {}", spec.snapshot_id)))?;
    // A marker left by an earlier attempt must not be taken for this one's.
    let _ = std::fs::remove_dir_all(dir.join(MARKER_DIR));
    let mut opts = RestoreOptions::everything(dir.to_path_buf());
    opts.privileged_files = spec.allow_privileged_files;
    let bytes = Arc::new(Bytes::default());
    let repo = Arc::new(repo);
    let work = restore::restore(repo, snapshot.tree, &opts, bytes.as_ref());
    tokio::pin!(work);
    let progress = |b: &Bytes, files: i64| VolumeProgress {
        total_bytes: b.total.load(Ordering::Relaxed) as i64,
        bytes_done: b.done.load(Ordering::Relaxed) as i64,
        total_files: files,
        files_done: files,
    };
    let report = loop {
        tokio::select! {
            r = &mut work => break r,
            _ = tokio::time::sleep(ctx.progress_interval) => {
                let _ = patch_status(api, name, &json!({ "progress": progress(&bytes, 0) })).await;
            }
        }
    }
    .map_err(Error::engine(format!(
        "restore of snapshot {}",
        snapshot.id.short()
    )))?;
    if let Some(first) = report.errors.first() {
        return Err(Error::Refused(format!(
            "{} item(s) not restored, first: {first}",
            report.errors.len()
        )));
    }
    // What was left out on purpose is said, not counted as a failure.
    let note = report.withheld.first().map(|first| {
        format!(
            "{} privileged item(s) left out (first: {first}); the Restore's \
             allowPrivilegedFiles restores them",
            report.withheld.len()
        )
    });
    Ok((progress(&bytes, report.files as i64), note))
}
