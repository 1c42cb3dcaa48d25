//! `restore`: recreate a snapshot's tree under a target directory.
//!
//! The trees are walked and the plan handed out in bounded batches (`plan`); each batch is
//! restored (`batch`) before the walk goes on: directories, then file contents fetched
//! pack by pack and written at their offsets in every file that needs them (`contents`),
//! then links and special files, then metadata (`metadata`), directories after what they
//! hold so their times survive the writes inside them. Everything is made relative to the
//! target's handle, never through a symbolic link (`target`).

use crate::error::{Error, Result};
use crate::filter::Patterns;
use crate::progress::Progress;
use crate::repo::Repository;
use arca_format::Id;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;

mod batch;
mod contents;
mod delete;
mod dry_run;
mod metadata;
mod plan;
mod target;
mod verify;
use batch::Restorer;
pub use contents::ZERO_CHUNK_ID;
use dry_run::DryRun;
use plan::Planner;
use target::Target;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Overwrite {
    #[default]
    Always,
    IfChanged,
    IfNewer,
    Never,
}

impl Overwrite {
    pub fn parse(s: &str) -> Option<Overwrite> {
        Some(match s {
            "always" => Overwrite::Always,
            "if-changed" => Overwrite::IfChanged,
            "if-newer" => Overwrite::IfNewer,
            "never" => Overwrite::Never,
            _ => return None,
        })
    }
}

pub struct RestoreOptions {
    pub target: PathBuf,
    pub include: Patterns,
    pub exclude: Patterns,
    pub sparse: bool,
    pub overwrite: Overwrite,
    pub verify: bool,
    /// Only find out what would be restored, skipped and deleted: nothing in the target is
    /// created, changed or removed (restic's `--dry-run`).
    pub dry_run: bool,
    /// Remove what is in a restored directory of the target but not in the snapshot (and
    /// selected by the filters); a file of the snapshot may then replace a directory with
    /// contents (restic's `--delete`).
    pub delete: bool,
    /// How many stretches of packs to fetch and write at once; `None`: what suits the
    /// store ([`contents::pack_reads`]).
    pub concurrency: Option<usize>,
    /// How much plan (paths, blob IDs, attributes) one batch holds: restore walks the
    /// trees until a batch is this large, restores it, and walks on. [`BATCH_BYTES`] unless
    /// a test wants many batches.
    pub batch_bytes: usize,
    /// Restore device nodes, setuid and setgid bits and file capabilities
    /// (`security.capability`) as the snapshot has them. Off for restores into pods, whose
    /// snapshots a tenant controls: a root restore must not hand them privileges.
    pub privileged_files: bool,
}

impl RestoreOptions {
    /// Everything, into `target`, overwriting what is there, without privileged files (what
    /// the cluster agents need).
    pub fn everything(target: PathBuf) -> RestoreOptions {
        let none = || Patterns::new(&[], false).expect("no patterns is valid");
        RestoreOptions {
            target,
            include: none(),
            exclude: none(),
            sparse: false,
            overwrite: Overwrite::Always,
            verify: false,
            dry_run: false,
            delete: false,
            concurrency: None,
            batch_bytes: BATCH_BYTES,
            privileged_files: false,
        }
    }
}

#[derive(Debug, Default)]
pub struct RestoreReport {
    pub files: u64,
    pub dirs: u64,
    pub others: u64,
    pub bytes: u64,
    pub skipped: u64,
    /// The size of the files skipped.
    pub skipped_bytes: u64,
    /// Of `dirs`, those restored only because they hold something the filters selected.
    pub implicit_dirs: u64,
    /// Items removed (or, in a dry run, that would be) by `delete`, each counted.
    pub deleted: u64,
    pub verified_files: u64,
    /// How long `--verify` took.
    pub verify_time: std::time::Duration,
    /// Problems with single items; the rest was restored.
    pub errors: Problems,
    /// Privileged parts left out on purpose ([`RestoreOptions::privileged_files`] off).
    pub withheld: Problems,
}

/// How much plan one batch holds by default: a hundred thousand ordinary files fit in one;
/// restoring a batch takes a few times this in indexes and buffers.
pub const BATCH_BYTES: usize = 32 << 20;

/// How many problems a report lists; beyond that they are only counted, so a snapshot
/// with millions of bad items does not fill memory with messages.
const MAX_LISTED: usize = 10_000;

/// Messages about single items: the first 10,000 kept, all counted.
#[derive(Debug, Default)]
pub struct Problems {
    listed: Vec<String>,
    count: u64,
}

impl Problems {
    pub fn push(&mut self, problem: String) {
        self.count += 1;
        if self.listed.len() < MAX_LISTED {
            self.listed.push(problem);
        }
    }

    /// How many there were, listed or not.
    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn first(&self) -> Option<&String> {
        self.listed.first()
    }

    /// The listed ones, in the order they were found.
    pub fn iter(&self) -> std::slice::Iter<'_, String> {
        self.listed.iter()
    }

    /// How many were counted but not listed.
    pub fn unlisted(&self) -> u64 {
        self.count - self.listed.len() as u64
    }
}

impl Extend<String> for Problems {
    fn extend<I: IntoIterator<Item = String>>(&mut self, problems: I) {
        for p in problems {
            self.push(p);
        }
    }
}

impl IntoIterator for Problems {
    type Item = String;
    type IntoIter = std::vec::IntoIter<String>;
    fn into_iter(self) -> Self::IntoIter {
        self.listed.into_iter()
    }
}

impl<'a> IntoIterator for &'a Problems {
    type Item = &'a String;
    type IntoIter = std::slice::Iter<'a, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.listed.iter()
    }
}

/// The longest path (relative to the target) restore makes: the kernel's limit for one
/// path (`PATH_MAX`, the terminating NUL included). A deeper item could not be created by
/// path anyway, so it is reported once, with everything below it, instead of failing once
/// per item; this also bounds restore's memory when a tree is thousands of levels deep.
const MAX_PATH: usize = 4095;

/// A path of any length, shortened for a message to its start and end.
fn shortened(rel: &[u8]) -> String {
    const KEEP: usize = 120;
    if rel.len() <= 2 * KEEP {
        return String::from_utf8_lossy(rel).into_owned();
    }
    format!(
        "{}…{}",
        String::from_utf8_lossy(&rel[..KEEP]),
        String::from_utf8_lossy(&rel[rel.len() - KEEP..])
    )
}

/// Names that would step outside the directory they are in are refused.
fn check_name(name: &[u8]) -> std::result::Result<(), String> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(format!(
            "invalid node name {:?}",
            String::from_utf8_lossy(name)
        ));
    }
    Ok(())
}

/// An item's path relative to the target (its snapshot path without the leading `/`).
fn rel_path(rel: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(rel.strip_prefix(b"/").unwrap_or(rel)))
}

/// Restore the tree `root` under `opts.target`, batch by batch: each batch's directories,
/// files, links and special files are made and its finished directories get their
/// metadata before the walk goes on, so memory follows the batch, not the snapshot.
pub async fn restore(
    repo: Arc<Repository>,
    root: Id,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let mut report = RestoreReport::default();
    let mut planner = Planner::start(&repo, &root, opts).await?;
    if opts.dry_run {
        // Nothing is created, not even the target: what is there is only looked at.
        let target = Target::open_existing(&opts.target).map_err(Error::io(&opts.target))?;
        let mut dry = DryRun::new(target.map(|t| t.replacing_folders(opts.delete)), opts);
        while let Some(batch) = planner.next_batch(&mut report.errors).await? {
            dry.count(batch, &mut report, progress);
        }
        return Ok(report);
    }
    // restic creates the target private (0700) when it does not exist. Everything below
    // is made relative to this handle, never through a symbolic link (see `target`).
    let target = Target::create(&opts.target).map_err(Error::io(&opts.target))?;
    let target = Arc::new(target.replacing_folders(opts.delete));
    let mut restorer = Restorer::new(&repo, &target, opts, progress);
    while let Some(batch) = planner.next_batch(&mut report.errors).await? {
        restorer.restore(batch, &mut report).await?;
        restorer.keep_open_only(planner.open_dirs());
    }
    Ok(report)
}
