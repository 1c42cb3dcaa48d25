//! BackupStorageLocation: where backups go (a bucket and prefix on an object store, a REST
//! server, or a directory for tests), with the credentials to reach it.

use crate::common::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "arca.dev",
    version = "v1alpha1",
    derive = "Default",
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
    /// The Secret key holding this location's recovery key. Every repository in the location
    /// gets, besides its random working key, a key derived from the recovery key, so that the
    /// recovery key and the bucket alone open every repository after the cluster is lost.
    /// When empty, the operator uses Secret `<location>-recovery-key` (key `recovery-key`),
    /// generating a random key there if the Secret does not exist: keep a copy outside the
    /// cluster (`arca cluster location export-recovery-key NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_key: Option<SecretKeyRef>,
    /// How often to look in the bucket for Backups this cluster does not have (made by a
    /// cluster that is gone, or by another cluster sharing the location) and create them here
    /// (default 1m; `0s` turns it off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub backup_sync_period: Option<String>,
    /// How often to check that the location is reachable (default 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub validation_frequency: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    #[default]
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
    /// The generation of the spec the last check saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the bucket's Backups were last compared with the cluster's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_synced_time: Option<Time>,
    /// The fingerprint (not the key) of the recovery key the repositories are given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_key_fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// The key of the recovery key in the Secret the operator generates.
pub const RECOVERY_KEY_KEY: &str = "recovery-key";

/// On a recovery key Secret the operator generated (so that it says so on the location).
pub const GENERATED_RECOVERY_KEY_ANNOTATION: &str = "arca.dev/generated-recovery-key";

/// The location's condition that says its recovery key was generated in the cluster and must
/// be kept outside it.
pub const RECOVERY_KEY_CONDITION: &str = "RecoveryKeyGenerated";

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum LocationPhase {
    Available,
    Unavailable,
}

impl BackupStorageLocationSpec {
    /// Where the recovery key of location `name` is: the Secret key the spec names, else
    /// Secret `<name>-recovery-key`, key `recovery-key`.
    pub fn recovery_key_ref(&self, name: &str) -> SecretKeyRef {
        self.recovery_key.clone().unwrap_or_else(|| SecretKeyRef {
            name: format!("{name}-recovery-key"),
            key: RECOVERY_KEY_KEY.to_string(),
        })
    }

    /// The restic repository string of repository `name` (a namespace, say) in this
    /// location: `s3:http://host:9000/bucket/prefix/name`, `azure:container:/prefix/name`, …
    pub fn repository_url(&self, name: &str) -> String {
        let bucket = self.bucket.trim_end_matches('/');
        let path: Vec<&str> = [self.prefix.as_deref().unwrap_or(""), name]
            .into_iter()
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty())
            .collect();
        let path = path.join("/");
        let endpoint = self
            .config
            .as_ref()
            .and_then(|c| c.endpoint.as_deref())
            .map(|e| e.trim_end_matches('/'));
        match self.provider {
            Provider::Local => format!("{bucket}/{path}"),
            Provider::S3 => format!(
                "s3:{}/{bucket}/{path}",
                endpoint.unwrap_or("s3.amazonaws.com")
            ),
            Provider::Azure => format!("azure:{bucket}:/{path}"),
            Provider::Gcs => format!("gs:{bucket}:/{path}"),
            Provider::Rest => format!("rest:{bucket}/{path}"),
        }
    }

    /// The backend options (`-o key=value`) this location's config implies.
    pub fn options(&self) -> Vec<String> {
        let scheme = match self.provider {
            Provider::Local => "local",
            Provider::S3 => "s3",
            Provider::Azure => "azure",
            Provider::Gcs => "gs",
            Provider::Rest => "rest",
        };
        let mut out = Vec::new();
        let Some(c) = &self.config else {
            return out;
        };
        if let Some(n) = c.connections {
            out.push(format!("{scheme}.connections={n}"));
        }
        match self.provider {
            Provider::S3 => {
                if let Some(r) = &c.region {
                    out.push(format!("s3.region={r}"));
                }
                if let Some(p) = c.path_style {
                    out.push(format!(
                        "s3.bucket-lookup={}",
                        if p { "path" } else { "dns" }
                    ));
                }
            }
            Provider::Azure | Provider::Gcs => {
                if let Some(e) = &c.endpoint {
                    out.push(format!("{scheme}.endpoint-url={e}"));
                }
            }
            Provider::Local | Provider::Rest => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(provider: Provider, bucket: &str, prefix: Option<&str>) -> BackupStorageLocationSpec {
        BackupStorageLocationSpec {
            provider,
            bucket: bucket.into(),
            prefix: prefix.map(String::from),
            config: None,
            credential: None,
            default: false,
            access_mode: AccessMode::ReadWrite,
            recovery_key: None,
            backup_sync_period: None,
            validation_frequency: None,
        }
    }

    #[test]
    fn repository_urls_in_restic_syntax() {
        let mut s3 = spec(Provider::S3, "backups", Some("/cluster-a/"));
        assert_eq!(
            s3.repository_url("shop"),
            "s3:s3.amazonaws.com/backups/cluster-a/shop"
        );
        s3.config = Some(LocationConfig {
            endpoint: Some("http://127.0.0.1:8333/".into()),
            region: Some("eu-west-1".into()),
            path_style: Some(true),
            connections: Some(8),
        });
        assert_eq!(
            s3.repository_url("shop"),
            "s3:http://127.0.0.1:8333/backups/cluster-a/shop"
        );
        assert_eq!(
            s3.options(),
            [
                "s3.connections=8",
                "s3.region=eu-west-1",
                "s3.bucket-lookup=path"
            ]
        );
        assert_eq!(
            spec(Provider::Azure, "c", None).repository_url("ns"),
            "azure:c:/ns"
        );
        assert_eq!(
            spec(Provider::Gcs, "b", Some("p")).repository_url("ns"),
            "gs:b:/p/ns"
        );
        assert_eq!(
            spec(Provider::Rest, "http://h:8000/", None).repository_url("ns"),
            "rest:http://h:8000/ns"
        );
        assert_eq!(
            spec(Provider::Local, "/srv/arca", None).repository_url("ns"),
            "/srv/arca/ns"
        );
    }
}
