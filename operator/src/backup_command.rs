//! Backup commands: a command run in a pod's container whose standard output (`pg_dump`,
//! `mysqldump`, `etcdctl snapshot save /dev/stdout`) is stored as one file, streamed into the
//! pod's namespace's repository as it comes (restic's `backup --stdin`), never held whole:
//! memory stays that of the stream's buffers and the packer, whatever the dump's size.

use crate::context::Context;
use crate::pod_exec::{self, Ended};
use crate::repository;
use arca_api::hooks::{
    BackupCommandRun, HookResult, BACKUP_COMMAND_ANNOTATION, BACKUP_COMMAND_CONTAINER_ANNOTATIONS,
    BACKUP_COMMAND_FILE_ANNOTATION, K8UP_BACKUP_COMMAND_ANNOTATION, K8UP_FILE_EXTENSION_ANNOTATION,
};
use arca_api::{Backup, BackupRepository};
use arca_engine::backup::{BackupOptions, SelectAll};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use std::sync::Arc;

/// A pod's backup command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupCommand {
    pub container: String,
    pub command: Vec<String>,
    /// The file's name in the snapshot (no folder).
    pub file: String,
}

/// The backup command `pod`'s annotations give, if any: Arca's key (a JSON array, or one
/// word), else K8up's (a shell command line, run with `/bin/sh -c` as K8up does).
pub fn of_pod(pod: &Pod) -> Result<Option<BackupCommand>, String> {
    let a = pod.annotations();
    let command = if let Some(raw) = a.get(BACKUP_COMMAND_ANNOTATION) {
        crate::hooks::parse_command(raw)
            .map_err(|why| format!("annotation {BACKUP_COMMAND_ANNOTATION}: {why}"))?
    } else if let Some(line) = a.get(K8UP_BACKUP_COMMAND_ANNOTATION) {
        vec!["/bin/sh".into(), "-c".into(), line.clone()]
    } else {
        return Ok(None);
    };
    let named = BACKUP_COMMAND_CONTAINER_ANNOTATIONS
        .iter()
        .find_map(|k| a.get(*k))
        .map(String::as_str);
    let container = crate::hooks::container_or_first(pod, named)?;
    let file = match (
        a.get(BACKUP_COMMAND_FILE_ANNOTATION),
        a.get(K8UP_FILE_EXTENSION_ANNOTATION),
    ) {
        (Some(f), _) => f.clone(),
        (None, Some(ext)) => format!("{}-{container}{ext}", pod.name_any()),
        (None, None) => format!("{}-{container}", pod.name_any()),
    };
    // One name, no folders: the file sits at the snapshot's root.
    if file.is_empty() || file.contains('/') || file == "." || file == ".." {
        return Err(format!(
            "annotation {BACKUP_COMMAND_FILE_ANNOTATION}: {file:?} is not a file name"
        ));
    }
    Ok(Some(BackupCommand {
        container,
        command,
        file,
    }))
}

/// Run `cmd` in `pod` and store its output as a snapshot of `repo` (tagged with the Backup,
/// the pod and the container). A command that fails leaves no snapshot.
pub async fn run(
    ctx: &Context,
    backup: &Backup,
    pod: &Pod,
    cmd: &BackupCommand,
    repo: &BackupRepository,
) -> BackupCommandRun {
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let mut record = BackupCommandRun {
        pod: format!("{ns}/{name}"),
        container: cmd.container.clone(),
        command: cmd.command.clone(),
        file: format!("/{}", cmd.file),
        result: HookResult::NotRun,
        exit_code: None,
        snapshot_id: None,
        bytes: 0,
        output: String::new(),
    };
    let opened = match repository::open(ctx, repo).await {
        Ok(r) => r,
        Err(e) => {
            record.output = e.to_string();
            return record;
        }
    };
    let locked =
        arca_engine::lock::acquire_retrying(&opened, false, ctx.lock_retry, |_, _| async {}).await;
    let lock = match locked {
        Ok((lock, _)) => lock,
        Err(e) => {
            record.output = format!("locking the repository: {e}");
            return record;
        }
    };
    let opened = Arc::new(opened);
    let opts = BackupOptions {
        paths: Vec::new(),
        tags: [
            ("backup", backup.name_any()),
            ("backup-uid", backup.uid().unwrap_or_default()),
            ("ns", ns.clone()),
            ("pod", name.clone()),
            ("container", cmd.container.clone()),
            ("backup-command", cmd.file.clone()),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect(),
        hostname: "arca".into(),
        parent: None,
        force: false,
        with_atime: false,
        excludes: Vec::new(),
        selector: Arc::new(SelectAll),
        writer: Default::default(),
        time: None,
        threads: 2,
        program_version: format!("arca-operator {}", env!("CARGO_PKG_VERSION")),
        contents_of: false,
        skip_if_unchanged: false,
        ignore: Default::default(),
    };
    let (repo2, file) = (opened.clone(), cmd.file.clone());
    let (ended, stderr, stored) = pod_exec::run_streamed(
        &ctx.client,
        &ns,
        &name,
        &cmd.container,
        &cmd.command,
        |out| async move {
            // The engine reads on a blocking thread; the bridge blocks it on the stream.
            let reader = tokio_util::io::SyncIoBridge::new(out);
            arca_engine::backup::backup_stdin(
                repo2,
                opts,
                file,
                Box::new(reader),
                Arc::new(arca_engine::progress::NoProgress),
            )
            .await
        },
    )
    .await;
    record.output = stderr;
    let snapshot = match stored {
        Some(Ok(r)) => {
            record.bytes = r.summary.total_bytes_processed as i64;
            r.snapshot
        }
        Some(Err(e)) => {
            record.output = format!("storing the output: {e}");
            None
        }
        None => None,
    };
    (record.result, record.exit_code) = match &ended {
        Ended::Exited(0) if snapshot.is_some() => (HookResult::Succeeded, Some(0)),
        Ended::Exited(code) => (HookResult::Failed, Some(*code)),
        Ended::TimedOut => (HookResult::TimedOut, None),
        Ended::NotRun(why) => {
            record.output = why.clone();
            (HookResult::NotRun, None)
        }
    };
    if let Some(s) = snapshot {
        if record.result == HookResult::Succeeded {
            record.snapshot_id = Some(s.id.to_hex());
        } else {
            // A failed dump is not a backup: its snapshot goes (its data, unreferenced, goes
            // at the next prune).
            let _ = arca_engine::forget::remove_snapshots(&opened, &[s.id]).await;
        }
    }
    let _ = lock.release().await;
    tracing::info!(
        pod = %record.pod, container = %record.container, result = ?record.result,
        bytes = record.bytes, snapshot = ?record.snapshot_id,
        "backup command {:?} into {}: {}", record.command, record.file, record.output
    );
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(annotations: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "db-0", "namespace": "shop", "annotations": annotations},
            "spec": {"containers": [{"name": "postgres"}, {"name": "sidecar"}]}
        }))
        .unwrap()
    }

    #[test]
    fn arca_and_k8up_annotations() {
        assert_eq!(of_pod(&pod(json!({}))).unwrap(), None);
        assert_eq!(
            of_pod(&pod(json!({
                "backup.arca.dev/backup-command": r#"["pg_dumpall", "-U", "postgres"]"#,
                "backup.arca.dev/backup-command-file": "all.sql"})))
            .unwrap(),
            Some(BackupCommand {
                container: "postgres".into(),
                command: vec!["pg_dumpall".into(), "-U".into(), "postgres".into()],
                file: "all.sql".into(),
            })
        );
        assert_eq!(
            of_pod(&pod(json!({
                "k8up.io/backupcommand": "mysqldump --all-databases",
                "k8up.io/backupcommand-container": "sidecar",
                "k8up.io/file-extension": ".sql"})))
            .unwrap(),
            Some(BackupCommand {
                container: "sidecar".into(),
                command: vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    "mysqldump --all-databases".into()
                ],
                file: "db-0-sidecar.sql".into(),
            })
        );
        for (a, says) in [
            (
                json!({"backup.arca.dev/backup-command": "[1]"}),
                "not a JSON array",
            ),
            (
                json!({"backup.arca.dev/backup-command": "[]"}),
                "empty command",
            ),
            (
                json!({"backup.arca.dev/backup-command": "x", "k8up.io/backupcommand-container": "nope"}),
                "no container",
            ),
            (
                json!({"backup.arca.dev/backup-command": "x", "backup.arca.dev/backup-command-file": "../etc"}),
                "not a file name",
            ),
        ] {
            let err = of_pod(&pod(a)).unwrap_err();
            assert!(err.contains(says), "{err}");
        }
    }
}
