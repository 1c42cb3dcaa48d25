//! restic-compatible content-defined chunking: the Rabin fingerprint chunker of
//! `github.com/restic/chunker`, cut for cut, for any polynomial restic accepts.
//!
//! Build [`ChunkerTables`] once per repository polynomial, then use a [`Chunker`] per file
//! (piecewise input), [`ChunkIter`] (any reader) or [`chunk_lengths`] (whole buffer).
//! Benchmarks live in benches/.
#![warn(missing_docs)]

mod chunker;
mod iter;
mod pol;

pub use chunker::{
    chunk_lengths, Chunker, ChunkerTables, AVG_BITS, MAX_SIZE, MIN_SIZE, WINDOW_SIZE,
};
pub use iter::{ChunkIter, READ_SIZE};
pub use pol::{ChunkerError, Pol, DERIVE_MAX_TRIES};
