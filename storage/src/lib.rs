//! Storage backends for restic repositories.
//!
//! A backend stores opaque files by (type, name). It knows the repository layout
//! (`data/xx/` for packs) but nothing about encryption or what the files mean.

pub mod buffers;
mod local;

pub use local::LocalBackend;

use async_trait::async_trait;
use bytes::Bytes;
use std::fmt;
use std::sync::Arc;

/// The kinds of file a repository holds, each in its own directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileType {
    Config,
    Key,
    Snapshot,
    Index,
    Lock,
    Pack,
}

impl FileType {
    pub const ALL: [FileType; 6] = [
        FileType::Config,
        FileType::Key,
        FileType::Snapshot,
        FileType::Index,
        FileType::Lock,
        FileType::Pack,
    ];

    /// Directory name in the default layout (`config` is a file at the root).
    pub fn dir(self) -> &'static str {
        match self {
            FileType::Config => "",
            FileType::Key => "keys",
            FileType::Snapshot => "snapshots",
            FileType::Index => "index",
            FileType::Lock => "locks",
            FileType::Pack => "data",
        }
    }
}

impl fmt::Display for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileType::Config => "config",
            FileType::Key => "key",
            FileType::Snapshot => "snapshot",
            FileType::Index => "index",
            FileType::Lock => "lock",
            FileType::Pack => "pack",
        })
    }
}

/// One listed file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    pub name: String,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{ty} {name} does not exist")]
    NotFound { ty: FileType, name: String },
    #[error("{ty} {name} already exists")]
    AlreadyExists { ty: FileType, name: String },
    #[error("repository at {0} does not exist")]
    NoRepository(String),
    #[error("repository at {0} already exists")]
    RepositoryExists(String),
    #[error("unsupported repository type {0:?} (this build supports local paths)")]
    Unsupported(String),
    #[error("invalid file name {0:?}")]
    InvalidName(String),
    #[error("range {offset}+{length} is past the end of {ty} {name} ({size} bytes)")]
    ShortRead {
        ty: FileType,
        name: String,
        offset: u64,
        length: u64,
        size: u64,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl StorageError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// What every storage backend offers. Names are the file names of the repository
/// layout (64 hex characters, or `config`).
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Human-readable location, for messages.
    fn location(&self) -> String;

    /// How many requests (pack uploads, downloads) are worth running at once.
    fn connections(&self) -> usize {
        2
    }

    /// Create the repository's directories or container; fails if `config` exists.
    async fn create(&self) -> Result<()>;

    /// List every file of a type with its size. Order is unspecified.
    async fn list(&self, ty: FileType) -> Result<Vec<FileInfo>>;

    /// Read a whole file.
    async fn read(&self, ty: FileType, name: &str) -> Result<Bytes>;

    /// Read `length` bytes at `offset`; a range past the end is an error.
    async fn read_range(&self, ty: FileType, name: &str, offset: u64, length: u64)
        -> Result<Bytes>;

    /// Write a file atomically: a reader sees nothing or the whole file under its name.
    /// With `exclusive`, fail with AlreadyExists instead of replacing a file.
    async fn write(&self, ty: FileType, name: &str, data: Bytes, exclusive: bool) -> Result<()>;

    async fn remove(&self, ty: FileType, name: &str) -> Result<()>;

    async fn stat(&self, ty: FileType, name: &str) -> Result<FileInfo>;
}

pub type DynBackend = Arc<dyn Backend>;

/// Open a backend from a restic repository string. Only local paths (`/path` or
/// `local:/path`) are supported so far.
pub fn open(repo: &str) -> Result<DynBackend, StorageError> {
    if let Some((scheme, _)) = repo.split_once(':') {
        let known = ["s3", "azure", "gs", "rest", "sftp", "b2", "swift", "rclone"];
        if known.contains(&scheme) {
            return Err(StorageError::Unsupported(scheme.to_string()));
        }
    }
    let path = repo.strip_prefix("local:").unwrap_or(repo);
    if path.is_empty() {
        return Err(StorageError::InvalidName(repo.to_string()));
    }
    Ok(Arc::new(LocalBackend::new(path)))
}
