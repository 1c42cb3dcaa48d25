//! `--verify`: every written file is read again and each blob compared with its ID.

use super::contents::PlannedFile;
use super::target::Target;
use crate::repo::Repository;
use arca_format::pack::BlobType;
use arca_format::Id;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

/// Re-read every written file and compare each blob with its ID.
pub(super) async fn verify_files(
    repo: &Arc<Repository>,
    target: &Arc<Target>,
    files: &[PlannedFile],
) -> Vec<String> {
    let index = repo.index().clone();
    let work: Vec<(PathBuf, Vec<(Id, u64)>)> = files
        .iter()
        .map(|f| {
            let blobs = f
                .content
                .iter()
                .map(|id| {
                    (
                        *id,
                        index
                            .lookup(BlobType::Data, id)
                            .map(|e| e.to_packed(BlobType::Data, *id).data_length() as u64)
                            .unwrap_or(0),
                    )
                })
                .collect();
            (f.rel.clone(), blobs)
        })
        .collect();
    let target = target.clone();
    tokio::task::spawn_blocking(move || {
        use rayon::prelude::*;
        work.par_iter()
            .filter_map(|(rel, blobs)| {
                let path = target.shown(rel);
                let f = match target.open_read(rel) {
                    Ok(f) => f,
                    Err(e) => return Some(format!("{}: verify: {e}", path.display())),
                };
                let mut off = 0u64;
                // The lengths come from the index: read in bounded pieces, never allocating
                // what a damaged index claims (up to 4 GiB per blob).
                let biggest = blobs.iter().map(|(_, len)| *len).max().unwrap_or(0);
                let mut buf = vec![0u8; biggest.min(1 << 20) as usize];
                for (id, len) in blobs {
                    let mut h = <sha2::Sha256 as sha2::Digest>::new();
                    let mut done = 0u64;
                    while done < *len {
                        let n = (*len - done).min(buf.len() as u64) as usize;
                        if let Err(e) = f.read_exact_at(&mut buf[..n], off + done) {
                            return Some(format!("{}: verify: {e}", path.display()));
                        }
                        sha2::Digest::update(&mut h, &buf[..n]);
                        done += n as u64;
                    }
                    if Id(sha2::Digest::finalize(h).into()) != *id {
                        return Some(format!(
                            "{}: verify: content at offset {off} does not match blob {id}",
                            path.display()
                        ));
                    }
                    off += len;
                }
                None
            })
            .collect()
    })
    .await
    .expect("verification does not panic")
}
