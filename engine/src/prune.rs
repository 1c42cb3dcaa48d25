//! `prune`: remove data no snapshot needs. Packs whose blobs are all unused are
//! deleted; partly used packs are repacked (their used blobs copied into new packs)
//! until the unused space left is within `--max-unused`.
//!
//! Order, so that a crash at any point leaves a valid repository: new packs, then
//! their index; then a new index for the packs kept; then old index files are
//! removed; packs are deleted last. At worst a crash leaves unreferenced packs or
//! duplicate index entries, both harmless.

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::repo::Repository;
use crate::snapshots;
use crate::stats::used_blobs;
use crate::writer::{BlobWriter, WriterOptions, INDEX_MAX_BLOBS};
use arca_format::index::{IndexBlob, IndexFile, IndexPack};
use arca_format::pack::{BlobType, PackedBlob};
use arca_format::Id;
use arca_storage::FileType;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaxUnused {
    /// Unused space may be at most this share of the repository after pruning.
    Percent(f64),
    Bytes(u64),
    Unlimited,
}

/// A `--max-unused` value restic would refuse.
#[derive(Debug, thiserror::Error)]
pub enum MaxUnusedError {
    #[error("invalid --max-unused {0:?}")]
    Invalid(String),
    #[error("--max-unused {0:?} must be below 100%")]
    NotBelow100(String),
}

impl MaxUnused {
    /// restic's syntax: `5%`, `100M`, `unlimited`.
    pub fn parse(
        s: &str,
        parse_size: impl Fn(&str) -> Option<u64>,
    ) -> std::result::Result<MaxUnused, MaxUnusedError> {
        let s = s.trim();
        if s == "unlimited" {
            return Ok(MaxUnused::Unlimited);
        }
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p
                .trim()
                .parse()
                .map_err(|_| MaxUnusedError::Invalid(s.to_string()))?;
            if !(0.0..100.0).contains(&v) {
                return Err(MaxUnusedError::NotBelow100(s.to_string()));
            }
            return Ok(MaxUnused::Percent(v));
        }
        parse_size(s)
            .map(MaxUnused::Bytes)
            .ok_or_else(|| MaxUnusedError::Invalid(s.to_string()))
    }

    /// Unused bytes allowed to remain when `used` bytes are in use.
    fn limit(&self, used: u64) -> u64 {
        match *self {
            MaxUnused::Percent(p) => (p / (100.0 - p) * used as f64) as u64,
            MaxUnused::Bytes(b) => b,
            MaxUnused::Unlimited => u64::MAX,
        }
    }
}

#[derive(Clone, Debug)]
pub struct PruneOptions {
    pub max_unused: MaxUnused,
    pub max_repack_bytes: Option<u64>,
    /// Only repack packs holding tree blobs (cheap to re-read from a cache).
    pub repack_cacheable_only: bool,
    /// v2: also repack packs holding uncompressed blobs, to compress them.
    pub repack_uncompressed: bool,
    pub dry_run: bool,
    pub writer: WriterOptions,
    /// Snapshots to treat as already forgotten (a `forget --dry-run --prune` preview).
    pub ignore_snapshots: Vec<Id>,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            max_unused: MaxUnused::Percent(5.0),
            max_repack_bytes: None,
            repack_cacheable_only: false,
            repack_uncompressed: false,
            dry_run: false,
            writer: WriterOptions::default(),
            ignore_snapshots: Vec::new(),
        }
    }
}

/// Counts of blobs and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Amount {
    pub blobs: u64,
    pub bytes: u64,
}

impl Amount {
    fn add(&mut self, b: &PackedBlob) {
        self.blobs += 1;
        self.bytes += b.length as u64;
    }
}

#[derive(Debug, Default)]
pub struct PruneReport {
    pub snapshots: usize,
    pub used: Amount,
    pub duplicate: Amount,
    pub unused: Amount,
    pub unreferenced_packs: usize,
    pub unreferenced_bytes: u64,
    pub repack: Amount,
    /// Unused blobs removed by repacking.
    pub repack_removes: Amount,
    /// Blobs in packs deleted whole.
    pub delete: Amount,
    pub packs_total: usize,
    pub packs_delete: usize,
    pub packs_repack: usize,
    pub packs_keep: usize,
    pub remaining: Amount,
    pub unused_after: u64,
    /// Index files written and removed.
    pub index_written: usize,
    pub index_removed: usize,
    pub dry_run: bool,
}

enum Decision {
    Keep,
    Repack,
    Delete,
}

/// Needs the index loaded. Take an exclusive lock before calling.
pub async fn prune(
    repo: Arc<Repository>,
    opts: &PruneOptions,
    progress: &dyn Progress,
) -> Result<PruneReport> {
    let mut report = PruneReport {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    let index = repo.index().clone();

    progress.message("finding data that is still in use");
    let mut snaps = snapshots::load_all(&repo).await?;
    snaps.retain(|s| !opts.ignore_snapshots.contains(&s.id));
    report.snapshots = snaps.len();
    let roots: Vec<Id> = snaps.iter().map(|s| s.tree).collect();
    let used = used_blobs(&repo, &roots).await?;

    progress.message("searching used packs");
    let stored: HashMap<Id, u64> = repo.list_ids(FileType::Pack).await?.into_iter().collect();
    let mut by_pack = index.blobs_by_pack();
    // Packs named by the index but missing from storage: fine if nothing they hold is
    // needed elsewhere; fatal if they hold the only copy of a used blob.
    let missing: Vec<Id> = by_pack
        .keys()
        .filter(|id| !stored.contains_key(id))
        .copied()
        .collect();
    for id in &missing {
        by_pack.remove(id);
    }
    let mut pack_ids: Vec<Id> = by_pack.keys().copied().collect();
    pack_ids.sort();
    // The copy of each used blob to keep: the first one found in a stored pack.
    let mut kept_copy: HashSet<(BlobType, Id)> = HashSet::new();
    let mut keep_in_pack: HashMap<Id, Vec<PackedBlob>> = HashMap::new();
    for pid in &pack_ids {
        for b in &by_pack[pid] {
            let h = (b.blob_type, b.id);
            if used.contains(&h) && kept_copy.insert(h) {
                report.used.add(b);
                keep_in_pack.entry(*pid).or_default().push(*b);
            } else if used.contains(&h) {
                report.duplicate.add(b);
            } else {
                report.unused.add(b);
            }
        }
    }
    if let Some((t, id)) = used.iter().find(|h| !kept_copy.contains(h)) {
        return Err(Error::UsedBlobNotStored {
            blob_type: *t,
            id: *id,
        });
    }

    progress.message("collecting packs for deletion and repacking");
    report.packs_total = pack_ids.len();
    let mut decisions: HashMap<Id, Decision> = HashMap::new();
    let mut candidates: Vec<(Id, u64, u64)> = Vec::new(); // (pack, used bytes, unused bytes)
    let mut unused_after = 0u64;
    for pid in &pack_ids {
        let all = &by_pack[pid];
        let keep = keep_in_pack.get(pid).map(|v| v.len()).unwrap_or(0);
        let used_bytes: u64 = keep_in_pack
            .get(pid)
            .map(|v| v.iter().map(|b| b.length as u64).sum())
            .unwrap_or(0);
        let total_bytes: u64 = all.iter().map(|b| b.length as u64).sum();
        let d = if keep == 0 {
            Decision::Delete
        } else if keep == all.len() {
            let uncompressed =
                repo.version() >= 2 && all.iter().any(|b| !b.is_compressed() && b.length > 0);
            if opts.repack_uncompressed && uncompressed {
                Decision::Repack
            } else {
                Decision::Keep
            }
        } else {
            let has_tree = all.iter().any(|b| b.blob_type == BlobType::Tree);
            if opts.repack_cacheable_only && !has_tree {
                unused_after += total_bytes - used_bytes;
                Decision::Keep
            } else {
                candidates.push((*pid, used_bytes, total_bytes - used_bytes));
                Decision::Keep
            }
        };
        decisions.insert(*pid, d);
    }
    // Repack the packs with the most unused space first, until what is left unused
    // is within the limit (or the repack budget is spent).
    candidates.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    let mut pending_unused: u64 = candidates.iter().map(|c| c.2).sum::<u64>() + unused_after;
    let limit = opts.max_unused.limit(report.used.bytes);
    let mut repack_budget = opts.max_repack_bytes.unwrap_or(u64::MAX);
    for (pid, used_bytes, unused_bytes) in candidates {
        if pending_unused <= limit || used_bytes > repack_budget {
            continue;
        }
        repack_budget -= used_bytes;
        pending_unused -= unused_bytes;
        decisions.insert(pid, Decision::Repack);
    }
    report.unused_after = pending_unused;

    let mut to_delete: Vec<Id> = Vec::new();
    let mut to_repack: Vec<Id> = Vec::new();
    let mut to_keep: Vec<Id> = Vec::new();
    for pid in &pack_ids {
        let all = &by_pack[pid];
        let kept = keep_in_pack.get(pid).cloned().unwrap_or_default();
        match decisions[pid] {
            Decision::Delete => {
                all.iter().for_each(|b| report.delete.add(b));
                to_delete.push(*pid);
            }
            Decision::Repack => {
                kept.iter().for_each(|b| report.repack.add(b));
                let kept_set: HashSet<&PackedBlob> = kept.iter().collect();
                all.iter()
                    .filter(|b| !kept_set.contains(b))
                    .for_each(|b| report.repack_removes.add(b));
                to_repack.push(*pid);
            }
            Decision::Keep => {
                all.iter().for_each(|b| report.remaining.add(b));
                to_keep.push(*pid);
            }
        }
    }
    report.remaining.blobs += report.repack.blobs;
    report.remaining.bytes += report.repack.bytes;
    let unreferenced: Vec<Id> = stored
        .keys()
        .filter(|id| !index.has_pack(id))
        .copied()
        .collect();
    report.unreferenced_packs = unreferenced.len();
    report.unreferenced_bytes = unreferenced.iter().map(|id| stored[id]).sum();
    report.packs_delete = to_delete.len() + unreferenced.len();
    report.packs_repack = to_repack.len();
    report.packs_keep = to_keep.len();
    if opts.dry_run {
        return Ok(report);
    }

    // 1. Repack: copy the kept blobs of each repacked pack into new packs.
    let changes = !to_delete.is_empty()
        || !to_repack.is_empty()
        || !unreferenced.is_empty()
        || !missing.is_empty();
    if !changes {
        return Ok(report);
    }
    progress.message("repacking");
    let writer = BlobWriter::new(
        repo.clone(),
        WriterOptions {
            ignore_index: true,
            ..opts.writer.clone()
        },
    );
    let jobs: Vec<(Id, Vec<PackedBlob>)> = to_repack
        .iter()
        .map(|pid| (*pid, keep_in_pack.get(pid).cloned().unwrap_or_default()))
        .collect();
    crate::repack::repack(repo.clone(), writer.clone(), jobs, progress).await?;
    let w = writer.clone();
    let new_indexes = tokio::task::spawn_blocking(move || w.finish())
        .await
        .map_err(Error::task("writer"))??;
    report.index_written += new_indexes.len();

    // 2. A new index for every pack kept as it is.
    progress.message("rebuilding index");
    let mut file = IndexFile::default();
    for pid in &to_keep {
        let mut blobs: Vec<PackedBlob> = by_pack[pid].clone();
        blobs.sort_by_key(|b| b.offset);
        file.packs.push(IndexPack {
            id: *pid,
            blobs: blobs.iter().map(IndexBlob::from_packed).collect(),
        });
        if file.blob_count() >= INDEX_MAX_BLOBS {
            repo.save_unpacked(FileType::Index, &std::mem::take(&mut file).to_json())
                .await?;
            report.index_written += 1;
        }
    }
    if !file.packs.is_empty() {
        repo.save_unpacked(FileType::Index, &file.to_json()).await?;
        report.index_written += 1;
    }

    // 3. Old index files, then 4. the packs nothing refers to any more.
    progress.message("deleting obsolete index files");
    for id in &index.files {
        repo.backend().remove(FileType::Index, &id.to_hex()).await?;
        report.index_removed += 1;
    }
    progress.message("removing old packs");
    for pid in to_delete.iter().chain(&to_repack).chain(&unreferenced) {
        match repo.backend().remove(FileType::Pack, &pid.to_hex()).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(report)
}
