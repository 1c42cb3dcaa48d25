//! Backup hooks: commands run in a pod's containers, through `pods/exec`, before and after its
//! volumes are backed up (a database flushed or frozen, then thawed). Given by annotations on
//! the pod (Velero's keys, or Arca's own) or by `spec.hooks` on the Backup or Schedule, as
//! Velero has them; the annotations win for a pod that has them.

use crate::common::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Prefixes of the pod annotations of a pre hook: `<prefix>container`, `<prefix>command`,
/// `<prefix>on-error`, `<prefix>timeout`. Arca's first; Velero's as its users have them.
pub const PRE_HOOK_PREFIXES: [&str; 2] =
    ["pre.hook.backup.arca.dev/", "pre.hook.backup.velero.io/"];
/// The same for a post hook.
pub const POST_HOOK_PREFIXES: [&str; 2] =
    ["post.hook.backup.arca.dev/", "post.hook.backup.velero.io/"];
/// Pod annotation with a command whose standard output is backed up as a file (a database
/// dump): a JSON array, or one word. K8up's key (a shell command line) is honoured too.
pub const BACKUP_COMMAND_ANNOTATION: &str = "backup.arca.dev/backup-command";
pub const K8UP_BACKUP_COMMAND_ANNOTATION: &str = "k8up.io/backupcommand";
/// The container to run it in (default: the pod's first), as Arca and K8up spell it.
pub const BACKUP_COMMAND_CONTAINER_ANNOTATIONS: [&str; 2] = [
    "backup.arca.dev/backup-command-container",
    "k8up.io/backupcommand-container",
];
/// The file's name in the snapshot (Arca), or its extension after `<pod>-<container>` (K8up);
/// default `<pod>-<container>`.
pub const BACKUP_COMMAND_FILE_ANNOTATION: &str = "backup.arca.dev/backup-command-file";
pub const K8UP_FILE_EXTENSION_ANNOTATION: &str = "k8up.io/file-extension";

/// A hook's timeout when none is given (Velero's).
pub const DEFAULT_HOOK_TIMEOUT: &str = "30s";

/// `spec.hooks` of a Backup: hooks for the pods each entry selects.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupHooks {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<BackupResourceHookSpec>,
}

/// The pods a `spec.hooks` entry (of a Backup or a Restore) applies to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookScope {
    /// A name for the entry, shown with its runs.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespaces whose pods it applies to (`*` or empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = NAMESPACE_OR_ALL_PATTERN)))]
    pub included_namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = NAMESPACE_OR_ALL_PATTERN)))]
    pub excluded_namespaces: Vec<String>,
    /// Only pods with these labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
}

/// Hooks for the pods in some namespaces, with some labels.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupResourceHookSpec {
    #[serde(flatten)]
    pub scope: HookScope,
    /// Run before the pod's volumes are backed up, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre: Vec<BackupHook>,
    /// Run once the pod's volumes are backed up, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post: Vec<BackupHook>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupHook {
    pub exec: ExecHook,
}

/// A command run in a container of the pod.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecHook {
    /// The container (default: the pod's first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The program and its arguments (no shell unless you name one).
    #[schemars(length(min = 1))]
    pub command: Vec<String>,
    /// What a failure does (default Fail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<OnError>,
    /// How long it may run (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub timeout: Option<String>,
}

/// What a failed hook does to the Backup: `Fail` ends it Failed with the hook's output;
/// `Continue` goes on and ends it PartiallyFailed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum OnError {
    Continue,
    #[default]
    Fail,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum HookPhase {
    Pre,
    Post,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum HookResult {
    Succeeded,
    /// It exited with a non-zero code.
    Failed,
    /// It did not end within its timeout.
    TimedOut,
    /// It could not be started (no such container or program).
    NotRun,
}

/// One hook that ran, in a Backup's status.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookRun {
    /// `<namespace>/<pod>`.
    pub pod: String,
    pub container: String,
    pub phase: HookPhase,
    /// The `spec.hooks` entry it came from, or `annotations`.
    pub source: String,
    pub command: Vec<String>,
    pub result: HookResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub on_error: OnError,
    /// The end of what it printed (standard output, then standard error), or why it did not
    /// run.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
}

/// A backup command that ran: its output stored as one file, in a snapshot of its own in the
/// pod's namespace's repository (tagged with the Backup, the pod and the container).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupCommandRun {
    /// `<namespace>/<pod>`.
    pub pod: String,
    pub container: String,
    pub command: Vec<String>,
    /// The file's path in the snapshot.
    pub file: String,
    pub result: HookResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The snapshot, when the command succeeded (one that failed leaves none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// Bytes it printed on standard output.
    #[schemars(range(min = 0))]
    pub bytes: i64,
    /// The end of its standard error, or why it did not run.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
}
