//! `arca dump`: one file, or a folder as a tar archive, to standard output.

use anyhow::{bail, Result};
use arca_engine::progress::NoProgress;
use arca_engine::snapshots::{self};
use arca_engine::walk::{self};
use arca_engine::Repository;
use arca_format::pack::BlobType;
use arca_format::tree::{Node, NodeType};
use clap::Args;
use std::io::Write;

use super::FilterArgs;

#[derive(Args)]
pub struct DumpArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// archive format for directories (tar)
    #[arg(short, long, default_value = "tar")]
    archive: String,
    snapshot: String,
    /// file or directory to dump (the field is not `path`: clap ids must differ from --path's;
    /// an OsString: names in a snapshot need not be UTF-8)
    #[arg(value_name = "PATH")]
    file: std::ffi::OsString,
}

pub(super) async fn run(mut repo: Repository, a: DumpArgs) -> Result<i32> {
    if a.archive != "tar" {
        bail!("unsupported archive format {:?}: only tar", a.archive);
    }
    repo.load_index(&NoProgress).await?;
    let sn = snapshots::find(&repo, &a.snapshot, &a.filter.filter()).await?;
    let file = std::os::unix::ffi::OsStrExt::as_bytes(a.file.as_os_str());
    let (tree, node) = walk::resolve_bytes(&repo, &sn.tree, file).await?;
    let mut o = std::io::BufWriter::new(std::io::stdout().lock());
    match node {
        Some(n) if n.node_type == NodeType::File => {
            for id in n.content.iter().flatten() {
                o.write_all(&repo.read_blob(BlobType::Data, id).await?)?;
            }
        }
        Some(n) => bail!("cannot dump {} {:?}", n.node_type, a.file),
        None => {
            let mut tar = tar::Builder::new(&mut o);
            // "/" + the path without slashes at either end ("" for the root).
            let mut prefix = b"/".to_vec();
            prefix.extend(file.iter().skip_while(|&&b| b == b'/'));
            while prefix.last() == Some(&b'/') {
                prefix.pop();
            }
            // Each entry is written as it is reached: memory follows the walk, not the tree.
            let mut walker = walk::Walker::start(&repo, &tree, &prefix).await?;
            while let Some(step) = walker.next().await? {
                if step == walk::Step::Node {
                    let p = walker.path();
                    let name = p.strip_prefix(b"/").unwrap_or(p);
                    tar_entry(&repo, &mut tar, name, walker.node()).await?;
                }
            }
            tar.finish()?;
        }
    }
    o.flush()?;
    Ok(0)
}

async fn tar_entry<W: Write>(
    repo: &Repository,
    tar: &mut tar::Builder<W>,
    name: &[u8],
    n: &Node,
) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    // Names and link targets are raw bytes (restic writes them unchanged, not UTF-8-repaired).
    let path = |b: &[u8]| std::path::PathBuf::from(std::ffi::OsStr::from_bytes(b));
    let mut h = tar::Header::new_gnu();
    h.set_mode(arca_format::tree::unix_mode_from_go(n.mode));
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
        NodeType::File => {
            h.set_entry_type(tar::EntryType::Regular);
            // The size the tree claims is not trusted for memory or for the header: the
            // entry is as long as the content really is.
            let mut data = Vec::new();
            for id in n.content.iter().flatten() {
                data.extend_from_slice(&repo.read_blob(BlobType::Data, id).await?);
            }
            h.set_size(data.len() as u64);
            tar.append_data(&mut h, path(name), &data[..])?;
        }
        NodeType::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            tar.append_data(&mut h, path(&[name, b"/"].concat()), std::io::empty())?;
        }
        NodeType::Symlink => {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            tar.append_link(&mut h, path(name), path(n.link_target_bytes()))?;
        }
        _ => {}
    }
    Ok(())
}
