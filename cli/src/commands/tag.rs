//! `arca tag`: set, add or remove the tags of snapshots, as restic 0.18 does (output and
//! JSON messages included).

use super::{select_snapshots, FilterArgs};
use crate::global::GlobalOptions;
use anyhow::{bail, Result};
use arca_engine::tag::{change_tags, TagChange};
use arca_engine::Repository;
use clap::Args;
use serde::Serialize;

/// restic's JSON messages, fields in its order.
#[derive(Serialize)]
#[serde(tag = "message_type", rename_all = "snake_case")]
enum Message {
    Changed {
        old_snapshot_id: String,
        new_snapshot_id: String,
    },
    Summary {
        changed_snapshots: usize,
    },
}

fn print_json(m: &Message) {
    println!(
        "{}",
        serde_json::to_string(m).expect("a message serialises")
    );
}

#[derive(Args)]
pub struct TagArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// `tags` which will replace the existing tags in the format `tag[,tag,...]` (can be given multiple times)
    #[arg(long)]
    set: Vec<String>,
    /// `tags` which will be added to the existing tags in the format `tag[,tag,...]` (can be given multiple times)
    #[arg(long)]
    add: Vec<String>,
    /// `tags` which will be removed from the existing tags in the format `tag[,tag,...]` (can be given multiple times)
    #[arg(long)]
    remove: Vec<String>,
    /// snapshots to change (default: all that match the filters)
    ids: Vec<String>,
}

/// `a,b` `c` as restic flattens tag lists: split at commas, empty names dropped.
fn flatten(lists: &[String]) -> Vec<String> {
    lists
        .iter()
        .flat_map(|l| l.split(','))
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

/// What the flags ask for, checked before the repository is opened.
pub(super) fn change_of(a: &TagArgs) -> Result<TagChange> {
    if a.set.is_empty() && a.add.is_empty() && a.remove.is_empty() {
        bail!("nothing to do!");
    }
    if !a.set.is_empty() && (!a.add.is_empty() || !a.remove.is_empty()) {
        bail!("--set and --add/--remove cannot be given at the same time");
    }
    // restic 0.17+ drops empty names, so `--set ""` (which cleared the tags in 0.14) sets
    // nothing and changes nothing.
    let set = flatten(&a.set);
    Ok(if set.is_empty() {
        TagChange::Edit {
            add: flatten(&a.add),
            remove: flatten(&a.remove),
        }
    } else {
        TagChange::Set(set)
    })
}

pub(super) async fn run(
    repo: Repository,
    a: TagArgs,
    change: TagChange,
    g: GlobalOptions,
) -> Result<i32> {
    let mut changed = 0usize;
    for sn in select_snapshots(&repo, &a.filter, &a.ids).await? {
        match change_tags(&repo, &sn, &change).await {
            Ok(Some(new_id)) => {
                changed += 1;
                if g.json {
                    print_json(&Message::Changed {
                        old_snapshot_id: sn.id.to_hex(),
                        new_snapshot_id: new_id.to_hex(),
                    });
                }
            }
            Ok(None) => {}
            Err(e) => eprintln!(
                "unable to modify the tags for snapshot ID \"{}\", ignoring: {e}",
                sn.id.to_hex()
            ),
        }
    }
    if g.json {
        print_json(&Message::Summary {
            changed_snapshots: changed,
        });
    } else if changed == 0 {
        g.verbose("no snapshots were modified");
    } else {
        g.verbose(format!("modified {changed} snapshots"));
    }
    Ok(0)
}
