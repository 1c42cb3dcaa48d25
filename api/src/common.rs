//! Pieces shared by several resources: references, progress counters, conditions, and the
//! validation patterns the generated schemas carry.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of every Arca resource.
pub const GROUP: &str = "arca.dev";
/// Its only version so far.
pub const VERSION: &str = "v1alpha1";

/// A Go-style duration, as Kubernetes users write them: `90s`, `15m`, `720h`, `1h30m`.
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";
/// A namespace name (RFC 1123 label) or `*` for all namespaces.
pub const NAMESPACE_OR_ALL_PATTERN: &str = r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$";
/// An object name (RFC 1123 subdomain).
pub const NAME_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A resource as `kubectl` names it: `pods`, `deployments.apps`, `*`.
pub const RESOURCE_PATTERN: &str =
    r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$";
/// A restic snapshot ID: 64 hex digits (short forms are not accepted in specs).
pub const SNAPSHOT_ID_PATTERN: &str = r"^[0-9a-f]{64}$";

/// Which namespaces, resources and labels a Backup or Restore covers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceScope {
    /// Namespaces to include (`*` or empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = NAMESPACE_OR_ALL_PATTERN)))]
    pub included_namespaces: Vec<String>,
    /// Namespaces to leave out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = NAMESPACE_OR_ALL_PATTERN)))]
    pub excluded_namespaces: Vec<String>,
    /// Resources to include, as `kubectl` names them (`pods`, `deployments.apps`; `*` or
    /// empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = RESOURCE_PATTERN)))]
    pub included_resources: Vec<String>,
    /// Resources to leave out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = RESOURCE_PATTERN)))]
    pub excluded_resources: Vec<String>,
    /// Only objects with these labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
}

/// A key of a Secret in the operator's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = NAME_PATTERN))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A Secret in the operator's namespace, used whole.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = NAME_PATTERN))]
    pub name: String,
}

/// The pod a volume operation is about, pinned by UID so a recreated pod of the same name is
/// never mistaken for it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodReference {
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[schemars(length(min = 1))]
    pub uid: String,
}

/// Live progress of one volume's data transfer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeProgress {
    #[schemars(range(min = 0))]
    pub total_bytes: i64,
    #[schemars(range(min = 0))]
    pub bytes_done: i64,
    #[schemars(range(min = 0))]
    pub total_files: i64,
    #[schemars(range(min = 0))]
    pub files_done: i64,
}

/// Phase of a PodVolumeBackup or PodVolumeRestore.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum VolumePhase {
    #[default]
    New,
    InProgress,
    Completed,
    Failed,
    Canceled,
}

impl VolumePhase {
    /// Completed, Failed and Canceled never change again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Canceled)
    }
}

// What a Backup's and a Restore's status have in common: where the operation is, when it
// started and ended, and what went wrong. Flattened into both statuses, so the fields sit at
// the top of `status` (a plain comment: a doc comment would become the CRD's description of
// each status).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationOutcome {
    #[serde(default)]
    pub phase: OperationPhase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_timestamp: Option<Time>,
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub errors: i32,
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub warnings: i32,
    /// The errors and warnings, one line each (the first hundred).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
    /// Why the operation failed, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Phase of a Backup or Restore.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum OperationPhase {
    #[default]
    New,
    InProgress,
    Completed,
    PartiallyFailed,
    Failed,
}

impl OperationPhase {
    /// Completed, PartiallyFailed and Failed never change again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::PartiallyFailed | Self::Failed)
    }
}

/// Set condition `type_` on a status's list, keeping its transition time when the status
/// did not change (the Kubernetes convention).
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    ok: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Time,
) {
    let status = if ok { "True" } else { "False" }.to_string();
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = now;
            }
            c.status = status;
            c.reason = reason.to_string();
            c.message = message.to_string();
            c.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message: message.to_string(),
            observed_generation: generation,
            last_transition_time: now,
        }),
    }
}

/// A Secret's data as strings (binary values decoded lossily), `stringData` included.
pub fn secret_strings(
    secret: &k8s_openapi::api::core::v1::Secret,
) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for (k, v) in secret.data.iter().flatten() {
        out.insert(k.clone(), String::from_utf8_lossy(&v.0).into_owned());
    }
    for (k, v) in secret.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// The current time as the API's timestamp type.
pub fn now() -> Time {
    Time(jiff::Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_keep_their_transition_time_until_the_status_changes() {
        let t = |s| Time(jiff::Timestamp::from_second(s).unwrap());
        let mut c = Vec::new();
        set_condition(&mut c, "Ready", false, "Init", "starting", Some(1), t(10));
        set_condition(
            &mut c,
            "Ready",
            false,
            "Init",
            "still starting",
            Some(2),
            t(20),
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].last_transition_time, t(10));
        assert_eq!(c[0].message, "still starting");
        set_condition(&mut c, "Ready", true, "Initialised", "ok", Some(2), t(30));
        assert_eq!(c[0].last_transition_time, t(30));
        assert_eq!(c[0].status, "True");
    }
}
