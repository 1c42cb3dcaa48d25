//! Copy blobs out of packs into a [`BlobWriter`]: used by prune (same repository) and
//! copy (another repository). Blobs are decrypted, verified against their IDs and
//! stored again, so damaged data is never carried over silently.

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::repo::{decode_blob, Repository};
use crate::writer::BlobWriter;
use arca_format::pack::PackedBlob;
use arca_format::Id;
use arca_storage::FileType;
use futures::StreamExt;
use std::sync::Arc;

/// For each source pack, the blobs to copy out of it. Reads two packs at a time;
/// progress counts packs.
pub async fn repack(
    src: Arc<Repository>,
    writer: Arc<BlobWriter>,
    packs: Vec<(Id, Vec<PackedBlob>)>,
    progress: &dyn Progress,
) -> Result<()> {
    progress.set_total(packs.len() as u64);
    let mut reads = futures::stream::iter(packs.into_iter().map(|(pid, mut blobs)| {
        let src = src.clone();
        async move {
            blobs.sort_by_key(|b| b.offset);
            let start = blobs.first().map(|b| b.offset as u64).unwrap_or(0);
            let end = blobs
                .iter()
                .map(|b| b.offset as u64 + b.length as u64)
                .max()
                .unwrap_or(start);
            let data = src
                .backend()
                .read_range(FileType::Pack, &pid.to_hex(), start, end - start)
                .await?;
            Ok::<_, Error>((pid, start, data, blobs))
        }
    }))
    .buffer_unordered(2);
    while let Some(res) = reads.next().await {
        let (pid, start, data, blobs) = res?;
        let (w, key) = (writer.clone(), src.key().clone());
        tokio::task::spawn_blocking(move || -> Result<()> {
            for b in blobs {
                let lo = (b.offset as u64 - start) as usize;
                let raw = &data[lo..lo + b.length as usize];
                let plain = decode_blob(&key, &b, raw).map_err(|reason| Error::Blob {
                    blob_type: b.blob_type,
                    id: b.id,
                    pack: pid,
                    reason,
                })?;
                w.save_with_id(b.blob_type, b.id, &plain)?;
            }
            Ok(())
        })
        .await
        .map_err(Error::task("repack worker"))??;
        progress.add(1);
    }
    Ok(())
}
