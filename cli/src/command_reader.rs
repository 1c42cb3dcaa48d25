//! `backup --stdin-from-command`: the standard output of a command (`pg_dump`, `mysqldump`) as
//! the stream to back up. Its standard error passes through. The command's exit is part of
//! the stream: a command that fails ends the stream with an error, so no snapshot of a
//! truncated dump is ever written.

use anyhow::{Context, Result};
use std::ffi::OsString;
use std::io::Read;
use std::process::{Child, ChildStdout, Command, Stdio};

pub struct CommandReader {
    child: Child,
    stdout: ChildStdout,
    program: String,
    finished: bool,
}

impl CommandReader {
    /// Start `argv` (program first).
    pub fn spawn(argv: &[impl AsRef<std::ffi::OsStr>]) -> Result<CommandReader> {
        let argv: Vec<OsString> = argv.iter().map(|a| a.as_ref().to_os_string()).collect();
        let (program, args) = argv
            .split_first()
            .context("--stdin-from-command needs the command to run as arguments")?;
        let name = program.to_string_lossy().into_owned();
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("failed to start command {name}"))?;
        let stdout = child.stdout.take().expect("stdout was piped");
        Ok(CommandReader {
            child,
            stdout,
            program: name,
            finished: false,
        })
    }
}

impl Read for CommandReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.finished {
            return Ok(0);
        }
        let n = self.stdout.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.finished = true;
            let status = self.child.wait()?;
            if !status.success() {
                return Err(std::io::Error::other(format!(
                    "command {} failed: {status}",
                    self.program
                )));
            }
        }
        Ok(n)
    }
}

impl Drop for CommandReader {
    fn drop(&mut self) {
        // A backup that stopped early must not leave the command running.
        if !self.finished {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
