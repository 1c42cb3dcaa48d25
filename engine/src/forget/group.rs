//! `--group-by`: snapshots grouped by host, paths and tags, and the group keys restic prints.

use arca_format::snapshot::Snapshot;
use std::collections::BTreeMap;
use std::fmt;

/// restic's `--group-by`: any of host, paths, tags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupBy {
    pub host: bool,
    pub paths: bool,
    pub tags: bool,
}

/// A `--group-by` part that is none of host, paths and tags.
#[derive(Debug, thiserror::Error)]
#[error("unknown grouping option: {0:?}")]
pub struct UnknownGrouping(pub String);

impl GroupBy {
    /// `forget`'s default.
    pub const HOST_PATHS: GroupBy = GroupBy {
        host: true,
        paths: true,
        tags: false,
    };

    /// Comma-separated `host`/`hosts`, `path`/`paths`, `tag`/`tags`; empty parts are ignored,
    /// so `""` means no grouping.
    pub fn parse(s: &str) -> std::result::Result<GroupBy, UnknownGrouping> {
        let mut g = GroupBy::default();
        for part in s.split(',') {
            match part {
                "host" | "hosts" => g.host = true,
                "path" | "paths" => g.paths = true,
                "tag" | "tags" => g.tags = true,
                "" => {}
                other => return Err(UnknownGrouping(other.to_string())),
            }
        }
        Ok(g)
    }

    pub fn used(&self) -> bool {
        self.host || self.paths || self.tags
    }
}

/// What the snapshots of one group share. Empty `paths`/`tags` mean "not grouped by it" (or
/// none), printed as `null` in JSON like restic's nil slices.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    pub hostname: String,
    pub paths: Vec<String>,
    pub tags: Vec<String>,
}

fn json_list(v: &[String]) -> serde_json::Value {
    if v.is_empty() {
        serde_json::Value::Null
    } else {
        v.iter().cloned().collect()
    }
}

impl GroupKey {
    /// restic's key JSON, `{"hostname":..,"paths":..,"tags":..}`.
    pub fn to_json(&self) -> String {
        let mut m = serde_json::Map::new();
        m.insert("hostname".into(), self.hostname.clone().into());
        m.insert("paths".into(), json_list(&self.paths));
        m.insert("tags".into(), json_list(&self.tags));
        // serde_json keeps insertion order only with preserve_order; write it by hand.
        format!(
            "{{\"hostname\":{},\"paths\":{},\"tags\":{}}}",
            m["hostname"], m["paths"], m["tags"]
        )
    }
}

/// restic's `SnapshotGroupKey.String()`: `host h, path [/a /b], tags [x]`.
impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.hostname.is_empty() {
            parts.push(format!("host {}", self.hostname));
        }
        if !self.paths.is_empty() {
            parts.push(format!("path [{}]", self.paths.join(" ")));
        }
        if !self.tags.is_empty() {
            parts.push(format!("tags [{}]", self.tags.join(" ")));
        }
        f.write_str(&parts.join(", "))
    }
}

/// Split snapshots into groups, ordered by their key JSON (restic's order is a Go map's, i.e.
/// random). Like restic, every snapshot's paths are sorted, and its tags too when grouping by
/// tags, so the printed snapshots show them sorted. Within a group the input order is kept.
pub fn group_snapshots(list: Vec<Snapshot>, by: GroupBy) -> Vec<(GroupKey, Vec<Snapshot>)> {
    let mut groups: BTreeMap<String, (GroupKey, Vec<Snapshot>)> = BTreeMap::new();
    for mut s in list {
        s.paths.sort();
        if by.tags {
            s.tags.sort();
        }
        let key = GroupKey {
            hostname: if by.host {
                s.hostname.clone()
            } else {
                String::new()
            },
            paths: if by.paths {
                s.paths.clone()
            } else {
                Vec::new()
            },
            tags: if by.tags { s.tags.clone() } else { Vec::new() },
        };
        groups
            .entry(key.to_json())
            .or_insert_with(|| (key, Vec::new()))
            .1
            .push(s);
    }
    groups.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn group_by_parsing_and_keys() {
        assert_eq!(GroupBy::parse("host,paths").unwrap(), GroupBy::HOST_PATHS);
        assert_eq!(GroupBy::parse("").unwrap(), GroupBy::default());
        assert!(!GroupBy::parse(",").unwrap().used());
        let g = GroupBy::parse("hosts,path,tag").unwrap();
        assert!(g.host && g.paths && g.tags);
        assert_eq!(
            GroupBy::parse("host,bogus").unwrap_err().to_string(),
            "unknown grouping option: \"bogus\""
        );
        let k = GroupKey {
            hostname: "h".into(),
            paths: v(&["/a", "/b"]),
            tags: Vec::new(),
        };
        assert_eq!(
            k.to_json(),
            r#"{"hostname":"h","paths":["/a","/b"],"tags":null}"#
        );
        assert_eq!(k.to_string(), "host h, path [/a /b]");
    }
}
