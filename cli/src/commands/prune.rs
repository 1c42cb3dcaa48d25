//! `arca prune`: restic's flags and report.

use crate::commands::backup::parse_size;
use crate::global::GlobalOptions;
use crate::output::{format_bytes, Bar};
use anyhow::{anyhow, bail, Result};
use arca_engine::prune::{self, Amount, MaxUnused, PruneOptions, PruneReport};
use arca_engine::Repository;
use clap::Args;
use std::sync::Arc;

#[derive(Args, Clone, Default)]
pub struct PruneArgs {
    /// tolerate given limit of unused data (absolute value in bytes with suffixes k/K, m/M, g/G, t/T, a value in % or the word 'unlimited')
    #[arg(long, default_value = "5%")]
    pub max_unused: String,
    /// maximum size to repack (allowed suffixes: k/K, m/M, g/G, t/T)
    #[arg(long)]
    pub max_repack_size: Option<String>,
    /// only repack packs which are cacheable
    #[arg(long)]
    pub repack_cacheable_only: bool,
    /// repack all uncompressed data
    #[arg(long)]
    pub repack_uncompressed: bool,
    /// do not modify the repository, just print what would be done
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

pub fn options(a: &PruneArgs, g: &GlobalOptions) -> Result<PruneOptions> {
    let max_unused =
        MaxUnused::parse(&a.max_unused, |s| parse_size(s).ok()).map_err(|e| anyhow!(e))?;
    Ok(PruneOptions {
        max_unused,
        max_repack_bytes: a.max_repack_size.as_deref().map(parse_size).transpose()?,
        repack_cacheable_only: a.repack_cacheable_only,
        repack_uncompressed: a.repack_uncompressed,
        dry_run: a.dry_run,
        writer: g.writer_options()?,
        ignore_snapshots: Vec::new(),
    })
}

fn amount(a: &Amount) -> String {
    format!("{:>10} blobs / {}", a.blobs, format_bytes(a.bytes))
}

/// Prune an open repository (the caller holds an exclusive lock).
/// `ignore`: snapshots to count as forgotten (a dry run after a dry-run forget).
pub async fn prune_repo(
    mut repo: Repository,
    a: &PruneArgs,
    g: &GlobalOptions,
    ignore: &[arca_format::Id],
) -> Result<i32> {
    let mut opts = options(a, g)?;
    opts.ignore_snapshots = ignore.to_vec();
    if repo.version() < 2 && a.repack_uncompressed {
        bail!("--repack-uncompressed needs repository version 2");
    }
    g.verbose("loading indexes...");
    let bar = Bar::new(g.show_progress(), false, "index");
    repo.load_index(&bar).await?;
    bar.finish();
    let bar = Bar::new(g.show_progress(), false, "prune");
    let r: PruneReport = prune::prune(Arc::new(repo), &opts, &bar).await?;
    bar.finish();
    if g.json {
        println!(
            "{}",
            serde_json::json!({
                "message_type": "summary",
                "dry_run": r.dry_run,
                "snapshots": r.snapshots,
                "used_blobs": r.used.blobs, "used_size": r.used.bytes,
                "duplicate_blobs": r.duplicate.blobs, "duplicate_size": r.duplicate.bytes,
                "unused_blobs": r.unused.blobs, "unused_size": r.unused.bytes,
                "unreferenced_packs": r.unreferenced_packs, "unreferenced_size": r.unreferenced_bytes,
                "repack_blobs": r.repack.blobs, "repack_size": r.repack.bytes,
                "remove_blobs": r.delete.blobs + r.repack_removes.blobs,
                "remove_size": r.delete.bytes + r.repack_removes.bytes,
                "packs_delete": r.packs_delete, "packs_repack": r.packs_repack, "packs_keep": r.packs_keep,
                "remaining_blobs": r.remaining.blobs, "remaining_size": r.remaining.bytes,
                "unused_size_after": r.unused_after,
            })
        );
        return Ok(0);
    }
    if !g.quiet {
        println!();
        println!("used:         {}", amount(&r.used));
        println!("duplicates:   {}", amount(&r.duplicate));
        println!("unused:       {}", amount(&r.unused));
        if r.unreferenced_packs > 0 {
            println!(
                "unreferenced: {:>10} packs / {}",
                r.unreferenced_packs,
                format_bytes(r.unreferenced_bytes)
            );
        }
        println!();
        println!("to repack:    {}", amount(&r.repack));
        println!("this removes: {}", amount(&r.repack_removes));
        println!("to delete:    {}", amount(&r.delete));
        let total = Amount {
            blobs: r.delete.blobs + r.repack_removes.blobs,
            bytes: r.delete.bytes + r.repack_removes.bytes + r.unreferenced_bytes,
        };
        println!("total prune:  {}", amount(&total));
        println!("remaining:    {}", amount(&r.remaining));
        let pct = if r.remaining.bytes > 0 {
            r.unused_after as f64 * 100.0 / r.remaining.bytes as f64
        } else {
            0.0
        };
        println!(
            "unused size after prune: {} ({:.2}% of remaining size)",
            format_bytes(r.unused_after),
            pct
        );
        println!();
        println!(
            "packs: {} to delete, {} to repack, {} to keep",
            r.packs_delete, r.packs_repack, r.packs_keep
        );
        if r.dry_run {
            println!("dry run: repository not changed");
        } else {
            println!("done");
        }
    }
    Ok(0)
}

pub async fn run(repo: Repository, a: PruneArgs, g: GlobalOptions) -> Result<i32> {
    prune_repo(repo, &a, &g, &[]).await
}
