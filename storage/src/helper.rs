//! A program a backend talks to over its standard input and output (`ssh … -s sftp`,
//! `rclone serve restic --stdio`), run as restic runs it: its messages go to our standard
//! error with the program's name in front, and how it ended is kept, so that a broken pipe
//! is reported as what it was ("rclone exited with exit status: 1").

use crate::{Result, StorageError};
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout, Command};

/// The helper's two pipes as one duplex stream.
pub(crate) type HelperIo = tokio::io::Join<ChildStdout, ChildStdin>;

pub(crate) struct Helper {
    location: String,
    /// Set once the program has exited.
    ended: Arc<OnceLock<String>>,
}

impl Helper {
    /// Start `argv` (program first). The process is killed if it is still running when the
    /// runtime drops the task that waits for it (at exit, after every request has finished).
    pub fn start(argv: &[String], location: &str) -> Result<(Helper, HelperIo)> {
        let (program, args) = argv.split_first().ok_or_else(|| StorageError::Helper {
            location: location.to_string(),
            detail: "no program to run".into(),
        })?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| StorageError::Helper {
                location: location.to_string(),
                detail: format!("cannot start {program}: {e}"),
            })?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            unreachable!("all three pipes were asked for");
        };
        let ended = Arc::new(OnceLock::new());
        let name = std::path::Path::new(program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| program.clone());
        let (prefix, record) = (name, ended.clone());
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("{prefix}: {line}");
            }
            let how = match child.wait().await {
                Ok(status) => format!("{prefix} exited with {status}"),
                Err(e) => format!("{prefix} could not be waited for: {e}"),
            };
            let _ = record.set(how);
        });
        let helper = Helper {
            location: location.to_string(),
            ended,
        };
        Ok((helper, tokio::io::join(stdout, stdin)))
    }

    /// How the program ended, once it has.
    pub fn ended(&self) -> Option<&str> {
        self.ended.get().map(String::as_str)
    }

    /// The error for a failed request: the program's end if it has ended (waiting a moment
    /// for it: the pipe usually breaks just before the exit is seen), else `otherwise`.
    pub async fn failure(&self, otherwise: StorageError) -> StorageError {
        for _ in 0..20 {
            if let Some(how) = self.ended() {
                return StorageError::Helper {
                    location: self.location.clone(),
                    detail: format!("{how} (its messages, if any, are above)"),
                };
            }
            if !matches!(otherwise, StorageError::Unreachable { .. }) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        otherwise
    }
}

/// restic's rule for `-o rclone.program=…`, `sftp.command=…` and the like: split as a shell
/// would, without running one.
pub(crate) fn split_words(option: &str, value: &str) -> Result<Vec<String>> {
    shlex::split(value)
        .filter(|words| !words.is_empty())
        .ok_or_else(|| {
            StorageError::InvalidOption(format!(
                "{option}: empty, or unbalanced quotes in its value"
            ))
        })
}
