//! `arca snapshots`: listing snapshots, optionally in groups (`--group-by`) and compact.

use crate::global::GlobalOptions;
use anyhow::Result;
use arca_engine::forget::{group_snapshots, GroupBy};
use arca_engine::Repository;
use clap::Args;

use super::{out, select_snapshots, FilterArgs};
use crate::output::snapshot_json;
use crate::snapshot_table::{group_header, snapshot_table};

#[derive(Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// use compact output format
    #[arg(short, long)]
    compact: bool,
    /// only show the last n snapshots for each host and path
    #[arg(long)]
    latest: Option<usize>,
    /// group snapshots by host, paths and/or tags, separated by comma
    #[arg(short = 'g', long, default_value = "", value_parser = GroupBy::parse)]
    group_by: GroupBy,
    /// snapshot IDs to show (default: all)
    ids: Vec<String>,
}

pub(super) async fn run(repo: Repository, a: SnapshotsArgs, g: GlobalOptions) -> Result<i32> {
    let list = select_snapshots(&repo, &a.filter, &a.ids).await?;
    let grouped = a.group_by.host || a.group_by.paths || a.group_by.tags;
    // restic's GroupSnapshots sorts every snapshot's paths (and, grouping by tags, its tags)
    // in place before printing.
    let mut groups = group_snapshots(list, a.group_by);
    if let Some(n) = a.latest {
        for (_, list) in &mut groups {
            let all = std::mem::take(list);
            // As restic 0.17 on: the newest n of each group when grouping, else of each host
            // and set of paths (0.14 always did the latter).
            *list = if grouped {
                newest(all, n)
            } else {
                arca_engine::snapshots::latest_per_host_and_paths(all, n)
            };
        }
    }
    if g.json {
        let mut buf = b"[".to_vec();
        for (i, (key, list)) in groups.iter().enumerate() {
            if grouped {
                if i > 0 {
                    buf.push(b',');
                }
                buf.extend_from_slice(b"{\"group_key\":");
                buf.extend_from_slice(key.to_json().as_bytes());
                buf.extend_from_slice(b",\"snapshots\":[");
            }
            for (j, s) in list.iter().enumerate() {
                if j > 0 || (!grouped && i > 0) {
                    buf.push(b',');
                }
                buf.extend_from_slice(&snapshot_json(s, &[]));
            }
            if grouped {
                buf.extend_from_slice(b"]}");
            }
        }
        buf.extend_from_slice(b"]\n");
        return out(&buf).map(|_| 0);
    }
    let mut text = String::new();
    for (key, list) in &groups {
        if grouped {
            text.push_str(&group_header(key));
        }
        text.push_str(&snapshot_table(list, None, a.compact));
    }
    if groups.is_empty() {
        text.push_str(&snapshot_table(&[], None, a.compact));
    }
    print!("{text}");
    Ok(0)
}

/// The `n` newest snapshots of `list`.
fn newest(
    mut list: Vec<arca_format::snapshot::Snapshot>,
    n: usize,
) -> Vec<arca_format::snapshot::Snapshot> {
    list.sort_by_key(|s| std::cmp::Reverse(s.time));
    list.truncate(n);
    list
}
