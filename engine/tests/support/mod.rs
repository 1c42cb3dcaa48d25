//! What the engine's integration tests share: a local store with hooks where a real store
//! fails or races, the rest passed through; two names swapped as a racing process would; the
//! backup options the tests start from.

#![allow(dead_code)] // each test binary uses a part

use arca_engine::backup::{self, BackupOptions, BackupResult, SelectAll, Selector};
use arca_engine::progress::NoProgress;
use arca_engine::writer::WriterOptions;
use arca_engine::Repository;
use arca_format::keyfile::KdfParams;
use arca_storage::{Backend, FileInfo, FileType, LocalBackend, StorageError};
use async_trait::async_trait;
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Key derivation cheap enough for tests.
pub const TINY: KdfParams = KdfParams { n: 16, r: 1, p: 1 };

/// Decides, before each write, whether it fails (and with what).
pub type WriteCheck = Box<dyn Fn(FileType) -> Option<StorageError> + Send + Sync>;

/// A local store whose `create` may be blind (it never sees an existing config: what the
/// losing run of two racing initialisations sees), and whose writes may be failed.
pub struct HookedStore {
    pub inner: LocalBackend,
    pub blind_create: bool,
    pub before_write: WriteCheck,
}

impl HookedStore {
    pub fn new(inner: LocalBackend) -> HookedStore {
        HookedStore {
            inner,
            blind_create: false,
            before_write: Box::new(|_| None),
        }
    }
}

#[async_trait]
impl Backend for HookedStore {
    fn location(&self) -> String {
        self.inner.location()
    }
    async fn create(&self) -> Result<(), StorageError> {
        if self.blind_create {
            return Ok(());
        }
        self.inner.create().await
    }
    async fn list(&self, ty: FileType) -> Result<Vec<FileInfo>, StorageError> {
        self.inner.list(ty).await
    }
    async fn read(&self, ty: FileType, name: &str) -> Result<Bytes, StorageError> {
        self.inner.read(ty, name).await
    }
    async fn read_range(
        &self,
        ty: FileType,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, StorageError> {
        self.inner.read_range(ty, name, offset, length).await
    }
    async fn write(
        &self,
        ty: FileType,
        name: &str,
        data: Bytes,
        exclusive: bool,
    ) -> Result<(), StorageError> {
        if let Some(e) = (self.before_write)(ty) {
            return Err(e);
        }
        self.inner.write(ty, name, data, exclusive).await
    }
    async fn remove(&self, ty: FileType, name: &str) -> Result<(), StorageError> {
        self.inner.remove(ty, name).await
    }
    async fn stat(&self, ty: FileType, name: &str) -> Result<FileInfo, StorageError> {
        self.inner.stat(ty, name).await
    }
}

/// Exchange two names atomically (`renameat2(RENAME_EXCHANGE)`), as a process racing a
/// backup or restore would swap a folder for a symbolic link.
pub fn exchange(a: &Path, b: &Path) -> bool {
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        a,
        rustix::fs::CWD,
        b,
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .is_ok()
}

/// Two names (a folder and a symbolic link) swapped as a process racing a backup or restore
/// would: once when the code under test reaches a chosen point ([`Swapper::first`], called
/// from its hook), then, if asked, back and forth by a thread until [`Swapper::stop`].
pub struct Swapper {
    a: PathBuf,
    b: PathBuf,
    started: AtomicBool,
    armed: AtomicBool,
    stopping: AtomicBool,
    swaps: AtomicU64,
}

impl Swapper {
    pub fn new(a: PathBuf, b: PathBuf) -> Arc<Swapper> {
        Arc::new(Swapper {
            a,
            b,
            started: AtomicBool::new(false),
            armed: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            swaps: AtomicU64::new(0),
        })
    }

    /// The first swap; later calls do nothing.
    pub fn first(&self) {
        if !self.started.swap(true, Ordering::SeqCst) {
            assert!(exchange(&self.a, &self.b), "the first swap");
            self.armed.store(true, Ordering::SeqCst);
        }
    }

    /// Whether the first swap happened.
    pub fn swapped(&self) -> bool {
        self.armed.load(Ordering::SeqCst)
    }

    /// Swaps the thread made after the first.
    pub fn swaps(&self) -> u64 {
        self.swaps.load(Ordering::Relaxed)
    }

    /// A thread that swaps back and forth after the first swap, until [`Swapper::stop`].
    pub fn keep_swapping(self: &Arc<Self>) -> JoinHandle<()> {
        let me = self.clone();
        std::thread::spawn(move || {
            while !me.stopping.load(Ordering::SeqCst) {
                if me.swapped() && exchange(&me.a, &me.b) {
                    me.swaps.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::yield_now();
            }
        })
    }

    pub fn stop(&self, thread: Option<JoinHandle<()>>) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(t) = thread {
            t.join().expect("the swapping thread");
        }
    }
}

/// A backup of `paths` with nothing special: no parent, no tags, two threads.
pub fn backup_options(
    paths: Vec<PathBuf>,
    contents_of: bool,
    selector: Arc<dyn Selector>,
) -> BackupOptions {
    BackupOptions {
        paths,
        tags: vec![],
        hostname: "arca".into(),
        parent: None,
        force: false,
        with_atime: false,
        excludes: vec![],
        selector,
        writer: WriterOptions::default(),
        time: None,
        threads: 2,
        program_version: "arca test".into(),
        contents_of,
        skip_if_unchanged: false,
        ignore: Default::default(),
    }
}

/// A new repository at `repo` (password `pw`, cheap key derivation) holding one backup of
/// the contents of `source`; returns it opened with its index, and the backup's result.
pub async fn repository_with_backup_of(
    repo: &Path,
    source: &Path,
) -> (Arc<Repository>, BackupResult) {
    let backend: arca_storage::DynBackend = Arc::new(LocalBackend::new(repo));
    Repository::init(backend.clone(), "pw", 2, None, TINY)
        .await
        .unwrap();
    let mut repo = Repository::open(backend.clone(), "pw").await.unwrap();
    repo.load_index(&NoProgress).await.unwrap();
    let done = backup::backup(
        Arc::new(repo),
        backup_options(vec![source.to_path_buf()], true, Arc::new(SelectAll)),
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    let mut repo = Repository::open(backend, "pw").await.unwrap();
    repo.load_index(&NoProgress).await.unwrap();
    (Arc::new(repo), done)
}
