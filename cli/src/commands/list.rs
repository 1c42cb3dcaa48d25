//! `arca list`: listing the files of one type.

use anyhow::{bail, Result};
use arca_engine::progress::NoProgress;
use arca_engine::Repository;
use arca_format::pack::BlobType;
use arca_storage::FileType;
use clap::Args;
use std::io::Write;

#[derive(Args)]
pub struct ListArgs {
    /// packs|index|snapshots|keys|locks|blobs
    kind: String,
}

pub(super) async fn run(mut repo: Repository, a: ListArgs) -> Result<i32> {
    let ty = match a.kind.as_str() {
        "packs" => FileType::Pack,
        "index" => FileType::Index,
        "snapshots" => FileType::Snapshot,
        "keys" => FileType::Key,
        "locks" => FileType::Lock,
        "blobs" => {
            repo.load_index(&NoProgress).await?;
            let mut o = std::io::BufWriter::new(std::io::stdout().lock());
            for t in [BlobType::Data, BlobType::Tree] {
                for e in repo.index().iter(t) {
                    writeln!(o, "{t} {}", e.id)?;
                }
            }
            o.flush()?;
            return Ok(0);
        }
        other => bail!("invalid type {other:?}: use packs, index, snapshots, keys, locks or blobs"),
    };
    let mut o = std::io::BufWriter::new(std::io::stdout().lock());
    for (id, _) in repo.list_ids(ty).await? {
        writeln!(o, "{id}")?;
    }
    o.flush()?;
    Ok(0)
}
