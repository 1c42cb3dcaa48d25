//! The Backup controller. New: check the storage location, find the pod volumes in scope,
//! make sure each namespace's repository is ready and create one PodVolumeBackup per volume.
//! InProgress: once every PodVolumeBackup has finished (or timed out), store the manifests in
//! scope, each pod's annotated with its volumes' snapshot IDs, as a snapshot of the
//! location's resource repository, and finish as Completed or PartiallyFailed.

use crate::backup_command;
use crate::claim_helper;
use crate::context::Context;
use crate::hooks;
use crate::naming::volume_operation_name;
pub use crate::operation::Outcome;
use crate::operation::{fail, volume_timeout};
use crate::repository::{self, Readiness};
use crate::resources::{self, Kind};
use crate::selection;
use crate::{Error, Result};
use arca_api::backup::{
    BackupStatus, BACKUP_NAME_LABEL, BACKUP_UID_LABEL, CLAIM_ANNOTATION, CLAIM_HELPER_LABEL,
    CLAIM_SNAPSHOT_ANNOTATION, SNAPSHOT_ANNOTATION_PREFIX, SYNCED_FROM_LABEL,
};
use arca_api::common::{now, OperationPhase, PodReference, VolumePhase};
use arca_api::hooks::{HookPhase, HookResult, HookRun, OnError};
use arca_api::location::AccessMode;
use arca_api::podvolume::{LINEAGE_TAG, PVC_ORIGIN_ANNOTATION, PVC_UID_LABEL};
use arca_api::{Backup, BackupStorageLocation, PodVolumeBackup, PodVolumeBackupSpec};
use arca_reconcile::status::patch_status;
use arca_reconcile::Wrap as _;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use std::time::Duration;

/// The name of the resource repository of a location (it cannot clash with a namespace's:
/// namespace names have no dots).
pub const RESOURCES_REPOSITORY: &str = "resources.arca";
/// How long a Backup waits for a new repository before looking again; the repository
/// watch normally brings it back sooner.
pub const REPOSITORY_WAIT: Duration = Duration::from_secs(60);
/// How long a Backup waits for its pod volume backups before looking again; their watch
/// normally brings it back as each one finishes.
pub const VOLUMES_WAIT: Duration = Duration::from_secs(60);
/// How often a Backup looks again at claim helper pods not running yet.
const HELPERS_WAIT: Duration = Duration::from_secs(3);
/// The location a backup uses: the one it names, or the default one.
pub async fn storage_location(ctx: &Context, name: Option<&str>) -> Result<BackupStorageLocation> {
    let api: Api<BackupStorageLocation> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    match name {
        Some(n) => api
            .get_opt(n)
            .await
            .map_err(Error::api(format!("reading BackupStorageLocation {n}")))?
            .ok_or_else(|| Error::Refused(format!("BackupStorageLocation {n} not found"))),
        None => api
            .list(&ListParams::default())
            .await
            .map_err(Error::api("listing BackupStorageLocations"))?
            .items
            .into_iter()
            .find(|l| l.spec.default)
            .ok_or_else(|| {
                Error::Refused(
                    "no BackupStorageLocation is marked default; name one in the Backup".into(),
                )
            }),
    }
}

/// How long a Backup waits for a repository that is not ready yet (its store failing for a
/// while: its controller keeps trying) before it fails with the repository's last word.
pub const REPOSITORY_PATIENCE: Duration = Duration::from_secs(600);

fn out_of_patience(backup: &Backup) -> bool {
    backup
        .metadata
        .creation_timestamp
        .as_ref()
        .is_some_and(|t| {
            jiff::Timestamp::now().duration_since(t.0).as_secs_f64()
                > REPOSITORY_PATIENCE.as_secs_f64()
        })
}

/// Handle one Backup. `kinds` lists the resource kinds to collect (from discovery).
pub async fn reconcile(backup: &Backup, ctx: &Context, kinds: &[Kind]) -> Result<Outcome> {
    let name = backup.name_any();
    // Made from the bucket by backup sync: a record of work done elsewhere (its status is
    // written right after it is created).
    if backup.labels().contains_key(SYNCED_FROM_LABEL) {
        return Ok(Outcome::Ignored);
    }
    let api: Api<Backup> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    // As for Restores: decide on a fresh read, not on a cache that may predate our own
    // last status update.
    let Some(backup) = arca_reconcile::fresh(&api, &name, backup.uid()).await? else {
        return Ok(Outcome::Ignored);
    };
    let status = backup.status.clone().unwrap_or_default();
    let result = match status.outcome.phase {
        OperationPhase::New => start(&backup, ctx, &api, &name).await,
        OperationPhase::InProgress => finish(&backup, ctx, &api, &name, kinds).await,
        _ => return Ok(Outcome::Ignored),
    };
    // A Backup that cannot go on says why and stops, rather than being retried forever
    // with no word in its status.
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            // The pods mounting its unmounted claims go before its status says it ended
            // (a finished Backup removed its own before its last status write).
            let uid = backup.uid().unwrap_or_default();
            if let Err(why) = claim_helper::remove(&ctx.client, BACKUP_UID_LABEL, &uid).await {
                tracing::warn!(backup = %name, "claim helpers left to their deadline: {why}");
            }
            fail(&api, &name, e).await?
        }
    };
    Ok(outcome)
}

async fn start(backup: &Backup, ctx: &Context, api: &Api<Backup>, name: &str) -> Result<Outcome> {
    let spec = &backup.spec;
    let bsl = match storage_location(ctx, spec.storage_location.as_deref()).await {
        Ok(l) => l,
        Err(e) => return fail(api, name, e).await,
    };
    if bsl.spec.access_mode == AccessMode::ReadOnly {
        return fail(
            api,
            name,
            format!("BackupStorageLocation {} is read-only", bsl.name_any()),
        )
        .await;
    }
    let ttl = spec
        .ttl
        .as_deref()
        .map(humantime::parse_duration)
        .transpose()
        .map_err(|e| Error::Refused(format!("ttl: {e}")))?
        .unwrap_or(Duration::from_secs(720 * 3600));
    let started = now();
    let expiration = jiff::Timestamp::now()
        .checked_add(
            jiff::SignedDuration::try_from(ttl).map_err(|e| Error::Refused(format!("ttl: {e}")))?,
        )
        .map_err(|e| Error::Refused(format!("ttl: {e}")))?;

    // The manifests go into the location's resource repository at the end: have it made
    // ready now, by its own controller.
    let resources_repo = repository::ensure(ctx, RESOURCES_REPOSITORY, &bsl).await?;
    match repository::readiness(&resources_repo) {
        Readiness::Ready => {}
        Readiness::Pending if !out_of_patience(backup) => {
            return Ok(Outcome::Waiting(REPOSITORY_WAIT))
        }
        Readiness::Pending | Readiness::NotReady(_) => {
            return fail(
                api,
                name,
                format!(
                    "the resource repository of location {} is not ready: {}",
                    bsl.name_any(),
                    repository::unready_reason(&resources_repo)
                ),
            )
            .await
        }
    }

    // The pods in scope and the volumes to back up.
    let pods: Api<Pod> = Api::all(ctx.client.clone());
    let mut params = ListParams::default();
    if let Some(sel) = &spec.scope.label_selector {
        params = params.labels(&resources::selector_string(sel));
    }
    let pod_list = pods
        .list(&params)
        .await
        .map_err(Error::api("listing pods"))?;
    let unmounted_wanted = spec
        .snapshot_unmounted_volumes
        .unwrap_or(spec.default_volumes_to_fs_backup.unwrap_or(false));
    // Which claims pods mount is a question about every pod, not only the selected ones.
    let all_pods: Vec<Pod> = match (unmounted_wanted, &spec.scope.label_selector) {
        (false, _) => Vec::new(),
        (true, None) => pod_list.items.clone(),
        (true, Some(_)) => {
            pods.list(&ListParams::default())
                .await
                .map_err(Error::api("listing pods"))?
                .items
        }
    };
    let mut messages = Vec::new();
    let (mut errors, mut warnings) = (0, 0);
    let mut volumes = 0;
    let uid = backup.uid().unwrap_or_default();
    // First the plan: the pods in scope with volumes to back up or hooks to run, each
    // volume's repository ready. Nothing has run yet, so waiting here repeats nothing.
    let mut planned: Vec<Planned> = Vec::new();
    for pod in pod_list.items {
        let ns = pod.namespace().unwrap_or_default();
        if !selection::namespace_in_scope(&spec.scope, &ns) || claim_helper::is_helper(&pod) {
            continue;
        }
        let (vols, skipped) =
            selection::pod_volumes(&pod, spec.default_volumes_to_fs_backup.unwrap_or(false));
        let has_hooks = [HookPhase::Pre, HookPhase::Post].iter().any(
            |p| !matches!(hooks::of_pod(&pod, *p, spec.hooks.as_ref()), Ok(h) if h.is_empty()),
        );
        let command = backup_command::of_pod(&pod).transpose();
        if vols.is_empty() && !has_hooks && command.is_none() {
            warnings += skipped.len() as i32;
            messages.extend(skipped);
            continue;
        }
        warnings += skipped.len() as i32;
        messages.extend(skipped);
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
            warnings += 1;
            messages.push(format!(
                "pod {ns}/{} is not scheduled: its volumes are not backed up",
                pod.name_any()
            ));
            continue;
        };
        let mut repo = None;
        if !vols.is_empty() || command.is_some() {
            let r = repository::ensure(ctx, &ns, &bsl).await?;
            match repository::readiness(&r) {
                Readiness::Ready => repo = Some(r),
                Readiness::Pending if !out_of_patience(backup) => {
                    return Ok(Outcome::Waiting(REPOSITORY_WAIT))
                }
                Readiness::Pending | Readiness::NotReady(_) => {
                    errors += vols.len() as i32 + i32::from(command.is_some());
                    messages.push(format!(
                        "repository of namespace {ns} is not ready: {}",
                        repository::unready_reason(&r)
                    ));
                }
            }
        }
        planned.push(Planned {
            pod,
            node,
            vols,
            repo,
            command,
        });
    }

    // The claims no running pod mounts, each to be mounted by a helper pod; their
    // repositories ready too.
    let mut unmounted: Vec<(claim_helper::Unmounted, arca_api::BackupRepository)> = Vec::new();
    if unmounted_wanted {
        let claims = Api::<PersistentVolumeClaim>::all(ctx.client.clone())
            .list(&params)
            .await
            .map_err(Error::api("listing persistent volume claims"))?
            .items;
        for u in claim_helper::unmounted(&all_pods, &claims) {
            let ns = u.claim.namespace().unwrap_or_default();
            if !selection::namespace_in_scope(&spec.scope, &ns) {
                continue;
            }
            let r = repository::ensure(ctx, &ns, &bsl).await?;
            match repository::readiness(&r) {
                Readiness::Ready => unmounted.push((u, r)),
                Readiness::Pending if !out_of_patience(backup) => {
                    return Ok(Outcome::Waiting(REPOSITORY_WAIT))
                }
                Readiness::Pending | Readiness::NotReady(_) => {
                    errors += 1;
                    messages.push(format!(
                        "repository of namespace {ns} is not ready: {}",
                        repository::unready_reason(&r)
                    ));
                }
            }
        }
    }

    // Then every pre hook, before any volume is read; one failing with onError Fail stops
    // the Backup, after the post hooks of the pods already prepared (an application frozen by
    // its pre hook is thawed).
    let mut hook_runs = Vec::new();
    let mut pending_post = Vec::new();
    for (i, p) in planned.iter().enumerate() {
        let fatal = match hooks::of_pod(&p.pod, HookPhase::Pre, spec.hooks.as_ref()) {
            Err(why) => Some(why),
            Ok(pre) => {
                let (runs, fatal) = hooks::run(&ctx.client, &p.pod, HookPhase::Pre, &pre).await;
                count_failures(&runs, &mut errors, &mut messages);
                hook_runs.extend(runs);
                fatal
            }
        };
        if let Some(why) = fatal {
            for earlier in &planned[..i] {
                if let Ok(post) = hooks::of_pod(&earlier.pod, HookPhase::Post, spec.hooks.as_ref())
                {
                    let (runs, _) =
                        hooks::run(&ctx.client, &earlier.pod, HookPhase::Post, &post).await;
                    hook_runs.extend(runs);
                }
            }
            hook_runs.truncate(crate::hooks::HOOK_RUNS_KEPT);
            patch_status(api, name, &json!({"hookRuns": hook_runs})).await?;
            return fail(api, name, why).await;
        }
        pending_post.push(PodReference {
            namespace: p.pod.namespace().unwrap_or_default(),
            name: p.pod.name_any(),
            uid: p.pod.uid().unwrap_or_default(),
        });
    }
    hook_runs.truncate(crate::hooks::HOOK_RUNS_KEPT);

    // The backup commands, each output streamed into a snapshot of its own.
    let mut command_runs = Vec::new();
    for p in &planned {
        match (&p.command, &p.repo) {
            (Some(Err(why)), _) => {
                errors += 1;
                messages.push(why.clone());
            }
            (Some(Ok(cmd)), Some(repo)) => {
                let run = backup_command::run(ctx, backup, &p.pod, cmd, repo).await;
                if run.result != HookResult::Succeeded {
                    errors += 1;
                    messages.push(format!(
                        "backup command {:?} in {} container {}: {:?}: {}",
                        run.command, run.pod, run.container, run.result, run.output
                    ));
                }
                command_runs.push(run);
            }
            _ => {}
        }
    }

    for Planned {
        pod,
        node,
        vols,
        repo,
        ..
    } in &planned
    {
        let Some(repo) = repo else { continue };
        for v in vols {
            let pvc_uid = claim_uid(ctx, pod, v).await;
            create_volume_backup(ctx, backup, &bsl, repo, pod, node, v, pvc_uid).await?;
            volumes += 1;
        }
    }
    // The helpers of the unmounted claims: their volume backups are made once they run.
    let mut pending_helpers = Vec::new();
    if !unmounted.is_empty() {
        let image = ctx.restore_wait_image().await?;
        let (timeout, _) = volume_timeout(spec.pod_volume_operation_timeout.as_deref(), None);
        for (u, _) in &unmounted {
            let helper = claim_helper::backup_helper(u, &image, name, &uid, timeout);
            let ns = helper.namespace().unwrap_or_default();
            let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
            let created = match pods.create(&PostParams::default(), &helper).await {
                Ok(p) => p,
                // Made by an earlier attempt of this start.
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    crate::pods::by_name(&ctx.client, &ns, &helper.name_any())
                        .await
                        .map_err(Error::api("reading a claim helper pod"))?
                        .unwrap_or(helper)
                }
                Err(e) => {
                    errors += 1;
                    messages.push(format!(
                        "claim {ns}/{}: cannot start a pod to mount it: {e}",
                        u.claim.name_any()
                    ));
                    continue;
                }
            };
            pending_helpers.push(PodReference {
                namespace: ns,
                name: created.name_any(),
                uid: created.uid().unwrap_or_default(),
            });
        }
    }
    patch_status(
        api,
        name,
        &json!({
            "phase": OperationPhase::InProgress,
            "startTimestamp": started,
            "expiration": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(expiration),
            "progress": {"totalVolumes": volumes, "volumesCompleted": 0, "totalItems": 0, "itemsBackedUp": 0, "totalBytes": 0, "bytesDone": 0},
            "errors": errors,
            "warnings": warnings,
            "messages": messages,
            "hookRuns": hook_runs,
            "commandRuns": command_runs,
            "pendingPostHooks": pending_post,
            "pendingClaimHelpers": pending_helpers,
        }),
    )
    .await?;
    Ok(Outcome::Waiting(VOLUMES_WAIT))
}

/// Create the PodVolumeBackup of volume `volume` of `pod` (on `node`), for Backup `backup`.
#[allow(clippy::too_many_arguments)]
async fn create_volume_backup(
    ctx: &Context,
    backup: &Backup,
    bsl: &BackupStorageLocation,
    repo: &arca_api::BackupRepository,
    pod: &Pod,
    node: &str,
    volume: &str,
    pvc_uid: Option<String>,
) -> Result<()> {
    let name = backup.name_any();
    let uid = backup.uid().unwrap_or_default();
    let ns = pod.namespace().unwrap_or_default();
    let mut labels = std::collections::BTreeMap::from([
        (BACKUP_NAME_LABEL.to_string(), name.clone()),
        (BACKUP_UID_LABEL.to_string(), uid.clone()),
    ]);
    if let Some(p) = &pvc_uid {
        labels.insert(PVC_UID_LABEL.to_string(), p.clone());
    }
    // A helper's volume is its claim's: say which, for the claim's manifest.
    let annotations = pod
        .annotations()
        .get(CLAIM_ANNOTATION)
        .filter(|_| claim_helper::is_helper(pod))
        .map(|c| std::collections::BTreeMap::from([(CLAIM_ANNOTATION.to_string(), c.clone())]));
    let pvb = PodVolumeBackup {
        metadata: ObjectMeta {
            name: Some(volume_operation_name(&name, &ns, &pod.name_any(), volume)),
            namespace: Some(ctx.namespace.clone()),
            labels: Some(labels),
            annotations,
            ..Default::default()
        },
        spec: PodVolumeBackupSpec {
            node: node.to_string(),
            pod: PodReference {
                namespace: ns.clone(),
                name: pod.name_any(),
                uid: pod.uid().unwrap_or_default(),
            },
            volume: volume.to_string(),
            backup_storage_location: bsl.name_any(),
            repository: repo.name_any(),
            repo_identifier: repo.spec.repository_url.clone(),
            pvc_uid: pvc_uid.clone(),
            tags: [
                ("backup", name.clone()),
                ("backup-uid", uid.clone()),
                ("ns", ns.clone()),
                ("pod", pod.name_any()),
                ("volume", volume.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .chain(
                pvc_uid
                    .is_none()
                    .then(|| (LINEAGE_TAG.to_string(), lineage(pod))),
            )
            .collect(),
            cancel: false,
        },
        status: None,
    };
    match Api::<PodVolumeBackup>::namespaced(ctx.client.clone(), &ctx.namespace)
        .create(&PostParams::default(), &pvb)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(Error::api("creating PodVolumeBackup")(e)),
    }
}

/// Start the volume backup of each helper in `status.pendingClaimHelpers` that now runs on
/// a node; a helper gone, ended, or not running within the volume timeout is an error.
/// Returns how many volume backups were started.
async fn start_helper_backups(
    ctx: &Context,
    backup: &Backup,
    status: &mut BackupStatus,
    timed_out: bool,
) -> Result<usize> {
    let pending = std::mem::take(&mut status.pending_claim_helpers);
    if pending.is_empty() {
        return Ok(0);
    }
    let bsl = storage_location(ctx, backup.spec.storage_location.as_deref()).await?;
    let mut started = 0;
    for h in pending {
        let found = crate::pods::by_reference(&ctx.client, &h)
            .await
            .map_err(Error::api("reading a claim helper pod"))?;
        let phase = found
            .as_ref()
            .and_then(|p| p.status.as_ref())
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        let node = found
            .as_ref()
            .and_then(|p| p.spec.as_ref())
            .and_then(|s| s.node_name.clone());
        let claim = found
            .as_ref()
            .and_then(|p| p.annotations().get(CLAIM_ANNOTATION).cloned())
            .unwrap_or_default();
        let failure = match (&found, phase.as_str(), &node) {
            (None, _, _) => Some("its helper pod was deleted".to_string()),
            (Some(p), "Running", Some(node)) => {
                let pvcs: Api<PersistentVolumeClaim> =
                    Api::namespaced(ctx.client.clone(), &h.namespace);
                let pvc = pvcs
                    .get_opt(&claim)
                    .await
                    .map_err(Error::api(format!("reading claim {}/{claim}", h.namespace)))?;
                let repo = repository::ensure(ctx, &h.namespace, &bsl).await?;
                match pvc {
                    None => Some("the claim was deleted".to_string()),
                    Some(pvc) => {
                        let pvc_uid = pvc
                            .annotations()
                            .get(PVC_ORIGIN_ANNOTATION)
                            .cloned()
                            .or_else(|| pvc.uid());
                        create_volume_backup(
                            ctx,
                            backup,
                            &bsl,
                            &repo,
                            p,
                            node,
                            claim_helper::VOLUME,
                            pvc_uid,
                        )
                        .await?;
                        started += 1;
                        None
                    }
                }
            }
            (Some(_), "Succeeded" | "Failed", _) => {
                Some(format!("its helper pod ended ({phase}) before the backup"))
            }
            (Some(_), _, _) if timed_out => Some(format!(
                "its helper pod {} was not running within the volume timeout",
                h.name
            )),
            (Some(_), _, _) => {
                status.pending_claim_helpers.push(h);
                continue;
            }
        };
        if let Some(why) = failure {
            status.outcome.errors += 1;
            status.outcome.messages.push(format!(
                "claim {}/{claim}: not backed up: {why}",
                h.namespace
            ));
        }
    }
    Ok(started)
}

/// Run the post hooks of pod `p` (as it is now: the same pod, by UID). A pod gone, or hook
/// annotations that no longer parse, are a failed run of their own.
async fn post_hooks(ctx: &Context, backup: &Backup, p: &PodReference) -> Vec<HookRun> {
    let not_run = |why: String, on_error: OnError| {
        vec![HookRun {
            pod: format!("{}/{}", p.namespace, p.name),
            container: String::new(),
            phase: HookPhase::Post,
            source: "annotations".into(),
            command: Vec::new(),
            result: HookResult::NotRun,
            exit_code: None,
            on_error,
            output: why,
        }]
    };
    let pod = match crate::pods::by_reference(&ctx.client, p).await {
        Ok(Some(pod)) => pod,
        // Nothing is left to thaw: an error, not a failed Backup.
        Ok(_) => {
            return not_run(
                "the pod is gone: its post hooks could not run".into(),
                OnError::Continue,
            )
        }
        Err(kube::Error::Api(e)) => {
            return not_run(format!("cannot read the pod: {}", e.message), OnError::Fail)
        }
        Err(e) => return not_run(format!("cannot read the pod: {e}"), OnError::Fail),
    };
    match hooks::of_pod(&pod, HookPhase::Post, backup.spec.hooks.as_ref()) {
        Ok(post) => {
            hooks::run(&ctx.client, &pod, HookPhase::Post, &post)
                .await
                .0
        }
        Err(why) => not_run(why, OnError::Fail),
    }
}

/// A pod the Backup covers: its node, the volumes to back up and their repository (none when
/// it is not ready: those volumes are counted as errors).
struct Planned {
    pod: Pod,
    node: String,
    vols: Vec<String>,
    repo: Option<arca_api::BackupRepository>,
    /// Its backup command, or why its annotations do not give one.
    command: Option<std::result::Result<backup_command::BackupCommand, String>>,
}

/// Hooks that failed with `onError: Continue` are errors of the Backup (it ends
/// PartiallyFailed), each said in its messages.
fn count_failures(runs: &[HookRun], errors: &mut i32, messages: &mut Vec<String>) {
    for r in runs {
        if r.result != HookResult::Succeeded && r.on_error == OnError::Continue {
            *errors += 1;
            messages.push(hooks::describe(r));
        }
    }
}

/// What outlives `pod`: its controller (`<ns>/<kind>/<name>`), or the pod's own name.
fn lineage(pod: &Pod) -> String {
    let ns = pod.namespace().unwrap_or_default();
    match pod
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
    {
        Some(o) => format!("{ns}/{}/{}", o.kind, o.name),
        None => format!("{ns}/Pod/{}", pod.name_any()),
    }
}

/// The UID of the claim behind volume `volume` of `pod`, if it is a claim.
async fn claim_uid(ctx: &Context, pod: &Pod, volume: &str) -> Option<String> {
    let claim = pod
        .spec
        .as_ref()?
        .volumes
        .as_ref()?
        .iter()
        .find(|v| v.name == volume)?
        .persistent_volume_claim
        .as_ref()?
        .claim_name
        .clone();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &pod.namespace()?);
    let pvc = pvcs.get_opt(&claim).await.ok().flatten()?;
    // A restored claim is the same data as the one it came from.
    pvc.annotations()
        .get(PVC_ORIGIN_ANNOTATION)
        .cloned()
        .or_else(|| pvc.uid())
}

async fn finish(
    backup: &Backup,
    ctx: &Context,
    api: &Api<Backup>,
    name: &str,
    kinds: &[Kind],
) -> Result<Outcome> {
    let mut status = backup.status.clone().unwrap_or_default();
    let uid = backup.uid().unwrap_or_default();
    let pvbs = Api::<PodVolumeBackup>::namespaced(ctx.client.clone(), &ctx.namespace)
        .list(&ListParams::default().labels(&format!("{BACKUP_UID_LABEL}={uid}")))
        .await
        .map_err(Error::api("listing PodVolumeBackups"))?
        .items;
    let (timeout, timed_out) = volume_timeout(
        backup.spec.pod_volume_operation_timeout.as_deref(),
        status.outcome.start_timestamp.as_ref(),
    );
    // The helpers of unmounted claims: each one's volume backup once it runs.
    if !status.pending_claim_helpers.is_empty() {
        let started = start_helper_backups(ctx, backup, &mut status, timed_out).await?;
        patch_status(
            api,
            name,
            &json!({
                "pendingClaimHelpers": status.pending_claim_helpers,
                "errors": status.outcome.errors,
                "messages": status.outcome.messages,
                "progress": {"totalVolumes": pvbs.len() + started},
            }),
        )
        .await?;
        // Helpers wait for the scheduler and the kubelet, which nothing here watches.
        if !status.pending_claim_helpers.is_empty() {
            return Ok(Outcome::Waiting(HELPERS_WAIT));
        }
        if started > 0 {
            return Ok(Outcome::Waiting(VOLUMES_WAIT));
        }
    }
    let phase_of = |p: &PodVolumeBackup| p.status.as_ref().map(|s| s.phase).unwrap_or_default();
    // The post hooks of each pod whose volumes are done (or given up on), each pod's recorded
    // before the next runs, so that none runs twice.
    let pending = std::mem::take(&mut status.pending_post_hooks);
    for (i, p) in pending.iter().enumerate() {
        let busy = pvbs
            .iter()
            .any(|v| v.spec.pod.uid == p.uid && !phase_of(v).is_final());
        if busy && !timed_out {
            status.pending_post_hooks.push(p.clone());
            continue;
        }
        let runs = post_hooks(ctx, backup, p).await;
        count_failures(
            &runs,
            &mut status.outcome.errors,
            &mut status.outcome.messages,
        );
        status.hook_runs.extend(runs);
        status.hook_runs.truncate(crate::hooks::HOOK_RUNS_KEPT);
        let left: Vec<&PodReference> = status
            .pending_post_hooks
            .iter()
            .chain(&pending[i + 1..])
            .collect();
        patch_status(
            api,
            name,
            &json!({
                "hookRuns": status.hook_runs,
                "pendingPostHooks": left,
                "errors": status.outcome.errors,
                "messages": status.outcome.messages,
            }),
        )
        .await?;
    }
    let running = pvbs.iter().filter(|p| !phase_of(p).is_final()).count();
    if running > 0 && !timed_out {
        let done = pvbs.len() - running;
        let _ = patch_status(api, name, &json!({"progress": {"volumesCompleted": done}})).await;
        return Ok(Outcome::Waiting(VOLUMES_WAIT.min(timeout)));
    }
    // Every volume is done: the claim helpers have served.
    claim_helper::remove(&ctx.client, BACKUP_UID_LABEL, &uid).await?;
    let mut messages = status.outcome.messages.clone();
    let mut errors = status.outcome.errors;
    let mut bytes = 0i64;
    // pod UID -> [(volume, snapshot)]
    let mut snapshots: std::collections::BTreeMap<String, Vec<(String, String)>> =
        Default::default();
    for p in &pvbs {
        let st = p.status.clone().unwrap_or_default();
        match (st.phase, &st.snapshot_id) {
            (VolumePhase::Completed, Some(id)) => {
                bytes += st.progress.map(|p| p.bytes_done).unwrap_or(0);
                snapshots
                    .entry(p.spec.pod.uid.clone())
                    .or_default()
                    .push((p.spec.volume.clone(), id.clone()));
            }
            (phase, _) => {
                errors += 1;
                let why = if phase.is_final() {
                    st.message.unwrap_or_else(|| format!("{phase:?}"))
                } else {
                    "timed out".to_string()
                };
                messages.push(format!(
                    "volume {} of pod {}/{}: {why}",
                    p.spec.volume, p.spec.pod.namespace, p.spec.pod.name
                ));
            }
        }
    }
    // A post hook that failed with onError Fail fails the Backup, with its output.
    if let Some(fatal) = status.hook_runs.iter().find(|r| {
        r.phase == HookPhase::Post
            && r.on_error == OnError::Fail
            && r.result != HookResult::Succeeded
    }) {
        return fail(api, name, hooks::describe(fatal)).await;
    }
    let bsl = storage_location(ctx, backup.spec.storage_location.as_deref()).await?;
    let resources_repo = match crate::store::resource_repository(ctx, &bsl).await? {
        Ok(r) => r,
        // Briefly not ready (its controller retries): wait, the repository watch wakes us.
        Err(why) => {
            tracing::info!(backup = %name, "waiting for the resource repository: {why:?}");
            return Ok(Outcome::Waiting(REPOSITORY_WAIT));
        }
    };
    let mut manifests = resources::collect(&ctx.client, kinds, &backup.spec.scope).await?;
    // The claims backed up through helpers: (namespace, claim) -> snapshot.
    let claim_snapshots: std::collections::BTreeMap<(String, String), String> = pvbs
        .iter()
        .filter(|p| phase_of(p) == VolumePhase::Completed)
        .filter_map(|p| {
            let claim = p.annotations().get(CLAIM_ANNOTATION)?.clone();
            let id = p.status.as_ref()?.snapshot_id.clone()?;
            Some(((p.spec.pod.namespace.clone(), claim), id))
        })
        .collect();
    // The helpers are the Backup's own doing, not the application's.
    manifests.retain(|m| {
        !(m["kind"] == "Pod" && m["metadata"]["labels"][CLAIM_HELPER_LABEL].is_string())
    });
    for m in &mut manifests {
        if m["kind"] == "Pod" {
            let taken = m["metadata"]["uid"].as_str().and_then(|u| snapshots.get(u));
            record_snapshots(m, taken.map(Vec::as_slice).unwrap_or_default());
        }
        if m["kind"] == "PersistentVolumeClaim" {
            let key = (
                m["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                m["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
            record_claim_snapshot(m, claim_snapshots.get(&key).map(String::as_str));
        }
    }
    let items = manifests.len() as i64;
    messages.truncate(100);
    let phase = if errors > 0 {
        OperationPhase::PartiallyFailed
    } else {
        OperationPhase::Completed
    };
    let mut final_status = json!({
        "phase": phase,
        "completionTimestamp": now(),
        "errors": errors,
        "messages": messages,
        "progress": {"totalItems": items, "itemsBackedUp": items, "volumesCompleted": pvbs.len() - (errors - status.outcome.errors).max(0) as usize, "bytesDone": bytes, "totalBytes": bytes},
    });
    // The record in the bucket holds the status the Backup ends with (less the snapshot's own
    // ID, which whoever reads the record knows).
    let mut recorded = serde_json::to_value(&status).map_err(Error::json("the Backup's status"))?;
    json_merge(&mut recorded, &final_status);
    let recorded: BackupStatus =
        serde_json::from_value(recorded).map_err(Error::json("the Backup's record"))?;
    let record = crate::store::BackupRecord::new(backup, recorded, &pvbs);
    let snapshot =
        crate::store::save_manifests(ctx, &resources_repo, name, &manifests, &record).await?;
    final_status["resourcesSnapshotId"] = json!(snapshot);
    patch_status(api, name, &final_status).await?;
    Ok(Outcome::Finished(phase))
}

/// A JSON merge patch of `patch` into `base` (objects merged key by key, anything else
/// replaced).
fn json_merge(base: &mut serde_json::Value, patch: &serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                json_merge(b.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// Record in a backed-up pod's manifest the snapshot of each volume this Backup took, and
/// nothing else of that name: annotations a tenant set on the pod beforehand would
/// otherwise be trusted at restore.
fn record_snapshots(pod: &mut serde_json::Value, taken: &[(String, String)]) {
    if let Some(a) = annotations_of(pod) {
        a.retain(|k, _| !k.starts_with(SNAPSHOT_ANNOTATION_PREFIX));
    }
    for (volume, id) in taken {
        pod["metadata"]["annotations"][format!("{SNAPSHOT_ANNOTATION_PREFIX}{volume}")] = json!(id);
    }
}

/// Record in a claim's manifest the snapshot taken of it through a helper, and no other
/// value a tenant may have set.
fn record_claim_snapshot(claim: &mut serde_json::Value, taken: Option<&str>) {
    if let Some(a) = annotations_of(claim) {
        a.remove(CLAIM_SNAPSHOT_ANNOTATION);
    }
    if let Some(id) = taken {
        claim["metadata"]["annotations"][CLAIM_SNAPSHOT_ANNOTATION] = json!(id);
    }
}

/// A manifest's annotations, if it has any. Not by indexing, which would add
/// `annotations: null` to a manifest without them (and a restore would then find no object
/// to add the claim's origin to).
fn annotations_of(
    manifest: &mut serde_json::Value,
) -> Option<&mut serde_json::Map<String, serde_json::Value>> {
    manifest
        .pointer_mut("/metadata/annotations")
        .and_then(serde_json::Value::as_object_mut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_claim_snapshot_taken_is_recorded() {
        let mut claim = json!({"metadata": {"annotations": {CLAIM_SNAPSHOT_ANNOTATION: "forged", "keep": "me"}}});
        record_claim_snapshot(&mut claim, None);
        assert_eq!(claim["metadata"]["annotations"], json!({"keep": "me"}));
        let mut bare = json!({"metadata": {"name": "reports"}});
        record_claim_snapshot(&mut bare, None);
        record_snapshots(&mut bare, &[]);
        assert_eq!(
            bare,
            json!({"metadata": {"name": "reports"}}),
            "no annotations: null added"
        );
        record_claim_snapshot(&mut bare, Some("ab"));
        assert_eq!(
            bare["metadata"]["annotations"],
            json!({CLAIM_SNAPSHOT_ANNOTATION: "ab"})
        );
    }

    #[test]
    fn only_the_snapshots_taken_are_recorded() {
        let mut pod = json!({"metadata": {"annotations": {
            "snapshot.arca.dev/data": "set-by-the-tenant",
            "snapshot.arca.dev/other": "set-by-the-tenant",
            "keep": "me"}}});
        record_snapshots(&mut pod, &[("data".into(), "ab".repeat(32))]);
        assert_eq!(
            pod["metadata"]["annotations"],
            json!({"snapshot.arca.dev/data": "ab".repeat(32), "keep": "me"})
        );
        let mut pod = json!({"metadata": {"annotations": {"snapshot.arca.dev/data": "x"}}});
        record_snapshots(&mut pod, &[]);
        assert_eq!(pod["metadata"]["annotations"], json!({}));
    }
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    #[test]
    fn merging_keeps_what_the_patch_does_not_name() {
        let mut base = json!({"phase": "InProgress", "errors": 0, "progress": {"totalVolumes": 2}});
        json_merge(
            &mut base,
            &json!({"phase": "Completed", "progress": {"bytesDone": 5}}),
        );
        assert_eq!(
            base,
            json!({"phase": "Completed", "errors": 0, "progress": {"totalVolumes": 2, "bytesDone": 5}})
        );
    }

    #[test]
    fn a_pods_lineage_is_its_controller_or_its_name() {
        let mut pod = Pod::default();
        pod.metadata.namespace = Some("shop".into());
        pod.metadata.name = Some("web-7d9f-x2k".into());
        assert_eq!(lineage(&pod), "shop/Pod/web-7d9f-x2k");
        let owner = |kind: &str, name: &str, controller| OwnerReference {
            kind: kind.into(),
            name: name.into(),
            controller,
            ..Default::default()
        };
        pod.metadata.owner_references = Some(vec![
            owner("ConfigMap", "not-the-controller", None),
            owner("ReplicaSet", "web-7d9f", Some(true)),
        ]);
        assert_eq!(lineage(&pod), "shop/ReplicaSet/web-7d9f");
    }
}
