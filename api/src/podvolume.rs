//! PodVolumeBackup and PodVolumeRestore: one volume of one pod, handled by the node agent
//! on the pod's node.

use crate::common::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Label with the UID of the PersistentVolumeClaim behind a volume: the parent snapshot of
/// the next backup is found by it, so backups stay incremental when the pod moves.
pub const PVC_UID_LABEL: &str = "arca.dev/pvc-uid";

/// Tag (in a PodVolumeBackup's `tags`) naming, for a volume without a claim (emptyDir), what
/// outlives the pod: `<namespace>/<owner kind>/<owner name>`, or `<namespace>/Pod/<pod name>`
/// for a pod with no controller. The parent of the next backup is found by it, so those
/// backups stay incremental when the pod is replaced, too.
pub const LINEAGE_TAG: &str = "lineage";

/// Annotation a restore puts on each claim it recreates: the UID of the claim it was backed up
/// from (or that claim's own origin). Backups of the restored claim use it as the claim's
/// identity, so they stay incremental across a restore as well.
pub const PVC_ORIGIN_ANNOTATION: &str = "arca.dev/origin-pvc-uid";

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "arca.dev",
    version = "v1alpha1",
    derive = "Default",
    kind = "PodVolumeBackup",
    namespaced,
    status = "PodVolumeBackupStatus",
    shortname = "pvb",
    category = "arca",
    printcolumn = r#"{"name":"Pod","type":"string","jsonPath":".spec.pod.name"}"#,
    printcolumn = r#"{"name":"Volume","type":"string","jsonPath":".spec.volume"}"#,
    printcolumn = r#"{"name":"Node","type":"string","jsonPath":".spec.node"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Bytes Done","type":"integer","jsonPath":".status.progress.bytesDone"}"#,
    printcolumn = r#"{"name":"Total Bytes","type":"integer","jsonPath":".status.progress.totalBytes"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PodVolumeBackupSpec {
    /// The node the pod runs on; only that node's agent handles this.
    #[schemars(length(min = 1, max = 253))]
    pub node: String,
    pub pod: PodReference,
    /// The pod's volume, by its name in the pod spec.
    #[schemars(length(min = 1, max = 63))]
    pub volume: String,
    #[schemars(length(min = 1, max = 253))]
    pub backup_storage_location: String,
    /// The BackupRepository (its name) that receives the snapshot.
    #[schemars(length(min = 1, max = 253))]
    pub repository: String,
    /// The repository as restic names it.
    #[schemars(length(min = 1))]
    pub repo_identifier: String,
    /// UID of the volume's PersistentVolumeClaim, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc_uid: Option<String>,
    /// Tags for the snapshot (backup, backup-uid, ns, pod, pod-uid, volume, pvc-uid).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Set to stop the transfer; the phase becomes Canceled.
    #[serde(default)]
    pub cancel: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodVolumeBackupStatus {
    #[serde(default)]
    pub phase: VolumePhase,
    /// The volume's directory on the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// The snapshot this one was made incrementally against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_snapshot_id: Option<String>,
    /// What went wrong, or what was skipped, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_timestamp: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<VolumeProgress>,
    /// Bytes this backup added to the repository (new data, after deduplication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub incremental_bytes: Option<i64>,
    /// Seconds spent waiting for the repository lock (held exclusively by maintenance)
    /// before the transfer could start; absent when it was free.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub lock_wait_seconds: Option<i64>,
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "arca.dev",
    version = "v1alpha1",
    derive = "Default",
    kind = "PodVolumeRestore",
    namespaced,
    status = "PodVolumeRestoreStatus",
    shortname = "pvr",
    category = "arca",
    printcolumn = r#"{"name":"Namespace","type":"string","jsonPath":".spec.pod.namespace"}"#,
    printcolumn = r#"{"name":"Pod","type":"string","jsonPath":".spec.pod.name"}"#,
    printcolumn = r#"{"name":"Volume","type":"string","jsonPath":".spec.volume"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Bytes Done","type":"integer","jsonPath":".status.progress.bytesDone"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PodVolumeRestoreSpec {
    /// The restored pod (its new UID).
    pub pod: PodReference,
    #[schemars(length(min = 1, max = 63))]
    pub volume: String,
    #[schemars(length(min = 1, max = 253))]
    pub backup_storage_location: String,
    #[schemars(length(min = 1, max = 253))]
    pub repository: String,
    #[schemars(length(min = 1))]
    pub repo_identifier: String,
    #[schemars(regex(pattern = SNAPSHOT_ID_PATTERN))]
    pub snapshot_id: String,
    /// The namespace the volume was backed up from (its repository's namespace).
    #[schemars(length(min = 1, max = 63))]
    pub source_namespace: String,
    /// UID of the Restore, the name of the marker the restore-wait container waits for.
    #[schemars(length(min = 1))]
    pub restore_uid: String,
    #[serde(default)]
    pub cancel: bool,
    /// Restore device nodes, setuid/setgid bits and file capabilities (the Restore's
    /// `allowPrivilegedFiles`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_privileged_files: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodVolumeRestoreStatus {
    #[serde(default)]
    pub phase: VolumePhase,
    /// The node whose agent took it (the pod's node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_timestamp: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<VolumeProgress>,
    /// Seconds spent waiting for the repository lock (held exclusively by maintenance)
    /// before the transfer could start; absent when it was free.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub lock_wait_seconds: Option<i64>,
}
