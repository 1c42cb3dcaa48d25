//! `arca snapshots`: listing snapshots.

use crate::global::GlobalOptions;
use anyhow::Result;
use arca_engine::Repository;
use clap::Args;

use super::{out, select_snapshots, FilterArgs};
use crate::output::snapshot_json;

#[derive(Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// only show the last n snapshots for each host and path
    #[arg(long)]
    latest: Option<usize>,
    /// snapshot IDs to show (default: all)
    ids: Vec<String>,
}

pub(super) async fn run(repo: Repository, a: SnapshotsArgs, g: GlobalOptions) -> Result<i32> {
    let mut list = select_snapshots(&repo, &a.filter, &a.ids).await?;
    // restic's GroupSnapshots sorts every snapshot's paths in place before printing.
    for s in &mut list {
        s.paths.sort();
    }
    if let Some(n) = a.latest {
        list = arca_engine::snapshots::latest_per_host_and_paths(list, n);
    }
    if g.json {
        let mut buf = b"[".to_vec();
        for (i, s) in list.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(&snapshot_json(s, &[]));
        }
        buf.extend_from_slice(b"]\n");
        return out(&buf).map(|_| 0);
    }
    print!(
        "{}",
        crate::snapshot_table::snapshot_table(&list, None, false)
    );
    Ok(0)
}
