//! `arca restore`: restoring a snapshot.

use crate::global::GlobalOptions;
use crate::output::{format_bytes, format_seconds, go_duration_ms, Bar, JsonObject};
use anyhow::{anyhow, bail, Result};
use arca_engine::filter::Patterns;
use arca_engine::progress::{ItemAction, Progress};
use arca_engine::restore::{self, Overwrite, RestoreOptions};
use arca_engine::snapshots;
use arca_engine::walk;
use arca_engine::Repository;
use clap::Args;
use std::io::Write;
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
    #[arg(long, default_value = "if-changed")]
    overwrite: String,
    /// delete files from target directory if they do not exist in snapshot. Use '--dry-run -vv' to check what would be deleted
    #[arg(long)]
    delete: bool,
    /// do not write any data, just show what would be done
    #[arg(long)]
    dry_run: bool,
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
    let include = Patterns::with_case(&a.include, &a.iinclude).map_err(|e| anyhow!(e))?;
    let exclude = Patterns::with_case(&a.exclude, &a.iexclude).map_err(|e| anyhow!(e))?;
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
    // Absolute, as restic makes it: deleted items are named by their full path.
    let target = std::path::absolute(&a.target)?;
    let opts = RestoreOptions {
        target,
        include,
        exclude,
        sparse: a.sparse,
        overwrite,
        verify: a.verify,
        dry_run: a.dry_run,
        delete: a.delete,
        concurrency: None,
        batch_bytes: restore::BATCH_BYTES,
        // As restic: the user running the restore gets what the snapshot holds.
        privileged_files: true,
    };
    if a.dry_run && a.verify {
        bail!("--dry-run and --verify are mutually exclusive");
    }
    let started = std::time::Instant::now();
    let bar = Bar::new(g.show_progress(), true, "restore");
    let repo = Arc::new(repo);
    let items = ItemPrinter {
        bar: &bar,
        json: g.json,
        show: g.verbose >= 2 && !g.quiet,
    };
    let report = restore::restore(repo, tree, &opts, &items).await?;
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
    // restic 0.17+'s summary: items restored (directories included), skipped by the
    // overwrite mode, and deleted.
    let restored = report.files + report.dirs + report.others;
    let total = restored.saturating_sub(report.implicit_dirs);
    if g.json {
        // Every count is left out when it is zero, as restic's omitempty does.
        let mut line = JsonObject::new().str("message_type", b"summary");
        for (key, n) in [
            ("seconds_elapsed", started.elapsed().as_secs()),
            ("total_files", total),
            ("files_restored", restored),
            ("files_skipped", report.skipped),
            ("files_deleted", report.deleted),
            ("total_bytes", report.bytes),
            ("bytes_restored", report.bytes),
            ("bytes_skipped", report.skipped_bytes),
        ] {
            if n > 0 {
                line = line.num(key, n);
            }
        }
        out(&[line.finish(), b"\n".to_vec()].concat())?;
    } else if !g.quiet {
        let bytes = format_bytes(report.bytes);
        let mut line = if total == restored {
            format!("Summary: Restored {restored} files/dirs ({bytes})")
        } else {
            format!("Summary: Restored {restored} / {total} files/dirs ({bytes} / {bytes})")
        };
        line.push_str(&format!(" in {}", format_seconds(started.elapsed())));
        if report.skipped > 0 {
            line.push_str(&format!(
                ", skipped {} files/dirs {}",
                report.skipped,
                format_bytes(report.skipped_bytes)
            ));
        }
        if report.deleted > 0 {
            line.push_str(&format!(", deleted {} files/dirs", report.deleted));
        }
        out(format!("{line}\n").as_bytes())?;
    }
    if a.verify && !g.json {
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

/// The restore's progress: the bar, and with `-vv` one line per item as restic prints them
/// (`restored  /path with size 6 B`, or a `verbose_status` object with `--json`).
struct ItemPrinter<'a> {
    bar: &'a Bar,
    json: bool,
    show: bool,
}

impl Progress for ItemPrinter<'_> {
    fn set_total(&self, total: u64) {
        self.bar.set_total(total)
    }
    fn add(&self, n: u64) {
        self.bar.add(n)
    }
    fn message(&self, msg: &str) {
        self.bar.message(msg)
    }
    fn item(&self, action: ItemAction, path: &[u8], size: Option<u64>) {
        if !self.show {
            return;
        }
        let action = match action {
            ItemAction::Restored => "restored",
            ItemAction::Updated => "updated",
            ItemAction::Unchanged => "unchanged",
            ItemAction::Deleted => "deleted",
        };
        let mut line = if self.json {
            JsonObject::new()
                .str("message_type", b"verbose_status")
                .str("action", action.as_bytes())
                .str("item", path)
                .num("size", size.unwrap_or(0))
                .finish()
        } else {
            let mut line = format!("{action:<9} ").into_bytes();
            line.extend_from_slice(path);
            if let Some(size) = size {
                line.extend_from_slice(format!(" with size {}", format_bytes(size)).as_bytes());
            }
            line
        };
        line.push(b'\n');
        // One write per line: items come from several threads.
        let _ = std::io::stdout().lock().write_all(&line);
    }
}
