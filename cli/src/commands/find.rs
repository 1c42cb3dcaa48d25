//! `arca find`: finding files in snapshots.

use crate::global::GlobalOptions;
use crate::output::{mode_string, JsonObject};
use anyhow::{anyhow, bail, Result};
use arca_engine::filter::Patterns;
use arca_engine::progress::NoProgress;
use arca_engine::walk::{self, Visit};
use arca_engine::Repository;
use arca_format::tree::Node;
use clap::Args;

use super::find_ids::{IdKind, IdSearch};
use super::ls::ls_long;
use super::{out, select_snapshots, FilterArgs};
use crate::output::local_time;

#[derive(Args)]
pub struct FindArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// ignore case for pattern
    #[arg(short, long)]
    ignore_case: bool,
    /// use a long listing format showing size and mode
    #[arg(short, long)]
    long: bool,
    /// snapshot ID to search in (can be given multiple times)
    #[arg(short, long = "snapshot")]
    snapshot: Vec<String>,
    /// pattern is a blob-ID
    #[arg(long)]
    blob: bool,
    /// pattern is a tree-ID
    #[arg(long)]
    tree: bool,
    /// pattern is a pack-ID
    #[arg(long)]
    pack: bool,
    /// display the pack-ID the blobs belong to (with --blob or --tree)
    #[arg(long)]
    show_pack_id: bool,
    /// reverse sort order oldest to newest
    #[arg(short = 'R', long)]
    reverse: bool,
    /// patterns to look for (matched against file names)
    #[arg(required = true)]
    patterns: Vec<String>,
}

pub(super) async fn run(mut repo: Repository, a: FindArgs, g: GlobalOptions) -> Result<i32> {
    let kinds = [
        (a.blob, IdKind::Blob),
        (a.tree, IdKind::Tree),
        (a.pack, IdKind::Pack),
    ];
    let mut kinds = kinds.iter().filter(|(on, _)| *on).map(|(_, k)| *k);
    let kind = kinds.next();
    if kinds.next().is_some() {
        bail!("cannot have several ID types");
    }
    repo.load_index(&NoProgress).await?;
    if let Some(kind) = kind {
        let mut search = IdSearch::new(&repo, kind, &a.patterns, g.json)?;
        let mut list = select_snapshots(&repo, &a.filter, &a.snapshot).await?;
        if !a.reverse {
            list.reverse();
        }
        for sn in &list {
            search.search(&repo, sn).await?;
        }
        search.finish()?;
        if a.show_pack_id {
            search.show_packs(&repo)?;
        }
        return Ok(0);
    }
    // restic's filter.Match on the whole path: a pattern without a leading `/` matches at any
    // depth, and everything below a matching directory matches too.
    let patterns = Patterns::new(&a.patterns, a.ignore_case).map_err(|e| anyhow!(e))?;
    let mut list = select_snapshots(&repo, &a.filter, &a.snapshot).await?;
    if !a.reverse {
        list.reverse();
    }
    let mut json_out: Vec<Vec<u8>> = Vec::new();
    let mut printed_any = false;
    for sn in &list {
        let mut matches: Vec<(Vec<u8>, Node)> = Vec::new();
        walk::walk(&repo, &sn.tree, b"/", |p, n| {
            if patterns.matches(p) {
                matches.push((p.to_vec(), n.clone()));
            }
            Ok(Visit::Descend)
        })
        .await?;
        if matches.is_empty() {
            continue;
        }
        if g.json {
            let items: Vec<Vec<u8>> = matches.iter().map(|(p, n)| find_node_json(p, n)).collect();
            let arr = [b"[".to_vec(), items.join(&b","[..]), b"]".to_vec()].concat();
            json_out.push(
                JsonObject::new()
                    .raw("matches", &arr)
                    .num("hits", matches.len())
                    .str("snapshot", sn.id.to_hex().as_bytes())
                    .finish(),
            );
        } else {
            // restic separates the snapshots' blocks with an empty line (none after the last).
            if printed_any {
                println!();
            }
            printed_any = true;
            println!(
                "Found matching entries in snapshot {} from {}",
                sn.id.short(),
                local_time(&sn.time)
            );
            for (p, n) in &matches {
                if a.long {
                    out(&[ls_long(p, n), b"\n".to_vec()].concat())?;
                } else {
                    out(&[p.as_slice(), b"\n"].concat())?;
                }
            }
        }
    }
    if g.json {
        out(&[b"[".to_vec(), json_out.join(&b","[..]), b"]\n".to_vec()].concat())?;
    }
    Ok(0)
}

fn find_node_json(path: &[u8], n: &Node) -> Vec<u8> {
    let mut o = JsonObject::new()
        .str("path", path)
        .str("permissions", mode_string(n.mode).as_bytes())
        .str("type", n.node_type.as_str().as_bytes());
    if n.mode != 0 {
        o = o.num("mode", n.mode);
    }
    o = o
        .str("mtime", n.mtime.format().as_bytes())
        .str("atime", n.atime.format().as_bytes())
        .str("ctime", n.ctime.format().as_bytes())
        .num("uid", n.uid)
        .num("gid", n.gid);
    if !n.user.is_empty() {
        o = o.str("user", n.user.as_bytes());
    }
    if !n.group.is_empty() {
        o = o.str("group", n.group.as_bytes());
    }
    if n.inode != 0 {
        o = o.num("inode", n.inode);
    }
    if n.device_id != 0 {
        o = o.num("device_id", n.device_id);
    }
    if n.size != 0 {
        o = o.num("size", n.size);
    }
    if n.links != 0 {
        o = o.num("links", n.links);
    }
    if !n.linktarget.is_empty() {
        o = o.str("linktarget", n.linktarget.as_bytes());
    }
    o.finish()
}
