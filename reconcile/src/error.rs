//! The failures every controller has, and how the error policy tells kinds apart.

/// A failed reconcile as the error policy sees it: any error, with the kind it is counted
/// under.
pub trait Failure: std::error::Error + Send + Sync + 'static {
    /// The kind of failure, a label of `arca_reconcile_failures_total`: one of a few fixed
    /// words, never a message (a label's values must stay few).
    fn metric_label(&self) -> &'static str;
}

/// What fails in any controller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the API server failed; `action` says which (`listing pods`, `cannot
    /// update Backup b1`).
    #[error("{action}: {source}")]
    Api {
        action: String,
        /// Boxed: a kube error is large, and every reconciler's `Result` carries this.
        #[source]
        source: Box<kube::Error>,
    },
    /// A status that does not convert to JSON.
    #[error("encoding a status: {0}")]
    Encoding(#[source] serde_json::Error),
    /// Work run on a thread of its own panicked or was cancelled.
    #[error("task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
}

impl Error {
    /// For `map_err`: a failed API request, with what it was for.
    pub fn api(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let action = action.into();
        move |source| Error::Api {
            action,
            source: Box::new(source),
        }
    }
}

impl Failure for Error {
    fn metric_label(&self) -> &'static str {
        match self {
            Error::Api { .. } => "api",
            Error::Encoding(_) => "encoding",
            Error::Task(_) => "task",
        }
    }
}
