//! Loading, finding and filtering snapshots.

use crate::error::{Error, Result};
use crate::repo::{Repository, LOAD_CONCURRENCY};
use arca_format::snapshot::Snapshot;
use arca_storage::FileType;
use futures::StreamExt;

/// restic's snapshot filters: every given host/path must match one of the lists;
/// `tags` is a list of alternatives, each a set of tags that must all be present.
#[derive(Clone, Debug, Default)]
pub struct SnapshotFilter {
    pub hosts: Vec<String>,
    pub tags: Vec<Vec<String>>,
    pub paths: Vec<String>,
}

impl SnapshotFilter {
    pub fn matches(&self, s: &Snapshot) -> bool {
        if !self.hosts.is_empty() && !self.hosts.contains(&s.hostname) {
            return false;
        }
        if !self.tags.is_empty() && !self.tags.iter().any(|set| s.has_tags(set)) {
            return false;
        }
        if !self.paths.is_empty() {
            let mut want: Vec<&str> = self.paths.iter().map(|p| p.trim_end_matches('/')).collect();
            let mut have: Vec<&str> = s.paths.iter().map(|p| p.as_str()).collect();
            want.sort();
            have.sort();
            if !want.iter().all(|p| have.contains(p)) {
                return false;
            }
        }
        true
    }
}

/// Every snapshot, oldest first.
pub async fn load_all(repo: &Repository) -> Result<Vec<Snapshot>> {
    let ids = repo.list_ids(FileType::Snapshot).await?;
    let mut loads = futures::stream::iter(ids.into_iter().map(|(id, _)| async move {
        let json = repo.load_unpacked(FileType::Snapshot, &id).await?;
        Snapshot::parse(&json, id).map_err(|e| Error::file(FileType::Snapshot, &id.to_hex(), e))
    }))
    .buffer_unordered(LOAD_CONCURRENCY);
    let mut out = Vec::new();
    while let Some(s) = loads.next().await {
        out.push(s?);
    }
    out.sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// Load one snapshot by ID, prefix or `latest` (newest matching the filter).
pub async fn find(repo: &Repository, spec: &str, filter: &SnapshotFilter) -> Result<Snapshot> {
    if spec == "latest" {
        let all = load_all(repo).await?;
        return all
            .into_iter()
            .rev()
            .find(|s| filter.matches(s))
            .ok_or(Error::NoSnapshot);
    }
    let id = repo.find_id(FileType::Snapshot, spec).await?;
    let json = repo.load_unpacked(FileType::Snapshot, &id).await?;
    Snapshot::parse(&json, id).map_err(|e| Error::file(FileType::Snapshot, &id.to_hex(), e))
}

/// restic's `snapshots --latest n`: of `list` (oldest first), the newest `n` snapshots of each
/// host and set of paths, still oldest first.
pub fn latest_per_host_and_paths(list: Vec<Snapshot>, n: usize) -> Vec<Snapshot> {
    let mut seen: std::collections::HashMap<(String, Vec<String>), usize> = Default::default();
    let mut kept: Vec<Snapshot> = list
        .into_iter()
        .rev()
        .filter(|s| {
            let mut paths = s.paths.clone();
            paths.sort();
            let count = seen.entry((s.hostname.clone(), paths)).or_default();
            *count += 1;
            *count <= n
        })
        .collect();
    kept.reverse();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_format::Id;

    fn snap(host: &str, paths: &[&str], time: &str) -> Snapshot {
        let json = serde_json::json!({
            "time": time, "tree": Id::hash(b"t").to_hex(), "paths": paths, "hostname": host,
        });
        Snapshot::parse(json.to_string().as_bytes(), Id::hash(time.as_bytes())).unwrap()
    }

    #[test]
    fn latest_keeps_the_newest_of_each_host_and_paths() {
        let list = vec![
            snap("a", &["/x", "/y"], "2026-01-01T00:00:00Z"),
            snap("a", &["/y", "/x"], "2026-01-02T00:00:00Z"),
            snap("b", &["/x", "/y"], "2026-01-03T00:00:00Z"),
            snap("a", &["/x", "/y"], "2026-01-04T00:00:00Z"),
            snap("a", &["/x"], "2026-01-05T00:00:00Z"),
        ];
        let times = |l: &[Snapshot]| l.iter().map(|s| s.time.unix_secs()).collect::<Vec<_>>();
        let all = times(&list);
        let kept = latest_per_host_and_paths(list, 2);
        // a:{/x,/y} keeps its newest two (the 2nd and 4th; paths in any order), b and a:{/x} one each.
        assert_eq!(times(&kept), vec![all[1], all[2], all[3], all[4]]);
    }
}
