//! The PodVolumeBackup controller of one node: back up a pod volume with the in-process
//! engine, incrementally against the last snapshot of the same PersistentVolumeClaim.

use crate::access;
use crate::context::Context;
use crate::repo_lock::{self, Locked};
use crate::{Error, Result};
use arca_api::backup::SYNCED_FROM_LABEL;
use arca_api::common::{now, VolumePhase, VolumeProgress};
use arca_api::podvolume::{LINEAGE_TAG, PVC_UID_LABEL};
use arca_api::{PodVolumeBackup, PodVolumeBackupStatus};
use arca_engine::backup::{self, BackupOptions, SelectAll};
use arca_engine::progress::Progress;
use arca_engine::snapshots;
use arca_reconcile::status::patch_status;
use arca_reconcile::Failure;
use arca_reconcile::Wrap as _;
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, ResourceExt};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Snapshot host name: fixed, so no restic tool sees a "new host" when the agent moves.
pub const SNAPSHOT_HOST: &str = "arca";

/// What the reconciler did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not this node's, or already finished.
    Ignored,
    /// Its repository is not Ready (yet, or for a while): look again when it is.
    WaitingForRepository(String),
    Completed,
    Failed(String),
    Canceled,
}

/// Handle one PodVolumeBackup.
pub async fn reconcile(pvb: &PodVolumeBackup, ctx: &Context) -> Result<Outcome> {
    let status = pvb.status.clone().unwrap_or_default();
    // Synced from a bucket: the record of a volume backed up elsewhere, never run here.
    let synced = pvb.labels().contains_key(SYNCED_FROM_LABEL);
    if pvb.spec.node != ctx.node || status.phase.is_final() || synced {
        return Ok(Outcome::Ignored);
    }
    let name = pvb.name_any();
    let uid = pvb.uid().unwrap_or_default();
    let api: Api<PodVolumeBackup> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    if pvb.spec.cancel {
        patch_status(&api, &name, &json!({"phase": VolumePhase::Canceled, "completionTimestamp": now(), "message": "canceled"})).await?;
        return Ok(Outcome::Canceled);
    }
    let Some(_running) = ctx.begin(&uid) else {
        return Ok(Outcome::Ignored); // already running in this process
    };
    // The watch cache may still hold a state older than our own last status update (a
    // reconcile queued by our progress updates runs after we finished): only a fresh read
    // tells whether this backup still needs running.
    let fresh = api
        .get(&name)
        .await
        .map_err(Error::api(format!("cannot read PodVolumeBackup {name}")))?;
    let status = fresh.status.clone().unwrap_or_default();
    if status.phase.is_final() || fresh.uid() != pvb.uid() {
        return Ok(Outcome::Ignored);
    }
    let access = match access::repository(ctx, &pvb.spec.repository).await {
        Ok(a) => Ok(a),
        Err(Error::RepositoryNotReady(why)) => return Ok(Outcome::WaitingForRepository(why)),
        Err(e) => Err(e),
    };
    // InProgress without us running it: this agent restarted mid-backup. A backup can
    // simply run again (what was uploaded is deduplicated), so it resumes from the start.
    let resumed = status.phase == VolumePhase::InProgress;
    let result = match access {
        Ok(access) => run(pvb, ctx, &api, &name, resumed, &access).await,
        Err(why) => Err(why),
    };
    // The in-flight mark (`_running`) stays until the outcome is recorded.
    let outcome = match result {
        Ok(done) => {
            patch_status(&api, &name, &done).await?;
            Outcome::Completed
        }
        Err(e) => {
            let msg = e.to_string();
            tracing::warn!(pvb = %name, kind = e.metric_label(), "backup failed: {msg}");
            patch_status(
                &api,
                &name,
                &json!({"phase": VolumePhase::Failed, "completionTimestamp": now(), "message": msg}),
            )
            .await?;
            Outcome::Failed(msg)
        }
    };
    Ok(outcome)
}

/// Progress of a running backup, read by the status updater.
#[derive(Default)]
struct Counters {
    total_files: AtomicU64,
    total_bytes: AtomicU64,
    bytes_done: AtomicU64,
    files_done: AtomicU64,
}

impl Progress for Counters {
    fn set_total(&self, total: u64) {
        self.total_bytes.store(total, Ordering::Relaxed);
    }
    fn add(&self, n: u64) {
        self.bytes_done.fetch_add(n, Ordering::Relaxed);
    }
    fn file_done(&self) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
    }
}

async fn run(
    pvb: &PodVolumeBackup,
    ctx: &Context,
    api: &Api<PodVolumeBackup>,
    name: &str,
    resumed: bool,
    access: &access::RepoAccess,
) -> Result<PodVolumeBackupStatus> {
    let spec = &pvb.spec;
    let pod = Api::<Pod>::namespaced(ctx.client.clone(), &spec.pod.namespace)
        .get_opt(&spec.pod.name)
        .await
        .map_err(Error::api(format!(
            "cannot read pod {}/{}",
            spec.pod.namespace, spec.pod.name
        )))?
        .filter(|p| p.uid().as_deref() == Some(spec.pod.uid.as_str()))
        .ok_or_else(|| {
            Error::Volume(format!(
                "pod {}/{} ({}) no longer exists",
                spec.pod.namespace, spec.pod.name, spec.pod.uid
            ))
        })?;
    let mount = crate::volumes::mount_of(&ctx.client, &pod, &spec.volume).await?;
    let dir = crate::volumes::volume_dir(&ctx.kubelet_pods, &spec.pod.uid, &mount)?;
    // The lock before a transfer slot: a backup queued behind maintenance must not keep
    // another repository's backup from running.
    let Locked { repo, lock, waited } = repo_lock::open_locked(access, ctx, api, name).await?;
    let _slot = ctx
        .transfers
        .acquire()
        .await
        .map_err(|e| Error::Refused(e.to_string()))?;
    let started = now();
    let lock_wait = repo_lock::wait_seconds(waited);
    patch_status(
        api,
        name,
        &json!({
            "phase": VolumePhase::InProgress,
            "startTimestamp": started,
            "path": dir.display().to_string(),
            "message": if resumed { Some("resumed after an agent restart") } else { None },
            "lockWaitSeconds": lock_wait,
        }),
    )
    .await?;
    // The parent: the newest snapshot of the same claim (or, without one, of the same pod
    // volume), whatever pod or node made it.
    let pvc_uid = spec
        .pvc_uid
        .clone()
        .or_else(|| pvb.labels().get(PVC_UID_LABEL).cloned());
    let key_tag = match (&pvc_uid, spec.tags.get(LINEAGE_TAG)) {
        (Some(u), _) => format!("pvc-uid={u}"),
        (None, Some(l)) => format!("{LINEAGE_TAG}={l}"),
        (None, None) => format!("pod-uid={}", spec.pod.uid),
    };
    let volume_tag = format!("volume={}", spec.volume);
    // A claim is the same data whichever pod mounts it, under whatever volume name (a
    // helper pod's is `claim`); a pod's other volumes are told apart by name.
    let parent_tags = match &pvc_uid {
        Some(_) => vec![key_tag.clone()],
        None => vec![key_tag.clone(), volume_tag.clone()],
    };
    let filter = snapshots::SnapshotFilter {
        tags: vec![parent_tags],
        ..Default::default()
    };
    let parent = snapshots::load_all(&repo)
        .await
        .map_err(Error::engine("listing snapshots"))?
        .into_iter()
        .rfind(|s| filter.matches(s));

    let mut tags: Vec<String> = spec.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for t in [key_tag, volume_tag] {
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    let counters = Arc::new(Counters::default());
    {
        let (c, d) = (counters.clone(), dir.clone());
        tokio::task::spawn_blocking(move || {
            let (files, _) = backup::scan(&[d], &SelectAll, c.as_ref());
            c.total_files.store(files, Ordering::Relaxed);
        });
    }
    let parent_id = parent.as_ref().map(|p| p.id.to_hex());
    let opts = BackupOptions {
        paths: vec![dir.clone()],
        tags,
        hostname: SNAPSHOT_HOST.into(),
        parent,
        force: false,
        with_atime: false,
        excludes: vec![],
        selector: Arc::new(SelectAll),
        writer: Default::default(),
        time: None,
        threads: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
        program_version: format!("arca-agent {}", env!("CARGO_PKG_VERSION")),
        contents_of: true,
        skip_if_unchanged: false,
        ignore: Default::default(),
    };
    let repo = Arc::new(repo);
    let work = backup::backup(repo.clone(), opts, counters.clone());
    tokio::pin!(work);
    // Progress into status at most once per interval, while the backup runs.
    let result = loop {
        tokio::select! {
            r = &mut work => break r,
            _ = tokio::time::sleep(ctx.progress_interval) => {
                let p = progress(&counters, None);
                let _ = patch_status(api, name, &json!({ "progress": p })).await;
            }
        }
    };
    let _ = lock.release().await;
    let result = result.map_err(Error::engine(format!("backup of {}", dir.display())))?;
    let snapshot = result
        .snapshot
        .ok_or_else(|| Error::Refused("the backup wrote no snapshot".into()))?;
    let s = &result.summary;
    let mut message = None;
    if !result.errors.is_empty() {
        message = Some(format!(
            "{} item(s) could not be read, first: {}",
            result.errors.len(),
            result.errors[0]
        ));
    }
    let mut p = progress(&counters, Some(s.total_files_processed));
    p.bytes_done = s.total_bytes_processed as i64;
    p.total_bytes = p.total_bytes.max(p.bytes_done);
    Ok(PodVolumeBackupStatus {
        phase: VolumePhase::Completed,
        path: Some(dir.display().to_string()),
        snapshot_id: Some(snapshot.id.to_hex()),
        parent_snapshot_id: parent_id,
        message,
        start_timestamp: Some(started),
        completion_timestamp: Some(now()),
        progress: Some(p),
        incremental_bytes: Some(s.data_added_packed as i64),
        lock_wait_seconds: lock_wait.map(|s| s as i64),
    })
}

/// Progress so far; `finished` gives the final file count.
fn progress(c: &Counters, finished: Option<u64>) -> VolumeProgress {
    let files_done = finished.unwrap_or(c.files_done.load(Ordering::Relaxed)) as i64;
    VolumeProgress {
        total_bytes: c.total_bytes.load(Ordering::Relaxed) as i64,
        bytes_done: c.bytes_done.load(Ordering::Relaxed) as i64,
        total_files: (c.total_files.load(Ordering::Relaxed) as i64).max(files_done),
        files_done,
    }
}
