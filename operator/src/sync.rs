//! Backup sync: the Backups a location's bucket holds and this cluster lacks (made by a cluster
//! that is gone, or by another one sharing the location) are created here from their records,
//! with their phase, times and volumes, labelled with the location ([`SYNCED_FROM_LABEL`]);
//! a synced Backup whose snapshot has left the bucket (expired by the cluster that owns it) is
//! removed. Synced objects are records: the controllers never run them. Nothing is written to
//! the bucket.

use crate::context::Context;
use crate::repository;
use crate::store::{self, BackupRecord};
use crate::{Error, Result};
use arca_api::backup::{BackupStatus, BACKUP_NAME_LABEL, BACKUP_UID_LABEL, SYNCED_FROM_LABEL};
use arca_api::common::{OperationOutcome, OperationPhase};
use arca_api::{Backup, BackupStorageLocation, PodVolumeBackup};
use arca_format::snapshot::Snapshot;
use arca_reconcile::Wrap as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// Sync happens this often unless the location says otherwise.
pub const DEFAULT_SYNC_PERIOD: Duration = Duration::from_secs(60);

/// The tag of every resource snapshot.
const RESOURCES_TAG: &str = "arca-resources";

/// The location's sync period; `None` when sync is off.
pub fn period(bsl: &BackupStorageLocation) -> Option<Duration> {
    match bsl.spec.backup_sync_period.as_deref() {
        None => Some(DEFAULT_SYNC_PERIOD),
        Some(p) => humantime::parse_duration(p).ok().filter(|d| !d.is_zero()),
    }
}

/// What one sync did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Synced {
    /// Backups created from the bucket.
    pub created: Vec<String>,
    /// Synced Backups removed because the bucket no longer has them.
    pub removed: Vec<String>,
    /// The resource repository is not ready yet (its controller is on it): nothing done.
    pub waiting: bool,
}

/// The newest resource snapshot of each Backup in the bucket.
fn by_backup(snapshots: Vec<Snapshot>) -> BTreeMap<String, Snapshot> {
    let mut out: BTreeMap<String, Snapshot> = BTreeMap::new();
    for s in snapshots {
        if !s.tags.iter().any(|t| t == RESOURCES_TAG) {
            continue;
        }
        let Some(name) = s.tags.iter().find_map(|t| t.strip_prefix("backup=")) else {
            continue;
        };
        let name = name.to_string();
        if out.get(&name).is_none_or(|o| o.time < s.time) {
            out.insert(name, s);
        }
    }
    out
}

/// Compare the bucket's Backups with the cluster's, once.
pub async fn sync(ctx: &Context, bsl: &BackupStorageLocation) -> Result<Synced> {
    let location = bsl.name_any();
    let repo = match store::resource_repository(ctx, bsl).await? {
        Ok(r) => r,
        Err(_) => {
            return Ok(Synced {
                waiting: true,
                ..Default::default()
            })
        }
    };
    // Listing snapshots needs no index; it is loaded only when there are records to read.
    let mut opened = repository::open_unindexed(ctx, &repo).await?;
    let in_bucket = by_backup(
        arca_engine::snapshots::load_all(&opened)
            .await
            .map_err(Error::engine("listing the resource snapshots"))?,
    );
    let backups: Api<Backup> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let in_cluster = backups
        .list(&ListParams::default())
        .await
        .map_err(Error::api("listing Backups"))?
        .items;
    let mut out = Synced::default();
    let missing: Vec<(&String, &Snapshot)> = in_bucket
        .iter()
        .filter(|(name, _)| !in_cluster.iter().any(|b| b.name_any() == **name))
        .collect();
    if !missing.is_empty() {
        opened
            .load_index(&arca_engine::progress::NoProgress)
            .await
            .map_err(Error::engine("loading the resource repository's index"))?;
    }
    for (name, sn) in missing {
        let record = store::read_record(&opened, sn, name).await?;
        create(ctx, &location, name, sn, record).await?;
        out.created.push(name.clone());
    }
    for b in &in_cluster {
        let synced_here = b.labels().get(SYNCED_FROM_LABEL) == Some(&location);
        if synced_here && !in_bucket.contains_key(&b.name_any()) {
            remove(ctx, &b.name_any()).await?;
            out.removed.push(b.name_any());
        }
    }
    Ok(out)
}

/// Create Backup `name` (and its PodVolumeBackups) from its resource snapshot and record.
async fn create(
    ctx: &Context,
    location: &str,
    name: &str,
    sn: &Snapshot,
    record: Option<BackupRecord>,
) -> Result<()> {
    let backups: Api<Backup> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let snapshot_time = Time(
        jiff::Timestamp::new(sn.time.unix_secs(), sn.time.unix_nanos_part() as i32)
            .map_err(|e| Error::Refused(format!("snapshot {}: {e}", sn.id.short())))?,
    );
    // A snapshot from before records were kept: what the snapshot itself says.
    let (mut backup, pvbs) = match record {
        Some(r) => (r.backup, r.pod_volume_backups),
        None => (
            Backup {
                status: Some(BackupStatus {
                    outcome: OperationOutcome {
                        phase: OperationPhase::Completed,
                        start_timestamp: Some(snapshot_time.clone()),
                        completion_timestamp: Some(snapshot_time),
                        ..Default::default()
                    },
                    ..Default::default()
                }),
                ..Default::default()
            },
            Vec::new(),
        ),
    };
    let mut status = backup.status.take().unwrap_or_default();
    status.resources_snapshot_id = Some(sn.id.to_hex());
    backup.metadata.name = Some(name.to_string());
    backup.metadata.namespace = Some(ctx.namespace.clone());
    backup
        .labels_mut()
        .insert(SYNCED_FROM_LABEL.into(), location.into());
    backup.spec.storage_location = Some(location.to_string());
    let created = match backups.create(&PostParams::default(), &backup).await {
        Ok(b) => b,
        // Made meanwhile (by a Backup of this cluster, or another sync): theirs stands.
        Err(kube::Error::Api(e)) if e.code == 409 => return Ok(()),
        Err(e) => return Err(Error::api(format!("creating Backup {name}"))(e)),
    };
    backups
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .map_err(Error::api(format!("recording the status of Backup {name}")))?;
    let uid = created.uid().unwrap_or_default();
    let api: Api<PodVolumeBackup> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    for mut p in pvbs {
        let pvb_name = p.name_any();
        let pvb_status = p.status.take();
        p.metadata.namespace = Some(ctx.namespace.clone());
        let labels = p.labels_mut();
        labels.insert(SYNCED_FROM_LABEL.into(), location.into());
        labels.insert(BACKUP_NAME_LABEL.into(), name.into());
        labels.insert(BACKUP_UID_LABEL.into(), uid.clone());
        // The repository of the volume's namespace in this cluster's name for the location.
        p.spec.repository = repository::name_for(&p.spec.pod.namespace, location);
        match api.create(&PostParams::default(), &p).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => {
                return Err(Error::api(format!("creating PodVolumeBackup {pvb_name}"))(
                    e,
                ))
            }
        }
        api.patch_status(
            &pvb_name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": pvb_status })),
        )
        .await
        .map_err(Error::api(format!(
            "recording the status of PodVolumeBackup {pvb_name}"
        )))?;
    }
    tracing::info!(backup = %name, %location, "synced from the bucket");
    Ok(())
}

/// Remove synced Backup `name` and its PodVolumeBackups (the bucket no longer has it).
async fn remove(ctx: &Context, name: &str) -> Result<()> {
    let pvbs: Api<PodVolumeBackup> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let of_backup = ListParams::default().labels(&format!("{BACKUP_NAME_LABEL}={name}"));
    for p in pvbs
        .list(&of_backup)
        .await
        .map_err(Error::api(format!(
            "listing the PodVolumeBackups of Backup {name}"
        )))?
        .items
    {
        match pvbs.delete(&p.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                return Err(Error::api(format!(
                    "removing PodVolumeBackup {}",
                    p.name_any()
                ))(e))
            }
        }
    }
    let backups: Api<Backup> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    match backups.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(Error::api(format!("removing Backup {name}"))(e)),
    }
    tracing::info!(backup = %name, "removed: its snapshot left the bucket");
    Ok(())
}
