//! Two initialisations of one store racing (the operator once ran two): the loser must stop
//! with "already exists" and leave no key of its own, since a second key for the same
//! password but another master key makes the repository fail to open.

mod support;

use arca_engine::Repository;
use arca_storage::{DynBackend, FileType, LocalBackend};
use std::sync::Arc;
use support::HookedStore;
use support::TINY;

const PW: &str = "pw";

#[tokio::test]
async fn the_losing_initialisation_leaves_no_key_and_the_repository_opens() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let winner: DynBackend = Arc::new(LocalBackend::new(&root));
    Repository::init(winner.clone(), PW, 2, None, TINY)
        .await
        .unwrap();
    // Its `create` never sees the config: what the losing run sees when both check before
    // either writes.
    let mut loser = HookedStore::new(LocalBackend::new(&root));
    loser.blind_create = true;
    let loser: DynBackend = Arc::new(loser);
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
