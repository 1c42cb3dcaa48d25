//! The operator's errors: what a reconcile of a location, repository, Backup, Restore or
//! Schedule can fail with. A failure the object's status can hold ends the operation with
//! its message (`failureReason`); one that cannot even be recorded goes to the error policy,
//! which counts it by [`Failure::metric_label`].

use arca_reconcile::Failure;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server, or the work's own thread.
    #[error(transparent)]
    Reconcile(#[from] arca_reconcile::Error),
    /// The repository engine: opening, reading or writing a repository.
    #[error("{context}: {}", crate::context::one_line(source))]
    Engine {
        context: String,
        #[source]
        source: arca_engine::Error,
    },
    /// The store of a location, reached without the engine (probing, opening).
    #[error("{context}: {source}")]
    Storage {
        context: String,
        #[source]
        source: arca_storage::StorageError,
    },
    /// The temporary files that manifests pass through.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
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

impl Error {
    /// For `map_err`: a failed API request, with what it was for.
    pub fn api(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let f = arca_reconcile::Error::api(action);
        move |e| Error::Reconcile(f(e))
    }

    /// For `map_err`: an engine failure, with what it was doing.
    pub fn engine(context: impl Into<String>) -> impl FnOnce(arca_engine::Error) -> Error {
        let context = context.into();
        move |source| Error::Engine { context, source }
    }

    /// For `map_err`: a storage failure, with what it was doing.
    pub fn storage(context: impl Into<String>) -> impl FnOnce(arca_storage::StorageError) -> Error {
        let context = context.into();
        move |source| Error::Storage { context, source }
    }

    /// For `map_err`: a local file's failure, with what it was doing.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }

    /// For `map_err`: JSON that does not convert, with what it is.
    pub fn json(context: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Error {
        let context = context.into();
        move |source| Error::Json { context, source }
    }
}

impl Failure for Error {
    fn metric_label(&self) -> &'static str {
        match self {
            Error::Reconcile(e) => e.metric_label(),
            Error::Engine { .. } => "engine",
            Error::Storage { .. } => "storage",
            Error::Io { .. } => "io",
            Error::Json { .. } => "json",
            Error::Refused(_) => "refused",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
