//! What the engine's integration tests share: a local store with hooks where a real store
//! fails or races, the rest passed through; an atomic swap of two names.

#![allow(dead_code)] // each test binary uses a part

use arca_storage::{Backend, FileInfo, FileType, LocalBackend, StorageError};
use async_trait::async_trait;
use bytes::Bytes;
use std::path::Path;

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
