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

/// A `--read-data-subset` value restic would refuse.
#[derive(Debug, thiserror::Error)]
pub enum SubsetError {
    #[error("invalid percentage {0:?}")]
    Percentage(String),
    #[error("percentage {0:?} must be above 0% and at most 100%")]
    PercentageRange(String),
    #[error("invalid subset {0:?}, want n/m or x%")]
    Shape(String),
    #[error("invalid subset {0:?}")]
    Invalid(String),
    #[error("invalid subset {0:?}: need 1 <= n <= m <= 256")]
    Range(String),
}

impl ReadData {
    /// Parse restic's `--read-data-subset` value: `n/m` or `x%`.
    pub fn parse_subset(s: &str) -> std::result::Result<ReadData, SubsetError> {
        let bad = || SubsetError::Invalid(s.to_string());
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p
                .trim()
                .parse()
                .map_err(|_| SubsetError::Percentage(s.to_string()))?;
            if !(v > 0.0 && v <= 100.0) {
                return Err(SubsetError::PercentageRange(s.to_string()));
            }
            return Ok(ReadData::Percent(v));
        }
        let (n, m) = s
            .split_once('/')
            .ok_or_else(|| SubsetError::Shape(s.to_string()))?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        let m: u32 = m.trim().parse().map_err(|_| bad())?;
        if m == 0 || m > 256 || n == 0 || n > m {
            return Err(SubsetError::Range(s.to_string()));
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

/// Bytes of a pack that `--read-data` reads at once: a pack is streamed in pieces of this
/// size, so memory per pack in flight is a piece and the blob being checked, whatever the
/// pack's size (restic streams too).
const READ_PIECE: u64 = 8 << 20;

/// Read a pack from start to end and check its hash, its header against the index, and
/// every blob in it.
async fn read_pack(repo: &Repository, id: &Id, size: u64, indexed: &[PackedBlob]) -> Vec<String> {
    let name = id.to_hex();
    let backend = repo.backend();
    let read = |offset: u64, length: u64| {
        let name = name.clone();
        async move {
            let data = backend
                .read_range(FileType::Pack, &name, offset, length)
                .await
                .map_err(|e| format!("cannot read: {e}"))?;
            if data.len() as u64 != length {
                return Err(format!(
                    "read {} bytes at offset {offset}, expected {length}",
                    data.len()
                ));
            }
            Ok(data)
        }
    };
    let mut errs = Vec::new();
    // The header first, from the pack's end: it says where each blob lies.
    let header = match read_header(repo, &read, size).await {
        Ok(h) => h,
        Err(e) => {
            errs.push(format!("header: {e}"));
            Vec::new()
        }
    };
    errs.extend(compare_with_index(&header, indexed));
    let mut blobs = header;
    blobs.sort_by_key(|b| b.offset);
    let mut stream = PackStream {
        key: repo.key().clone(),
        blobs,
        next: 0,
        buf: Vec::new(),
        buf_start: 0,
        hasher: <sha2::Sha256 as sha2::Digest>::new(),
        errs,
    };
    let mut pos = 0u64;
    while pos < size {
        let n = READ_PIECE.min(size - pos);
        let piece = match read(pos, n).await {
            Ok(p) => p,
            Err(e) => {
                stream.errs.push(e);
                return stream.errs;
            }
        };
        pos += n;
        stream = tokio::task::spawn_blocking(move || {
            stream.take(&piece, pos);
            stream
        })
        .await
        .expect("pack verification does not panic");
    }
    let actual = Id(sha2::Digest::finalize(stream.hasher).into());
    let mut errs = stream.errs;
    for b in &stream.blobs[stream.next..] {
        errs.push(format!(
            "{} blob {} lies past the end of the pack",
            b.blob_type, b.id
        ));
    }
    if actual != *id {
        errs.push(format!(
            "pack content does not match its ID (hash {actual})"
        ));
    }
    errs
}

/// The pack's header, read from its last bytes (once more when it is longer than the
/// first read).
async fn read_header<F, Fut>(
    repo: &Repository,
    read: &F,
    size: u64,
) -> std::result::Result<Vec<PackedBlob>, String>
where
    F: Fn(u64, u64) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<bytes::Bytes, String>>,
{
    let first = size.min(pack::TAIL_READ as u64);
    let mut tail = read(size - first, first).await?;
    let len = pack::header_length(&tail, size).map_err(|e| e.to_string())? as u64;
    if len + 4 > first {
        tail = read(size - len - 4, len + 4).await?;
    }
    pack::parse_trailer(repo.key(), &tail, size, repo.version() >= 2).map_err(|e| e.to_string())
}

/// Blobs the index lists for the pack and blobs its header lists must be the same.
fn compare_with_index(header: &[PackedBlob], indexed: &[PackedBlob]) -> Vec<String> {
    let mut errs = Vec::new();
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
    for b in header {
        if !in_index.contains(b) {
            errs.push(format!(
                "{} blob {} is in the pack header but not in the index (or differs)",
                b.blob_type, b.id
            ));
        }
    }
    errs
}

/// A pack being read front to back: every byte hashed, every blob decoded once all of it
/// has arrived, and only the bytes from the next blob on kept.
struct PackStream {
    key: arca_format::crypto::Key,
    /// The header's blobs, by offset.
    blobs: Vec<PackedBlob>,
    /// The first blob not checked yet.
    next: usize,
    buf: Vec<u8>,
    /// The pack offset of `buf[0]`.
    buf_start: u64,
    hasher: sha2::Sha256,
    errs: Vec<String>,
}

impl PackStream {
    /// Take the next `piece` of the pack, which ends at offset `end`.
    fn take(&mut self, piece: &[u8], end: u64) {
        sha2::Digest::update(&mut self.hasher, piece);
        self.buf.extend_from_slice(piece);
        while let Some(b) = self.blobs.get(self.next) {
            let (from, to) = (b.offset as u64, b.offset as u64 + b.length as u64);
            if to > end {
                break;
            }
            self.next += 1;
            if from < self.buf_start {
                // Only a forged header overlaps blobs.
                self.errs.push(format!(
                    "{} blob {} overlaps the blob before it",
                    b.blob_type, b.id
                ));
                continue;
            }
            let raw = &self.buf[(from - self.buf_start) as usize..(to - self.buf_start) as usize];
            if let Err(e) = decode_blob(&self.key, b, raw) {
                self.errs
                    .push(format!("{} blob {}: {e}", b.blob_type, b.id));
            }
        }
        let keep_from = self
            .blobs
            .get(self.next)
            .map_or(end, |b| (b.offset as u64).min(end))
            .max(self.buf_start);
        self.buf.drain(..(keep_from - self.buf_start) as usize);
        self.buf_start = keep_from;
    }
}
