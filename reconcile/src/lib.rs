//! What Arca's two controllers, the operator and the node agent, share. They must not
//! import each other, so the plumbing both need lives here:
//!
//! - [`Error`]: what fails in any reconcile (a request to the API server, the work's own
//!   thread), with the cause kept; each controller crate wraps it in its own error enum.
//! - [`status::patch_status`]: writing an object's status.
//! - [`policy`]: the error policy of every controller, which logs a failed reconcile,
//!   counts it by kind in the metrics, and tries again after a pause.
//! - [`detached::run`]: engine work run from a controller on a thread of its own.
//! - [`metrics`]: serving `/metrics`; [`logging`]: the log format both binaries offer.
#![warn(missing_docs)]

mod error;

pub mod detached;
pub mod logging;
pub mod metrics;
pub mod policy;
pub mod status;

pub use error::{one_line, Error, Failure, Wrap};

/// How the binaries end: 0, or 1 after one line on standard error saying why.
pub fn exit_code(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Fatal: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The object `name` as the API server has it now, if it is still the one with `uid` (not
/// deleted, not replaced by another of the same name): reconcilers decide on this, not on a
/// cache that may predate their own last status write.
pub async fn fresh<K>(
    api: &kube::Api<K>,
    name: &str,
    uid: Option<String>,
) -> Result<Option<K>, Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let current = api
        .get_opt(name)
        .await
        .map_err(<Error as Wrap>::api(format!("cannot read {name}")))?;
    Ok(current.filter(|c| c.meta().uid == uid))
}
