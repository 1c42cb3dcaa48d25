//! `forget`: restic's retention policy. Pure functions decide which snapshots to keep (and
//! why) and which to remove; [`remove_snapshots`] deletes the snapshot files.
//!
//! Semantics follow current restic (`internal/data/snapshot_policy.go`,
//! `snapshot_group.go`, `duration.go`):
//!
//! - Snapshots are grouped (by default by host and paths), the policy is applied to each group.
//! - Within a group snapshots are ordered newest first. A snapshot is kept when any rule keeps
//!   it; the reasons list every rule that did.
//! - The counted rules (`last`, `hourly`, ..., `yearly`) keep the newest snapshot of each
//!   bucket until their count is used up (`-1`: no limit). Buckets are calendar hours, days,
//!   ISO weeks, months and years in the offset the snapshot time was written with (the
//!   writer's local time, which is what Go's `time.Time` fields give restic).
//! - If a counted or a within-bucket rule still has room when the oldest snapshot of the
//!   group is reached, that snapshot is kept too (reason prefixed with `oldest`).
//! - `within` durations count back from the newest snapshot that is not in the future
//!   (relative to `now`) using Go's `AddDate` calendar arithmetic, then whole hours; a snapshot
//!   is inside when it is strictly after that point.

//!
//! The parts: `duration` (restic's `1y2m3d4h`), `tags`, `policy` (which snapshots of a group
//! to keep, and why), `group` (`--group-by`); planning and removal are here.

use crate::error::{Error, Result};
use crate::repo::{Repository, LOAD_CONCURRENCY};
use arca_format::gotime::GoTime;
use arca_format::snapshot::Snapshot;
use arca_format::Id;
use arca_storage::FileType;
use futures::StreamExt;

mod duration;
mod group;
mod policy;
mod tags;
#[cfg(test)]
mod test_support;

pub use duration::{DurationError, KeepDuration};
pub use group::{group_snapshots, GroupBy, GroupKey, UnknownGrouping};
pub use policy::{apply_policy, Applied, Counters, ExpirePolicy, KeepReason};
pub use tags::{has_tags, parse_tag_list, tag_list_string};

/// The decision for one group.
#[derive(Clone, Debug)]
pub struct ForgetGroup {
    pub key: GroupKey,
    /// Newest first.
    pub keep: Vec<Snapshot>,
    /// Newest first.
    pub remove: Vec<Snapshot>,
    /// `reasons[i]` is about `keep[i]`.
    pub reasons: Vec<KeepReason>,
}

/// Group `snapshots` and apply `policy` to each group.
///
/// Refuses, like restic, an empty policy (it would remove everything) unless
/// `allow_remove_all`, and a non-empty policy that would leave a group with no snapshot at all
/// (e.g. `--keep-tag` with a tag no snapshot has).
pub fn plan(
    snapshots: Vec<Snapshot>,
    policy: &ExpirePolicy,
    group_by: GroupBy,
    allow_remove_all: bool,
    now: &GoTime,
) -> Result<Vec<ForgetGroup>> {
    if policy.is_empty() && !allow_remove_all {
        return Err(Error::NoPolicy);
    }
    let mut out = Vec::new();
    for (key, list) in group_snapshots(snapshots, group_by) {
        let a = apply_policy(list, policy, now);
        if !policy.is_empty() && a.keep.is_empty() {
            return Err(Error::LastOfGroup(key.to_string()));
        }
        out.push(ForgetGroup {
            key,
            keep: a.keep,
            remove: a.remove,
            reasons: a.reasons,
        });
    }
    Ok(out)
}

/// Delete snapshot files, several at a time. Returns each ID with its outcome, in the order
/// given.
pub async fn remove_snapshots(repo: &Repository, ids: &[Id]) -> Vec<(Id, Result<()>)> {
    let backend = repo.backend();
    let mut results: Vec<(usize, Id, Result<()>)> =
        futures::stream::iter(ids.iter().enumerate().map(|(i, id)| async move {
            let r = backend
                .remove(FileType::Snapshot, &id.to_hex())
                .await
                .map_err(Error::from);
            (i, *id, r)
        }))
        .buffer_unordered(LOAD_CONCURRENCY)
        .collect()
        .await;
    results.sort_by_key(|(i, _, _)| *i);
    results.into_iter().map(|(_, id, r)| (id, r)).collect()
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn grouping() {
        let list = vec![
            snap_full(
                "1",
                "2024-01-01T00:00:00Z",
                "h1",
                &["/b", "/a"],
                &["y", "x"],
            ),
            snap_full("2", "2024-01-02T00:00:00Z", "h1", &["/a", "/b"], &[]),
            snap_full(
                "3",
                "2024-01-03T00:00:00Z",
                "h2",
                &["/a", "/b"],
                &["x", "y"],
            ),
            snap_full("4", "2024-01-04T00:00:00Z", "h1", &["/a"], &[]),
        ];
        let g = group_snapshots(list.clone(), GroupBy::HOST_PATHS);
        let keys: Vec<String> = g.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(
            keys,
            v(&[
                "host h1, path [/a /b]",
                "host h1, path [/a]",
                "host h2, path [/a /b]"
            ])
        );
        assert_eq!(g[0].1.len(), 2);
        // Paths sorted in place; tags untouched when not grouping by tags.
        assert_eq!(g[0].1[0].paths, v(&["/a", "/b"]));
        assert_eq!(g[0].1[0].tags, v(&["y", "x"]));

        let g = group_snapshots(list.clone(), GroupBy::parse("tags").unwrap());
        assert_eq!(g.len(), 2);
        assert_eq!(
            g[0].0.to_json(),
            r#"{"hostname":"","paths":null,"tags":["x","y"]}"#
        );
        assert_eq!(g[0].1.len(), 2);
        assert_eq!(g[0].1[0].tags, v(&["x", "y"]));
        assert_eq!(
            g[1].0.to_json(),
            r#"{"hostname":"","paths":null,"tags":null}"#
        );

        let g = group_snapshots(list.clone(), GroupBy::default());
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].1.len(), 4);
        assert_eq!(g[0].0.to_string(), "");

        // The policy applies per group.
        let p = ExpirePolicy {
            last: 1,
            ..Default::default()
        };
        let groups = plan(
            list.clone(),
            &p,
            GroupBy::parse("host").unwrap(),
            false,
            &now(),
        )
        .unwrap();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].keep[0].id, id_of("4"));
        assert_eq!(groups[0].remove.len(), 2);
        assert_eq!(groups[1].keep[0].id, id_of("3"));
        assert!(groups[1].remove.is_empty());
    }

    #[test]
    fn plan_refusals() {
        let list = vec![
            snap_full("1", "2024-01-01T00:00:00Z", "h1", &["/a"], &["keep"]),
            snap_full("2", "2024-01-02T00:00:00Z", "h2", &["/a"], &[]),
        ];
        let err = plan(
            list.clone(),
            &ExpirePolicy::default(),
            GroupBy::HOST_PATHS,
            false,
            &now(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no policy was specified, no snapshots will be removed"
        );
        // Allowed: everything goes.
        let groups = plan(
            list.clone(),
            &ExpirePolicy::default(),
            GroupBy::HOST_PATHS,
            true,
            &now(),
        )
        .unwrap();
        assert!(groups
            .iter()
            .all(|g| g.keep.is_empty() && g.remove.len() == 1));
        // A policy that would empty a group.
        let p = ExpirePolicy {
            tags: vec![v(&["keep"])],
            ..Default::default()
        };
        let err = plan(list.clone(), &p, GroupBy::HOST_PATHS, false, &now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "refusing to delete last snapshot of snapshot group \"host h2, path [/a]\""
        );
        // Without grouping the tagged one keeps the group alive.
        let groups = plan(list, &p, GroupBy::default(), false, &now()).unwrap();
        assert_eq!(groups[0].keep.len(), 1);
        assert_eq!(groups[0].remove.len(), 1);
    }
}
