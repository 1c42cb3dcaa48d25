//! The repository engine: opening and creating repositories, keys, locks, the
//! in-memory index, blob reads, snapshots and trees, check and restore.
//!
//! No command-line parsing and no printing here: progress leaves through
//! [`progress::Progress`], results are returned as values.

pub mod backup;
pub mod check;
pub mod copy;
pub mod detached;
pub mod diff;
pub mod error;
pub mod exclude;
pub mod filter;
pub mod forget;
pub mod fsnode;
pub mod index;
pub mod keys;
pub mod lock;
pub mod progress;
pub mod prune;
pub mod recovery;
pub mod repack;
pub mod repair;
pub mod repo;
pub mod restore;
pub mod rewrite;
pub mod snapshots;
pub mod stats;
pub mod sys;
pub mod walk;
pub mod writer;

pub use error::{Error, Result};
pub use repo::Repository;
