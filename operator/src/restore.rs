//! The Restore controller. New: read the Backup's manifests from the resource repository,
//! keep those in the Restore's scope, map namespaces, and create them in dependency order;
//! pods with volume snapshots get the restore-wait init container and one PodVolumeRestore
//! per volume. InProgress: wait for the PodVolumeRestores, then finish.

use crate::backup::{storage_location, RESOURCES_REPOSITORY};
use crate::context::Context;
use crate::naming::volume_operation_name;
pub use crate::operation::Outcome;
use crate::operation::{fail, volume_timeout};
use crate::resources::Kind;
use crate::{claim_helper, repository, restore_hooks, restore_plan, selection};
use crate::{Error, Result};
use arca_api::common::{now, OperationPhase, PodReference};
use arca_api::hooks::HookResult;
use arca_api::restore::{RESTORE_NAME_LABEL, RESTORE_UID_LABEL};
use arca_api::{Backup, PodVolumeRestore, PodVolumeRestoreSpec, Restore};
use arca_reconcile::status::patch_status;
use arca_reconcile::Wrap as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DynamicObject, ListParams, ObjectMeta, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// How often a Restore with hooks still to settle looks at its pods again.
const HOOKS_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

pub async fn reconcile(restore: &Restore, ctx: &Context, kinds: &[Kind]) -> Result<Outcome> {
    let name = restore.name_any();
    let api: Api<Restore> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    // The controller's cache may not hold our own last status update yet (a requeue can come
    // before the watch event): decide on a fresh read, or a started Restore starts again.
    let Some(restore) = arca_reconcile::fresh(&api, &name, restore.uid()).await? else {
        return Ok(Outcome::Ignored);
    };
    let status = restore.status.clone().unwrap_or_default();
    let outcome = match status.outcome.phase {
        OperationPhase::New => match start(&restore, ctx, &api, &name, kinds).await {
            Ok(o) => o,
            Err(e) => {
                // The pods mounting restored claims go before the status says it ended (a
                // finishing Restore removes its own before its last status write).
                let uid = restore.uid().unwrap_or_default();
                if let Err(why) = claim_helper::remove(&ctx.client, RESTORE_UID_LABEL, &uid).await {
                    tracing::warn!(restore = %name, "claim helpers left to their deadline: {why}");
                }
                fail(&api, &name, e).await?
            }
        },
        OperationPhase::InProgress => finish(&restore, ctx, &api, &name).await?,
        _ => return Ok(Outcome::Ignored),
    };
    Ok(outcome)
}

/// The manifests stored by `backup`.
async fn manifests(ctx: &Context, backup: &Backup) -> Result<Vec<Value>> {
    let id = backup
        .status
        .as_ref()
        .and_then(|s| s.resources_snapshot_id.clone())
        .ok_or_else(|| {
            Error::Refused(format!("Backup {} stored no resources", backup.name_any()))
        })?;
    let bsl = storage_location(ctx, backup.spec.storage_location.as_deref()).await?;
    let repo_name = repository::name_for(RESOURCES_REPOSITORY, &bsl.name_any());
    let repo = Api::<arca_api::BackupRepository>::namespaced(ctx.client.clone(), &ctx.namespace)
        .get_opt(&repo_name)
        .await
        .map_err(Error::api(format!("reading BackupRepository {repo_name}")))?
        .ok_or_else(|| Error::Refused(format!("the resource repository {repo_name} is missing")))?;
    let opened = repository::open(ctx, &repo).await?;
    let sn = arca_engine::snapshots::find(&opened, &id, &Default::default())
        .await
        .map_err(Error::engine(format!("resources snapshot {id}")))?;
    let dir = tempfile::tempdir().map_err(Error::io("temporary directory"))?;
    let report = arca_engine::restore::restore(
        std::sync::Arc::new(opened),
        sn.tree,
        &arca_engine::restore::RestoreOptions::everything(dir.path().to_path_buf()),
        &arca_engine::progress::NoProgress,
    )
    .await
    .map_err(Error::engine("reading the resources snapshot"))?;
    if let Some(e) = report.errors.first() {
        return Err(Error::Refused(format!(
            "reading the resources snapshot: {e}"
        )));
    }
    // Only the manifests: the Backup's own record lies beside them (`<backup>/arca/`).
    let mut out = Vec::new();
    let resources = dir.path().join(backup.name_any()).join("resources");
    if !resources.is_dir() {
        return Err(Error::Refused(format!(
            "resources snapshot {id} has no {}/resources",
            backup.name_any()
        )));
    }
    let mut stack = vec![resources];
    while let Some(d) = stack.pop() {
        let read_dir = Error::io(d.display().to_string());
        for e in std::fs::read_dir(&d).map_err(read_dir)? {
            let p = e.map_err(Error::io(d.display().to_string()))?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                let v: Value = serde_json::from_slice(
                    &std::fs::read(&p).map_err(Error::io(p.display().to_string()))?,
                )
                .map_err(Error::json(p.display().to_string()))?;
                out.push(v);
            }
        }
    }
    Ok(out)
}

/// Whether the Restore's namespaces (and `includeClusterResources`) take `m`: a namespaced
/// object by its namespace; a Namespace with its namespace; anything else cluster-scoped
/// only when asked for, or by default when every namespace is restored (a namespace's
/// restore must not recreate cluster-wide grants revoked since).
pub fn namespace_scope_allows(spec: &arca_api::RestoreSpec, m: &Value) -> bool {
    match m["metadata"]["namespace"].as_str() {
        Some(ns) => selection::namespace_in_scope(&spec.scope, ns),
        None if m["kind"] == "Namespace" && m["apiVersion"] == "v1" => m["metadata"]["name"]
            .as_str()
            .is_some_and(|n| selection::namespace_in_scope(&spec.scope, n)),
        None => spec
            .include_cluster_resources
            .unwrap_or_else(|| crate::resources::whole_cluster(&spec.scope)),
    }
}

fn kind_of<'a>(kinds: &'a [Kind], m: &Value) -> Option<&'a Kind> {
    kinds.iter().find(|k| {
        Some(k.resource.kind.as_str()) == m["kind"].as_str()
            && Some(k.resource.api_version.as_str()) == m["apiVersion"].as_str()
    })
}

async fn start(
    restore: &Restore,
    ctx: &Context,
    api: &Api<Restore>,
    name: &str,
    kinds: &[Kind],
) -> Result<Outcome> {
    let spec = &restore.spec;
    let backups: Api<Backup> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let backup = backups
        .get_opt(&spec.backup_name)
        .await
        .map_err(Error::api(format!("reading Backup {}", spec.backup_name)))?
        .ok_or_else(|| Error::Refused(format!("Backup {} not found", spec.backup_name)))?;
    let bphase = backup.phase();
    if !matches!(
        bphase,
        OperationPhase::Completed | OperationPhase::PartiallyFailed
    ) {
        return Err(Error::Refused(format!(
            "Backup {} is {bphase:?}, not restorable",
            spec.backup_name
        )));
    }
    let bsl = storage_location(ctx, backup.spec.storage_location.as_deref()).await?;
    let mut objects = manifests(ctx, &backup).await?;
    let selector = spec
        .scope
        .label_selector
        .as_ref()
        .map(crate::resources::selector_string);
    objects.retain(|m| {
        let ns_ok = namespace_scope_allows(spec, m);
        let res_ok = kind_of(kinds, m).is_some_and(|k| {
            selection::resource_in_scope(&spec.scope, &k.resource.plural, &k.resource.group)
        });
        let labels_ok = selector
            .as_deref()
            .is_none_or(|s| labels_match(s, &m["metadata"]["labels"]));
        ns_ok && res_ok && labels_ok
    });
    restore_plan::order(&mut objects);
    // The repositories the volumes come from, ready before anything is created (a cluster
    // restoring another's backup has no BackupRepository for them yet: its controller opens
    // them with the location's recovery key).
    let sources: std::collections::BTreeSet<String> = objects
        .iter()
        .filter(|m| m["kind"] == "Pod")
        .filter(|m| !restore_plan::volume_snapshots(m).is_empty())
        .filter_map(|m| m["metadata"]["namespace"].as_str().map(String::from))
        .collect();
    for source in &sources {
        let repo = repository::ensure(ctx, source, &bsl).await?;
        match repository::readiness(&repo) {
            repository::Readiness::Ready => {}
            repository::Readiness::Pending => {
                return Ok(Outcome::Waiting(crate::backup::REPOSITORY_WAIT))
            }
            repository::Readiness::NotReady(why) => {
                return Err(Error::Refused(format!(
                    "the repository of namespace {source} is not ready: {why}"
                )))
            }
        }
    }
    let uid = restore.uid().unwrap_or_default();
    let (mut messages, mut errors, mut warnings, mut items, mut volumes) =
        (Vec::new(), 0, 0, 0i64, 0i64);
    let mut image: Option<String> = None;
    let mut pending_hooks: Vec<PodReference> = Vec::new();
    for m in objects {
        let source_ns = m["metadata"]["namespace"].as_str().map(String::from);
        let snapshots = restore_plan::volume_snapshots(&m);
        let claim_snapshot = restore_plan::claim_snapshot(&m);
        let mut obj = restore_plan::prepare(m, &spec.namespace_mapping);
        let is_pod = obj["kind"] == "Pod";
        let vols: Vec<String> = snapshots.iter().map(|(v, _)| v.clone()).collect();
        if is_pod && !snapshots.is_empty() {
            if image.is_none() {
                image = Some(ctx.restore_wait_image().await?);
            }
            let image = image.as_deref().unwrap_or_default();
            restore_plan::add_restore_wait(&mut obj, image, &uid, &vols);
        }
        let hooks = if is_pod {
            match pod_hooks(&obj, spec.hooks.as_ref(), &vols) {
                Ok(h) => h,
                Err(why) => {
                    // The pod comes back without hooks rather than not at all.
                    errors += 1;
                    messages.push(format!(
                        "pod {}/{}: restore hooks not applied: {why}",
                        obj["metadata"]["namespace"].as_str().unwrap_or_default(),
                        obj["metadata"]["name"].as_str().unwrap_or_default()
                    ));
                    Default::default()
                }
            }
        } else {
            Default::default()
        };
        restore_hooks::add_init_containers(&mut obj, &hooks);
        let Some(kind) = kind_of(kinds, &obj) else {
            warnings += 1;
            messages.push(format!(
                "{} {}: kind not served by this cluster, skipped",
                obj["kind"], obj["metadata"]["name"]
            ));
            continue;
        };
        let dynamic: DynamicObject =
            serde_json::from_value(obj.clone()).map_err(Error::json("an object to restore"))?;
        let api_obj: Api<DynamicObject> = match dynamic.namespace() {
            Some(ns) => Api::namespaced_with(ctx.client.clone(), &ns, &kind.resource),
            None => Api::all_with(ctx.client.clone(), &kind.resource),
        };
        let created = match api_obj.create(&PostParams::default(), &dynamic).await {
            Ok(c) => {
                items += 1;
                Some(c)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                warnings += 1;
                messages.push(format!(
                    "{} {}: already exists, left as it is",
                    obj["kind"],
                    dynamic.name_any()
                ));
                None
            }
            Err(kube::Error::Api(e)) if e.code == 403 => {
                errors += 1;
                let r = &kind.resource;
                let group = if r.group.is_empty() { "core" } else { &r.group };
                messages.push(format!(
                    "{} {}: the operator may not create {} ({group} API group); add them \
                     to the arca-operator ClusterRole's Restore rules to restore them",
                    obj["kind"],
                    dynamic.name_any(),
                    r.plural
                ));
                None
            }
            Err(e) => {
                errors += 1;
                messages.push(format!("{} {}: {e}", obj["kind"], dynamic.name_any()));
                None
            }
        };
        if let (Some(pod), Some(source_ns)) = (created, source_ns) {
            // A claim backed up through a helper comes back through one.
            if let Some(snapshot) = claim_snapshot.as_deref() {
                if image.is_none() {
                    image = Some(ctx.restore_wait_image().await?);
                }
                let image = image.as_deref().unwrap_or_default();
                match start_claim_helper(ctx, &pod, image, &uid).await {
                    Ok(helper) => {
                        let volume = claim_helper::VOLUME;
                        create_volume_restore(
                            ctx, restore, &bsl, &helper, volume, snapshot, &source_ns,
                        )
                        .await?;
                        volumes += 1;
                    }
                    Err(why) => {
                        errors += 1;
                        messages.push(format!(
                            "claim {}/{}: its contents are not restored: {why}",
                            pod.namespace().unwrap_or_default(),
                            pod.name_any()
                        ));
                    }
                }
                continue;
            }
            if !is_pod {
                continue;
            }
            if !hooks.is_empty() {
                pending_hooks.push(PodReference {
                    namespace: pod.namespace().unwrap_or_default(),
                    name: pod.name_any(),
                    uid: pod.uid().unwrap_or_default(),
                });
            }
            let pod_ref = PodReference {
                namespace: pod.namespace().unwrap_or_default(),
                name: pod.name_any(),
                uid: pod.uid().unwrap_or_default(),
            };
            for (volume, snapshot) in &snapshots {
                create_volume_restore(ctx, restore, &bsl, &pod_ref, volume, snapshot, &source_ns)
                    .await?;
                volumes += 1;
            }
        }
    }
    messages.truncate(100);
    patch_status(
        api,
        name,
        &json!({
            "phase": OperationPhase::InProgress,
            "startTimestamp": now(),
            "progress": {"totalItems": items, "itemsRestored": items, "totalVolumes": volumes, "volumesRestored": 0},
            "errors": errors,
            "warnings": warnings,
            "messages": messages,
            "pendingHooks": pending_hooks,
        }),
    )
    .await?;
    Ok(Outcome::Waiting(crate::backup::VOLUMES_WAIT))
}

/// Start the helper pod that mounts restored claim `claim` until its contents are back.
async fn start_claim_helper(
    ctx: &Context,
    claim: &DynamicObject,
    image: &str,
    restore_uid: &str,
) -> std::result::Result<PodReference, String> {
    let ns = claim.namespace().unwrap_or_default();
    let mut helper = claim_helper::restore_helper(&ns, &claim.name_any(), image, restore_uid);
    restore_plan::add_restore_wait(
        &mut helper,
        image,
        restore_uid,
        &[claim_helper::VOLUME.to_string()],
    );
    let helper: Pod = serde_json::from_value(helper).map_err(|e| e.to_string())?;
    let created = Api::<Pod>::namespaced(ctx.client.clone(), &ns)
        .create(&PostParams::default(), &helper)
        .await
        .map_err(|e| format!("cannot start a pod to mount it: {e}"))?;
    Ok(PodReference {
        namespace: ns,
        name: created.name_any(),
        uid: created.uid().unwrap_or_default(),
    })
}

/// Create the PodVolumeRestore of volume `volume` of `pod` from `snapshot` (in the repository
/// of namespace `source_ns`).
async fn create_volume_restore(
    ctx: &Context,
    restore: &Restore,
    bsl: &arca_api::BackupStorageLocation,
    pod: &PodReference,
    volume: &str,
    snapshot: &str,
    source_ns: &str,
) -> Result<()> {
    let name = restore.name_any();
    let uid = restore.uid().unwrap_or_default();
    let pvr = PodVolumeRestore {
        metadata: ObjectMeta {
            name: Some(volume_operation_name(
                &name,
                &pod.namespace,
                &pod.name,
                volume,
            )),
            namespace: Some(ctx.namespace.clone()),
            labels: Some(BTreeMap::from([
                (RESTORE_NAME_LABEL.to_string(), name.clone()),
                (RESTORE_UID_LABEL.to_string(), uid.clone()),
            ])),
            ..Default::default()
        },
        spec: PodVolumeRestoreSpec {
            pod: pod.clone(),
            volume: volume.to_string(),
            backup_storage_location: bsl.name_any(),
            repository: repository::name_for(source_ns, &bsl.name_any()),
            repo_identifier: bsl.spec.repository_url(source_ns),
            snapshot_id: snapshot.to_string(),
            source_namespace: source_ns.to_string(),
            restore_uid: uid,
            cancel: false,
            allow_privileged_files: restore.spec.allow_privileged_files,
        },
        status: None,
    };
    Api::<PodVolumeRestore>::namespaced(ctx.client.clone(), &ctx.namespace)
        .create(&PostParams::default(), &pvr)
        .await
        .map_err(Error::api("creating PodVolumeRestore"))?;
    Ok(())
}

/// The restore hooks of a pod manifest about to be created.
fn pod_hooks(
    obj: &Value,
    spec: Option<&arca_api::restore_hooks::RestoreHooks>,
    restored_volumes: &[String],
) -> std::result::Result<restore_hooks::PodHooks, String> {
    let pod: Pod = serde_json::from_value(obj.clone()).map_err(|e| format!("not a pod: {e}"))?;
    restore_hooks::of_pod(&pod, spec, restored_volumes)
}

/// Settle the hooks of the pods in `status.pendingHooks`: each pod's outcomes recorded (and
/// its failures counted) before the next pod's are looked at, so that none runs twice.
async fn settle_hooks(
    restore: &Restore,
    ctx: &Context,
    api: &Api<Restore>,
    name: &str,
    status: &mut arca_api::RestoreStatus,
) -> Result<()> {
    let started = status
        .outcome
        .start_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or_else(jiff::Timestamp::now);
    let waited = jiff::Timestamp::now()
        .duration_since(started)
        .unsigned_abs();
    let (default_wait, _) = volume_timeout(
        restore.spec.pod_volume_operation_timeout.as_deref(),
        status.outcome.start_timestamp.as_ref(),
    );
    let pending = std::mem::take(&mut status.pending_hooks);
    for (i, p) in pending.iter().enumerate() {
        let found = crate::pods::by_reference(&ctx.client, p)
            .await
            .map_err(Error::api(format!(
                "reading pod {}/{}",
                p.namespace, p.name
            )))?;
        let runs = match found {
            None => vec![restore_hooks::pod_gone(p)],
            Some(pod) => {
                let hooks = restore_hooks::of_pod(&pod, restore.spec.hooks.as_ref(), &[])
                    .unwrap_or_default();
                match restore_hooks::settle(&ctx.client, &pod, &hooks, waited, default_wait).await {
                    restore_hooks::Settled::Waiting => {
                        status.pending_hooks.push(p.clone());
                        continue;
                    }
                    restore_hooks::Settled::Done(runs) => runs,
                }
            }
        };
        for r in runs.iter().filter(|r| r.result != HookResult::Succeeded) {
            status.outcome.errors += 1;
            status.outcome.messages.push(restore_hooks::describe(r));
        }
        status.outcome.messages.truncate(100);
        status.hook_runs.extend(runs);
        status.hook_runs.truncate(crate::hooks::HOOK_RUNS_KEPT);
        let left: Vec<&PodReference> = status
            .pending_hooks
            .iter()
            .chain(&pending[i + 1..])
            .collect();
        patch_status(
            api,
            name,
            &json!({
                "hookRuns": status.hook_runs,
                "pendingHooks": left,
                "errors": status.outcome.errors,
                "messages": status.outcome.messages,
            }),
        )
        .await?;
    }
    Ok(())
}

/// Whether labels match a selector of `k=v` terms (what the stored manifests are filtered
/// by; richer expressions match everything here and were applied at backup time).
fn labels_match(selector: &str, labels: &Value) -> bool {
    selector.split(',').all(|term| match term.split_once('=') {
        Some((k, v)) => labels[k.trim()].as_str() == Some(v.trim()),
        None => true,
    })
}

async fn finish(
    restore: &Restore,
    ctx: &Context,
    api: &Api<Restore>,
    name: &str,
) -> Result<Outcome> {
    let mut status = restore.status.clone().unwrap_or_default();
    settle_hooks(restore, ctx, api, name, &mut status).await?;
    let uid = restore.uid().unwrap_or_default();
    let pvrs = Api::<PodVolumeRestore>::namespaced(ctx.client.clone(), &ctx.namespace)
        .list(&ListParams::default().labels(&format!("{RESTORE_UID_LABEL}={uid}")))
        .await
        .map_err(Error::api("listing PodVolumeRestores"))?
        .items;
    let (_, timed_out) = volume_timeout(
        restore.spec.pod_volume_operation_timeout.as_deref(),
        status.outcome.start_timestamp.as_ref(),
    );
    let phase_of = |p: &PodVolumeRestore| p.status.as_ref().map(|s| s.phase).unwrap_or_default();
    let done = pvrs
        .iter()
        .filter(|p| phase_of(p) == arca_api::common::VolumePhase::Completed)
        .count();
    let running = pvrs.iter().filter(|p| !phase_of(p).is_final()).count();
    if running > 0 && !timed_out {
        let _ = patch_status(api, name, &json!({"progress": {"volumesRestored": done}})).await;
    }
    // Hooks wait for pods, which nothing here watches: look again soon.
    if !status.pending_hooks.is_empty() {
        return Ok(Outcome::Waiting(HOOKS_WAIT));
    }
    if running > 0 && !timed_out {
        return Ok(Outcome::Waiting(crate::backup::VOLUMES_WAIT));
    }
    let mut messages = status.outcome.messages.clone();
    let mut errors = status.outcome.errors;
    for p in pvrs
        .iter()
        .filter(|p| phase_of(p) != arca_api::common::VolumePhase::Completed)
    {
        errors += 1;
        let why = p
            .status
            .as_ref()
            .and_then(|s| s.message.clone())
            .unwrap_or_else(|| "timed out".into());
        messages.push(format!(
            "volume {} of pod {}/{}: {why}",
            p.spec.volume, p.spec.pod.namespace, p.spec.pod.name
        ));
    }
    messages.truncate(100);
    let phase = if errors > 0 {
        OperationPhase::PartiallyFailed
    } else {
        OperationPhase::Completed
    };
    // Every volume is back: the claim helpers have served.
    claim_helper::remove(&ctx.client, RESTORE_UID_LABEL, &uid).await?;
    patch_status(api, name, &json!({"phase": phase, "completionTimestamp": now(), "errors": errors, "messages": messages, "progress": {"volumesRestored": done}})).await?;
    Ok(Outcome::Finished(phase))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_namespace_restore_brings_back_no_cluster_wide_grants_unless_asked() {
        let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding", "metadata": {"name": "shop-admin"}});
        let shop = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
        let blog = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "blog"}});
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-0", "namespace": "shop"}});
        let mut spec = arca_api::RestoreSpec::default();
        spec.scope.included_namespaces = vec!["shop".into()];
        let allowed = |spec: &arca_api::RestoreSpec| {
            [&binding, &shop, &blog, &pod].map(|m| namespace_scope_allows(spec, m))
        };
        assert_eq!(allowed(&spec), [false, true, false, true]);
        spec.include_cluster_resources = Some(true);
        assert_eq!(allowed(&spec), [true, true, false, true]);
        // The whole cluster: cluster-scoped objects by default, unless turned off.
        let mut all = arca_api::RestoreSpec::default();
        assert_eq!(allowed(&all), [true, true, true, true]);
        all.include_cluster_resources = Some(false);
        assert_eq!(allowed(&all), [false, true, true, true]);
    }
}
