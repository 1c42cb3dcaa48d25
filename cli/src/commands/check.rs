//! `arca check`: checking the repository.

use crate::global::GlobalOptions;
use crate::output::Bar;
use anyhow::{anyhow, bail, Result};
use arca_engine::check::{self, ReadData};
use clap::Args;

#[derive(Args)]
pub struct CheckArgs {
    /// read all data blobs
    #[arg(long)]
    read_data: bool,
    /// read a subset of data packs, specified as 'n/t' for specific part, or either 'x%' for random subset
    #[arg(long)]
    read_data_subset: Option<String>,
    /// use existing cache, only read uncached data from repository
    #[arg(long)]
    with_cache: bool,
}

pub(super) async fn run(a: CheckArgs, g: &GlobalOptions) -> Result<i32> {
    let read = match (&a.read_data_subset, a.read_data) {
        (Some(s), _) => ReadData::parse_subset(s).map_err(|e| anyhow!(e))?,
        (None, true) => ReadData::All,
        (None, false) => ReadData::None,
    };
    // As restic: a check reads the store itself, unless told to trust the cache.
    let mut repo = if a.with_cache {
        g.open().await?
    } else {
        g.open_uncached().await?
    };
    let lock = if g.no_lock {
        None
    } else {
        Some(g.lock(&repo, false).await?)
    };
    let bar = Bar::new(g.show_progress(), false, "check");
    g.verbose("load indexes\ncheck all packs\ncheck snapshots, trees and blobs");
    if read != ReadData::None {
        g.verbose("read data");
    }
    let report = check::check(&mut repo, read, &bar).await;
    bar.finish();
    if let Some(l) = lock {
        let _ = l.release().await;
    }
    let report = report?;
    if g.verbose > 0 || !g.quiet {
        for n in &report.notes {
            if g.verbose > 0 || n.contains("additional files") {
                g.verbose(n);
            }
        }
    }
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    if report.ok() {
        g.verbose("no errors were found");
        Ok(0)
    } else {
        bail!("repository contains errors ({} found)", report.errors.len())
    }
}
