//! Helpers shared by the cross-crate tests: fixtures, the restic binary, datasets.
//!
//! Used by the integration tests of this crate (`tests/tests/*.rs`). Nothing here is a mock:
//! the helpers run the real `restic`, the real `arca` binary and the system `tar`/`cp` on real
//! files.
//!
//! - [`fixtures_dir`], [`unpack_fixture`], [`TempRepo`]: the committed restic fixture repositories
//!   (password [`FIXTURE_PASSWORD`]).
//! - [`require_restic`], [`restic_or_skip`], [`require_tool`], [`tool_or_skip`] and the macros
//!   [`restic_or_return!`] / [`tool_or_return!`]: external tools, with the CI rule (missing under
//!   `CI=true` is a failure; elsewhere a loud `SKIPPED` line).
//! - [`Restic`], [`Arca`] (both deref to [`Runner`]) and [`arca_bin`]: run a command line against a
//!   repository with a clean environment, the password only ever in `RESTIC_PASSWORD`.
//! - [`make_dataset`]: the interop dataset (odd names, links, modes, times, sizes).
//! - [`compare_trees`]: compare two directory trees byte for byte and bit for bit.
//! - [`run_measured`]: run a program and measure its peak resident memory.
//! - [`RequestLog`]: a proxy in front of an object store that records each request.
//! - [`dialect`]: which restic runs (0.14 or current) and how 0.14's output differs.

mod compare;
mod dataset;
pub mod dialect;
mod fixtures;
mod peak;
mod request_log;
mod runner;
mod tools;

pub use compare::{compare_trees, compare_trees_with, tree_differences, CompareOptions};
pub use dataset::{
    make_dataset, make_dataset_seeded, DatasetScale, DatasetSummary, DetRng, DEFAULT_SEED,
};
pub use dialect::{dialect_of, Dialect};
pub use fixtures::{
    fixture_names, fixture_tarball, fixtures_dir, keep_until_exit, swap_in_cheap_key,
    unpack_fixture, workspace_root, TempRepo, FIXTURE_PASSWORD,
};
pub use peak::{run_measured, Measured};
pub use request_log::RequestLog;
pub use runner::{agent_bin, arca_bin, cp_a, Arca, Invocation, Restic, Runner};
pub use tools::{find_tool, is_ci, require_restic, require_tool, restic_or_skip, tool_or_skip};

/// `let restic = restic_or_return!();` — the restic path, or return from the (test) function
/// after printing a loud `SKIPPED` line. Under `CI=true` a missing restic panics instead.
#[macro_export]
macro_rules! restic_or_return {
    () => {
        match $crate::restic_or_skip() {
            Some(path) => path,
            None => return,
        }
    };
}

/// `let rclone = tool_or_return!("rclone");` — like [`restic_or_return!`] for any tool on PATH.
#[macro_export]
macro_rules! tool_or_return {
    ($name:expr) => {
        match $crate::tool_or_skip($name) {
            Some(path) => path,
            None => return,
        }
    };
}
