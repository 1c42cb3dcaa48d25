//! `stats` in restic's restore-size and raw-data modes.

use crate::error::{Error, Result};
use crate::repo::{Repository, LOAD_CONCURRENCY};
use crate::walk::{walk, Visit};
use arca_format::crypto::OVERHEAD;
use arca_format::pack::BlobType;
use arca_format::snapshot::Snapshot;
use arca_format::tree::NodeType;
use arca_format::Id;
use futures::StreamExt;
use serde::Serialize;
use std::collections::HashSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsMode {
    RestoreSize,
    RawData,
}

/// Field names and omitempty rules of restic's `stats --json`.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Stats {
    pub total_size: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub total_uncompressed_size: u64,
    #[serde(skip_serializing_if = "is_zero_f")]
    pub compression_ratio: f64,
    #[serde(skip_serializing_if = "is_zero_f")]
    pub compression_progress: f64,
    #[serde(skip_serializing_if = "is_zero_f")]
    pub compression_space_saving: f64,
    #[serde(skip_serializing_if = "is_zero")]
    pub total_file_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub total_blob_count: u64,
    pub snapshots_count: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}
fn is_zero_f(v: &f64) -> bool {
    *v == 0.0
}

pub async fn stats(repo: &Repository, snapshots: &[Snapshot], mode: StatsMode) -> Result<Stats> {
    let mut st = Stats::default();
    match mode {
        StatsMode::RestoreSize => {
            for sn in snapshots {
                st.snapshots_count += 1;
                // Hard links count once per (device, inode), as restic counts them.
                let mut links: HashSet<(u64, u64)> = HashSet::new();
                walk(repo, &sn.tree, b"/", |_, node| {
                    st.total_file_count += 1;
                    let counted_once =
                        node.links == 1 || node.node_type == NodeType::Dir || node.inode == 0;
                    if counted_once || links.insert((node.inode, node.device_id)) {
                        // Sizes come from the trees: a damaged or hostile one may claim
                        // anything, and the sum must not wrap or panic.
                        st.total_size = st.total_size.saturating_add(node.size);
                    }
                    Ok(Visit::Descend)
                })
                .await?;
            }
        }
        StatsMode::RawData => {
            let roots: Vec<Id> = snapshots.iter().map(|s| s.tree).collect();
            st.snapshots_count = snapshots.len() as u64;
            let used = used_blobs(repo, &roots).await?;
            let index = repo.index();
            let (mut compressed_size, mut compressed_plain) = (0u64, 0u64);
            for (t, id) in &used {
                let e = index.lookup(*t, id).ok_or(Error::BlobNotFound {
                    blob_type: *t,
                    id: *id,
                })?;
                let b = e.to_packed(*t, *id);
                st.total_size += e.length as u64;
                if repo.version() >= 2 {
                    let plain = b.data_length() as u64 + OVERHEAD as u64;
                    st.total_uncompressed_size += plain;
                    if b.is_compressed() {
                        compressed_size += e.length as u64;
                        compressed_plain += plain;
                    }
                }
                st.total_blob_count += 1;
            }
            if compressed_size > 0 {
                st.compression_ratio = compressed_plain as f64 / compressed_size as f64;
            }
            if st.total_uncompressed_size > 0 {
                st.compression_progress =
                    compressed_plain as f64 / st.total_uncompressed_size as f64 * 100.0;
                st.compression_space_saving =
                    (1.0 - st.total_size as f64 / st.total_uncompressed_size as f64) * 100.0;
            }
        }
    }
    Ok(st)
}

/// Every blob (tree and data) reachable from the given trees.
pub async fn used_blobs(repo: &Repository, roots: &[Id]) -> Result<HashSet<(BlobType, Id)>> {
    let mut used: HashSet<(BlobType, Id)> = HashSet::new();
    let mut level: Vec<Id> = roots.to_vec();
    while !level.is_empty() {
        level.retain(|id| used.insert((BlobType::Tree, *id)));
        let trees: Vec<_> = futures::stream::iter(level.iter().map(|id| repo.load_tree(id)))
            .buffered(LOAD_CONCURRENCY)
            .collect()
            .await;
        let mut next = Vec::new();
        for tree in trees {
            for node in tree?.nodes {
                for c in node.content.iter().flatten() {
                    used.insert((BlobType::Data, *c));
                }
                if let Some(sub) = node.subtree {
                    next.push(sub);
                }
            }
        }
        level = next;
    }
    Ok(used)
}
