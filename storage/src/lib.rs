//! Storage backends for restic repositories.
//!
//! A backend stores opaque files by (type, name). It knows the repository layout
//! (`data/xx/` for packs) but nothing about encryption or what the files mean.

pub mod buffers;
pub mod cache;
pub mod direct;
pub mod faults;
mod gcs;
mod helper;
mod http;
mod limit;
mod local;
pub mod location;
mod object;
pub mod options;
mod rclone;
mod rest;
pub mod retry;
mod sftp;

pub use gcs::GcsBackend;
pub use local::LocalBackend;
pub use location::Location;
pub use object::{ObjectBackend, MULTIPART_THRESHOLD};
pub use options::Options;
pub use rest::RestBackend;
pub use sftp::SftpBackend;

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
    #[error("unsupported repository type {0:?} (supported: local paths, s3:, azure:, gs:, rest:, sftp:, rclone:)")]
    Unsupported(String),
    #[error("invalid repository location {location:?}: {reason}")]
    InvalidLocation { location: String, reason: String },
    #[error("invalid backend option: {0}")]
    InvalidOption(String),
    #[error("access denied to {location}: {detail} (check the credentials)")]
    Auth { location: String, detail: String },
    #[error("the bucket or container of {0} does not exist (create it first)")]
    NoBucket(String),
    #[error("cannot reach {location}: {detail}")]
    Unreachable { location: String, detail: String },
    /// The TLS handshake failed: a certificate to trust (`--cacert`) or to present
    /// (`--tls-client-cert`), not something to try again.
    #[error("TLS connection to {location} failed: {detail}")]
    Tls { location: String, detail: String },
    #[error("{location}: {detail}")]
    Remote { location: String, detail: String },
    #[error("invalid file name {0:?}")]
    InvalidName(String),
    /// The store holds less than a range asks for: a bad index entry or a damaged file,
    /// not something to try again.
    #[error("range {offset}+{length} is past the end of {ty} {name} ({size} bytes)")]
    PastEnd {
        ty: FileType,
        name: String,
        offset: u64,
        length: u64,
        size: u64,
    },
    /// A transfer ended early: less came than the store said it was sending.
    #[error("read of {ty} {name} ended early: {size} of {length} bytes from offset {offset}")]
    ShortRead {
        ty: FileType,
        name: String,
        offset: u64,
        length: u64,
        size: u64,
    },
    /// The program a backend runs (`ssh`, `rclone`) could not start or has ended: trying the
    /// request again will not help. (Shown without the location, which callers print.)
    #[error("{detail}")]
    Helper { location: String, detail: String },
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

    /// Whether every request pays a network round trip, so that fewer, larger reads are
    /// faster (a local disk answers at once).
    fn is_remote(&self) -> bool {
        true
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

    /// Read part of a pack whose kind the caller knows: a cache keeps tree packs whole.
    async fn read_pack_range(
        &self,
        name: &str,
        offset: u64,
        length: u64,
        _kind: PackKind,
    ) -> Result<Bytes> {
        self.read_range(FileType::Pack, name, offset, length).await
    }

    /// Write a pack whose kind the caller knows: a cache keeps tree packs.
    async fn write_pack(&self, name: &str, data: Bytes, _kind: PackKind) -> Result<()> {
        self.write(FileType::Pack, name, data, false).await
    }

    /// A copy of this file read from a cache turned out damaged (it did not decrypt or
    /// hash right): drop it, and read the store from now on.
    fn forget_cached(&self, _ty: FileType, _name: &str) {}

    /// The local cache in front of the store, if there is one.
    fn repository_cache(&self) -> Option<&cache::RepoCache> {
        None
    }
}

/// What a pack holds, for a cache: restic keeps packs of tree blobs (the metadata every
/// backup, `ls` and restore reads) and leaves data packs in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackKind {
    Data,
    Tree,
}

pub type DynBackend = Arc<dyn Backend>;

/// File names are IDs (hex) or `config`; anything else could escape the layout.
pub(crate) fn check_name(ty: FileType, name: &str) -> Result<()> {
    let ok = if ty == FileType::Config {
        name == "config"
    } else {
        name.len() >= 2
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if ok {
        Ok(())
    } else {
        Err(StorageError::InvalidName(name.to_string()))
    }
}

/// `create` for stores where a repository is just its objects: fine unless `config` exists.
pub(crate) async fn ensure_no_config(b: &dyn Backend) -> Result<()> {
    match b.stat(FileType::Config, "config").await {
        Ok(_) => Err(StorageError::RepositoryExists(b.location())),
        Err(StorageError::NotFound { .. } | StorageError::NoRepository(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The existence check before an exclusive write, for stores (or emulators) that do not
/// honour a conditional create, or as a first line where they do.
pub(crate) async fn ensure_absent(b: &dyn Backend, ty: FileType, name: &str) -> Result<()> {
    match b.stat(ty, name).await {
        Ok(_) => Err(StorageError::AlreadyExists {
            ty,
            name: name.to_string(),
        }),
        Err(StorageError::NotFound { .. } | StorageError::NoRepository(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Open a backend from a restic repository string (`/path`, `s3:…`, `azure:…`, `gs:…`,
/// `rest:…`, `sftp:…`, `rclone:…`) with `-o` options. Network backends retry transient failures; with
/// `ARCA_FAULTS` set (tests), faults are injected below the retries.
pub fn open(repo: &str) -> Result<DynBackend, StorageError> {
    open_with(repo, &Options::default())
}

/// Make ring rustls's process-wide crypto provider. Call before any TLS client is built (the
/// Kubernetes client too): when a build links a second provider (aws-lc through another
/// crate's default features), rustls refuses to pick one and panics instead.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn open_with(repo: &str, opts: &Options) -> Result<DynBackend, StorageError> {
    let loc = Location::parse(repo)?;
    opts.check(loc.scheme())?;
    install_tls_provider();
    let inner: DynBackend = match &loc {
        Location::Local(path) => Arc::new(LocalBackend::new(path)),
        Location::Rest { .. } => Arc::new(RestBackend::open(&loc, opts)?),
        Location::Rclone { .. } => Arc::new(rclone::open(&loc, opts)?),
        Location::Sftp { .. } => Arc::new(SftpBackend::open(&loc, opts)?),
        Location::Gcs { .. } => Arc::new(GcsBackend::open(&loc, opts)?),
        _ => Arc::new(ObjectBackend::open(&loc, opts)?),
    };
    let inner = match std::env::var("ARCA_FAULTS") {
        Ok(spec) if !spec.is_empty() => {
            let cfg = faults::FaultConfig::parse(&spec).map_err(StorageError::InvalidOption)?;
            Arc::new(faults::FaultyBackend::new(inner, cfg)) as DynBackend
        }
        _ => inner,
    };
    let retried: DynBackend = match loc {
        // Local I/O errors do not pass by retrying, unless faults are injected.
        Location::Local(_) if std::env::var_os("ARCA_FAULTS").is_none() => inner,
        _ => Arc::new(retry::RetryBackend::new(inner)),
    };
    Ok(match (opts.limit_upload, opts.limit_download) {
        (None, None) => retried,
        (up, down) => Arc::new(limit::LimitedBackend::new(retried, up, down)),
    })
}
