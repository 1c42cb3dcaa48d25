//! `tag`: change the tags of snapshots as restic does. A changed snapshot is saved as a new
//! file (whose `original` keeps pointing at the first snapshot of the chain, or at the one it
//! replaces) and the old file is removed.

use crate::error::Result;
use crate::repo::Repository;
use arca_format::snapshot::Snapshot;
use arca_format::Id;
use arca_storage::FileType;

/// What to do to a snapshot's tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagChange {
    /// Replace them all.
    Set(Vec<String>),
    /// Add the missing ones, then remove others.
    Edit {
        add: Vec<String>,
        remove: Vec<String>,
    },
}

impl TagChange {
    /// Apply to `sn`; whether its tags changed. restic's rules: `Set` always counts as a
    /// change; `add` appends what is not there yet; `remove` takes out the first equal tag by
    /// moving the last tag into its place (so the order changes as restic's does).
    pub fn apply(&self, sn: &mut Snapshot) -> bool {
        match self {
            TagChange::Set(tags) => {
                sn.tags = tags.clone();
                true
            }
            TagChange::Edit { add, remove } => {
                let mut changed = false;
                for t in add.iter().filter(|t| !t.is_empty()) {
                    if !sn.tags.contains(t) {
                        sn.tags.push(t.clone());
                        changed = true;
                    }
                }
                for t in remove {
                    if let Some(i) = sn.tags.iter().position(|x| x == t) {
                        sn.tags.swap_remove(i);
                        changed = true;
                    }
                }
                changed
            }
        }
    }
}

/// Change the tags of `sn`; the new snapshot's ID if they changed.
pub async fn change_tags(
    repo: &Repository,
    sn: &Snapshot,
    change: &TagChange,
) -> Result<Option<Id>> {
    let mut new = sn.clone();
    if !change.apply(&mut new) {
        return Ok(None);
    }
    new.original.get_or_insert(sn.id);
    let id = repo
        .save_unpacked(FileType::Snapshot, &new.to_json())
        .await?;
    repo.backend()
        .remove(FileType::Snapshot, &sn.id.to_hex())
        .await?;
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagged(tags: &[&str]) -> Snapshot {
        let mut sn: Snapshot = serde_json::from_str(
            r#"{"time":"2026-12-05T10:00:00Z","tree":"0000000000000000000000000000000000000000000000000000000000000000","paths":["/"],"hostname":"h"}"#,
        )
        .unwrap();
        sn.tags = tags.iter().map(|t| t.to_string()).collect();
        sn
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tags_change_in_restics_order() {
        // restic 0.19.1: a,b,c,x,y,z less x is a,b,c,z,y.
        let mut sn = tagged(&["a", "b", "c", "x", "y", "z"]);
        let edit = TagChange::Edit {
            add: vec![],
            remove: strings(&["x"]),
        };
        assert!(edit.apply(&mut sn));
        assert_eq!(sn.tags, strings(&["a", "b", "c", "z", "y"]));
        // Adding what is there, or nothing, or removing what is not there: no change.
        let same = TagChange::Edit {
            add: strings(&["a", ""]),
            remove: strings(&["q"]),
        };
        assert!(!same.apply(&mut sn));
        let add = TagChange::Edit {
            add: strings(&["n", "a", "m"]),
            remove: vec![],
        };
        assert!(add.apply(&mut sn));
        assert_eq!(sn.tags, strings(&["a", "b", "c", "z", "y", "n", "m"]));
        assert!(TagChange::Set(strings(&["q"])).apply(&mut sn));
        assert_eq!(sn.tags, strings(&["q"]));
    }
}
