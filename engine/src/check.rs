//! `check`: the index against the packs in storage, every snapshot's trees and
//! blobs against the index, and optionally the content of (some) packs.

use crate::error::{Error, Result};
use crate::index::Index;
use crate::progress::Progress;
use crate::repo::{decode_blob, Repository, LOAD_CONCURRENCY};
use arca_format::index::IndexFile;
use arca_format::pack::{self, BlobType, PackedBlob};
use arca_format::tree::NodeType;
use arca_format::Id;
use arca_storage::FileType;
use futures::StreamExt;
use std::collections::{HashMap, HashSet};

/// Which packs `--read-data` / `--read-data-subset` reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ReadData {
    None,
    All,
    /// Packs whose first ID byte modulo `m` equals `n - 1` (restic's n/m).
    Bucket {
        n: u32,
        m: u32,
    },
    /// A random share of the packs, in percent.
    Percent(f64),
}

impl ReadData {
    /// Parse restic's `--read-data-subset` value: `n/m` or `x%`.
    pub fn parse_subset(s: &str) -> std::result::Result<ReadData, String> {
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("invalid percentage {s:?}"))?;
            if !(v > 0.0 && v <= 100.0) {
                return Err(format!(
                    "percentage {s:?} must be above 0% and at most 100%"
                ));
            }
            return Ok(ReadData::Percent(v));
        }
        let (n, m) = s
            .split_once('/')
            .ok_or_else(|| format!("invalid subset {s:?}, want n/m or x%"))?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("invalid subset {s:?}"))?;
        let m: u32 = m
            .trim()
            .parse()
            .map_err(|_| format!("invalid subset {s:?}"))?;
        if m == 0 || m > 256 || n == 0 || n > m {
            return Err(format!("invalid subset {s:?}: need 1 <= n <= m <= 256"));
        }
        Ok(ReadData::Bucket { n, m })
    }

    fn selects(&self, id: &Id) -> bool {
        match *self {
            ReadData::None => false,
            ReadData::All => true,
            ReadData::Bucket { n, m } => id.0[0] as u32 % m == n - 1,
            ReadData::Percent(p) => rand::random::<f64>() * 100.0 < p,
        }
    }
}

#[derive(Debug, Default)]
pub struct CheckReport {
    /// Damage: any entry here means the check failed.
    pub errors: Vec<String>,
    /// Things worth knowing that are not damage (unreferenced packs, duplicates).
    pub notes: Vec<String>,
    pub snapshots: usize,
    pub trees: usize,
    pub packs_read: usize,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Stages report through `progress` as "message" calls plus counts per stage.
pub async fn check(
    repo: &mut Repository,
    read_data: ReadData,
    progress: &dyn Progress,
) -> Result<CheckReport> {
    let mut report = CheckReport::default();

    progress.message("load indexes");
    let mut index = Index::default();
    for (id, _) in repo.list_ids(FileType::Index).await? {
        let loaded = match repo.load_unpacked(FileType::Index, &id).await {
            Ok(json) => IndexFile::parse(&json, repo.version()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match loaded {
            Ok(file) => index.add_file(id, &file),
            Err(e) => report
                .errors
                .push(format!("error loading index {}: {e}", id.short())),
        }
    }
    index.finish();
    repo.set_index(index);
    let index = repo.index().clone();

    progress.message("check all packs");
    let stored: HashMap<Id, u64> = repo.list_ids(FileType::Pack).await?.into_iter().collect();
    let by_pack = index.blobs_by_pack();
    let mut pack_ids: Vec<&Id> = by_pack.keys().collect();
    pack_ids.sort();
    for id in pack_ids {
        let want = pack::pack_size(&by_pack[id]);
        match stored.get(id) {
            None => report.errors.push(format!("pack {id}: does not exist")),
            Some(&size) if size != want => report.errors.push(format!(
                "pack {id}: unexpected file size: got {size}, expected {want}"
            )),
            Some(_) => {}
        }
    }
    let mut orphans: Vec<&Id> = stored
        .keys()
        .filter(|id| !by_pack.contains_key(id))
        .collect();
    orphans.sort();
    for id in &orphans {
        report
            .notes
            .push(format!("pack {id}: not referenced in any index"));
    }
    if !orphans.is_empty() {
        report.notes.push(format!(
            "{} additional files were found in the repo, which likely contain duplicate data; this is non-critical, prune removes them",
            orphans.len()
        ));
    }

    progress.message("check snapshots, trees and blobs");
    check_snapshots(repo, &index, &mut report).await?;

    if read_data != ReadData::None {
        let mut selected: Vec<(Id, u64)> = stored
            .iter()
            .filter(|(id, _)| by_pack.contains_key(id) && read_data.selects(id))
            .map(|(id, size)| (*id, *size))
            .collect();
        selected.sort();
        progress.message("read pack data");
        progress.set_total(selected.len() as u64);
        let repo_ref = &*repo;
        let by_pack = &by_pack;
        let mut reads = futures::stream::iter(selected.into_iter().map(|(id, size)| async move {
            let res = read_pack(repo_ref, &id, size, &by_pack[&id]).await;
            (id, res)
        }))
        .buffer_unordered(4);
        while let Some((id, res)) = reads.next().await {
            report.packs_read += 1;
            progress.add(1);
            for e in res {
                report.errors.push(format!("pack {id}: {e}"));
            }
        }
    }
    Ok(report)
}

async fn check_snapshots(repo: &Repository, index: &Index, report: &mut CheckReport) -> Result<()> {
    let mut roots = Vec::new();
    for (id, _) in repo.list_ids(FileType::Snapshot).await? {
        let loaded = match repo.load_unpacked(FileType::Snapshot, &id).await {
            Ok(json) => {
                arca_format::snapshot::Snapshot::parse(&json, id).map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        match loaded {
            Ok(s) => roots.push((s.tree, format!("snapshot {}", id.short()))),
            Err(e) => report.errors.push(format!("snapshot {}: {e}", id.short())),
        }
        report.snapshots += 1;
    }
    let mut seen: HashSet<Id> = HashSet::new();
    let mut level: Vec<(Id, String)> = roots;
    while !level.is_empty() {
        level.retain(|(id, _)| seen.insert(*id));
        report.trees += level.len();
        let loads: Vec<_> = futures::stream::iter(
            level
                .into_iter()
                .map(|(id, parent)| async move { (id, parent, repo.load_tree(&id).await) }),
        )
        .buffer_unordered(LOAD_CONCURRENCY)
        .collect()
        .await;
        let mut next = Vec::new();
        for (id, parent, res) in loads {
            let tree = match res {
                Ok(t) => t,
                Err(Error::BlobNotFound { .. }) => {
                    report.errors.push(format!(
                        "tree {id} (referenced by {parent}): not found in index"
                    ));
                    continue;
                }
                Err(e) => {
                    report
                        .errors
                        .push(format!("tree {id} (referenced by {parent}): {e}"));
                    continue;
                }
            };
            for node in &tree.nodes {
                let name = String::from_utf8_lossy(&node.name);
                // restic's checker rejects these too (checkTree).
                if node.name.is_empty() {
                    report
                        .errors
                        .push(format!("tree {id}: node with empty name"));
                }
                match node.node_type {
                    NodeType::File if node.content.is_none() => report
                        .errors
                        .push(format!("tree {id}: file {name:?} has nil blob list")),
                    NodeType::Other(ref t) => report
                        .errors
                        .push(format!("tree {id}: node {name:?} with invalid type {t:?}")),
                    NodeType::File => {
                        for blob in node.content.iter().flatten() {
                            if !index.has(BlobType::Data, blob) {
                                report.errors.push(format!(
                                    "tree {id}: file {name:?} blob {blob} not found in index"
                                ));
                            }
                        }
                    }
                    NodeType::Dir => match node.subtree {
                        Some(sub) => next.push((sub, format!("tree {}", id.short()))),
                        None => report
                            .errors
                            .push(format!("tree {id}: dir {name:?} subtree id is null")),
                    },
                    _ => {}
                }
            }
        }
        level = next;
    }
    Ok(())
}

/// Read a whole pack and check its hash, header, and every blob in it.
async fn read_pack(repo: &Repository, id: &Id, size: u64, indexed: &[PackedBlob]) -> Vec<String> {
    let data = match repo.backend().read(FileType::Pack, &id.to_hex()).await {
        Ok(d) => d,
        Err(e) => return vec![format!("cannot read: {e}")],
    };
    let key = repo.key().clone();
    let allow_compressed = repo.version() >= 2;
    let indexed = indexed.to_vec();
    let id = *id;
    tokio::task::spawn_blocking(move || {
        verify_pack(&key, &id, &data, size, &indexed, allow_compressed)
    })
    .await
    .expect("pack verification does not panic")
}

fn verify_pack(
    key: &arca_format::crypto::Key,
    id: &Id,
    data: &[u8],
    size: u64,
    indexed: &[PackedBlob],
    allow_compressed: bool,
) -> Vec<String> {
    let mut errs = Vec::new();
    if data.len() as u64 != size {
        errs.push(format!("read {} bytes, listed as {size}", data.len()));
    }
    let actual = Id::hash(data);
    if actual != *id {
        errs.push(format!(
            "pack content does not match its ID (hash {actual})"
        ));
    }
    let header = match pack::parse_trailer(key, data, data.len() as u64, allow_compressed) {
        Ok(h) => h,
        Err(e) => {
            errs.push(format!("header: {e}"));
            return errs;
        }
    };
    let in_header: HashSet<&PackedBlob> = header.iter().collect();
    let in_index: HashSet<&PackedBlob> = indexed.iter().collect();
    for b in indexed {
        if !in_header.contains(b) {
            errs.push(format!(
                "{} blob {} is in the index but not in the pack header (or differs)",
                b.blob_type, b.id
            ));
        }
    }
    for b in &header {
        if !in_index.contains(b) {
            errs.push(format!(
                "{} blob {} is in the pack header but not in the index (or differs)",
                b.blob_type, b.id
            ));
        }
        let end = b.offset as usize + b.length as usize;
        match data.get(b.offset as usize..end) {
            Some(raw) => {
                if let Err(e) = decode_blob(key, b, raw) {
                    errs.push(format!("{} blob {}: {e}", b.blob_type, b.id));
                }
            }
            None => errs.push(format!(
                "{} blob {} lies past the end of the pack",
                b.blob_type, b.id
            )),
        }
    }
    errs
}
