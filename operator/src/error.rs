//! The operator's errors: what a reconcile of a location, repository, Backup, Restore or
//! Schedule can fail with. A failure the object's status can hold ends the operation with
//! its message (`failureReason`); one that cannot even be recorded goes to the error policy,
//! which counts it by [`Failure::metric_label`].

use arca_reconcile::{Failure, Wrap};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server, the work's own thread, the engine, a store, a local file.
    #[error(transparent)]
    Reconcile(#[from] arca_reconcile::Error),
    /// A manifest, record or status that does not convert to or from JSON.
    #[error("{context}: {source}")]
    Json {
        context: String,
        #[source]
        source: serde_json::Error,
    },
    /// What an object asks for cannot be done: a location, Secret or Backup it names is
    /// missing or unusable, a duration or schedule does not parse, a repository belongs to
    /// someone else. The message says which and why.
    #[error("{0}")]
    Refused(String),
}

impl Wrap for Error {}

impl Error {
    /// For `map_err`: JSON that does not convert, with what it is.
    pub fn json(context: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Error {
        let context = context.into();
        move |source| Error::Json { context, source }
    }

    /// Whether trying again soon may help (the store failed for a while).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Reconcile(e) if e.is_transient())
    }
}

impl Failure for Error {
    fn metric_label(&self) -> &'static str {
        match self {
            Error::Reconcile(e) => e.metric_label(),
            Error::Json { .. } => "json",
            Error::Refused(_) => "refused",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
