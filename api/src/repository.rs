//! BackupRepository: one restic-format repository per (volume namespace, storage location),
//! each with its own random key.

use crate::common::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Label with the namespace whose volumes a repository holds.
pub const VOLUME_NAMESPACE_LABEL: &str = "arca.dev/volume-namespace";
/// Label with the storage location a repository lives in.
pub const STORAGE_LOCATION_LABEL: &str = "arca.dev/storage-location";
/// Annotation asking the operator to give the repository a new random password (any value;
/// `arca cluster repo rotate-key` sets it). The operator removes it when done.
pub const ROTATE_KEY_ANNOTATION: &str = "arca.dev/rotate-key";

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "arca.dev",
    version = "v1alpha1",
    derive = "Default",
    kind = "BackupRepository",
    namespaced,
    status = "BackupRepositoryStatus",
    shortname = "repo",
    category = "arca",
    printcolumn = r#"{"name":"Namespace","type":"string","jsonPath":".spec.volumeNamespace"}"#,
    printcolumn = r#"{"name":"Location","type":"string","jsonPath":".spec.backupStorageLocation"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Last Maintenance","type":"date","jsonPath":".status.lastMaintenanceTime"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BackupRepositorySpec {
    /// The namespace whose pod volumes this repository holds.
    #[schemars(length(min = 1, max = 63))]
    pub volume_namespace: String,
    /// The BackupStorageLocation it lives in.
    #[schemars(length(min = 1, max = 253))]
    pub backup_storage_location: String,
    /// The repository as restic names it (`s3:http://host/bucket/prefix/ns`, …): any
    /// restic-compatible tool can open it with the key below.
    #[schemars(length(min = 1))]
    pub repository_url: String,
    /// The Secret key holding this repository's password. Generated at random when the
    /// repository is created (never shared between repositories), or given by the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret: Option<SecretKeyRef>,
    /// How often to check and prune (default 168h, one week).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub maintenance_frequency: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupRepositoryStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RepositoryPhase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_maintenance_time: Option<Time>,
    /// The last few maintenance runs, newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_maintenance: Vec<MaintenanceRun>,
    /// While maintenance waits for running work (volume backups hold shared locks), whose
    /// lock it waits for; gone once it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_waiting: Option<String>,
    /// The fingerprint of the location's recovery key whose derived key the repository holds
    /// (none yet: the operator adds it the next time it opens the repository).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_key_fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RepositoryPhase {
    #[default]
    New,
    Ready,
    NotReady,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceRun {
    pub result: MaintenanceResult,
    pub start_timestamp: Time,
    pub complete_timestamp: Time,
    /// What was done or what went wrong, in one line.
    #[serde(default)]
    pub message: String,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum MaintenanceResult {
    Succeeded,
    Failed,
}
