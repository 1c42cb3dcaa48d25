//! Backup hooks on a real control plane of this test's own, run for real through the API
//! server's `pods/exec`: kwok (started by scripts/control-plane.sh) is the kubelet of the
//! test's node, makes its pods Ready and runs the commands they are sent on this machine, in
//! the pod's volume folder (its `Exec` object). So a pre hook that writes a marker writes it
//! into the volume the agent then backs up.
//!
//! Steps: a pre and a post hook from Velero's annotations (the marker in the snapshot, the
//! post hook's marker only after it); a failing pre hook with onError Fail (the Backup Failed
//! with the hook's output, no volume backed up); the same with Continue (PartiallyFailed, the
//! volume backed up); hooks from `spec.hooks` selecting the pod by label; a backup command's
//! 1 GiB output streamed into a snapshot while the operator's peak memory stays flat; a
//! failing backup command leaving no snapshot; a restore with an init-container hook and an
//! exec hook, run in that order after the volume's restore.

mod cluster;
use cluster::*;

use arca_api::backup::BACKUP_NAME_LABEL;
use arca_api::common::{OperationPhase, VolumePhase};
use arca_api::hooks::{HookPhase, HookResult};
use arca_api::restore_hooks::RestoreHookKind;
use arca_api::*;
use arca_tests::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use rand::RngCore;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_hooks_run_through_pods_exec_around_the_volume_backup() {
    let Some(base) = bench() else { return };
    let root = tempfile::tempdir().unwrap();
    let cp = ControlPlane::start(&root.path().join("control-plane"));
    let env = std::fs::read_to_string(cp.dir.join("env")).unwrap();
    let kwok_nodes = env
        .lines()
        .find_map(|l| l.strip_prefix("export ARCA_TEST_KWOK_NODES="))
        .unwrap_or_default()
        .trim_matches('\'')
        .to_string();
    if kwok_nodes.is_empty() {
        let msg = "the hooks test needs kwok (ARCA_TEST_KWOK, from scripts/go-tools.sh build)";
        assert!(!is_ci(), "{msg}");
        eprintln!("SKIPPED: {msg}");
        return;
    }
    let (key, value) = kwok_nodes.split_once('=').unwrap();
    let bench = cp.bench(&base);
    let suffix = format!("{:06x}", rand::thread_rng().next_u64() & 0xff_ffff);
    let mut e = E2e::new(bench, format!("kwok-{suffix}"), format!("db-{suffix}")).await;
    install_deploy(&e);
    // A node kwok runs: it makes the pods on it Ready and serves their exec.
    e.add_node(json!({key: value})).await;
    minio_location(&e, "default", &format!("hooks-{suffix}"), json!({}));
    start_arca(&mut e);

    // --- The application: pod db-0 with a volume `data`, Velero's hook annotations. --------
    let app = e.app.clone();
    apply(
        &e,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": app}}),
    );
    apply(
        &e,
        json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "db-0", "namespace": app, "labels": {"app": "db"},
                     "annotations": {
                        "backup.velero.io/backup-volumes": "data",
                        "pre.hook.backup.velero.io/container": "db",
                        "pre.hook.backup.velero.io/command":
                            r#"["/bin/sh", "-c", "echo frozen > pre-marker; echo flushed"]"#,
                        "post.hook.backup.velero.io/command":
                            r#"["/bin/sh", "-c", "echo thawed > post-marker"]"#}},
        "spec": {"nodeName": e.node,
                 "containers": [{"name": "db", "image": "registry.invalid/db:1"}],
                 "volumes": [{"name": "data", "emptyDir": {}}]}}),
    );
    let pod = e.api::<Pod>(&app).get("db-0").await.unwrap();
    let uid = pod.uid().unwrap();
    let data = e.volume_dir(&uid, "kubernetes.io~empty-dir", "data");
    std::fs::create_dir_all(&data).unwrap();
    write_files(&data, 7);
    // kwok runs the pod's commands in its volume folder.
    apply(
        &e,
        json!({"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Exec",
        "metadata": {"name": "db-0", "namespace": app},
        "spec": {"execs": [{"local": {"workDir": data.to_str().unwrap()}}]}}),
    );
    e.until(
        e.api::<Pod>(&app),
        "db-0",
        "kwok makes the pod Running",
        |p: &Pod| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"),
    )
    .await;

    // --- b1: the pre hook's marker is in the snapshot; the post hook ran after it. --------
    let b1 = run_backup(&e, "b1", json!({})).await;
    let st = b1.status.clone().unwrap();
    assert_eq!(
        st.outcome.phase,
        OperationPhase::Completed,
        "{st:?}\n{}",
        e.logs()
    );
    let runs = &st.hook_runs;
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(
        (runs[0].phase, runs[0].result, runs[0].exit_code),
        (HookPhase::Pre, HookResult::Succeeded, Some(0))
    );
    assert_eq!(runs[0].container, "db");
    assert_eq!(runs[0].output.trim(), "flushed");
    assert_eq!(
        (runs[1].phase, runs[1].result),
        (HookPhase::Post, HookResult::Succeeded)
    );
    let snapshot = volume_snapshot(&e, "b1").await;
    let arca = e
        .arca_on(&arca_operator::repository::name_for(&app, "default"))
        .await;
    let pre = arca.run(["dump", &snapshot, "/pre-marker"]);
    assert_eq!(pre, b"frozen\n");
    let ls = String::from_utf8(arca.run(["ls", &snapshot])).unwrap();
    assert!(
        !ls.contains("post-marker"),
        "the post hook ran before the volume was backed up: {ls}"
    );
    assert_eq!(
        std::fs::read_to_string(data.join("post-marker")).unwrap(),
        "thawed\n"
    );

    // --- b2: a failing pre hook, onError Fail (the default): Failed, with its output. -----
    annotate(
        &e,
        &app,
        json!({"pre.hook.backup.velero.io/command":
            r#"["/bin/sh", "-c", "echo cannot freeze >&2; exit 3"]"#}),
    )
    .await;
    std::fs::remove_file(data.join("post-marker")).unwrap();
    let b2 = run_backup(&e, "b2", json!({})).await;
    let st = b2.status.clone().unwrap();
    assert_eq!(st.outcome.phase, OperationPhase::Failed, "{st:?}");
    let reason = st.outcome.failure_reason.clone().unwrap_or_default();
    assert!(
        reason.contains("exited with 3") && reason.contains("cannot freeze"),
        "{reason}"
    );
    assert_eq!(st.hook_runs[0].exit_code, Some(3), "{st:?}");
    assert!(
        pvbs_of(&e, "b2").await.is_empty(),
        "no volume is backed up after a failed pre hook"
    );

    // --- b3: the same with onError Continue: PartiallyFailed, the volume backed up. -------
    annotate(
        &e,
        &app,
        json!({"pre.hook.backup.velero.io/on-error": "Continue"}),
    )
    .await;
    let b3 = run_backup(&e, "b3", json!({})).await;
    let st = b3.status.clone().unwrap();
    assert_eq!(st.outcome.phase, OperationPhase::PartiallyFailed, "{st:?}");
    assert!(
        st.outcome
            .messages
            .iter()
            .any(|m| m.contains("cannot freeze")),
        "{:?}",
        st.outcome.messages
    );
    let pvbs = pvbs_of(&e, "b3").await;
    assert_eq!(pvbs.len(), 1);
    assert_eq!(
        pvbs[0].status.as_ref().unwrap().phase,
        VolumePhase::Completed
    );
    assert_eq!(
        std::fs::read_to_string(data.join("post-marker")).unwrap(),
        "thawed\n",
        "the post hook still ran"
    );

    // --- b4: hooks from spec.hooks, for a pod without hook annotations. -------------------
    let mut plain = serde_json::Map::new();
    for k in [
        "pre.hook.backup.velero.io/container",
        "pre.hook.backup.velero.io/command",
        "pre.hook.backup.velero.io/on-error",
        "post.hook.backup.velero.io/command",
    ] {
        plain.insert(k.into(), serde_json::Value::Null);
    }
    annotate(&e, &app, serde_json::Value::Object(plain)).await;
    let b4 = run_backup(
        &e,
        "b4",
        json!({"hooks": {"resources": [{
            "name": "by-label", "includedNamespaces": [app],
            "labelSelector": {"matchLabels": {"app": "db"}},
            "pre": [{"exec": {"command": ["/bin/sh", "-c", "echo spec > spec-marker"]}}],
            "post": [{"exec": {"command": ["/bin/sh", "-c", "rm spec-marker"], "onError": "Continue"}}]}]}}),
    )
    .await;
    let st = b4.status.clone().unwrap();
    assert_eq!(st.outcome.phase, OperationPhase::Completed, "{st:?}");
    assert_eq!(st.hook_runs.len(), 2, "{:?}", st.hook_runs);
    assert!(st.hook_runs.iter().all(|r| r.source == "by-label"));
    let snapshot = volume_snapshot(&e, "b4").await;
    assert_eq!(arca.run(["dump", &snapshot, "/spec-marker"]), b"spec\n");
    assert!(
        !data.join("spec-marker").exists(),
        "the post hook removed it"
    );

    // --- r1: b1 restored into another namespace with an init-container and an exec hook. -
    restore_with_hooks(&e).await;

    // --- b5: a backup command's 1 GiB output, streamed into a snapshot in flat memory. ---
    let operator_pid = e.procs[OPERATOR].child.id();
    let before = peak_rss_kib(operator_pid);
    annotate(
        &e,
        &app,
        json!({"backup.arca.dev/backup-command":
                   r#"["/bin/sh", "-c", "echo dump-of-db; head -c 1073741824 /dev/zero"]"#,
               "backup.arca.dev/backup-command-file": "db.sql"}),
    )
    .await;
    // A gigabyte through exec and the chunker takes longer than a step: its own deadline.
    let b5 = run_backup_within(&e, "b5", json!({}), std::time::Duration::from_secs(240)).await;
    let st = b5.status.clone().unwrap();
    assert_eq!(st.outcome.phase, OperationPhase::Completed, "{st:?}");
    let run = &st.command_runs[0];
    assert_eq!(
        (run.result, run.exit_code, run.bytes, run.file.as_str()),
        (HookResult::Succeeded, Some(0), (1 << 30) + 11, "/db.sql"),
        "{run:?}"
    );
    let snapshot = run.snapshot_id.clone().unwrap();
    let listed = arca.run_json_lines(["ls", "--json", &snapshot]);
    let node = listed
        .iter()
        .find(|n| n["path"] == "/db.sql")
        .unwrap_or_else(|| panic!("{listed:?}"));
    assert_eq!(node["size"], (1u64 << 30) + 11);
    let mut dump = arca
        .cmd(["dump", &snapshot, "/db.sql"])
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = [0u8; 11];
    std::io::Read::read_exact(dump.stdout.as_mut().unwrap(), &mut first).unwrap();
    let _ = dump.kill();
    let _ = dump.wait();
    assert_eq!(&first, b"dump-of-db\n");
    let after = peak_rss_kib(operator_pid);
    println!(
        "operator peak RSS: {} MiB before, {} MiB after the 1 GiB dump",
        before / 1024,
        after / 1024
    );
    assert!(
        after < before + 256 * 1024,
        "the operator's peak memory grew from {before} KiB to {after} KiB for a 1 GiB dump"
    );

    // --- b6: a backup command that fails leaves no snapshot; the Backup PartiallyFailed. --
    annotate(
        &e,
        &app,
        json!({"backup.arca.dev/backup-command":
                   r#"["/bin/sh", "-c", "echo half a dump; echo disk full >&2; exit 4"]"#}),
    )
    .await;
    let b6 = run_backup(&e, "b6", json!({})).await;
    let st = b6.status.clone().unwrap();
    assert_eq!(st.outcome.phase, OperationPhase::PartiallyFailed, "{st:?}");
    let run = &st.command_runs[0];
    assert_eq!(
        (run.result, run.exit_code, run.snapshot_id.as_deref()),
        (HookResult::Failed, Some(4), None),
        "{run:?}"
    );
    assert!(run.output.contains("disk full"), "{run:?}");
    let snaps = arca.run_json(["snapshots", "--json", "--tag", "backup=b6"]);
    let kept: Vec<_> = snaps
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["paths"][0] == "/db.sql")
        .collect();
    assert!(kept.is_empty(), "a failed dump left a snapshot: {kept:?}");

    e.assert_no_secret_shown(&[]).await;
    drop(cp);
}

/// Restore b1 (the pod with its pre hook's marker) into `<app>-r` with `spec.hooks`: an init
/// container after restore-wait that copies the restored marker, and an exec hook, once the
/// pod is Ready, that copies the init container's copy. kwok runs exec but no containers, so
/// the test is the kubelet of the restored pod's init containers: it starts restore-wait (the
/// real `arca-agent restore-wait`), then runs the hook's init container's command in the
/// volume's folder, and reports each as the kubelet does; the exec hook goes through the API
/// server to kwok. The final copy holding the snapshot's marker shows the order: restore, then
/// init container, then exec.
async fn restore_with_hooks(e: &E2e) {
    let to = format!("{}-r", e.app);
    apply(
        e,
        json!({"apiVersion": "arca.dev/v1alpha1", "kind": "Restore",
        "metadata": {"name": "r1", "namespace": NS},
        "spec": {"backupName": "b1", "namespaceMapping": {e.app.clone(): to},
                 "excludedResources": ["execs.kwok.x-k8s.io"],
                 "hooks": {"resources": [{"name": "seed-then-import", "includedNamespaces": [to],
                    "postHooks": [
                        {"init": {"initContainers": [{"name": "seed", "image": "registry.invalid/tools:1",
                            "command": ["/bin/sh", "-c", "cat pre-marker > init-marker"]}]}},
                        {"exec": {"container": "db", "waitForReady": true,
                            "command": ["/bin/sh", "-c", "cat init-marker > exec-marker; echo imported"]}}]}]}}}),
    );
    let pods = e.api::<Pod>(&to);
    let pod = e
        .until(pods.clone(), "db-0", "the restored pod", |_| true)
        .await;
    let init: Vec<String> = pod
        .spec
        .as_ref()
        .unwrap()
        .init_containers
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(
        init,
        ["restore-wait", "seed"],
        "the hook's init container goes after restore-wait"
    );
    // As the kubelet: restore-wait starts. Reported before the pod is bound, so that kwok
    // (which would report every init container done at once) leaves the pod to the test.
    let uid = pod.uid().unwrap();
    let now = || jiff::Timestamp::now().to_string();
    let container = |name: &str, state: serde_json::Value| json!({"name": name, "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": state});
    pods.patch_status(
        "db-0",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"status": {"phase": "Running", "initContainerStatuses": [
            container("restore-wait", json!({"running": {"startedAt": now()}})),
            container("seed", json!({"waiting": {"reason": "PodInitializing"}}))]}}),
        ),
    )
    .await
    .unwrap();
    let data = e.volume_dir(&uid, "kubernetes.io~empty-dir", "data");
    std::fs::create_dir_all(&data).unwrap();
    apply(
        e,
        json!({"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Exec",
        "metadata": {"name": "db-0", "namespace": to},
        "spec": {"execs": [{"local": {"workDir": data.to_str().unwrap()}}]}}),
    );
    pods.create_subresource::<serde_json::Value, serde_json::Value>(
        "binding",
        "db-0",
        &PostParams::default(),
        &json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "db-0"},
                "target": {"apiVersion": "v1", "kind": "Node", "name": e.node}}),
    )
    .await
    .unwrap();
    let pvr = arca_operator::naming::volume_operation_name("r1", &to, "db-0", "data");
    e.until_volume_restored(&pvr).await;
    let r1 = e.api::<Restore>(NS).get("r1").await.unwrap();
    let mounts = e.dir.path().join("restore-hooks");
    std::fs::create_dir_all(&mounts).unwrap();
    std::os::unix::fs::symlink(&data, mounts.join("data")).unwrap();
    restore_wait_succeeds(&r1.uid().unwrap(), &mounts);
    assert_eq!(
        std::fs::read_to_string(data.join("pre-marker")).unwrap(),
        "frozen\n"
    );
    // Nothing has run yet: the init container has not ended, so the Restore waits for it.
    let st = r1.status.clone().unwrap();
    assert_eq!(st.outcome.phase, OperationPhase::InProgress, "{st:?}");
    assert_eq!(st.pending_hooks.len(), 1, "{st:?}");
    assert!(st.hook_runs.is_empty(), "{st:?}");
    // As the kubelet: the hook's init container runs, in the volume, then the pod starts.
    let seed = pod.spec.as_ref().unwrap().init_containers.as_ref().unwrap()[1].clone();
    let command = seed.command.unwrap();
    let ran = std::process::Command::new(&command[0])
        .args(&command[1..])
        .current_dir(&data)
        .status()
        .unwrap();
    let code = ran.code().unwrap();
    let ended = |code: i32| json!({"terminated": {"exitCode": code, "reason": "Completed", "startedAt": now(), "finishedAt": now()}});
    pods.patch_status(
        "db-0",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running",
            "initContainerStatuses": [container("restore-wait", ended(0)), container("seed", ended(code))],
            "containerStatuses": [container("db", json!({"running": {"startedAt": now()}}))],
            "conditions": [{"type": "Ready", "status": "True"}]}})),
    )
    .await
    .unwrap();
    let r1 = e.until_restore_ends("r1").await;
    let st = r1.status.unwrap();
    assert_eq!(
        st.outcome.phase,
        OperationPhase::Completed,
        "{st:?}\n{}",
        e.logs()
    );
    let runs: Vec<_> = st
        .hook_runs
        .iter()
        .map(|r| {
            (
                r.kind,
                r.container.as_str(),
                r.result,
                r.exit_code,
                r.source.as_str(),
            )
        })
        .collect();
    assert_eq!(
        runs,
        [
            (
                RestoreHookKind::Init,
                "seed",
                HookResult::Succeeded,
                Some(0),
                "seed-then-import"
            ),
            (
                RestoreHookKind::Exec,
                "db",
                HookResult::Succeeded,
                Some(0),
                "seed-then-import"
            ),
        ]
    );
    assert_eq!(st.hook_runs[1].output.trim(), "imported");
    assert!(st.hook_runs[0].completion_timestamp.0 <= st.hook_runs[1].completion_timestamp.0);
    assert!(st.pending_hooks.is_empty());
    // restore, then the init container, then exec: the snapshot's marker, copied twice.
    assert_eq!(
        std::fs::read_to_string(data.join("exec-marker")).unwrap(),
        "frozen\n"
    );
}

/// A process's peak resident memory (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// Create Backup `name` of the application's namespace (`extra` merged into its spec) and
/// wait until it ends (a watch, within a step).
async fn run_backup(e: &E2e, name: &str, extra: serde_json::Value) -> Backup {
    create_backup(e, name, extra);
    e.until(
        e.api::<Backup>(NS),
        name,
        &format!("Backup {name} ends"),
        ended,
    )
    .await
}

/// [`run_backup`], waiting up to `deadline` (polling) instead of a step.
async fn run_backup_within(
    e: &E2e,
    name: &str,
    extra: serde_json::Value,
    deadline: std::time::Duration,
) -> Backup {
    create_backup(e, name, extra);
    let end = std::time::Instant::now() + deadline;
    loop {
        let b = e.api::<Backup>(NS).get(name).await.unwrap();
        if ended(&b) {
            return b;
        }
        assert!(
            std::time::Instant::now() < end,
            "Backup {name} did not end within {deadline:?}: {:?}\n{}",
            b.status,
            e.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

fn ended(b: &Backup) -> bool {
    matches!(
        phase_of_backup(b),
        OperationPhase::Completed | OperationPhase::PartiallyFailed | OperationPhase::Failed
    )
}

fn create_backup(e: &E2e, name: &str, extra: serde_json::Value) {
    let mut spec = json!({"includedNamespaces": [e.app]});
    for (k, v) in extra.as_object().into_iter().flatten() {
        spec[k] = v.clone();
    }
    apply(
        e,
        json!({"apiVersion": "arca.dev/v1alpha1", "kind": "Backup",
        "metadata": {"name": name, "namespace": NS}, "spec": spec}),
    );
}

async fn annotate(e: &E2e, ns: &str, annotations: serde_json::Value) {
    e.api::<Pod>(ns)
        .patch(
            "db-0",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": annotations}})),
        )
        .await
        .unwrap();
}

async fn pvbs_of(e: &E2e, backup: &str) -> Vec<PodVolumeBackup> {
    e.api::<PodVolumeBackup>(NS)
        .list(&ListParams::default().labels(&format!("{BACKUP_NAME_LABEL}={backup}")))
        .await
        .unwrap()
        .items
}

/// The snapshot Backup `backup` took of the volume.
async fn volume_snapshot(e: &E2e, backup: &str) -> String {
    let pvbs = pvbs_of(e, backup).await;
    assert_eq!(pvbs.len(), 1, "{pvbs:?}");
    pvbs[0]
        .status
        .as_ref()
        .and_then(|s| s.snapshot_id.clone())
        .expect("a snapshot")
}
