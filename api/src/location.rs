//! BackupStorageLocation: where backups go (a bucket and prefix on an object store, a REST
//! server, or a directory for tests), with the credentials to reach it.

use crate::common::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "arca.dev",
    version = "v1alpha1",
    kind = "BackupStorageLocation",
    namespaced,
    status = "BackupStorageLocationStatus",
    shortname = "bsl",
    category = "arca",
    printcolumn = r#"{"name":"Provider","type":"string","jsonPath":".spec.provider"}"#,
    printcolumn = r#"{"name":"Bucket","type":"string","jsonPath":".spec.bucket"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Default","type":"boolean","jsonPath":".spec.default"}"#,
    printcolumn = r#"{"name":"Last Validated","type":"date","jsonPath":".status.lastValidationTime"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BackupStorageLocationSpec {
    /// The kind of store.
    pub provider: Provider,
    /// Bucket (s3, gcs), container (azure), base URL (rest) or directory (local).
    #[schemars(length(min = 1))]
    pub bucket: String,
    /// Path inside the bucket under which Arca keeps its repositories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Provider settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<LocationConfig>,
    /// A Secret whose keys are the variables restic reads for this provider
    /// (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AZURE_ACCOUNT_NAME and
    /// AZURE_ACCOUNT_KEY, GOOGLE_APPLICATION_CREDENTIALS as the key file's content,
    /// RESTIC_REST_USERNAME and RESTIC_REST_PASSWORD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<SecretRef>,
    /// Used by Backups and Schedules that name no location.
    #[serde(default)]
    pub default: bool,
    /// ReadOnly locations are never written (for restoring from another cluster's backups).
    #[serde(default)]
    pub access_mode: AccessMode,
    /// How often to check that the location is reachable (default 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub validation_frequency: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    S3,
    Azure,
    Gcs,
    Rest,
    /// A directory on every node and the operator (tests, or a shared mount).
    Local,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum AccessMode {
    #[default]
    ReadWrite,
    ReadOnly,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocationConfig {
    /// Endpoint URL of an S3-compatible server or an Azure/GCS emulator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Region (s3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Address buckets by path rather than by host name (s3; most self-hosted servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_style: Option<bool>,
    /// Parallel connections per repository (default: the backend's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 256))]
    pub connections: Option<i32>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupStorageLocationStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<LocationPhase>,
    /// Why the location is unavailable, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_validation_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum LocationPhase {
    Available,
    Unavailable,
}
