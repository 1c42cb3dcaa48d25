//! Two initialisations of one store racing (the operator once ran two): the loser must stop
//! with "already exists" and leave no key of its own, since a second key for the same
//! password but another master key makes the repository fail to open.

use arca_engine::Repository;
use arca_format::keyfile::KdfParams;
use arca_storage::{Backend, DynBackend, FileInfo, FileType, LocalBackend, StorageError};
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;

const PW: &str = "pw";
const TINY: KdfParams = KdfParams { n: 16, r: 1, p: 1 };

/// A local store whose `create` never sees an existing config: what the losing run sees
/// when both check before either writes.
struct LateRacer(LocalBackend);

#[async_trait]
impl Backend for LateRacer {
    fn location(&self) -> String {
        self.0.location()
    }
    async fn create(&self) -> Result<(), StorageError> {
        Ok(())
    }
    async fn list(&self, ty: FileType) -> Result<Vec<FileInfo>, StorageError> {
        self.0.list(ty).await
    }
    async fn read(&self, ty: FileType, name: &str) -> Result<Bytes, StorageError> {
        self.0.read(ty, name).await
    }
    async fn read_range(
        &self,
        ty: FileType,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, StorageError> {
        self.0.read_range(ty, name, offset, length).await
    }
    async fn write(
        &self,
        ty: FileType,
        name: &str,
        data: Bytes,
        exclusive: bool,
    ) -> Result<(), StorageError> {
        self.0.write(ty, name, data, exclusive).await
    }
    async fn remove(&self, ty: FileType, name: &str) -> Result<(), StorageError> {
        self.0.remove(ty, name).await
    }
    async fn stat(&self, ty: FileType, name: &str) -> Result<FileInfo, StorageError> {
        self.0.stat(ty, name).await
    }
}

#[tokio::test]
async fn the_losing_initialisation_leaves_no_key_and_the_repository_opens() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let winner: DynBackend = Arc::new(LocalBackend::new(&root));
    Repository::init(winner.clone(), PW, 2, None, TINY)
        .await
        .unwrap();
    let loser: DynBackend = Arc::new(LateRacer(LocalBackend::new(&root)));
    let Err(err) = Repository::init(loser, PW, 2, None, TINY).await else {
        panic!("a second init must fail");
    };
    assert!(
        err.to_string().contains("already exists"),
        "unexpected error: {err}"
    );
    assert_eq!(winner.list(FileType::Key).await.unwrap().len(), 1);
    Repository::open(winner, PW).await.unwrap();
}
