//! The agent's errors. A volume backup or restore that fails ends with its message in the
//! PodVolumeBackup's or PodVolumeRestore's status (and, for a restore, in the volume's
//! failure marker); a reconcile that cannot even record that goes to the error policy, which
//! counts it by [`Failure::metric_label`].

use arca_reconcile::Failure;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server, or the work's own thread.
    #[error(transparent)]
    Reconcile(#[from] arca_reconcile::Error),
    /// The repository exists but is not Ready yet: worth waiting for (the operator retries
    /// it).
    #[error("{0}")]
    RepositoryNotReady(String),
    /// The repository engine: opening, backing up, restoring.
    #[error("{context}: {source}")]
    Engine {
        context: String,
        #[source]
        source: arca_engine::Error,
    },
    /// The store of a repository, reached without the engine (its options, opening it).
    #[error("{context}: {source}")]
    Storage {
        context: String,
        #[source]
        source: arca_storage::StorageError,
    },
    /// A file or folder on this node: a volume's folder, a marker, the restore folders.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The volume cannot be found on this node, or the kubelet pods folder is not the one
    /// the API server's pods say it is.
    #[error("{0}")]
    Volume(String),
    /// What an object asks for cannot be done (a Secret or location it names is missing or
    /// unusable), or the work ended without what it had to give; the message says which.
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

    /// For `map_err`: a local file's failure, with the file.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

impl Failure for Error {
    fn metric_label(&self) -> &'static str {
        match self {
            Error::Reconcile(e) => e.metric_label(),
            Error::RepositoryNotReady(_) => "not_ready",
            Error::Engine { .. } => "engine",
            Error::Storage { .. } => "storage",
            Error::Io { .. } => "io",
            Error::Volume(_) => "volume",
            Error::Refused(_) => "refused",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
