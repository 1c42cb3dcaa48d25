//! `stats` in restic's four modes: restore-size, files-by-contents, blobs-per-file and
//! raw-data.

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
use std::collections::{HashMap, HashSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsMode {
    RestoreSize,
    /// Nodes counted once per content (the list of their blobs), whatever their path. As in
    /// restic every node counts, so all directories and empty files share one entry.
    FilesByContents,
    /// For each content not seen before, its file's path (once) and each distinct blob of
    /// that path (once, at its plaintext size), as restic counts them.
    BlobsPerFile,
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
        StatsMode::FilesByContents => {
            let mut contents: HashSet<Id> = HashSet::new();
            // A tree seen before holds only contents seen before.
            let mut trees: HashSet<Id> = HashSet::new();
            for sn in snapshots {
                st.snapshots_count += 1;
                let mut stack = vec![sn.tree];
                while let Some(id) = stack.pop() {
                    if !trees.insert(id) {
                        continue;
                    }
                    for node in repo.load_tree(&id).await?.nodes {
                        if contents.insert(content_key(&node)) {
                            st.total_file_count += 1;
                            st.total_size = st.total_size.saturating_add(node.size);
                        }
                        if node.node_type == NodeType::Dir {
                            stack.extend(node.subtree);
                        }
                    }
                }
            }
        }
        StatsMode::BlobsPerFile => {
            let index = repo.index();
            let mut contents: HashSet<Id> = HashSet::new();
            let mut files: HashMap<Vec<u8>, HashSet<Id>> = HashMap::new();
            // Which path a content is first seen at decides which paths count when a content
            // has several: restic takes the snapshots in the store's listing order (for a
            // local store, the directory's), arca by ID, so the count does not depend on it.
            let mut by_id: Vec<&Snapshot> = snapshots.iter().collect();
            by_id.sort_by_key(|s| s.id);
            for sn in by_id {
                st.snapshots_count += 1;
                walk(repo, &sn.tree, b"/", |path, node| {
                    // A content seen before, under any path, is not looked at again.
                    if !contents.insert(content_key(node)) {
                        return Ok(Visit::Descend);
                    }
                    for blob in node.content.iter().flatten() {
                        let seen = files.entry(path.to_vec()).or_insert_with(|| {
                            st.total_file_count += 1;
                            HashSet::new()
                        });
                        if seen.insert(*blob) {
                            let e =
                                index
                                    .lookup(BlobType::Data, blob)
                                    .ok_or(Error::BlobNotFound {
                                        blob_type: BlobType::Data,
                                        id: *blob,
                                    })?;
                            let size = e.to_packed(BlobType::Data, *blob).data_length() as u64;
                            st.total_size = st.total_size.saturating_add(size);
                            st.total_blob_count += 1;
                        }
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

/// restic's file ID by contents: the hash of the node's blob IDs one after the other (the
/// same for every node without content).
fn content_key(node: &arca_format::tree::Node) -> Id {
    let ids: Vec<u8> = node.content.iter().flatten().flat_map(|c| c.0).collect();
    Id::hash(&ids)
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
