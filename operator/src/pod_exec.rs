//! Commands run in a pod's container through the API server's `pods/exec`, as `kubectl exec`
//! runs them: how backup hooks reach an application (a flush, a dump) without the operator
//! needing anything on the node.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes kept of each output stream for status and logs: the end, where errors usually are.
pub const OUTPUT_KEPT: usize = 4096;

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// It ran and exited with this code.
    Exited(i32),
    /// It could not be run (no such pod, container or program; exec refused): the reason.
    NotRun(String),
    /// It was still running when the timeout came (it may go on in the container, as after
    /// `kubectl exec` is interrupted).
    TimedOut,
}

/// What a command did: how it ended and the end of what it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub ended: Ended,
    /// The last [`OUTPUT_KEPT`] bytes of standard output (lossy UTF-8), `…` first if cut.
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn succeeded(&self) -> bool {
        self.ended == Ended::Exited(0)
    }
}

/// Run `command` in `container` of pod `namespace/pod`, giving it at most `timeout`.
pub async fn run(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: &str,
    command: &[String],
    timeout: Duration,
) -> Output {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = output_only(container);
    let (mut stdout, mut stderr) = (Tail::default(), Tail::default());
    let ran = tokio::time::timeout(timeout, async {
        let mut process = match pods.exec(pod, command.to_vec(), &params).await {
            Ok(p) => p,
            Err(e) => return Ended::NotRun(e.to_string()),
        };
        let status = process.take_status();
        let (out, err) = (process.stdout(), process.stderr());
        let (o, e) = tokio::join!(stdout.read_all(out), stderr.read_all(err));
        let status = match status {
            Some(s) => s.await,
            None => None,
        };
        let _ = process.join().await;
        if let Some(why) = o.err().or(e.err()) {
            return Ended::NotRun(format!("reading the command's output: {why}"));
        }
        ended(status)
    })
    .await;
    Output {
        ended: ran.unwrap_or(Ended::TimedOut),
        stdout: stdout.text(),
        stderr: stderr.text(),
    }
}

/// Run `command` in `container` of pod `namespace/pod`, handing its standard output, as it
/// comes, to `consume` (which must read it to the end); its standard error is kept as
/// [`run`] keeps it. No timeout: a dump takes as long as it takes. Returns how the command
/// ended, the end of its standard error, and what `consume` gave (none if the command never
/// started).
pub async fn run_streamed<T, F, Fut>(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: &str,
    command: &[String],
    consume: F,
) -> (Ended, String, Option<T>)
where
    F: FnOnce(Box<dyn AsyncRead + Unpin + Send>) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = output_only(container);
    let mut process = match pods.exec(pod, command.to_vec(), &params).await {
        Ok(p) => p,
        Err(e) => return (Ended::NotRun(e.to_string()), String::new(), None),
    };
    let status = process.take_status();
    let Some(out) = process.stdout() else {
        return (
            Ended::NotRun("no standard output stream".into()),
            String::new(),
            None,
        );
    };
    let mut stderr = Tail::default();
    let (consumed, err) = tokio::join!(consume(Box::new(out)), stderr.read_all(process.stderr()));
    let status = match status {
        Some(s) => s.await,
        None => None,
    };
    let _ = process.join().await;
    let ended = match err {
        Err(why) => Ended::NotRun(format!("reading the command's errors: {why}")),
        Ok(()) => ended(status),
    };
    (ended, stderr.text(), Some(consumed))
}

/// Exec into `container` with standard output and error, no input.
fn output_only(container: &str) -> AttachParams {
    AttachParams::default()
        .container(container)
        .stdin(false)
        .stdout(true)
        .stderr(true)
}

/// The command's end from the Status the API server sends last: Success, a NonZeroExitCode
/// failure whose cause carries the code, or another failure (the command never ran).
fn ended(status: Option<Status>) -> Ended {
    let Some(s) = status else {
        return Ended::NotRun("the exec stream ended without a status".into());
    };
    if s.status.as_deref() == Some("Success") {
        return Ended::Exited(0);
    }
    let code = s
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|c| c.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
        .and_then(|c| c.message.as_deref()?.parse().ok());
    match (s.reason.as_deref(), code) {
        (Some("NonZeroExitCode"), Some(code)) => Ended::Exited(code),
        _ => Ended::NotRun(s.message.unwrap_or_else(|| "exec failed".into())),
    }
}

/// The end of a stream, in bounded memory whatever its length.
#[derive(Default)]
struct Tail {
    kept: Vec<u8>,
    cut: bool,
}

impl Tail {
    async fn read_all(&mut self, stream: Option<impl AsyncRead + Unpin>) -> std::io::Result<()> {
        let Some(mut stream) = stream else {
            return Ok(());
        };
        let mut buf = [0u8; 8192];
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            self.push(&buf[..n]);
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.kept.extend_from_slice(bytes);
        // Trimmed in batches, not at every read.
        if self.kept.len() > 2 * OUTPUT_KEPT {
            let cut = self.kept.len() - OUTPUT_KEPT;
            self.kept.drain(..cut);
            self.cut = true;
        }
    }

    fn text(&self) -> String {
        let start = self.kept.len().saturating_sub(OUTPUT_KEPT);
        let cut = self.cut || start > 0;
        let text = String::from_utf8_lossy(&self.kept[start..]);
        if cut {
            format!("…{text}")
        } else {
            text.into_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};

    #[test]
    fn the_exit_code_comes_from_the_status() {
        let ok = Status {
            status: Some("Success".into()),
            ..Default::default()
        };
        assert_eq!(ended(Some(ok)), Ended::Exited(0));
        let three = Status {
            status: Some("Failure".into()),
            reason: Some("NonZeroExitCode".into()),
            message: Some("command terminated with non-zero exit code".into()),
            details: Some(StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some("ExitCode".into()),
                    message: Some("3".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(ended(Some(three)), Ended::Exited(3));
        let missing = Status {
            status: Some("Failure".into()),
            reason: Some("InternalError".into()),
            message: Some("executable file not found in $PATH".into()),
            ..Default::default()
        };
        assert_eq!(
            ended(Some(missing)),
            Ended::NotRun("executable file not found in $PATH".into())
        );
        assert!(matches!(ended(None), Ended::NotRun(_)));
    }

    #[test]
    fn only_the_end_of_a_long_output_is_kept() {
        let mut t = Tail::default();
        for i in 0..10_000u32 {
            t.push(format!("line {i}\n").as_bytes());
        }
        let text = t.text();
        assert!(text.starts_with('…'));
        assert!(text.ends_with("line 9999\n"));
        assert!(text.len() <= OUTPUT_KEPT + '…'.len_utf8());
        assert!(t.kept.len() <= 2 * OUTPUT_KEPT);
        let mut short = Tail::default();
        short.push(b"done\n");
        assert_eq!(short.text(), "done\n");
    }
}
