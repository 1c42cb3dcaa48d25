//! `arca rewrite` and `arca repair index|snapshots|packs`.

use crate::global::GlobalOptions;
use crate::output::go_time_string;
use crate::output::Bar;
use anyhow::{anyhow, bail, Result};
use arca_engine::filter::Patterns;
use arca_engine::progress::NoProgress;
use arca_engine::repair;
use arca_engine::rewrite::{self, TreeRewriter};
use arca_engine::writer::{BlobWriter, WriterOptions};
use arca_engine::Repository;
use arca_format::Id;
use clap::{Args, Subcommand};
use std::sync::Arc;

fn writer_options(g: &GlobalOptions, dry_run: bool) -> Result<WriterOptions> {
    Ok(WriterOptions {
        dry_run,
        ..g.writer_options()?
    })
}

#[derive(Args)]
pub struct RewriteArgs {
    #[command(flatten)]
    filter: crate::commands::FilterArgs,
    /// exclude a pattern (can be specified multiple times)
    #[arg(short, long)]
    exclude: Vec<String>,
    /// same as --exclude but ignores the casing of filenames
    #[arg(long)]
    iexclude: Vec<String>,
    /// read exclude patterns from a file (can be specified multiple times)
    #[arg(long)]
    exclude_file: Vec<std::path::PathBuf>,
    /// same as --exclude-file but ignores casing of filenames in patterns
    #[arg(long)]
    iexclude_file: Vec<std::path::PathBuf>,
    /// include a pattern (can be specified multiple times)
    #[arg(short, long)]
    include: Vec<String>,
    /// same as --include pattern but ignores the casing of filenames
    #[arg(long)]
    iinclude: Vec<String>,
    /// read include patterns from a file (can be specified multiple times)
    #[arg(long)]
    include_file: Vec<std::path::PathBuf>,
    /// same as --include-file but ignores casing of filenames in patterns
    #[arg(long)]
    iinclude_file: Vec<std::path::PathBuf>,
    /// replace hostname
    #[arg(long)]
    new_host: Option<String>,
    /// replace time of the backup
    #[arg(long)]
    new_time: Option<String>,
    /// create snapshot summary record if it does not exist
    #[arg(short = 's', long)]
    snapshot_summary: bool,
    /// replace the original snapshots
    #[arg(long)]
    forget: bool,
    /// do not do anything, just print what would be done
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// snapshots to rewrite (default: all)
    ids: Vec<String>,
}

/// Rewrite each selected snapshot's tree with `mode`; returns how many changed. New
/// snapshots get `tag` unless `forget` removes the old ones.
#[allow(clippy::too_many_arguments)]
async fn rewrite_snapshots(
    repo: Arc<Repository>,
    g: &GlobalOptions,
    filter: &crate::commands::FilterArgs,
    ids: &[String],
    make_mode: impl Fn() -> Result<Option<rewrite::Mode>>,
    edit: &rewrite::SnapshotEdit,
    forget: bool,
    dry_run: bool,
    tag: &str,
) -> Result<usize> {
    let snaps = crate::commands::select_snapshots(&repo, filter, ids).await?;
    let writer = BlobWriter::new(repo.clone(), writer_options(g, dry_run)?);
    let mut new_trees = Vec::new();
    let mut unreadable = Vec::new();
    for sn in &snaps {
        // Without patterns only the snapshot's metadata changes: its tree is kept as it is.
        let (tree, unsaved) = match make_mode()? {
            Some(mode) => {
                let mut rw = TreeRewriter::new(&repo, writer.clone(), mode);
                let tree = rw.rewrite_root(sn.tree).await?;
                for c in &rw.changes {
                    g.verbose(format!("snapshot {}: {c}", sn.id.short()));
                }
                (tree, rw.saved)
            }
            None => (Some(sn.tree), Default::default()),
        };
        let Some(tree) = tree else {
            unreadable.push(sn.id);
            continue;
        };
        if !edit.changes(sn, tree) {
            g.verbose(format!("snapshot {} not modified", sn.id.short()));
            continue;
        }
        if let Some(t) = &edit.time {
            g.verbose(format!("setting time to {}", go_time_string(t)));
        }
        if let Some(h) = &edit.hostname {
            g.verbose(format!("setting host to {h}"));
        }
        let totals = match edit.needs_totals(sn, tree) {
            true => Some(rewrite::tree_totals(&repo, tree, &unsaved).await?),
            false => None,
        };
        new_trees.push((sn.clone(), edit.apply(sn, tree, totals)));
    }
    // Blobs and index first, then the snapshots that refer to them.
    let w = writer.clone();
    tokio::task::spawn_blocking(move || w.finish()).await??;
    if dry_run {
        for id in &unreadable {
            g.verbose(format!("would remove snapshot {}", id.short()));
        }
        for (sn, _) in &new_trees {
            g.verbose(format!("would rewrite snapshot {}", sn.id.short()));
        }
        return Ok(new_trees.len() + unreadable.len());
    }
    // Nothing of such a snapshot can be saved, so it goes even without --forget.
    for id in &unreadable {
        rewrite::remove_snapshot(&repo, id).await?;
        g.verbose(format!(
            "snapshot {}: root tree not readable, snapshot removed",
            id.short()
        ));
    }
    for (sn, new) in new_trees.iter().cloned() {
        let id = rewrite::replace_snapshot(&repo, &sn, new, forget, tag).await?;
        g.verbose(format!(
            "snapshot {} rewritten as {}{}",
            sn.id.short(),
            id.short(),
            if forget { ", old snapshot removed" } else { "" }
        ));
    }
    Ok(new_trees.len() + unreadable.len())
}

pub async fn rewrite(a: RewriteArgs, g: GlobalOptions) -> Result<i32> {
    let mut excludes = a.exclude.clone();
    excludes.extend(crate::commands::backup::read_patterns(&a.exclude_file)?);
    let mut iexcludes = a.iexclude.clone();
    iexcludes.extend(crate::commands::backup::read_patterns(&a.iexclude_file)?);
    let mut includes = a.include.clone();
    includes.extend(crate::commands::backup::read_patterns(&a.include_file)?);
    let mut iincludes = a.iinclude.clone();
    iincludes.extend(crate::commands::backup::read_patterns(&a.iinclude_file)?);
    let has_excludes = !excludes.is_empty() || !iexcludes.is_empty();
    let has_includes = !includes.is_empty() || !iincludes.is_empty();
    let edit = rewrite::SnapshotEdit {
        hostname: a.new_host.clone().filter(|h| !h.is_empty()),
        time: a
            .new_time
            .as_deref()
            .map(crate::commands::backup::parse_time)
            .transpose()?,
        add_summary: a.snapshot_summary,
        recount: true,
    };
    if !has_excludes && !has_includes && edit.is_empty() {
        bail!("nothing to do: no excludes/includes provided and no new metadata provided");
    }
    if has_excludes && has_includes {
        bail!("exclude and include patterns are mutually exclusive");
    }
    let mut repo = g.open().await?;
    let lock = if g.no_lock || a.dry_run {
        None
    } else {
        Some(g.lock(&repo, a.forget).await?)
    };
    repo.load_index(&NoProgress).await?;
    let mode = || -> Result<Option<rewrite::Mode>> {
        Ok(if has_includes {
            Some(rewrite::Mode::Include(
                Patterns::with_case(&includes, &iincludes).map_err(|e| anyhow!(e))?,
            ))
        } else if has_excludes {
            Some(rewrite::Mode::Exclude(
                Patterns::with_case(&excludes, &iexcludes).map_err(|e| anyhow!(e))?,
            ))
        } else {
            None
        })
    };
    let res = rewrite_snapshots(
        Arc::new(repo),
        &g,
        &a.filter,
        &a.ids,
        mode,
        &edit,
        a.forget,
        a.dry_run,
        "rewrite",
    )
    .await;
    if let Some(l) = lock {
        let _ = l.release().await;
    }
    let n = res?;
    g.verbose(format!("modified {n} snapshots"));
    Ok(0)
}

#[derive(Subcommand)]
pub enum RepairCommand {
    /// Build a new index from the pack files in the repository
    Index {
        /// read all data packs to generate the index from scratch
        #[arg(long)]
        read_all_packs: bool,
    },
    /// Repair snapshots: drop missing file content, replace unreadable directories
    Snapshots {
        #[command(flatten)]
        filter: crate::commands::FilterArgs,
        /// remove the original snapshots after creating the repaired ones
        #[arg(long)]
        forget: bool,
        /// do not do anything, just print what would be done
        #[arg(short = 'n', long)]
        dry_run: bool,
        ids: Vec<String>,
    },
    /// Salvage the readable blobs of damaged packs and remove the packs
    Packs {
        /// pack IDs
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

pub async fn repair(cmd: RepairCommand, g: GlobalOptions) -> Result<i32> {
    let mut repo = g.open().await?;
    let lock = if g.no_lock {
        None
    } else {
        Some(g.lock(&repo, true).await?)
    };
    let res = async {
        match cmd {
            RepairCommand::Index { read_all_packs } => {
                let bar = Bar::new(g.show_progress(), false, "packs");
                let r = repair::repair_index(&repo, read_all_packs, &bar).await?;
                bar.finish();
                for (id, e) in &r.unreadable {
                    eprintln!("error: pack {id}: {e} (not indexed)");
                }
                g.verbose(format!(
                    "indexed {} packs ({} headers read), wrote {} index files, removed {} old ones",
                    r.packs_indexed, r.packs_read, r.index_written, r.index_removed
                ));
            }
            RepairCommand::Snapshots {
                filter,
                forget,
                dry_run,
                ids,
            } => {
                repo.load_index(&NoProgress).await?;
                let n = rewrite_snapshots(
                    Arc::new(repo),
                    &g,
                    &filter,
                    &ids,
                    || Ok(Some(rewrite::Mode::Repair)),
                    &rewrite::SnapshotEdit::default(),
                    forget,
                    dry_run,
                    "repaired",
                )
                .await?;
                g.verbose(format!("repaired {n} snapshots"));
            }
            RepairCommand::Packs { ids } => {
                let ids: Vec<Id> = ids
                    .iter()
                    .map(|s| {
                        s.parse()
                            .map_err(|_| anyhow!("invalid pack ID {s:?}: want 64 hex characters"))
                    })
                    .collect::<Result<_>>()?;
                repo.load_index(&NoProgress).await?;
                let bar = Bar::new(g.show_progress(), false, "packs");
                let r =
                    repair::repair_packs(Arc::new(repo), &ids, writer_options(&g, false)?, &bar)
                        .await?;
                bar.finish();
                for l in &r.lost_blobs {
                    eprintln!("lost: {l}");
                }
                g.verbose(format!(
                    "salvaged {} blobs; run `arca repair snapshots` if blobs were lost",
                    r.salvaged_blobs
                ));
            }
        }
        Ok::<_, anyhow::Error>(0)
    }
    .await;
    if let Some(l) = lock {
        let _ = l.release().await;
    }
    res
}
