//! Snapshots and cases the forget tests share.

use super::*;

pub(crate) fn t(s: &str) -> GoTime {
    GoTime::parse(s).unwrap()
}

/// A snapshot at `time` (RFC 3339) with an ID derived from `name`.
pub(crate) fn snap(name: &str, time: &str) -> Snapshot {
    snap_full(name, time, "host", &["/data"], &[])
}

pub(crate) fn snap_full(
    name: &str,
    time: &str,
    host: &str,
    paths: &[&str],
    tags: &[&str],
) -> Snapshot {
    let json = serde_json::json!({
        "time": time,
        "tree": Id::hash(b"tree").to_hex(),
        "paths": paths,
        "hostname": host,
        "tags": tags,
    });
    let mut s = Snapshot::parse(json.to_string().as_bytes(), Id::hash(name.as_bytes()))
        .expect("snapshot JSON");
    s.id = id_of(name);
    s
}

/// IDs that sort like their names, so ties are predictable in tests.
pub(crate) fn id_of(name: &str) -> Id {
    let mut b = [0u8; 32];
    for (i, c) in name.bytes().take(32).enumerate() {
        b[i] = c;
    }
    Id(b)
}

pub(crate) fn now() -> GoTime {
    t("2100-01-01T00:00:00Z")
}

pub(crate) fn names(list: &[Snapshot], all: &[(String, Id)]) -> Vec<String> {
    list.iter()
        .map(|s| {
            all.iter()
                .find(|(_, id)| *id == s.id)
                .map(|(n, _)| n.clone())
                .unwrap()
        })
        .collect()
}

pub(crate) struct Case {
    pub(crate) snaps: Vec<Snapshot>,
    pub(crate) ids: Vec<(String, Id)>,
}

impl Case {
    pub(crate) fn new(list: &[(&str, &str)]) -> Case {
        let snaps: Vec<Snapshot> = list.iter().map(|(n, tm)| snap(n, tm)).collect();
        let ids = list
            .iter()
            .map(|(n, _)| (n.to_string(), id_of(n)))
            .collect();
        Case { snaps, ids }
    }
    pub(crate) fn apply(&self, p: &ExpirePolicy) -> (Vec<String>, Vec<String>, Vec<Vec<String>>) {
        let a = apply_policy(self.snaps.clone(), p, &now());
        (
            names(&a.keep, &self.ids),
            names(&a.remove, &self.ids),
            a.reasons.iter().map(|r| r.matches.clone()).collect(),
        )
    }
    pub(crate) fn keep(&self, p: &ExpirePolicy) -> Vec<String> {
        self.apply(p).0
    }
}

pub(crate) fn v(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

/// restic docs: one backup every Sunday for 12 weeks.
pub(crate) fn sundays() -> Case {
    Case::new(&[
        ("0a1f9759", "2019-09-01T11:00:00Z"),
        ("46cfe4d5", "2019-09-08T11:00:00Z"),
        ("f6b1f037", "2019-09-15T11:00:00Z"),
        ("eb430a5d", "2019-09-22T11:00:00Z"),
        ("8cf1cb9a", "2019-09-29T11:00:00Z"),
        ("5d33b116", "2019-10-06T11:00:00Z"),
        ("b9553125", "2019-10-13T11:00:00Z"),
        ("e1a7b58b", "2019-10-20T11:00:00Z"),
        ("8f8018c0", "2019-10-27T11:00:00Z"),
        ("59403279", "2019-11-03T11:00:00Z"),
        ("dfee9fb4", "2019-11-10T11:00:00Z"),
        ("e1ae2f40", "2019-11-17T11:00:00Z"),
    ])
}
