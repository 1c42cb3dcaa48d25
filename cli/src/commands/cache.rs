//! `arca cache`: list the local cache's repository folders, or remove the old ones.

use crate::global::GlobalOptions;
use crate::output::{format_bytes, Table};
use anyhow::{bail, Context, Result};
use arca_storage::cache::CacheDir;
use clap::Args;
use std::path::Path;
use std::time::{Duration, SystemTime};

#[derive(Args)]
pub struct CacheArgs {
    /// remove old cache directories
    #[arg(long)]
    cleanup: bool,
    /// max age in `days` for cache directories to be considered old
    #[arg(long, default_value_t = 30)]
    max_age: u32,
    /// do not output the size of the cache directories
    #[arg(long)]
    no_size: bool,
}

pub(super) fn run(a: CacheArgs, g: &GlobalOptions) -> Result<i32> {
    if g.no_cache {
        bail!("Refusing to do anything, the cache is disabled");
    }
    let Some(base) = g.cache_base() else {
        bail!("no cache folder: set --cache-dir, RESTIC_CACHE_DIR or HOME");
    };
    let dir = CacheDir::new(&base);
    let max_age = Duration::from_secs(u64::from(a.max_age) * 24 * 3600);
    if a.cleanup || g.cleanup_cache {
        let old = dir
            .older_than(max_age)
            .with_context(|| format!("reading {}", base.display()))?;
        if old.is_empty() {
            g.verbose("no old cache dirs found");
            return Ok(0);
        }
        g.verbose(format!("remove {} old cache directories", old.len()));
        for e in old {
            if let Err(err) = std::fs::remove_dir_all(&e.path) {
                eprintln!("unable to remove {}: {err}", e.path.display());
            }
        }
        return Ok(0);
    }
    let entries = dir
        .entries()
        .with_context(|| format!("reading {}", base.display()))?;
    if entries.is_empty() {
        println!("no cache dirs found, basedir is {}", base.display());
        return Ok(0);
    }
    let mut header = vec!["Repo ID", "Last Used", "Old"];
    if !a.no_size {
        header.push("Size");
    }
    let mut t = Table::new(&header);
    let now = SystemTime::now();
    for e in &entries {
        let age = now.duration_since(e.modified).unwrap_or_default();
        let name = if e.name.starts_with("restic-check-cache-") {
            e.name.clone()
        } else {
            e.name[..10].to_string()
        };
        let mut row = vec![
            name,
            format!("{} days ago", age.as_secs() / (24 * 3600)),
            if age > max_age { "yes" } else { "" }.to_string(),
        ];
        if !a.no_size {
            row.push(format!("{:>11}", format_bytes(dir_size(&e.path))));
        }
        t.row(row);
    }
    print!("{}", t.render());
    println!("{} cache dirs in {}", entries.len(), base.display());
    Ok(0)
}

/// The bytes of the files under `dir` (what cannot be read counts nothing).
fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
