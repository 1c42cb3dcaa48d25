//! The repository engine: everything a restic command does to a repository, as library
//! calls. Opening and creating repositories, keys and locks (`repo`, `keys`, `lock`); the
//! in-memory index (`index`); writing blobs into packs (`writer`); `backup`, `restore`,
//! `check`, `forget` and `prune` (with `repack`), `copy`, `rewrite`, `repair`, `diff`,
//! `stats`; the tree walk they share (`walk`); the cluster's recovery key (`recovery`).
//!
//! No command-line parsing and no printing here: progress leaves through
//! [`progress::Progress`], results are returned as values.

pub mod backup;
pub mod check;
pub mod copy;
pub mod diff;
pub mod dump;
pub mod error;
pub mod exclude;
pub mod filter;
pub mod forget;
pub mod fsnode;
pub mod index;
pub mod keys;
pub mod lock;
pub mod migrate;
pub mod progress;
pub mod prune;
pub mod recover;
pub mod recovery;
pub mod repack;
pub mod repair;
pub mod repo;
pub mod restore;
pub mod rewrite;
pub mod snapshots;
pub mod stats;
pub mod sys;
pub mod tag;
pub mod walk;
pub mod writer;

pub use error::{Error, Result};
pub use repo::Repository;
