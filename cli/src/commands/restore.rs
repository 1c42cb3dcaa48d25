//! `arca restore`: restoring a snapshot.

use crate::global::GlobalOptions;
use crate::output::{go_duration_ms, Bar, JsonObject};
use anyhow::{anyhow, bail, Result};
use arca_engine::filter::Patterns;
use arca_engine::restore::{self, Overwrite, RestoreOptions};
use arca_engine::snapshots;
use arca_engine::walk;
use arca_engine::Repository;
use clap::Args;
use std::sync::Arc;

use super::backup::read_patterns;
use super::{out, FilterArgs};
use crate::output::go_time_string;

#[derive(Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// directory to extract data to
    #[arg(short, long)]
    target: String,
    /// include a pattern (can be specified multiple times)
    #[arg(short, long)]
    include: Vec<String>,
    /// exclude a pattern (can be specified multiple times)
    #[arg(short, long)]
    exclude: Vec<String>,
    /// same as --include but ignores the casing of filenames
    #[arg(long)]
    iinclude: Vec<String>,
    /// same as --exclude but ignores the casing of filenames
    #[arg(long)]
    iexclude: Vec<String>,
    /// read include patterns from a file (can be specified multiple times)
    #[arg(long)]
    include_file: Vec<std::path::PathBuf>,
    /// same as --include-file but ignores casing of filenames in patterns
    #[arg(long)]
    iinclude_file: Vec<std::path::PathBuf>,
    /// read exclude patterns from a file (can be specified multiple times)
    #[arg(long)]
    exclude_file: Vec<std::path::PathBuf>,
    /// same as --exclude-file but ignores casing of filenames in patterns
    #[arg(long)]
    iexclude_file: Vec<std::path::PathBuf>,
    /// verify restored files content
    #[arg(long)]
    verify: bool,
    /// restore files as sparse
    #[arg(long)]
    sparse: bool,
    /// overwrite behavior, one of (always|if-changed|if-newer|never)
    #[arg(long, default_value = "always")]
    overwrite: String,
    /// snapshot ID (or "latest"), optionally followed by :subfolder
    snapshot: String,
}

pub(super) async fn run(mut repo: Repository, mut a: RestoreArgs, g: GlobalOptions) -> Result<i32> {
    // Pattern files as restic reads them (comments, blank lines, $VARIABLES), added to the
    // patterns given one by one.
    a.include.extend(read_patterns(&a.include_file)?);
    a.iinclude.extend(read_patterns(&a.iinclude_file)?);
    a.exclude.extend(read_patterns(&a.exclude_file)?);
    a.iexclude.extend(read_patterns(&a.iexclude_file)?);
    let overwrite = Overwrite::parse(&a.overwrite).ok_or_else(|| {
        anyhow!(
            "invalid --overwrite {:?}: use always, if-changed, if-newer or never",
            a.overwrite
        )
    })?;
    if (!a.include.is_empty() || !a.iinclude.is_empty())
        && (!a.exclude.is_empty() || !a.iexclude.is_empty())
    {
        bail!("exclude and include patterns are mutually exclusive");
    }
    let include = if a.iinclude.is_empty() {
        Patterns::new(&a.include, false)
    } else {
        Patterns::new(
            &[a.include.clone(), a.iinclude.clone()].concat(),
            !a.iinclude.is_empty(),
        )
    }
    .map_err(|e| anyhow!(e))?;
    let exclude = if a.iexclude.is_empty() {
        Patterns::new(&a.exclude, false)
    } else {
        Patterns::new(&[a.exclude.clone(), a.iexclude.clone()].concat(), true)
    }
    .map_err(|e| anyhow!(e))?;
    let ibar = Bar::new(g.show_progress(), false, "index");
    repo.load_index(&ibar).await?;
    ibar.finish();
    let (snap, sub) = a.snapshot.split_once(':').unwrap_or((&a.snapshot, ""));
    let sn = snapshots::find(&repo, snap, &a.filter.filter()).await?;
    let (tree, node) = walk::resolve(&repo, &sn.tree, sub).await?;
    if node.is_some() {
        bail!("{sub:?} is not a directory in snapshot {}", sn.id.short());
    }
    if !g.json {
        // restic's Snapshot.String(): paths as Go prints a []string.
        g.verbose(format!(
            "restoring snapshot {} of [{}] at {} by {}@{} to {}",
            sn.id.short(),
            sn.paths.join(" "),
            go_time_string(&sn.time),
            sn.username,
            sn.hostname,
            a.target
        ));
    }
    let opts = RestoreOptions {
        target: a.target.clone().into(),
        include,
        exclude,
        sparse: a.sparse,
        overwrite,
        verify: a.verify,
        // Each job holds a stretch of at most 4 MiB of a pack: the backend's connections,
        // capped like uploads, and at least three so that reading, decoding and writing
        // overlap on a local disk.
        concurrency: repo
            .backend()
            .connections()
            .clamp(3, arca_engine::writer::MAX_UPLOADS),
        batch_bytes: restore::BATCH_BYTES,
        // As restic: the user running the restore gets what the snapshot holds.
        privileged_files: true,
    };
    let bar = Bar::new(g.show_progress(), true, "restore");
    let repo = Arc::new(repo);
    let report = restore::restore(repo, tree, &opts, &bar).await?;
    bar.finish();
    for e in &report.errors {
        eprintln!("ignoring error for {e}");
    }
    if report.errors.unlisted() > 0 {
        eprintln!(
            "ignoring {} more errors (only the first {} are listed)",
            report.errors.unlisted(),
            report.errors.iter().len()
        );
    }
    if g.json {
        let line = JsonObject::new()
            .str("message_type", b"summary")
            .num("total_files", report.files + report.dirs + report.others)
            .num("files_restored", report.files + report.dirs + report.others)
            .num("files_skipped", report.skipped)
            .num("total_bytes", report.bytes)
            .num("bytes_restored", report.bytes)
            .finish();
        out(&[line, b"\n".to_vec()].concat())?;
    } else if a.verify {
        g.verbose(format!(
            "verifying files in {}\nfinished verifying {} files in {} (took {})",
            a.target,
            report.verified_files,
            a.target,
            go_duration_ms(report.verify_time)
        ));
    }
    if !report.errors.is_empty() {
        bail!("There were {} errors", report.errors.len());
    }
    Ok(0)
}
