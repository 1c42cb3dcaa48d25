//! Backup hooks of a pod: which commands run before and after its volumes are backed up (its
//! hook annotations, else the Backup's `spec.hooks` entries that select it, as Velero decides),
//! and running them in order through `pods/exec`, each run kept for the Backup's status.

use crate::pod_exec::{self, Ended};
use arca_api::hooks::{
    BackupHooks, HookPhase, HookResult, HookRun, HookScope, OnError, DEFAULT_HOOK_TIMEOUT,
    POST_HOOK_PREFIXES, PRE_HOOK_PREFIXES,
};
use k8s_openapi::api::core::v1::Pod;
use kube::core::{Selector, SelectorExt};
use kube::ResourceExt;
use std::time::Duration;

/// Hook runs kept in a Backup's or Restore's status.
pub const HOOK_RUNS_KEPT: usize = 100;
/// Characters of a hook's output kept in the Backup's status (its log line has more).
pub const STATUS_OUTPUT: usize = 1024;

/// One command to run in a container of a pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    /// The `spec.hooks` entry it comes from, or `annotations`.
    pub source: String,
    pub container: String,
    pub command: Vec<String>,
    pub on_error: OnError,
    pub timeout: Duration,
}

/// The hooks of `pod` for `phase`: those of its annotations if it has any for that phase (a
/// malformed one is an error naming it), else those of every `spec.hooks` entry selecting it.
pub fn of_pod(
    pod: &Pod,
    phase: HookPhase,
    spec: Option<&BackupHooks>,
) -> Result<Vec<Hook>, String> {
    if let Some(hook) = from_annotations(pod, phase)? {
        return Ok(vec![hook]);
    }
    let mut hooks = Vec::new();
    for entry in spec.map(|s| s.resources.as_slice()).unwrap_or_default() {
        if !selects(&entry.scope, pod)? {
            continue;
        }
        let name = &entry.scope.name;
        let list = match phase {
            HookPhase::Pre => &entry.pre,
            HookPhase::Post => &entry.post,
        };
        for h in list {
            let e = &h.exec;
            hooks.push(Hook {
                source: name.clone(),
                container: container_or_first(pod, e.container.as_deref())?,
                command: e.command.clone(),
                on_error: e.on_error.unwrap_or_default(),
                timeout: timeout(e.timeout.as_deref().unwrap_or(DEFAULT_HOOK_TIMEOUT))
                    .map_err(|why| format!("spec.hooks entry {name}: {why}"))?,
            });
        }
    }
    Ok(hooks)
}

/// Whether a `spec.hooks` entry applies to `pod`: its namespace listed, its labels matched.
pub(crate) fn selects(scope: &HookScope, pod: &Pod) -> Result<bool, String> {
    let ns = pod.namespace().unwrap_or_default();
    if !crate::selection::passes(&ns, &scope.included_namespaces, &scope.excluded_namespaces) {
        return Ok(false);
    }
    match &scope.label_selector {
        None => Ok(true),
        Some(sel) => Ok(Selector::try_from(sel.clone())
            .map_err(|e| format!("spec.hooks entry {}: labelSelector: {e}", scope.name))?
            .matches(pod.labels())),
    }
}

/// The hook a pod's annotations give for `phase` (Arca's keys, else Velero's), if any.
fn from_annotations(pod: &Pod, phase: HookPhase) -> Result<Option<Hook>, String> {
    let prefixes = match phase {
        HookPhase::Pre => PRE_HOOK_PREFIXES,
        HookPhase::Post => POST_HOOK_PREFIXES,
    };
    let a = pod.annotations();
    let Some(prefix) = prefixes
        .iter()
        .find(|p| a.contains_key(&format!("{p}command")))
    else {
        return Ok(None);
    };
    let get = |key: &str| a.get(&format!("{prefix}{key}")).map(String::as_str);
    let named = |key: &str, why: String| format!("annotation {prefix}{key}: {why}");
    let raw = get("command").unwrap_or_default();
    let command = parse_command(raw).map_err(|why| named("command", why))?;
    let on_error = match get("on-error") {
        None => OnError::Fail,
        Some("Fail") => OnError::Fail,
        Some("Continue") => OnError::Continue,
        Some(other) => {
            return Err(named(
                "on-error",
                format!("{other:?} is neither Continue nor Fail"),
            ))
        }
    };
    let timeout = timeout(get("timeout").unwrap_or(DEFAULT_HOOK_TIMEOUT))
        .map_err(|why| named("timeout", why))?;
    Ok(Some(Hook {
        source: "annotations".into(),
        container: container_or_first(pod, get("container"))?,
        command,
        on_error,
        timeout,
    }))
}

/// A command annotation as Velero reads it: a JSON array of strings, or one word.
pub(crate) fn parse_command(raw: &str) -> Result<Vec<String>, String> {
    let raw = raw.trim();
    let command: Vec<String> = if raw.starts_with('[') {
        serde_json::from_str(raw).map_err(|e| format!("not a JSON array of strings: {e}"))?
    } else {
        vec![raw.to_string()]
    };
    if command.first().is_none_or(|c| c.is_empty()) {
        return Err("empty command".into());
    }
    Ok(command)
}

pub(crate) fn timeout(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("timeout {text:?}: {e}"))
}

/// The container named, which the pod must have, or the pod's first.
pub(crate) fn container_or_first(pod: &Pod, named: Option<&str>) -> Result<String, String> {
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    match named {
        Some(n) if containers.iter().any(|c| c.name == n) => Ok(n.to_string()),
        Some(n) => Err(format!(
            "pod {}/{} has no container {n:?}",
            pod.namespace().unwrap_or_default(),
            pod.name_any()
        )),
        None => containers
            .first()
            .map(|c| c.name.clone())
            .ok_or_else(|| format!("pod {} has no container", pod.name_any())),
    }
}

/// Run `hooks` of `phase` in `pod`, in order. Returns their runs and, if one failed with
/// `onError: Fail`, why (the hooks after it are not run).
pub async fn run(
    client: &kube::Client,
    pod: &Pod,
    phase: HookPhase,
    hooks: &[Hook],
) -> (Vec<HookRun>, Option<String>) {
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let mut runs = Vec::new();
    for hook in hooks {
        let (result, exit_code, output) = exec(
            client,
            &ns,
            &name,
            &hook.container,
            &hook.command,
            hook.timeout,
        )
        .await;
        tracing::info!(
            pod = %format!("{ns}/{name}"), container = %hook.container, ?phase, ?result, ?exit_code,
            "hook {:?} from {}: {output}", hook.command, hook.source
        );
        let run = HookRun {
            pod: format!("{ns}/{name}"),
            container: hook.container.clone(),
            phase,
            source: hook.source.clone(),
            command: hook.command.clone(),
            result,
            exit_code,
            on_error: hook.on_error,
            output: tail(&output, STATUS_OUTPUT),
        };
        let failed = result != HookResult::Succeeded;
        let fatal = failed && hook.on_error == OnError::Fail;
        let why = fatal.then(|| describe(&run));
        runs.push(run);
        if let Some(why) = why {
            return (runs, Some(why));
        }
    }
    (runs, None)
}

/// Run one hook command through `pods/exec`: its result, exit code, and what it printed
/// (standard output, then standard error) or why it did not run.
pub async fn exec(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: &str,
    command: &[String],
    timeout: Duration,
) -> (HookResult, Option<i32>, String) {
    let out = pod_exec::run(client, namespace, pod, container, command, timeout).await;
    let (result, exit_code) = match &out.ended {
        Ended::Exited(0) => (HookResult::Succeeded, Some(0)),
        Ended::Exited(code) => (HookResult::Failed, Some(*code)),
        Ended::TimedOut => (HookResult::TimedOut, None),
        Ended::NotRun(_) => (HookResult::NotRun, None),
    };
    let output = match &out.ended {
        Ended::NotRun(why) => why.clone(),
        _ => [out.stdout.as_str(), out.stderr.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("\n"),
    };
    (result, exit_code, output)
}

/// A failed run in one line, for the Backup's messages or failure reason.
pub fn describe(run: &HookRun) -> String {
    let how = match (run.result, run.exit_code) {
        (HookResult::Failed, Some(code)) => format!("exited with {code}"),
        (HookResult::TimedOut, _) => "timed out".to_string(),
        (HookResult::NotRun, _) => "could not run".to_string(),
        _ => format!("{:?}", run.result),
    };
    let phase = match run.phase {
        HookPhase::Pre => "pre",
        HookPhase::Post => "post",
    };
    let output = run.output.replace('\n', " ").trim().to_string();
    format!(
        "{phase} hook {:?} in {} container {} {how}: {output}",
        run.command, run.pod, run.container
    )
}

/// The end of `text`, at most `max` bytes, cut at a character boundary.
pub(crate) fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_api::hooks::{BackupHook, BackupResourceHookSpec, ExecHook};
    use serde_json::json;

    fn pod(annotations: serde_json::Value, labels: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "db-0", "namespace": "shop", "annotations": annotations, "labels": labels},
            "spec": {"containers": [{"name": "postgres"}, {"name": "sidecar"}]}
        }))
        .unwrap()
    }

    fn entry(name: &str, ns: &[&str], labels: Option<serde_json::Value>) -> BackupResourceHookSpec {
        BackupResourceHookSpec {
            scope: HookScope {
                name: name.into(),
                included_namespaces: ns.iter().map(|s| s.to_string()).collect(),
                label_selector: labels
                    .map(|l| serde_json::from_value(json!({"matchLabels": l})).unwrap()),
                ..Default::default()
            },
            pre: vec![BackupHook {
                exec: ExecHook {
                    container: Some("sidecar".into()),
                    command: vec!["sync".into()],
                    on_error: Some(OnError::Continue),
                    timeout: Some("2m".into()),
                },
            }],
            ..Default::default()
        }
    }

    #[test]
    fn annotations_as_velero_reads_them_win_over_the_spec() {
        let p = pod(
            json!({
                "pre.hook.backup.velero.io/command": r#"["/bin/sh", "-c", "echo frozen > marker"]"#,
                "pre.hook.backup.velero.io/timeout": "45s",
                "post.hook.backup.arca.dev/command": "thaw",
                "post.hook.backup.arca.dev/container": "sidecar",
                "post.hook.backup.arca.dev/on-error": "Continue",
            }),
            json!({}),
        );
        let spec = BackupHooks {
            resources: vec![entry("all", &[], None)],
        };
        let pre = of_pod(&p, HookPhase::Pre, Some(&spec)).unwrap();
        assert_eq!(
            pre,
            vec![Hook {
                source: "annotations".into(),
                container: "postgres".into(),
                command: vec!["/bin/sh".into(), "-c".into(), "echo frozen > marker".into()],
                on_error: OnError::Fail,
                timeout: Duration::from_secs(45),
            }]
        );
        let post = of_pod(&p, HookPhase::Post, Some(&spec)).unwrap();
        assert_eq!(post[0].command, vec!["thaw".to_string()]);
        assert_eq!(
            (
                post[0].container.as_str(),
                post[0].on_error,
                post[0].timeout
            ),
            ("sidecar", OnError::Continue, Duration::from_secs(30))
        );
    }

    #[test]
    fn spec_entries_select_by_namespace_and_labels() {
        let p = pod(json!({}), json!({"app": "db"}));
        let spec = BackupHooks {
            resources: vec![
                entry("here", &["shop"], Some(json!({"app": "db"}))),
                entry("other-ns", &["bank"], None),
                entry("other-labels", &[], Some(json!({"app": "web"}))),
                entry("everywhere", &["*"], None),
            ],
        };
        let pre = of_pod(&p, HookPhase::Pre, Some(&spec)).unwrap();
        let sources: Vec<_> = pre.iter().map(|h| h.source.as_str()).collect();
        assert_eq!(sources, ["here", "everywhere"]);
        assert_eq!(pre[0].timeout, Duration::from_secs(120));
        assert!(of_pod(&p, HookPhase::Post, Some(&spec)).unwrap().is_empty());
        assert!(of_pod(&p, HookPhase::Pre, None).unwrap().is_empty());
    }

    #[test]
    fn malformed_annotations_are_named() {
        for (key, value, says) in [
            ("command", "[not json", "pre.hook.backup.arca.dev/command"),
            ("command", "[]", "empty command"),
            ("on-error", "Maybe", "neither Continue nor Fail"),
            ("timeout", "soon", "timeout \"soon\""),
            ("container", "nope", "has no container \"nope\""),
        ] {
            let mut a = json!({"pre.hook.backup.arca.dev/command": "true"});
            a[format!("pre.hook.backup.arca.dev/{key}")] = json!(value);
            let err = of_pod(&pod(a, json!({})), HookPhase::Pre, None).unwrap_err();
            assert!(err.contains(says), "{key}={value}: {err}");
        }
    }

    #[test]
    fn a_failure_is_said_in_one_line_and_long_output_is_cut() {
        let run = HookRun {
            pod: "shop/db-0".into(),
            container: "postgres".into(),
            phase: HookPhase::Pre,
            source: "annotations".into(),
            command: vec!["false".into()],
            result: HookResult::Failed,
            exit_code: Some(1),
            on_error: OnError::Fail,
            output: "line one\nline two".into(),
        };
        assert_eq!(
            describe(&run),
            "pre hook [\"false\"] in shop/db-0 container postgres exited with 1: line one line two"
        );
        let long = "é".repeat(1000);
        let cut = tail(&long, 101);
        assert!(cut.starts_with('…') && cut.len() <= 101 + '…'.len_utf8());
    }
}
