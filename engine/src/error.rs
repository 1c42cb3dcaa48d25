//! Engine errors: each names the file, blob or path it is about.

use arca_format::pack::BlobType;
use arca_format::Id;
use arca_storage::{FileType, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("wrong password or no key found")]
    WrongPassword,
    #[error("repository has no keys (is {0} a restic repository?)")]
    NoKeys(String),
    #[error("key {id}: {source}")]
    Key {
        id: String,
        #[source]
        source: arca_format::keyfile::KeyError,
    },
    #[error("config: {0}")]
    Config(String),
    #[error("{ty} {name}: {msg}")]
    File {
        ty: FileType,
        name: String,
        msg: String,
    },
    #[error("{ty} {name}: content does not match its name (hash {actual})")]
    HashMismatch {
        ty: FileType,
        name: String,
        actual: Id,
    },
    #[error("{blob_type} blob {id} not found in index")]
    BlobNotFound { blob_type: BlobType, id: Id },
    #[error("{blob_type} blob {id} in pack {pack}: {msg}")]
    Blob {
        blob_type: BlobType,
        id: Id,
        pack: Id,
        msg: String,
    },
    #[error("tree {id}: {msg}")]
    Tree { id: Id, msg: String },
    #[error("no matching ID found for prefix {0:?}")]
    NoMatch(String),
    #[error("multiple IDs with prefix {0:?}")]
    Ambiguous(String),
    #[error("no snapshot found")]
    NoSnapshot,
    #[error("path {0:?} not found in snapshot")]
    PathNotFound(String),
    #[error("repository is already locked {0}")]
    Locked(String),
    #[error("{0}")]
    Invalid(String),
    /// Writing what a command produces (a dump to standard output) failed.
    #[error("writing the output: {0}")]
    Output(#[source] std::io::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn file(ty: FileType, name: &str, msg: impl std::fmt::Display) -> Error {
        Error::File {
            ty,
            name: name.to_string(),
            msg: msg.to_string(),
        }
    }

    pub fn io(path: impl AsRef<std::path::Path>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.as_ref().display().to_string();
        move |source| Error::Io { path, source }
    }
}
