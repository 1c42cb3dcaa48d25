//! The folders above the snapshots: restic's default path templates `ids/%i`,
//! `snapshots/%T`, `hosts/%h/%T` and `tags/%t/%T`, a snapshot's time in the local zone as
//! RFC 3339, repeats of one name told apart by `-1`, `-2`…, and `latest` in every folder of
//! snapshots named by time.

use arca_format::snapshot::Snapshot;
use std::collections::BTreeMap;

/// A snapshot's folder name under `snapshots/`: its time, to the second, in the local zone.
fn snapshot_dir_name(sn: &Snapshot) -> String {
    let t = chrono::DateTime::from_timestamp(sn.time.unix_secs(), 0).unwrap_or_default();
    t.with_timezone(&chrono::Local)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
        .replace("+00:00", "Z")
}

/// One folder of snapshots: names (unique) to snapshot indexes, and the newest one's name.
#[derive(Debug, Default)]
pub struct SnapshotFolder {
    pub entries: Vec<(String, usize)>,
    pub latest: Option<String>,
}

/// A file name of a tag or host: restic's `/` is `_`, and `.`, `..` and the empty name
/// are never names.
fn safe(name: &str) -> String {
    match name {
        "" | "." => "_".to_owned(),
        ".." => "__".to_owned(),
        n => n.replace('/', "_"),
    }
}

/// `snapshots` in time order (oldest first) as one folder named by time.
fn by_time(snapshots: &[Snapshot], which: impl Iterator<Item = usize>) -> SnapshotFolder {
    let mut idx: Vec<usize> = which.collect();
    idx.sort_by_key(|&i| {
        (
            snapshots[i].time.unix_secs(),
            snapshots[i].time.unix_nanos_part(),
        )
    });
    let mut used: BTreeMap<String, usize> = BTreeMap::new();
    let mut folder = SnapshotFolder::default();
    for i in idx {
        let base = snapshot_dir_name(&snapshots[i]);
        let n = used.entry(base.clone()).or_insert(0);
        let name = if *n == 0 { base } else { format!("{base}-{n}") };
        *n += 1;
        folder.latest = Some(name.clone());
        folder.entries.push((name, i));
    }
    folder
}

/// Every folder of the layout, by its path below the mount point.
pub struct Layout {
    pub ids: SnapshotFolder,
    pub snapshots: SnapshotFolder,
    pub hosts: BTreeMap<String, SnapshotFolder>,
    pub tags: BTreeMap<String, SnapshotFolder>,
}

impl Layout {
    pub fn new(snapshots: &[Snapshot]) -> Layout {
        let mut ids = SnapshotFolder::default();
        for (i, sn) in snapshots.iter().enumerate() {
            ids.entries.push((sn.id.short(), i));
        }
        let mut hosts: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut tags: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, sn) in snapshots.iter().enumerate() {
            hosts.entry(safe(&sn.hostname)).or_default().push(i);
            for t in &sn.tags {
                tags.entry(safe(t)).or_default().push(i);
            }
        }
        let folders = |m: BTreeMap<String, Vec<usize>>| {
            m.into_iter()
                .map(|(k, v)| (k, by_time(snapshots, v.into_iter())))
                .collect()
        };
        Layout {
            ids,
            snapshots: by_time(snapshots, 0..snapshots.len()),
            hosts: folders(hosts),
            tags: folders(tags),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_hosts_become_safe_names() {
        assert_eq!(safe("a/b"), "a_b");
        assert_eq!(safe(".."), "__");
        assert_eq!(safe(""), "_");
        assert_eq!(safe("ok"), "ok");
    }
}
