//! Index files: which blobs live where in which pack.

use crate::pack::{BlobType, PackedBlob};
use crate::Id;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexBlob {
    pub id: Id,
    #[serde(rename = "type")]
    pub blob_type: BlobType,
    pub offset: u32,
    pub length: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncompressed_length: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexPack {
    pub id: Id,
    pub blobs: Vec<IndexBlob>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexFile {
    /// Written by restic before 0.17; read and ignored, never written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<Vec<Id>>,
    pub packs: Vec<IndexPack>,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index is not valid JSON: {0}")]
    Json(String),
    #[error("index uses the legacy format (a JSON array), which is not supported")]
    Legacy,
    #[error("index uses feature not supported by repository version 1 (compressed blob {0})")]
    CompressedInV1(Id),
}

impl IndexBlob {
    pub fn to_packed(&self) -> PackedBlob {
        PackedBlob {
            blob_type: self.blob_type,
            id: self.id,
            offset: self.offset,
            length: self.length,
            uncompressed_length: self.uncompressed_length.unwrap_or(0),
        }
    }

    pub fn from_packed(b: &PackedBlob) -> IndexBlob {
        IndexBlob {
            id: b.id,
            blob_type: b.blob_type,
            offset: b.offset,
            length: b.length,
            uncompressed_length: (b.uncompressed_length != 0).then_some(b.uncompressed_length),
        }
    }
}

impl IndexFile {
    pub fn parse(json: &[u8], repo_version: u32) -> Result<IndexFile, IndexError> {
        if json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err(IndexError::Legacy);
        }
        let idx: IndexFile =
            serde_json::from_slice(json).map_err(|e| IndexError::Json(e.to_string()))?;
        if repo_version < 2 {
            for b in idx.packs.iter().flat_map(|p| &p.blobs) {
                if b.uncompressed_length.is_some() {
                    return Err(IndexError::CompressedInV1(b.id));
                }
            }
        }
        Ok(idx)
    }

    /// JSON as restic writes it (with a trailing newline, from json.Encoder).
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).expect("plain struct serialises");
        v.push(b'\n');
        v
    }

    pub fn blob_count(&self) -> usize {
        self.packs.iter().map(|p| p.blobs.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_restic_index() {
        let j = br#"{"supersedes":["a4b4d4b9a5ed0a87f1bd7bb9e8c5a7b0f4f39c3e3d12d0b3b9a0d1e2f3a4b5c6"],"packs":[{"id":"73d04e6125cf3c28a299cc2f3cca3b78ceac396e4fcf9575e34536b26782413c","blobs":[{"id":"3ec79977ef0cf5de7b08cd12b874cd0f62bbaf7f07f3497a5b1bbcc8cb39b1ce","type":"data","offset":0,"length":38},{"id":"9ccb846e60d90d4eb915848add7aa7ea1e4bbabfc60e573db9f7bfb2789afbae","type":"tree","offset":38,"length":112,"uncompressed_length":511}]}]}"#;
        let idx = IndexFile::parse(j, 2).unwrap();
        assert_eq!(idx.blob_count(), 2);
        assert_eq!(idx.packs[0].blobs[1].uncompressed_length, Some(511));
        assert!(matches!(
            IndexFile::parse(j, 1),
            Err(IndexError::CompressedInV1(_))
        ));
        assert!(matches!(
            IndexFile::parse(b" [1]", 2),
            Err(IndexError::Legacy)
        ));
        let out = IndexFile {
            supersedes: None,
            ..idx
        }
        .to_json();
        assert!(out.starts_with(br#"{"packs":[{"id":"73d0"#));
        assert!(out.ends_with(b"}]}]}\n"));
    }
}
