//! Restore hooks: init containers added to restored pods (before or after restore-wait) and
//! commands run in a restored pod's containers once it is up, through `pods/exec`. Given by
//! the backed-up pod's annotations (Velero's keys, or Arca's own) or by `spec.hooks` on the
//! Restore, as Velero has them; the annotations win for a pod that has them.

use crate::common::*;
use crate::hooks::{HookResult, OnError};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Prefixes of the pod annotations of an init-container hook: `<prefix>container-image`,
/// `<prefix>container-name`, `<prefix>command`, and (Arca's only) `<prefix>position`.
pub const INIT_RESTORE_HOOK_PREFIXES: [&str; 2] = [
    "init.hook.restore.arca.dev/",
    "init.hook.restore.velero.io/",
];
/// Prefixes of the pod annotations of an exec hook: `<prefix>container`, `<prefix>command`,
/// `<prefix>on-error`, `<prefix>exec-timeout`, `<prefix>wait-timeout`, `<prefix>wait-for-ready`.
pub const POST_RESTORE_HOOK_PREFIXES: [&str; 2] = [
    "post.hook.restore.arca.dev/",
    "post.hook.restore.velero.io/",
];

/// `spec.hooks` of a Restore: hooks for the restored pods each entry selects.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreHooks {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<RestoreResourceHookSpec>,
}

/// Hooks for the restored pods in some namespaces, with some labels.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreResourceHookSpec {
    /// The restored pods it applies to (their namespaces after the mapping).
    #[serde(flatten)]
    pub scope: crate::hooks::HookScope,
    /// The hooks, in order: each an `init` or an `exec`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_hooks: Vec<RestoreHook>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreHook {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<InitRestoreHook>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecRestoreHook>,
}

/// Init containers added to the restored pod.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InitRestoreHook {
    /// Containers as a pod spec has them (`name` and `image` at least).
    #[schemars(schema_with = "containers_schema")]
    pub init_containers: Vec<serde_json::Value>,
    /// Whether they run before the restore-wait container (on the empty volumes) or after it
    /// (on the restored data; the default, as Velero places them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<InitHookPosition>,
    /// How long the Restore waits for them to end before recording them as timed out
    /// (default: the Restore's podVolumeOperationTimeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub timeout: Option<String>,
}

/// Container specs are the API server's to validate: kept as they are written.
fn containers_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
    })
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum InitHookPosition {
    BeforeRestoreWait,
    #[default]
    AfterRestoreWait,
}

/// A command run in a container of the restored pod once that container is running (and
/// the pod Ready, with `waitForReady`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecRestoreHook {
    /// The container (default: the pod's first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The program and its arguments (no shell unless you name one).
    #[schemars(length(min = 1))]
    pub command: Vec<String>,
    /// What a failure does (default Continue, as Velero): `Fail` runs none of the pod's later
    /// hooks. Either way the Restore ends PartiallyFailed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<OnError>,
    /// How long it may run (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub exec_timeout: Option<String>,
    /// How long to wait for the container (default: the Restore's podVolumeOperationTimeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub wait_timeout: Option<String>,
    /// Wait for the pod's Ready condition too, not only for the container to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for_ready: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RestoreHookKind {
    Init,
    Exec,
}

/// One restore hook's outcome, in a Restore's status.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreHookRun {
    /// `<namespace>/<pod>` of the restored pod.
    pub pod: String,
    /// The init container, or the container the command ran in.
    pub container: String,
    pub kind: RestoreHookKind,
    /// The `spec.hooks` entry it came from, or `annotations`.
    pub source: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    pub result: HookResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<OnError>,
    /// When it ended (or was given up on).
    pub completion_timestamp: Time,
    /// The end of what it printed (standard output, then standard error), the kubelet's
    /// reason for an init container, or why it did not run.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
}
