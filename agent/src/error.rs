//! The agent's errors. A volume backup or restore that fails ends with its message in the
//! PodVolumeBackup's or PodVolumeRestore's status (and, for a restore, in the volume's
//! failure marker); a reconcile that cannot even record that goes to the error policy, which
//! counts it by [`Failure::metric_label`].

use arca_reconcile::{Failure, Wrap};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server, the work's own thread, the engine, a store, a local file.
    #[error(transparent)]
    Reconcile(#[from] arca_reconcile::Error),
    /// The repository exists but is not Ready yet: worth waiting for (the operator retries
    /// it).
    #[error("{0}")]
    RepositoryNotReady(String),
    /// The volume cannot be found on this node, or the kubelet pods folder is not the one
    /// the API server's pods say it is.
    #[error("{0}")]
    Volume(String),
    /// What an object asks for cannot be done (a Secret or location it names is missing or
    /// unusable), or the work ended without what it had to give; the message says which.
    #[error("{0}")]
    Refused(String),
}

impl Wrap for Error {}

impl Failure for Error {
    fn metric_label(&self) -> &'static str {
        match self {
            Error::Reconcile(e) => e.metric_label(),
            Error::RepositoryNotReady(_) => "not_ready",
            Error::Volume(_) => "volume",
            Error::Refused(_) => "refused",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
