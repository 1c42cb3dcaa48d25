//! `repair index` (rebuild the index from pack headers) and `repair packs` (salvage
//! the readable blobs of damaged packs).

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::repo::{decode_blob, Repository};
use crate::writer::{BlobWriter, WriterOptions, INDEX_MAX_BLOBS};
use arca_format::index::{IndexBlob, IndexFile, IndexPack};
use arca_format::pack::{self, PackedBlob};
use arca_format::Id;
use arca_storage::FileType;
use futures::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct RepairIndexReport {
    pub packs_indexed: usize,
    pub packs_read: usize,
    /// Packs whose header could not be read: left out of the index.
    pub unreadable: Vec<(Id, String)>,
    pub index_written: usize,
    pub index_removed: usize,
}

/// Read a pack's header from its tail (one or two ranged reads).
pub async fn read_header(repo: &Repository, id: &Id, size: u64) -> Result<Vec<PackedBlob>> {
    let name = id.to_hex();
    let tail_len = size.min(pack::TAIL_READ as u64);
    let tail = repo
        .backend()
        .read_range(FileType::Pack, &name, size - tail_len, tail_len)
        .await?;
    let hlen =
        pack::header_length(&tail, size).map_err(|e| Error::file(FileType::Pack, &name, e))? as u64;
    let tail = if hlen + 4 > tail_len {
        repo.backend()
            .read_range(FileType::Pack, &name, size - hlen - 4, hlen + 4)
            .await?
    } else {
        tail
    };
    pack::parse_trailer(repo.key(), &tail, size, repo.version() >= 2)
        .map_err(|e| Error::file(FileType::Pack, &name, e))
}

/// Write index files for `packs`, at most 50,000 blobs each.
async fn write_indexes(repo: &Repository, packs: Vec<(Id, Vec<PackedBlob>)>) -> Result<usize> {
    let mut written = 0;
    let mut file = IndexFile::default();
    for (id, blobs) in packs {
        file.packs.push(IndexPack {
            id,
            blobs: blobs.iter().map(IndexBlob::from_packed).collect(),
        });
        if file.blob_count() >= INDEX_MAX_BLOBS {
            repo.save_unpacked(FileType::Index, &std::mem::take(&mut file).to_json())
                .await?;
            written += 1;
        }
    }
    if !file.packs.is_empty() {
        repo.save_unpacked(FileType::Index, &file.to_json()).await?;
        written += 1;
    }
    Ok(written)
}

/// Rebuild the index. Packs the current index describes correctly (same size) are
/// taken from it unless `read_all`; the others have their headers read.
pub async fn repair_index(
    repo: &Repository,
    read_all: bool,
    progress: &dyn Progress,
) -> Result<RepairIndexReport> {
    let mut report = RepairIndexReport::default();
    // A damaged index file is skipped, not fatal: that is what repair is for.
    let mut old_files = Vec::new();
    let mut known: HashMap<Id, Vec<PackedBlob>> = HashMap::new();
    let mut index = crate::index::Index::default();
    for (id, _) in repo.list_ids(FileType::Index).await? {
        old_files.push(id);
        if let Ok(json) = repo.load_unpacked(FileType::Index, &id).await {
            if let Ok(f) = IndexFile::parse(&json, repo.version()) {
                index.add_file(id, &f);
            }
        }
    }
    index.finish();
    if !read_all {
        known = index.blobs_by_pack();
    }
    let stored = repo.list_ids(FileType::Pack).await?;
    progress.set_total(stored.len() as u64);
    let mut packs: Vec<(Id, Vec<PackedBlob>)> = Vec::new();
    let mut to_read = Vec::new();
    for (id, size) in stored {
        match known.remove(&id) {
            Some(blobs) if pack::pack_size(&blobs) == size => {
                packs.push((id, blobs));
                progress.add(1);
            }
            _ => to_read.push((id, size)),
        }
    }
    let mut reads = futures::stream::iter(
        to_read
            .into_iter()
            .map(|(id, size)| async move { (id, read_header(repo, &id, size).await) }),
    )
    .buffer_unordered(8);
    while let Some((id, res)) = reads.next().await {
        report.packs_read += 1;
        progress.add(1);
        match res {
            Ok(blobs) => packs.push((id, blobs)),
            Err(e) => report.unreadable.push((id, e.to_string())),
        }
    }
    packs.sort_by_key(|(id, _)| *id);
    report.packs_indexed = packs.len();
    report.index_written = write_indexes(repo, packs).await?;
    for id in old_files {
        repo.backend().remove(FileType::Index, &id.to_hex()).await?;
        report.index_removed += 1;
    }
    Ok(report)
}

#[derive(Debug, Default)]
pub struct RepairPacksReport {
    pub salvaged_blobs: u64,
    pub lost_blobs: Vec<String>,
}

/// Copy every readable blob of the given packs into new packs, then remove the
/// packs from the index and from storage. Needs the index loaded.
pub async fn repair_packs(
    repo: Arc<Repository>,
    ids: &[Id],
    opts: WriterOptions,
    progress: &dyn Progress,
) -> Result<RepairPacksReport> {
    let mut report = RepairPacksReport::default();
    let index = repo.index().clone();
    let by_pack = index.blobs_by_pack();
    let damaged: HashSet<Id> = ids.iter().copied().collect();
    let writer = BlobWriter::new(
        repo.clone(),
        WriterOptions {
            ignore_index: true,
            ..opts
        },
    );
    progress.set_total(ids.len() as u64);
    for id in ids {
        // Blobs as the index and, if readable, the header describe them.
        let mut blobs: Vec<PackedBlob> = by_pack.get(id).cloned().unwrap_or_default();
        let data = repo.backend().read(FileType::Pack, &id.to_hex()).await;
        if let Ok(data) = &data {
            if let Ok(h) =
                pack::parse_trailer(repo.key(), data, data.len() as u64, repo.version() >= 2)
            {
                for b in h {
                    if !blobs.contains(&b) {
                        blobs.push(b);
                    }
                }
            }
        }
        let data = match data {
            Ok(d) => d,
            Err(e) => {
                report.lost_blobs.extend(
                    blobs
                        .iter()
                        .map(|b| format!("{} blob {} ({e})", b.blob_type, b.id)),
                );
                progress.add(1);
                continue;
            }
        };
        for b in blobs {
            let raw = data.get(b.offset as usize..b.offset as usize + b.length as usize);
            match raw.map(|r| decode_blob(repo.key(), &b, r)) {
                Some(Ok(plain)) => {
                    let w = writer.clone();
                    tokio::task::spawn_blocking(move || w.save_with_id(b.blob_type, b.id, &plain))
                        .await
                        .map_err(Error::task("writer"))??;
                    report.salvaged_blobs += 1;
                }
                Some(Err(e)) => report
                    .lost_blobs
                    .push(format!("{} blob {}: {e}", b.blob_type, b.id)),
                None => report.lost_blobs.push(format!(
                    "{} blob {}: past the end of the pack",
                    b.blob_type, b.id
                )),
            }
        }
        progress.add(1);
    }
    let w = writer.clone();
    tokio::task::spawn_blocking(move || w.finish())
        .await
        .map_err(Error::task("writer"))??;
    // New index for all other packs, then drop the old index files and the damaged packs.
    let keep: Vec<(Id, Vec<PackedBlob>)> = {
        let mut v: Vec<_> = by_pack
            .into_iter()
            .filter(|(id, _)| !damaged.contains(id))
            .collect();
        v.sort_by_key(|(id, _)| *id);
        v
    };
    write_indexes(&repo, keep).await?;
    for f in &index.files {
        repo.backend().remove(FileType::Index, &f.to_hex()).await?;
    }
    for id in ids {
        match repo.backend().remove(FileType::Pack, &id.to_hex()).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(report)
}
