//! `copy`: snapshots from one repository into another. Tree blobs travel byte for
//! byte (never re-serialised), data blobs are re-encrypted under the destination's
//! key; blobs the destination already has are skipped.

use crate::error::Result;
use crate::progress::Progress;
use crate::repo::{Repository, LOAD_CONCURRENCY};
use crate::writer::{BlobWriter, WriterOptions};
use arca_format::pack::{BlobType, PackedBlob};
use arca_format::snapshot::Snapshot;
use arca_format::Id;
use arca_storage::FileType;
use futures::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// restic's rule for "already copied": everything but parent and original matches.
pub fn similar(a: &Snapshot, b: &Snapshot) -> bool {
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    a.time == b.time
        && a.tree == b.tree
        && a.hostname == b.hostname
        && a.username == b.username
        && a.uid == b.uid
        && a.gid == b.gid
        && sorted(&a.paths) == sorted(&b.paths)
        && sorted(&a.tags) == sorted(&b.tags)
        && a.excludes == b.excludes
}

#[derive(Debug, Default)]
pub struct CopyReport {
    /// (source snapshot, new snapshot in the destination)
    pub copied: Vec<(Id, Id)>,
    /// (source snapshot, existing copy in the destination)
    pub skipped: Vec<(Id, Id)>,
    pub blobs: u64,
}

/// Both repositories need their index loaded. The caller holds locks on both.
pub async fn copy(
    src: Arc<Repository>,
    dst: Arc<Repository>,
    snapshots: Vec<Snapshot>,
    dst_existing: &[Snapshot],
    opts: WriterOptions,
    progress: &dyn Progress,
) -> Result<CopyReport> {
    let mut report = CopyReport::default();
    let mut by_original: HashMap<Id, Vec<&Snapshot>> = HashMap::new();
    for s in dst_existing {
        if let Some(o) = s.original {
            by_original.entry(o).or_default().push(s);
        }
        by_original.entry(s.id).or_default().push(s);
    }
    let writer = BlobWriter::new(dst.clone(), opts);
    let mut visited: HashSet<Id> = HashSet::new();
    let mut pending: Vec<Snapshot> = Vec::new();
    for sn in snapshots {
        let original = sn.original.unwrap_or(sn.id);
        if let Some(existing) = by_original
            .get(&original)
            .and_then(|v| v.iter().find(|d| similar(d, &sn)))
        {
            report.skipped.push((sn.id, existing.id));
            continue;
        }
        // Collect the blobs the destination lacks, grouped by source pack.
        let mut wanted: HashSet<(BlobType, Id)> = HashSet::new();
        let mut level = vec![sn.tree];
        while !level.is_empty() {
            level.retain(|id| visited.insert(*id));
            let trees: Vec<_> = futures::stream::iter(level.iter().map(|id| {
                let src = src.clone();
                async move { src.load_tree(id).await.map(|t| (*id, t)) }
            }))
            .buffered(LOAD_CONCURRENCY)
            .collect()
            .await;
            let mut next = Vec::new();
            for t in trees {
                let (id, tree) = t?;
                if !writer.has(BlobType::Tree, &id) {
                    wanted.insert((BlobType::Tree, id));
                }
                for n in tree.nodes {
                    for c in n.content.iter().flatten() {
                        if !writer.has(BlobType::Data, c) {
                            wanted.insert((BlobType::Data, *c));
                        }
                    }
                    if let Some(sub) = n.subtree {
                        next.push(sub);
                    }
                }
            }
            level = next;
        }
        let index = src.index();
        let mut by_pack: HashMap<Id, Vec<PackedBlob>> = HashMap::new();
        for (t, id) in &wanted {
            let e = index
                .lookup(*t, id)
                .ok_or(crate::error::Error::BlobNotFound {
                    blob_type: *t,
                    id: *id,
                })?;
            by_pack
                .entry(index.pack_id(e.pack))
                .or_default()
                .push(e.to_packed(*t, *id));
        }
        report.blobs += wanted.len() as u64;
        crate::repack::repack(
            src.clone(),
            writer.clone(),
            by_pack.into_iter().collect(),
            progress,
        )
        .await?;
        pending.push(sn);
    }
    // Snapshots only after the blobs and index they need are stored.
    let w = writer.clone();
    tokio::task::spawn_blocking(move || w.finish())
        .await
        .map_err(crate::error::Error::task("writer"))??;
    for mut sn in pending {
        let src_id = sn.id;
        sn.parent = None;
        sn.original.get_or_insert(src_id);
        let new_id = dst.save_unpacked(FileType::Snapshot, &sn.to_json()).await?;
        report.copied.push((src_id, new_id));
    }
    Ok(report)
}
