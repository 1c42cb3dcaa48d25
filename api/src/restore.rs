//! Restore: bring a Backup's resources and pod volumes back, optionally into other namespaces.

use crate::common::*;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Name of the init container added to restored pods that have volume snapshots.
pub const RESTORE_WAIT_CONTAINER: &str = "restore-wait";
/// Label put on everything a Restore creates.
pub const RESTORE_NAME_LABEL: &str = "arca.dev/restore-name";
/// Label with the Restore's UID.
pub const RESTORE_UID_LABEL: &str = "arca.dev/restore-uid";
/// The folder, in each restored volume, where the agent leaves its done or failed marker.
pub const MARKER_DIR: &str = ".arca";
/// Suffix of the failure marker (`.arca/<restore-uid>.failed`, holding the reason).
pub const FAILED_MARKER_SUFFIX: &str = ".failed";

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "arca.dev",
    version = "v1alpha1",
    derive = "Default",
    kind = "Restore",
    namespaced,
    status = "RestoreStatus",
    category = "arca",
    printcolumn = r#"{"name":"Backup","type":"string","jsonPath":".spec.backupName"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Items","type":"integer","jsonPath":".status.progress.itemsRestored"}"#,
    printcolumn = r#"{"name":"Errors","type":"integer","jsonPath":".status.errors"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
/// Which backup to restore, what of it, and into which namespaces.
pub struct RestoreSpec {
    /// The Backup to restore.
    #[schemars(length(min = 1, max = 253))]
    pub backup_name: String,
    /// What to restore of the backup.
    #[serde(flatten)]
    pub scope: ResourceScope,
    /// Restore objects of namespace A into namespace B (`{A: B}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub namespace_mapping: BTreeMap<String, String>,
    /// How long to wait for each pod volume restore (default 4h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub pod_volume_operation_timeout: Option<String>,
    /// Restore device nodes, setuid/setgid bits and file capabilities into pod volumes as
    /// the snapshots hold them. Off by default: the agent restores as root, and a volume's
    /// contents are whatever its pod's users put there.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_privileged_files: bool,
    /// Whether cluster-scoped objects of the backup (ClusterRoles and their bindings,
    /// webhooks, PersistentVolumes, …) are restored. Unset: only when the Restore covers every
    /// namespace, as Velero does; a Restore of some namespaces never brings back cluster-wide
    /// grants (the Namespace objects in scope are always restored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_cluster_resources: Option<bool>,
    /// Init containers to add to the restored pods and commands to run in them once they
    /// are up (for pods without restore hook annotations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<crate::restore_hooks::RestoreHooks>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStatus {
    #[serde(flatten)]
    pub outcome: OperationOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<RestoreProgress>,
    /// The restore hooks' outcomes, in the order they ended (the first hundred).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hook_runs: Vec<crate::restore_hooks::RestoreHookRun>,
    /// Restored pods whose hooks have not all ended yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_hooks: Vec<PodReference>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreProgress {
    #[schemars(range(min = 0))]
    pub total_items: i64,
    #[schemars(range(min = 0))]
    pub items_restored: i64,
    #[schemars(range(min = 0))]
    pub total_volumes: i64,
    #[schemars(range(min = 0))]
    pub volumes_restored: i64,
}

impl Restore {
    /// Where the Restore is: New until the operator has written a status.
    pub fn phase(&self) -> OperationPhase {
        self.status
            .as_ref()
            .map(|s| s.outcome.phase)
            .unwrap_or_default()
    }
}
