//! Snapshot files: the root tree of one backup plus who, where and when.

use crate::gotime::GoTime;
use crate::Id;
use serde::{Deserialize, Deserializer, Serialize};

/// Go marshals a nil slice as `null`: read it as empty.
fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// Fields in restic's Go struct order, with its omitempty rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub time: GoTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Id>,
    pub tree: Id,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub paths: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub uid: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gid: u32,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_empty"
    )]
    pub excludes: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_empty"
    )]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<Id>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub program_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// The storage ID this snapshot was loaded from; not part of the JSON.
    #[serde(skip)]
    pub id: Id,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    pub backup_start: Option<GoTime>,
    pub backup_end: Option<GoTime>,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    pub dirs_new: u64,
    pub dirs_changed: u64,
    pub dirs_unmodified: u64,
    pub data_blobs: i64,
    pub tree_blobs: i64,
    pub data_added: u64,
    pub data_added_packed: u64,
    pub total_files_processed: u64,
    pub total_bytes_processed: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("snapshot is not valid JSON: {0}")]
pub struct SnapshotError(pub String);

impl Snapshot {
    pub fn parse(json: &[u8], id: Id) -> Result<Snapshot, SnapshotError> {
        let mut s: Snapshot =
            serde_json::from_slice(json).map_err(|e| SnapshotError(e.to_string()))?;
        s.id = id;
        Ok(s)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("plain struct serialises")
    }

    pub fn has_tags(&self, wanted: &[String]) -> bool {
        wanted.iter().all(|t| self.tags.contains(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_restic_snapshot() {
        let j = br#"{"time":"2015-01-02T18:10:50.895208559+02:00","tree":"2da81727b6585232894cfbb8f8bdab8d1eccd3d8f7c92bc934d62e62e618ffdf","paths":["/home/user/work"],"hostname":"kasimir","username":"fd0","uid":1000,"gid":100,"tags":null,"future":1}"#;
        let s = Snapshot::parse(j, Id::hash(b"x")).unwrap();
        assert_eq!(s.hostname, "kasimir");
        assert!(s.tags.is_empty());
        assert_eq!(s.time.format(), "2015-01-02T18:10:50.895208559+02:00");
        let out = String::from_utf8(s.to_json()).unwrap();
        assert!(
            out.starts_with(r#"{"time":"2015-01-02T18:10:50.895208559+02:00","tree":"2da8"#),
            "{out}"
        );
        assert!(out.contains(r#""uid":1000,"gid":100}"#), "{out}");
        assert!(Snapshot::parse(b"{}", Id::default()).is_err());
    }
}
