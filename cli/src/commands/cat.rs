//! `arca cat`: printing repository objects.

use crate::global::GlobalOptions;
use crate::output::indent_json;
use anyhow::{anyhow, bail, Result};
use arca_engine::progress::NoProgress;
use arca_engine::snapshots::{self, SnapshotFilter};
use arca_engine::walk;
use arca_format::pack::BlobType;
use arca_format::Id;
use arca_storage::FileType;
use clap::Args;

use super::out;

#[derive(Args)]
pub struct CatArgs {
    /// config|masterkey|index|snapshot|key|lock|pack|blob|tree
    object: String,
    /// ID (or snapshot[:path] for tree)
    id: Option<String>,
}

pub(super) async fn run(a: CatArgs, g: &GlobalOptions) -> Result<i32> {
    let repo = g.open().await?;
    let need_id = || a.id.clone().ok_or_else(|| anyhow!("ID not specified"));
    let full_id = |s: &str| {
        s.parse::<Id>()
            .map_err(|_| anyhow!("unable to parse ID {s:?}: want a full 64-character ID"))
    };
    match a.object.as_str() {
        "config" => out(&indent_json(repo.config()))?,
        "masterkey" => {
            let v: serde_json::Value = serde_json::from_slice(&arca_format::keyfile::master_key_json(repo.key()))?;
            let mut s = serde_json::to_vec_pretty(&MasterKeyOut::from(v))?;
            s.push(b'\n');
            out(&s)?
        }
        "key" => {
            let id = full_id(&need_id()?)?;
            let kf = arca_format::keyfile::KeyFile::parse(&repo.load_file(FileType::Key, &id).await?)?;
            out(&indent_json(&kf))?
        }
        "index" => {
            let id = full_id(&need_id()?)?;
            // restic prints the index as a line: a newline is added only when it lacks one
            // (restic's own index files end with one; 0.14 always added another).
            let mut data = repo.load_unpacked(FileType::Index, &id).await?;
            if data.last() != Some(&b'\n') {
                data.push(b'\n');
            }
            out(&data)?
        }
        "snapshot" => {
            let sn = snapshots::find(&repo, &need_id()?, &SnapshotFilter::default()).await?;
            out(&indent_json(&sn))?
        }
        "lock" => {
            let id = full_id(&need_id()?)?;
            let l = arca_format::lock::Lock::parse(&repo.load_unpacked(FileType::Lock, &id).await?)?;
            out(&indent_json(&l))?
        }
        "pack" => {
            let id = full_id(&need_id()?)?;
            let data = repo.backend().read(FileType::Pack, &id.to_hex()).await?;
            if Id::hash(&data) != id {
                eprintln!("Warning: hash of data does not match ID, want\n  {id}\ngot:\n  {}", Id::hash(&data));
            }
            out(&data)?
        }
        "blob" => {
            let id = full_id(&need_id()?)?;
            let mut repo = repo;
            repo.load_index(&NoProgress).await?;
            for t in [BlobType::Data, BlobType::Tree] {
                if repo.index().has(t, &id) {
                    return out(&repo.read_blob(t, &id).await?).map(|_| 0);
                }
            }
            bail!("blob {id} not found");
        }
        "tree" => {
            let spec = need_id()?;
            let mut repo = repo;
            repo.load_index(&NoProgress).await?;
            let tree_id = match full_id(&spec) {
                Ok(id) if repo.index().has(BlobType::Tree, &id) => id,
                _ => {
                    let (snap, sub) = spec.split_once(':').unwrap_or((&spec, ""));
                    let sn = snapshots::find(&repo, snap, &SnapshotFilter::default()).await?;
                    let (id, node) = walk::resolve(&repo, &sn.tree, sub).await?;
                    if node.is_some() {
                        bail!("path {sub:?} is not a directory");
                    }
                    id
                }
            };
            out(&repo.read_blob(BlobType::Tree, &tree_id).await?)?
        }
        other => bail!("invalid type {other:?}: use config, masterkey, index, snapshot, key, lock, pack, blob or tree"),
    }
    Ok(0)
}

/// The master key pretty-printed in restic's field order (mac.k, mac.r, encrypt).
#[derive(serde::Serialize)]
struct MasterKeyOut {
    mac: MacOut,
    encrypt: String,
}
#[derive(serde::Serialize)]
struct MacOut {
    k: String,
    r: String,
}
impl From<serde_json::Value> for MasterKeyOut {
    fn from(v: serde_json::Value) -> Self {
        let s = |x: &serde_json::Value| x.as_str().unwrap_or_default().to_string();
        MasterKeyOut {
            mac: MacOut {
                k: s(&v["mac"]["k"]),
                r: s(&v["mac"]["r"]),
            },
            encrypt: s(&v["encrypt"]),
        }
    }
}
