//! `arca recover`: a snapshot of the directory trees no snapshot refers to, as restic's.

use crate::global::GlobalOptions;
use crate::output::Bar;
use anyhow::Result;
use arca_engine::progress::NoProgress;
use arca_engine::{recover, repair, Repository};
use std::sync::Arc;

pub(super) async fn run(mut repo: Repository, g: GlobalOptions) -> Result<i32> {
    // As restic 0.17+: packs the index misses may hold the very trees to recover.
    g.verbose("ensuring index is complete");
    let bar = Bar::new(g.show_progress(), false, "packs");
    let r = repair::repair_index(&repo, false, &bar).await?;
    bar.finish();
    for (id, e) in &r.unreadable {
        eprintln!("error: pack {id}: {e} (not indexed)");
    }
    g.verbose("load index files");
    repo.load_index(&NoProgress).await?;
    let trees = repo.index().iter(arca_format::pack::BlobType::Tree).count();
    g.verbose(format!("load {trees} trees"));
    let snapshots = arca_engine::snapshots::load_all(&repo).await?;
    let bar = Bar::new(g.show_progress(), false, "trees loaded");
    let found = recover::unreferenced_trees(&repo, &snapshots, &bar).await?;
    bar.finish();
    for (id, e) in &found.unreadable {
        eprintln!("unable to load tree {}: {e}", id.short());
    }
    g.verbose("load snapshots");
    g.verbose("done");
    if g.verbose >= 1 && !g.quiet {
        for id in &found.roots {
            println!("found root tree {}", id.short());
        }
    }
    // The count and the outcome are printed even with --quiet, as restic does.
    println!("\nfound {} unreferenced roots", found.roots.len());
    if found.roots.is_empty() {
        g.verbose("no snapshot to write.");
        return Ok(0);
    }
    let id = recover::save_recovered(Arc::new(repo), &found.roots, g.writer_options()?).await?;
    println!("saved new snapshot {}", id.short());
    Ok(0)
}
