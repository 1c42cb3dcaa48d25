//! Backup and Schedule: what to back up (namespaces, resources, labels, pod volumes), and
//! when to do it again.

use crate::common::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Label on the short-lived pods that mount a claim no pod mounts, for a Backup (`backup`)
/// or a Restore (`restore`) whose UID label they carry too.
pub const CLAIM_HELPER_LABEL: &str = "arca.dev/claim-helper";
/// Annotation, on a claim helper pod and on its PodVolumeBackup, naming the claim.
pub const CLAIM_ANNOTATION: &str = "arca.dev/claim";
/// Annotation, on a backed-up claim's manifest, with the snapshot of its contents taken
/// through a helper pod (claims mounted by a pod have theirs on the pod's manifest).
pub const CLAIM_SNAPSHOT_ANNOTATION: &str = "arca.dev/claim-snapshot";
/// Pod annotation naming the volumes to back up (comma-separated).
pub const BACKUP_VOLUMES_ANNOTATION: &str = "backup.arca.dev/backup-volumes";
/// The same annotation as Heptio Ark and Velero spell it, honoured for users coming from them.
pub const LEGACY_BACKUP_VOLUMES_ANNOTATIONS: [&str; 2] = [
    "backup.ark.heptio.com/backup-volumes",
    "backup.velero.io/backup-volumes",
];
/// Pod annotation naming volumes to leave out when `defaultVolumesToFsBackup` is on.
pub const BACKUP_VOLUMES_EXCLUDES_ANNOTATION: &str = "backup.arca.dev/backup-volumes-excludes";
/// Prefix of the annotations that record, on a stored pod manifest, each volume's snapshot.
pub const SNAPSHOT_ANNOTATION_PREFIX: &str = "snapshot.arca.dev/";
/// Label put on everything a Backup creates.
pub const BACKUP_NAME_LABEL: &str = "arca.dev/backup-name";
/// Label with the Backup's UID.
pub const BACKUP_UID_LABEL: &str = "arca.dev/backup-uid";
/// Label put on Backups a Schedule creates.
pub const SCHEDULE_NAME_LABEL: &str = "arca.dev/schedule-name";
/// On Backups and PodVolumeBackups created from a location's bucket (backup sync): the
/// location's name. Such objects are records of work done elsewhere, never run here.
pub const SYNCED_FROM_LABEL: &str = "arca.dev/synced-from";

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "arca.dev",
    version = "v1alpha1",
    derive = "Default",
    kind = "Backup",
    namespaced,
    status = "BackupStatus",
    category = "arca",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Items","type":"integer","jsonPath":".status.progress.itemsBackedUp"}"#,
    printcolumn = r#"{"name":"Volumes","type":"integer","jsonPath":".status.progress.volumesCompleted"}"#,
    printcolumn = r#"{"name":"Errors","type":"integer","jsonPath":".status.errors"}"#,
    printcolumn = r#"{"name":"Expires","type":"date","jsonPath":".status.expiration"}"#,
    printcolumn = r#"{"name":"Location","type":"string","jsonPath":".spec.storageLocation"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
/// What to back up, where to, and for how long to keep it.
pub struct BackupSpec {
    /// What the backup covers.
    #[serde(flatten)]
    pub scope: ResourceScope,
    /// How long to keep the backup (default 720h, 30 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub ttl: Option<String>,
    /// The BackupStorageLocation to use (default: the one marked default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_location: Option<String>,
    /// Back up every pod volume (except hostPath, Secret, ConfigMap, projected and
    /// downward-API volumes, and those in `backup.arca.dev/backup-volumes-excludes`),
    /// not only the annotated ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_volumes_to_fs_backup: Option<bool>,
    /// Back up claims that no running pod mounts (of a scaled-down workload, a CronJob, a
    /// migration), each through a short-lived pod that mounts it read-only on the node of its
    /// last user and is removed however the backup ends. Unset: as
    /// `defaultVolumesToFsBackup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_unmounted_volumes: Option<bool>,
    /// How long to wait for each pod volume backup (default 4h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub pod_volume_operation_timeout: Option<String>,
    /// Commands to run in the pods' containers before and after their volumes are backed
    /// up (for pods without hook annotations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<crate::hooks::BackupHooks>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupStatus {
    #[serde(flatten)]
    pub outcome: OperationOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<BackupProgress>,
    /// When the backup will be deleted (creation time plus TTL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<Time>,
    /// The snapshot, in the location's resource repository, that holds the manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources_snapshot_id: Option<String>,
    /// The hooks that ran, in order (the first hundred).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hook_runs: Vec<crate::hooks::HookRun>,
    /// The backup commands that ran, each output stored as a file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command_runs: Vec<crate::hooks::BackupCommandRun>,
    /// Pods whose post hooks run once their volumes are backed up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_post_hooks: Vec<PodReference>,
    /// Helper pods mounting unmounted claims, whose volume backups start once they run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_claim_helpers: Vec<PodReference>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupProgress {
    #[schemars(range(min = 0))]
    pub total_items: i64,
    #[schemars(range(min = 0))]
    pub items_backed_up: i64,
    #[schemars(range(min = 0))]
    pub total_volumes: i64,
    #[schemars(range(min = 0))]
    pub volumes_completed: i64,
    #[schemars(range(min = 0))]
    pub total_bytes: i64,
    #[schemars(range(min = 0))]
    pub bytes_done: i64,
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "arca.dev",
    version = "v1alpha1",
    derive = "Default",
    kind = "Schedule",
    namespaced,
    status = "ScheduleStatus",
    category = "arca",
    printcolumn = r#"{"name":"Schedule","type":"string","jsonPath":".spec.schedule"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Last Backup","type":"date","jsonPath":".status.lastBackup"}"#,
    printcolumn = r#"{"name":"Paused","type":"boolean","jsonPath":".spec.paused"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSpec {
    /// When to back up: a five-field cron expression (`0 3 * * *`) or `@daily`, `@hourly`,
    /// `@weekly`, `@monthly`, `@yearly`.
    #[schemars(regex(
        pattern = r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|\S+(\s+\S+){4})$"
    ))]
    pub schedule: String,
    /// The Backup to create each time.
    pub template: BackupSpec,
    /// Create no Backups while set.
    #[serde(default)]
    pub paused: bool,
    /// Make the Schedule the owner of its Backups (deleting it deletes them).
    #[serde(default)]
    pub use_owner_references_in_backup: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<SchedulePhase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<Time>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_errors: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum SchedulePhase {
    New,
    Enabled,
    FailedValidation,
}

impl Backup {
    /// Where the Backup is: New until the operator has written a status.
    pub fn phase(&self) -> OperationPhase {
        self.status
            .as_ref()
            .map(|s| s.outcome.phase)
            .unwrap_or_default()
    }
}
