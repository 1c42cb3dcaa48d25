//! Engine errors: each names the file, blob or path it is about.

use arca_format::pack::BlobType;
use arca_format::Id;
use arca_storage::{FileType, StorageError};

/// Why a blob's stored bytes do not give the blob.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("read {read} bytes, want {want}")]
    Length { read: usize, want: u32 },
    #[error("{0}")]
    Decrypt(#[from] arca_format::crypto::CryptoError),
    #[error("{0}")]
    Decompress(#[from] arca_format::compression::CompressionError),
    #[error("wrong data returned, hash does not match the blob ID")]
    Hash,
    /// The blob decoded, but not to the size the index gives it.
    #[error("{read} bytes where the index says {want}")]
    Size { read: u64, want: u64 },
}

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
    #[error("{blob_type} blob {id} in pack {pack}: {reason}")]
    Blob {
        blob_type: BlobType,
        id: Id,
        pack: Id,
        #[source]
        reason: BlobError,
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
    #[error("unsupported repository version {0} (supported: 1 and 2)")]
    UnsupportedVersion(u32),
    #[error("chunker polynomial {0:x} is not irreducible")]
    ReduciblePolynomial(u64),
    #[error("refusing to remove key currently used to access repository")]
    KeyInUse,
    #[error("the repository was opened with the recovery key being replaced")]
    RecoveryKeyInUse,
    #[error("no policy was specified, no snapshots will be removed")]
    NoPolicy,
    #[error("refusing to delete last snapshot of snapshot group \"{0}\"")]
    LastOfGroup(String),
    #[error("{blob_type} blob {id} is used by a snapshot but not stored in any existing pack; run check and repair before pruning")]
    UsedBlobNotStored { blob_type: BlobType, id: Id },
    #[error("check found {0} errors; the repository is not upgraded (run check, then repair)")]
    CheckFailedBeforeMigration(usize),
    #[error("dir {0:?} has no subtree")]
    DirWithoutSubtree(String),
    /// What to back up cannot be laid out as one snapshot.
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("encoding a tree: {0}")]
    TreeEncoding(#[source] arca_format::tree::TreeError),
    #[error("starting the worker threads: {0}")]
    ThreadPool(#[source] rayon::ThreadPoolBuildError),
    /// A task the work was split into panicked or was cancelled.
    #[error("{task} failed: {source}")]
    TaskFailed {
        task: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("upload failed, stopping")]
    UploadFailed,
    #[error("writer already finished")]
    WriterFinished,
    #[error("pack uploader stopped")]
    UploaderStopped,
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

/// Backup targets that cannot make one snapshot tree.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("invalid target {0}: no path components")]
    NoComponents(std::path::PathBuf),
    #[error("backing up a directory's contents takes one directory, not {0}")]
    ContentsOfOne(usize),
    #[error("path is already set for target {0}")]
    Twice(std::path::PathBuf),
    #[error("collision on path {0}")]
    Collision(std::path::PathBuf),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// For a task handle's `map_err`: the task `task` failed.
    pub fn task(task: &'static str) -> impl FnOnce(tokio::task::JoinError) -> Error {
        move |source| Error::TaskFailed { task, source }
    }
}

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
