//! Restore hooks of a restored pod: the init containers it gets and where they go (its init
//! hook annotations, else the Restore's `spec.hooks` entries selecting it), the commands run in
//! it through `pods/exec` once it is up (its exec hook annotations, else the entries'), and
//! their outcomes for the Restore's status, read from the pod as the kubelet reports it.
//! Annotations and entries are read the same way at creation and afterwards (from the pod
//! as created), so nothing but the pod's reference needs keeping between reconciles.

use crate::hooks::{container_or_first, parse_command, tail, timeout, STATUS_OUTPUT};
use arca_api::common::now;
use arca_api::hooks::{HookResult, OnError};
use arca_api::restore::RESTORE_WAIT_CONTAINER;
use arca_api::restore_hooks::{
    InitHookPosition, RestoreHookKind, RestoreHookRun, RestoreHooks, INIT_RESTORE_HOOK_PREFIXES,
    POST_RESTORE_HOOK_PREFIXES,
};
use k8s_openapi::api::core::v1::{Container, ContainerState, Pod};
use kube::ResourceExt;
use serde_json::{json, Value};
use std::time::Duration;

/// An exec hook's run time when none is given (Velero's).
const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(30);
/// The name of an init container given by annotations without one.
const DEFAULT_INIT_NAME: &str = "restore-hook";

/// Init containers to add to a restored pod.
#[derive(Debug, Clone, PartialEq)]
pub struct InitHook {
    /// The `spec.hooks` entry it comes from, or `annotations`.
    pub source: String,
    /// Each with a name and an image.
    pub containers: Vec<Value>,
    pub position: InitHookPosition,
    /// How long to wait for them to end (unset: the Restore's volume timeout).
    pub timeout: Option<Duration>,
}

/// A command to run in a container of the restored pod once it is up.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecHook {
    pub source: String,
    pub container: String,
    pub command: Vec<String>,
    pub on_error: OnError,
    pub exec_timeout: Duration,
    /// How long to wait for the container (unset: the Restore's volume timeout).
    pub wait_timeout: Option<Duration>,
    pub wait_for_ready: bool,
}

/// Every restore hook of one pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodHooks {
    pub init: Vec<InitHook>,
    pub exec: Vec<ExecHook>,
}

impl PodHooks {
    pub fn is_empty(&self) -> bool {
        self.init.is_empty() && self.exec.is_empty()
    }

    /// The init containers' names with the hook each comes from.
    fn init_containers(&self) -> impl Iterator<Item = (&InitHook, &str)> {
        self.init.iter().flat_map(|h| {
            h.containers
                .iter()
                .map(move |c| (h, c["name"].as_str().unwrap_or_default()))
        })
    }
}

/// The restore hooks of `pod` (as it is created, namespace mapped): per kind, those of its
/// annotations if it has any of that kind (a malformed one is an error naming it), else
/// those of every `spec.hooks` entry selecting it. An annotation's init container gets each
/// of `restored_volumes` mounted at `/restores/<volume>`, as restore-wait has them.
pub fn of_pod(
    pod: &Pod,
    spec: Option<&RestoreHooks>,
    restored_volumes: &[String],
) -> Result<PodHooks, String> {
    let init_annotated = init_from_annotations(pod, restored_volumes)?;
    let exec_annotated = exec_from_annotations(pod)?;
    let mut hooks = PodHooks::default();
    for entry in spec.map(|s| s.resources.as_slice()).unwrap_or_default() {
        if !crate::hooks::selects(&entry.scope, pod)? {
            continue;
        }
        let source = &entry.scope.name;
        let named = |why: String| format!("spec.hooks entry {source}: {why}");
        for h in &entry.post_hooks {
            if let Some(init) = &h.init {
                for c in &init.init_containers {
                    check_container(c).map_err(named)?;
                }
                hooks.init.push(InitHook {
                    source: source.clone(),
                    containers: init.init_containers.clone(),
                    position: init.position.unwrap_or_default(),
                    timeout: init
                        .timeout
                        .as_deref()
                        .map(timeout)
                        .transpose()
                        .map_err(named)?,
                });
            }
            if let Some(e) = &h.exec {
                hooks.exec.push(ExecHook {
                    source: source.clone(),
                    container: container_or_first(pod, e.container.as_deref())?,
                    command: e.command.clone(),
                    on_error: e.on_error.unwrap_or(OnError::Continue),
                    exec_timeout: match &e.exec_timeout {
                        Some(t) => timeout(t).map_err(named)?,
                        None => DEFAULT_EXEC_TIMEOUT,
                    },
                    wait_timeout: e
                        .wait_timeout
                        .as_deref()
                        .map(timeout)
                        .transpose()
                        .map_err(named)?,
                    wait_for_ready: e.wait_for_ready.unwrap_or(false),
                });
            }
        }
    }
    if let Some(init) = init_annotated {
        hooks.init = vec![init];
    }
    if let Some(exec) = exec_annotated {
        hooks.exec = vec![exec];
    }
    let mut names: Vec<&str> = hooks.init_containers().map(|(_, n)| n).collect();
    names.sort_unstable();
    if let Some(twice) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!(
            "two restore hook init containers are named {:?}",
            twice[0]
        ));
    }
    Ok(hooks)
}

/// A container spec an init hook may add: a name (not restore-wait's) and an image.
fn check_container(c: &Value) -> Result<(), String> {
    let parsed: Container = serde_json::from_value(c.clone())
        .map_err(|e| format!("an init container is not a container: {e}"))?;
    if parsed.name.is_empty() || parsed.name == RESTORE_WAIT_CONTAINER {
        return Err(format!(
            "an init container may not be named {:?}",
            parsed.name
        ));
    }
    if parsed.image.as_deref().is_none_or(str::is_empty) {
        return Err(format!("init container {} has no image", parsed.name));
    }
    Ok(())
}

/// The annotation keys' prefix the pod uses for a kind of hook (Arca's first), if any.
fn prefix_of<'a>(pod: &Pod, prefixes: &[&'a str], required: &[&str]) -> Option<&'a str> {
    let a = pod.annotations();
    prefixes
        .iter()
        .find(|p| required.iter().any(|k| a.contains_key(&format!("{p}{k}"))))
        .copied()
}

fn init_from_annotations(
    pod: &Pod,
    restored_volumes: &[String],
) -> Result<Option<InitHook>, String> {
    let Some(prefix) = prefix_of(
        pod,
        &INIT_RESTORE_HOOK_PREFIXES,
        &["container-image", "command"],
    ) else {
        return Ok(None);
    };
    let a = pod.annotations();
    let get = |key: &str| a.get(&format!("{prefix}{key}")).map(String::as_str);
    let named = |key: &str, why: String| format!("annotation {prefix}{key}: {why}");
    let image = get("container-image")
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| named("container-image", "missing".into()))?;
    let command =
        parse_command(get("command").unwrap_or_default()).map_err(|why| named("command", why))?;
    // Arca's own key, under either prefix.
    let position = INIT_RESTORE_HOOK_PREFIXES
        .iter()
        .find_map(|p| a.get(&format!("{p}position")))
        .map(|p| match p.as_str() {
            "BeforeRestoreWait" => Ok(InitHookPosition::BeforeRestoreWait),
            "AfterRestoreWait" => Ok(InitHookPosition::AfterRestoreWait),
            other => Err(named(
                "position",
                format!("{other:?} is neither BeforeRestoreWait nor AfterRestoreWait"),
            )),
        })
        .transpose()?
        .unwrap_or_default();
    let mounts: Vec<Value> = restored_volumes
        .iter()
        .map(|v| json!({"name": v, "mountPath": format!("/restores/{v}")}))
        .collect();
    let container = json!({
        "name": get("container-name").unwrap_or(DEFAULT_INIT_NAME),
        "image": image,
        "command": command,
        "volumeMounts": mounts,
    });
    check_container(&container).map_err(|why| named("container-name", why))?;
    Ok(Some(InitHook {
        source: "annotations".into(),
        containers: vec![container],
        position,
        timeout: None,
    }))
}

fn exec_from_annotations(pod: &Pod) -> Result<Option<ExecHook>, String> {
    let Some(prefix) = prefix_of(pod, &POST_RESTORE_HOOK_PREFIXES, &["command"]) else {
        return Ok(None);
    };
    let a = pod.annotations();
    let get = |key: &str| a.get(&format!("{prefix}{key}")).map(String::as_str);
    let named = |key: &str, why: String| format!("annotation {prefix}{key}: {why}");
    let command =
        parse_command(get("command").unwrap_or_default()).map_err(|why| named("command", why))?;
    let on_error = match get("on-error") {
        None | Some("Continue") => OnError::Continue,
        Some("Fail") => OnError::Fail,
        Some(other) => {
            return Err(named(
                "on-error",
                format!("{other:?} is neither Continue nor Fail"),
            ))
        }
    };
    let duration = |key: &str| {
        get(key)
            .map(timeout)
            .transpose()
            .map_err(|why| named(key, why))
    };
    let wait_for_ready = match get("wait-for-ready") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(named("wait-for-ready", format!("{other:?} is not a bool"))),
    };
    Ok(Some(ExecHook {
        source: "annotations".into(),
        container: container_or_first(pod, get("container"))?,
        command,
        on_error,
        exec_timeout: duration("exec-timeout")?.unwrap_or(DEFAULT_EXEC_TIMEOUT),
        wait_timeout: duration("wait-timeout")?,
        wait_for_ready,
    }))
}

/// Add the init hooks' containers to a pod about to be created: those before restore-wait
/// first, then restore-wait (if the pod has it), then those after it, then the pod's own.
/// A container of the same name already there (a backup of a restored pod) is replaced.
pub fn add_init_containers(pod: &mut Value, hooks: &PodHooks) {
    if hooks.init.is_empty() {
        return;
    }
    let spec = &mut pod["spec"];
    let mut list: Vec<Value> = spec["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ours: Vec<&str> = hooks.init_containers().map(|(_, n)| n).collect();
    list.retain(|c| !c["name"].as_str().is_some_and(|n| ours.contains(&n)));
    let of = |position: InitHookPosition| -> Vec<Value> {
        hooks
            .init
            .iter()
            .filter(|h| h.position == position)
            .flat_map(|h| h.containers.iter().cloned())
            .collect()
    };
    let waits = list
        .first()
        .is_some_and(|c| c["name"] == RESTORE_WAIT_CONTAINER);
    let at = usize::from(waits);
    list.splice(at..at, of(InitHookPosition::AfterRestoreWait));
    list.splice(0..0, of(InitHookPosition::BeforeRestoreWait));
    spec["initContainers"] = Value::Array(list);
}

/// Where a restored pod's hooks are.
#[derive(Debug)]
pub enum Settled {
    /// Some have not ended and may still: look again later.
    Waiting,
    /// All have ended (run, failed, or given up on): their outcomes, in order.
    Done(Vec<RestoreHookRun>),
}

/// The outcome of `pod`'s restore hooks, running its exec hooks once their containers are
/// up. `waited` is how long the Restore has been running; hooks without a timeout of their
/// own give up after `default_wait`. All of a pod's hooks are recorded together, so a hook
/// is never run twice by a reconcile that has to look again.
pub async fn settle(
    client: &kube::Client,
    pod: &Pod,
    hooks: &PodHooks,
    waited: Duration,
    default_wait: Duration,
) -> Settled {
    let status = pod.status.clone().unwrap_or_default();
    let pod_name = format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any());
    let gone = pod.metadata.deletion_timestamp.is_some()
        || matches!(status.phase.as_deref(), Some("Failed" | "Succeeded"));
    let run =
        |container: &str, kind, source: &str, result, exit_code, output: String| RestoreHookRun {
            pod: pod_name.clone(),
            container: container.to_string(),
            kind,
            source: source.to_string(),
            command: Vec::new(),
            result,
            exit_code,
            on_error: None,
            completion_timestamp: now(),
            output: tail(&output, STATUS_OUTPUT),
        };
    let mut runs = Vec::new();
    // Init containers: what the kubelet says of each.
    let init_statuses = status.init_container_statuses.clone().unwrap_or_default();
    for (hook, name) in hooks.init_containers() {
        let st = init_statuses.iter().find(|s| s.name == name);
        let ended = st.and_then(|s| s.state.as_ref()).and_then(terminated);
        let given_up = waited > hook.timeout.unwrap_or(default_wait);
        let r = match ended {
            Some((code, why)) => {
                let result = if code == 0 {
                    HookResult::Succeeded
                } else {
                    HookResult::Failed
                };
                run(
                    name,
                    RestoreHookKind::Init,
                    &hook.source,
                    result,
                    Some(code),
                    why,
                )
            }
            None if gone => run(
                name,
                RestoreHookKind::Init,
                &hook.source,
                HookResult::NotRun,
                None,
                format!("the pod ended ({}) before it ran", phase_or_deleted(pod)),
            ),
            None if given_up => {
                // Restarted by the kubelet after failing: say how it last ended.
                let last = st.and_then(|s| s.last_state.as_ref()).and_then(terminated);
                run(
                    name,
                    RestoreHookKind::Init,
                    &hook.source,
                    HookResult::TimedOut,
                    last.as_ref().map(|(c, _)| *c),
                    match last {
                        Some((_, why)) => format!("still not done; it last ended: {why}"),
                        None => "still not done".into(),
                    },
                )
            }
            None => return Settled::Waiting,
        };
        runs.push(r);
    }
    // Exec hooks: only in a pod whose init hooks succeeded, once their containers are up.
    let init_failed = runs.iter().find(|r| r.result != HookResult::Succeeded);
    let ready = status
        .conditions
        .as_ref()
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let running = |c: &str| {
        status
            .container_statuses
            .as_ref()
            .and_then(|s| s.iter().find(|s| s.name == c))
            .and_then(|s| s.state.as_ref())
            .is_some_and(|s| s.running.is_some())
    };
    let up = |h: &ExecHook| running(&h.container) && (ready || !h.wait_for_ready);
    let blocked = init_failed.is_some() || gone;
    if !blocked
        && hooks
            .exec
            .iter()
            .any(|h| !up(h) && waited <= h.wait_timeout.unwrap_or(default_wait))
    {
        return Settled::Waiting;
    }
    let why_not = init_failed.map(|r| format!("init container {} did not succeed", r.container));
    let mut stopped: Option<String> = None;
    for h in &hooks.exec {
        let mut r = run(
            &h.container,
            RestoreHookKind::Exec,
            &h.source,
            HookResult::NotRun,
            None,
            String::new(),
        );
        r.command = h.command.clone();
        r.on_error = Some(h.on_error);
        if let Some(why) = why_not.clone().or_else(|| stopped.clone()) {
            r.output = why;
        } else if gone {
            r.output = format!("the pod ended ({}) before it ran", phase_or_deleted(pod));
        } else if !up(h) {
            r.result = HookResult::TimedOut;
            r.output = format!(
                "container {} was not {} within the wait timeout",
                h.container,
                if h.wait_for_ready {
                    "running and the pod Ready"
                } else {
                    "running"
                }
            );
        } else {
            let (ns, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
            let (result, exit_code, output) =
                crate::hooks::exec(client, &ns, &name, &h.container, &h.command, h.exec_timeout)
                    .await;
            tracing::info!(
                pod = %pod_name, container = %h.container, ?result, ?exit_code,
                "restore exec hook {:?} from {}: {output}", h.command, h.source
            );
            r.result = result;
            r.exit_code = exit_code;
            r.output = tail(&output, STATUS_OUTPUT);
            r.completion_timestamp = now();
            if result != HookResult::Succeeded && h.on_error == OnError::Fail {
                stopped = Some(format!(
                    "an earlier hook ({:?} in container {}) failed with onError Fail",
                    h.command, h.container
                ));
            }
        }
        runs.push(r);
    }
    Settled::Done(runs)
}

/// The outcome of the hooks of a restored pod deleted (or replaced) before they ended.
pub fn pod_gone(pod: &arca_api::PodReference) -> RestoreHookRun {
    RestoreHookRun {
        pod: format!("{}/{}", pod.namespace, pod.name),
        container: String::new(),
        kind: RestoreHookKind::Exec,
        source: String::new(),
        command: Vec::new(),
        result: HookResult::NotRun,
        exit_code: None,
        on_error: None,
        completion_timestamp: now(),
        output: "the restored pod was deleted before its hooks ended".into(),
    }
}

/// An init container's exit code and the kubelet's words for it, if it has ended.
fn terminated(state: &ContainerState) -> Option<(i32, String)> {
    let t = state.terminated.as_ref()?;
    let why = [t.reason.as_deref(), t.message.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(": ");
    Some((t.exit_code, why))
}

fn phase_or_deleted(pod: &Pod) -> String {
    if pod.metadata.deletion_timestamp.is_some() {
        return "deleted".into();
    }
    pod.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "gone".into())
}

/// A hook that did not succeed, in one line, for the Restore's messages.
pub fn describe(run: &RestoreHookRun) -> String {
    let how = match (run.result, run.exit_code) {
        (HookResult::Failed, Some(code)) => format!("exited with {code}"),
        (HookResult::TimedOut, _) => "timed out".to_string(),
        (HookResult::NotRun, _) => "did not run".to_string(),
        _ => format!("{:?}", run.result),
    };
    let what = match run.kind {
        RestoreHookKind::Init => format!("init container {}", run.container),
        RestoreHookKind::Exec => {
            format!("exec hook {:?} in container {}", run.command, run.container)
        }
    };
    let output = run.output.replace('\n', " ").trim().to_string();
    format!("restore hook of pod {}: {what} {how}: {output}", run.pod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_api::restore_hooks::{
        ExecRestoreHook, InitRestoreHook, RestoreHook, RestoreResourceHookSpec,
    };

    fn pod(annotations: Value, labels: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "db-0", "namespace": "shop", "annotations": annotations, "labels": labels},
            "spec": {"containers": [{"name": "postgres"}, {"name": "sidecar"}]}
        }))
        .unwrap()
    }

    fn spec_with(init_name: &str, position: Option<InitHookPosition>) -> RestoreHooks {
        RestoreHooks {
            resources: vec![RestoreResourceHookSpec {
                scope: arca_api::hooks::HookScope {
                    name: "db".into(),
                    included_namespaces: vec!["shop".into()],
                    label_selector: Some(
                        serde_json::from_value(json!({"matchLabels": {"app": "db"}})).unwrap(),
                    ),
                    ..Default::default()
                },
                post_hooks: vec![
                    RestoreHook {
                        init: Some(InitRestoreHook {
                            init_containers: vec![json!({"name": init_name, "image": "busybox"})],
                            position,
                            timeout: Some("2m".into()),
                        }),
                        exec: None,
                    },
                    RestoreHook {
                        init: None,
                        exec: Some(ExecRestoreHook {
                            container: Some("sidecar".into()),
                            command: vec!["import".into()],
                            wait_for_ready: Some(true),
                            ..Default::default()
                        }),
                    },
                ],
            }],
        }
    }

    #[test]
    fn velero_annotations_as_velero_reads_them_win_per_kind_over_the_spec() {
        let p = pod(
            json!({
                "init.hook.restore.velero.io/container-image": "alpine:3",
                "init.hook.restore.velero.io/container-name": "seed",
                "init.hook.restore.velero.io/command": r#"["/bin/sh", "-c", "ls /restores/data"]"#,
            }),
            json!({"app": "db"}),
        );
        let hooks = of_pod(&p, Some(&spec_with("from-spec", None)), &["data".into()]).unwrap();
        assert_eq!(hooks.init.len(), 1);
        assert_eq!(hooks.init[0].source, "annotations");
        assert_eq!(hooks.init[0].position, InitHookPosition::AfterRestoreWait);
        assert_eq!(
            hooks.init[0].containers[0],
            json!({"name": "seed", "image": "alpine:3",
                   "command": ["/bin/sh", "-c", "ls /restores/data"],
                   "volumeMounts": [{"name": "data", "mountPath": "/restores/data"}]})
        );
        // No exec annotation: the spec's exec hook applies.
        assert_eq!(
            hooks.exec,
            vec![ExecHook {
                source: "db".into(),
                container: "sidecar".into(),
                command: vec!["import".into()],
                on_error: OnError::Continue,
                exec_timeout: Duration::from_secs(30),
                wait_timeout: None,
                wait_for_ready: true,
            }]
        );
        let p = pod(
            json!({
                "post.hook.restore.velero.io/command": "reindex",
                "post.hook.restore.velero.io/on-error": "Fail",
                "post.hook.restore.velero.io/exec-timeout": "2m",
                "post.hook.restore.velero.io/wait-timeout": "5m",
                "post.hook.restore.velero.io/wait-for-ready": "true",
            }),
            json!({"app": "db"}),
        );
        let hooks = of_pod(&p, Some(&spec_with("from-spec", None)), &[]).unwrap();
        assert_eq!(hooks.init[0].source, "db");
        assert_eq!(hooks.init[0].timeout, Some(Duration::from_secs(120)));
        let e = &hooks.exec[0];
        assert_eq!(
            (
                e.source.as_str(),
                e.container.as_str(),
                e.on_error,
                e.exec_timeout,
                e.wait_timeout,
                e.wait_for_ready
            ),
            (
                "annotations",
                "postgres",
                OnError::Fail,
                Duration::from_secs(120),
                Some(Duration::from_secs(300)),
                true
            )
        );
        // Another namespace or other labels: nothing.
        let other = pod(json!({}), json!({"app": "web"}));
        assert!(of_pod(&other, Some(&spec_with("x", None)), &[])
            .unwrap()
            .is_empty());
    }

    #[test]
    fn malformed_hooks_are_named() {
        for (annotations, says) in [
            (
                json!({"init.hook.restore.velero.io/command": "seed"}),
                "container-image: missing",
            ),
            (
                json!({"init.hook.restore.arca.dev/container-image": "a", "init.hook.restore.arca.dev/command": "x",
                    "init.hook.restore.arca.dev/position": "Sideways"}),
                "neither BeforeRestoreWait",
            ),
            (
                json!({"init.hook.restore.velero.io/container-image": "a", "init.hook.restore.velero.io/command": "x",
                    "init.hook.restore.velero.io/container-name": "restore-wait"}),
                "may not be named \"restore-wait\"",
            ),
            (
                json!({"post.hook.restore.velero.io/command": "[oops"}),
                "post.hook.restore.velero.io/command",
            ),
            (
                json!({"post.hook.restore.velero.io/command": "x", "post.hook.restore.velero.io/on-error": "Maybe"}),
                "neither Continue nor Fail",
            ),
            (
                json!({"post.hook.restore.velero.io/command": "x", "post.hook.restore.velero.io/wait-timeout": "soon"}),
                "wait-timeout",
            ),
            (
                json!({"post.hook.restore.velero.io/command": "x", "post.hook.restore.velero.io/container": "nope"}),
                "no container \"nope\"",
            ),
        ] {
            let err = of_pod(&pod(annotations.clone(), json!({})), None, &[]).unwrap_err();
            assert!(err.contains(says), "{annotations}: {err}");
        }
        let mut spec = spec_with("x", None);
        spec.resources[0].post_hooks[0]
            .init
            .as_mut()
            .unwrap()
            .init_containers = vec![json!({"name": "x"})];
        let err = of_pod(&pod(json!({}), json!({"app": "db"})), Some(&spec), &[]).unwrap_err();
        assert_eq!(err, "spec.hooks entry db: init container x has no image");
    }

    #[test]
    fn init_hooks_go_before_or_after_restore_wait_as_asked() {
        let mut spec = spec_with("after", None);
        let mut before = spec.resources[0].post_hooks[0].clone();
        let init = before.init.as_mut().unwrap();
        init.init_containers = vec![json!({"name": "before", "image": "busybox"})];
        init.position = Some(InitHookPosition::BeforeRestoreWait);
        spec.resources[0].post_hooks.push(before);
        let p = pod(json!({}), json!({"app": "db"}));
        let hooks = of_pod(&p, Some(&spec), &[]).unwrap();
        let names = |v: &Value| -> Vec<String> {
            v["spec"]["initContainers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect()
        };
        let mut with_wait = json!({"spec": {"initContainers": [{"name": "restore-wait"}, {"name": "migrate"}, {"name": "after"}]}});
        add_init_containers(&mut with_wait, &hooks);
        assert_eq!(
            names(&with_wait),
            ["before", "restore-wait", "after", "migrate"]
        );
        let mut without = json!({"spec": {"containers": []}});
        add_init_containers(&mut without, &hooks);
        assert_eq!(names(&without), ["before", "after"]);
    }

    fn client() -> kube::Client {
        arca_storage::install_tls_provider();
        let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    fn with_status(status: Value) -> Pod {
        let mut p = pod(json!({}), json!({"app": "db"}));
        p.status = Some(serde_json::from_value(status).unwrap());
        p
    }

    #[tokio::test]
    async fn outcomes_come_from_the_kubelets_statuses_and_hooks_wait_for_their_containers() {
        let hooks = of_pod(
            &pod(json!({}), json!({"app": "db"})),
            Some(&spec_with("seed", None)),
            &[],
        )
        .unwrap();
        let min = Duration::from_secs(60);
        let long = Duration::from_secs(3600);
        // The init container has not ended: wait.
        let p = with_status(json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "seed", "image": "b", "imageID": "", "ready": false, "restartCount": 0, "state": {"running": {}}}]}));
        assert!(matches!(
            settle(&client(), &p, &hooks, min, long).await,
            Settled::Waiting
        ));
        // It failed: recorded with its exit code, and the exec hook is not run.
        let p = with_status(json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "seed", "image": "b", "imageID": "", "ready": false, "restartCount": 0,
             "state": {"terminated": {"exitCode": 2, "reason": "Error", "message": "no dump"}}}]}));
        let Settled::Done(runs) = settle(&client(), &p, &hooks, min, long).await else {
            panic!()
        };
        assert_eq!(
            (runs[0].kind, runs[0].result, runs[0].exit_code),
            (RestoreHookKind::Init, HookResult::Failed, Some(2))
        );
        assert_eq!(runs[0].output, "Error: no dump");
        assert_eq!(
            (runs[1].kind, runs[1].result),
            (RestoreHookKind::Exec, HookResult::NotRun)
        );
        assert_eq!(runs[1].output, "init container seed did not succeed");
        assert_eq!(
            describe(&runs[0]),
            "restore hook of pod shop/db-0: init container seed exited with 2: Error: no dump"
        );
        // It succeeded; the exec hook waits for its container and the pod's Ready condition.
        let done = json!({"name": "seed", "image": "b", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
        let p = with_status(json!({"phase": "Running", "initContainerStatuses": [done],
            "containerStatuses": [{"name": "sidecar", "image": "b", "imageID": "", "ready": false, "restartCount": 0, "state": {"running": {}}}],
            "conditions": [{"type": "Ready", "status": "False"}]}));
        assert!(matches!(
            settle(&client(), &p, &hooks, min, long).await,
            Settled::Waiting
        ));
        // Past its wait: timed out, the init container's success kept.
        let Settled::Done(runs) = settle(&client(), &p, &hooks, long + min, long).await else {
            panic!()
        };
        assert_eq!(runs[0].result, HookResult::Succeeded);
        assert_eq!(runs[1].result, HookResult::TimedOut);
        assert!(
            runs[1].output.contains("running and the pod Ready"),
            "{}",
            runs[1].output
        );
        // A pod that ended before its init container ran.
        let p = with_status(json!({"phase": "Failed"}));
        let Settled::Done(runs) = settle(&client(), &p, &hooks, min, long).await else {
            panic!()
        };
        assert_eq!(
            runs.iter().map(|r| r.result).collect::<Vec<_>>(),
            [HookResult::NotRun, HookResult::NotRun]
        );
    }
}
