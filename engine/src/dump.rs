//! `dump`: one file's contents, or a folder as a tar or zip archive, written to any `Write`.
//!
//! Contents are written blob by blob as they are read: memory holds one blob, whatever the
//! size of the file or the number of entries.

mod zip_archive;
pub use zip_archive::write_zip;

use crate::error::{Error, Result};
use crate::repo::Repository;
use crate::walk::{Step, Walker};
use arca_format::pack::BlobType;
use arca_format::tree::{unix_mode_from_go, Node, NodeType};
use arca_format::Id;
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// A tar block: entries and their contents are padded to it.
const BLOCK: u64 = 512;

/// Writes the contents of file `node` to `out`.
pub async fn write_file(repo: &Repository, node: &Node, out: &mut impl Write) -> Result<()> {
    for id in node.content.iter().flatten() {
        out.write_all(&repo.read_blob(BlobType::Data, id).await?)
            .map_err(Error::Output)?;
    }
    Ok(())
}

/// Writes the tree `tree` as a tar archive, as restic's `dump` does: entries named by their
/// path below the tree (`prefix` is the tree's own path, `/` for a snapshot's root), folders
/// with a trailing `/`, symbolic links as links, other special files left out.
pub async fn write_tar(repo: &Repository, tree: &Id, prefix: &[u8], out: impl Write) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    let mut walker = Walker::start(repo, tree, prefix).await?;
    while let Some(step) = walker.next().await? {
        if step == Step::Node {
            let p = walker.path();
            let name = p.strip_prefix(b"/").unwrap_or(p);
            entry(repo, &mut tar, name, walker.node()).await?;
        }
    }
    tar.finish().map_err(Error::Output)
}

/// Names and link targets are raw bytes: restic writes them unchanged, not UTF-8-repaired.
fn path(b: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(b))
}

async fn entry<W: Write>(
    repo: &Repository,
    tar: &mut tar::Builder<W>,
    name: &[u8],
    n: &Node,
) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_mode(unix_mode_from_go(n.mode));
    h.set_uid(n.uid as u64);
    h.set_gid(n.gid as u64);
    let _ = h.set_username(&n.user);
    let _ = h.set_groupname(&n.group);
    // Go's tar.Writer rounds ModTime to the nearest second (halves up).
    let mtime = n.mtime.unix_secs() + i64::from(n.mtime.unix_nanos_part() >= 500_000_000);
    if mtime >= 0 {
        h.set_mtime(mtime as u64);
    } else if let Some(gnu) = h.as_gnu_mut() {
        // Before 1970: GNU base-256, two's complement in the 12-byte field.
        gnu.mtime[..4].copy_from_slice(&[0xff; 4]);
        gnu.mtime[4..].copy_from_slice(&mtime.to_be_bytes());
    }
    match n.node_type {
        NodeType::File => file_entry(repo, tar, h, name, n).await,
        NodeType::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            tar.append_data(&mut h, path(&[name, b"/"].concat()), std::io::empty())
                .map_err(Error::Output)
        }
        NodeType::Symlink => {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            tar.append_link(&mut h, path(name), path(n.link_target_bytes()))
                .map_err(Error::Output)
        }
        _ => Ok(()),
    }
}

/// A file: its header with the size the index gives its blobs (the size the tree claims is
/// not trusted), then the blobs as they are read, each checked against that length, then
/// the padding to a whole block.
async fn file_entry<W: Write>(
    repo: &Repository,
    tar: &mut tar::Builder<W>,
    mut h: tar::Header,
    name: &[u8],
    n: &Node,
) -> Result<()> {
    let index = repo.index();
    let mut lengths = Vec::new();
    for id in n.content.iter().flatten() {
        let e = index
            .lookup(BlobType::Data, id)
            .ok_or(Error::BlobNotFound {
                blob_type: BlobType::Data,
                id: *id,
            })?;
        lengths.push((
            *id,
            e.pack,
            u64::from(e.to_packed(BlobType::Data, *id).data_length()),
        ));
    }
    let size: u64 = lengths.iter().map(|(_, _, len)| len).sum();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    // The header alone (with a long-name entry before it where the name needs one); the
    // contents follow straight into the archive.
    tar.append_data(&mut h, path(name), std::io::empty())
        .map_err(Error::Output)?;
    let out = tar.get_mut();
    for (id, pack, len) in lengths {
        let blob = repo.read_blob(BlobType::Data, &id).await?;
        if blob.len() as u64 != len {
            return Err(Error::Blob {
                blob_type: BlobType::Data,
                id,
                pack: index.pack_id(pack),
                reason: crate::error::BlobError::Size {
                    read: blob.len() as u64,
                    want: len,
                },
            });
        }
        out.write_all(&blob).map_err(Error::Output)?;
    }
    let pad = (BLOCK - size % BLOCK) % BLOCK;
    out.write_all(&[0u8; BLOCK as usize][..pad as usize])
        .map_err(Error::Output)
}
