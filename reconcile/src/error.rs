//! The failures every controller has, and how the error policy tells kinds apart.

/// A failed reconcile as the error policy sees it: any error, with the kind it is counted
/// under.
pub trait Failure: std::error::Error + Send + Sync + 'static {
    /// The kind of failure, a label of `arca_reconcile_failures_total`: one of a few fixed
    /// words, never a message (a label's values must stay few).
    fn metric_label(&self) -> &'static str;
}

/// What fails in either controller: a request to the API server, the work's own thread, or
/// the repository work both do (the engine, a store, local files). Each controller crate's
/// error wraps this beside the kinds only it has.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the API server failed; `action` says which (`listing pods`, `cannot
    /// update Backup b1`).
    #[error("{action}: {source}")]
    Api {
        /// What the request was for.
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
    /// The repository engine: opening, reading or writing a repository.
    #[error("{context}: {}", one_line(source))]
    Engine {
        /// What was being done, and to which repository.
        context: String,
        /// The engine's error.
        #[source]
        source: arca_engine::Error,
    },
    /// A store reached without the engine (its options, opening or probing it).
    #[error("{context}: {source}")]
    Storage {
        /// What was being done, and to which store.
        context: String,
        /// The store's error.
        #[source]
        source: arca_storage::StorageError,
    },
    /// A local file or folder (a volume's, a marker, manifests on their way).
    #[error("{context}: {source}")]
    Io {
        /// The file or folder.
        context: String,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
}

/// Constructors for `map_err`, each keeping the cause and saying what was being done; an
/// error type that wraps [`Error`] has them by implementing this (`impl Wrap for Error {}`).
pub trait Wrap: From<Error> {
    /// A failed API request.
    fn api(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let action = action.into();
        move |source| {
            Self::from(Error::Api {
                action,
                source: Box::new(source),
            })
        }
    }

    /// An engine failure.
    fn engine(context: impl Into<String>) -> impl FnOnce(arca_engine::Error) -> Self {
        let context = context.into();
        move |source| Self::from(Error::Engine { context, source })
    }

    /// A storage failure.
    fn storage(context: impl Into<String>) -> impl FnOnce(arca_storage::StorageError) -> Self {
        let context = context.into();
        move |source| Self::from(Error::Storage { context, source })
    }

    /// A local file's failure; `context` names the file.
    fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::from(Error::Io { context, source })
    }
}

impl Wrap for Error {}

impl Error {
    /// Whether trying again soon may help: the store failed for a while (a 5xx, a dropped
    /// connection), not for good.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Engine {
                source: arca_engine::Error::Storage(s),
                ..
            }
            | Error::Storage { source: s, .. } => s.is_transient(),
            _ => false,
        }
    }
}

impl Failure for Error {
    fn metric_label(&self) -> &'static str {
        match self {
            Error::Api { .. } => "api",
            Error::Encoding(_) => "encoding",
            Error::Task(_) => "task",
            Error::Engine { .. } => "engine",
            Error::Storage { .. } => "storage",
            Error::Io { .. } => "io",
        }
    }
}

/// The one-line form of an error and its causes (each cause once, even where a message
/// repeats its source's).
pub fn one_line(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = c.source();
    }
    s
}
