//! restic's repository format as pure types and functions: no I/O, no async.
//!
//! Every decoder here takes bytes read from storage and returns a typed error on any
//! input; none of them panics.

pub mod compression;
pub mod config;
pub mod crypto;
pub mod gojson;
pub mod gotime;
pub mod id;
pub mod index;
pub mod keyfile;
pub mod lock;
pub mod pack;
pub mod snapshot;
pub mod tree;

pub use id::Id;

/// Repository format versions this crate reads and writes.
pub const MIN_REPO_VERSION: u32 = 1;
pub const MAX_REPO_VERSION: u32 = 2;
