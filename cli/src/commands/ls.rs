//! `arca ls`: listing the files of a snapshot.

use crate::global::GlobalOptions;
use crate::output::{mode_string, JsonObject};
use anyhow::{bail, Result};
use arca_engine::progress::NoProgress;
use arca_engine::snapshots;
use arca_engine::walk::{self, Step, Visit, Walker};
use arca_engine::Repository;
use arca_format::tree::{Node, NodeType};
use clap::Args;
use std::io::Write;

use super::ls_ncdu::NcduPrinter;
use super::FilterArgs;
use crate::output::{go_time_string, local_time, snapshot_json};

#[derive(Args)]
pub struct LsArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// use a long listing format showing size and mode
    #[arg(short, long)]
    long: bool,
    /// include files in subfolders of the listed directories
    #[arg(long)]
    recursive: bool,
    /// sort output by (name|size|time=mtime|atime|ctime|extension)
    #[arg(short, long, default_value = "name", value_parser = SortMode::parse)]
    sort: SortMode,
    /// reverse sorted output
    #[arg(long)]
    reverse: bool,
    /// print the output in the ncdu export format (pipe into 'ncdu -f -')
    #[arg(long)]
    ncdu: bool,
    /// snapshot ID or "latest"
    snapshot: String,
    /// only list these directories
    dirs: Vec<String>,
}

/// restic's `ls --sort` keys; every sort falls back to the path, and `name` keeps the order
/// of the walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortMode {
    Name,
    Size,
    Atime,
    Ctime,
    Mtime,
    Extension,
}

impl SortMode {
    fn parse(s: &str) -> std::result::Result<SortMode, String> {
        Ok(match s {
            "name" => SortMode::Name,
            "size" => SortMode::Size,
            "atime" => SortMode::Atime,
            "ctime" => SortMode::Ctime,
            "mtime" | "time" => SortMode::Mtime,
            "extension" => SortMode::Extension,
            _ => {
                return Err(format!(
                    "invalid sort mode {s:?}, must be one of (name|size|time=mtime|atime|ctime|extension)"
                ))
            }
        })
    }

    /// Sort `items` as restic does: by the key, then by path; reversed after that.
    fn apply(self, items: &mut [(Vec<u8>, Node)], reverse: bool) {
        let by_path = |a: &(Vec<u8>, Node), b: &(Vec<u8>, Node)| a.0.cmp(&b.0);
        match self {
            SortMode::Name => {}
            SortMode::Size => items.sort_by(|a, b| a.1.size.cmp(&b.1.size).then(by_path(a, b))),
            SortMode::Atime => items.sort_by(|a, b| a.1.atime.cmp(&b.1.atime).then(by_path(a, b))),
            SortMode::Ctime => items.sort_by(|a, b| a.1.ctime.cmp(&b.1.ctime).then(by_path(a, b))),
            SortMode::Mtime => items.sort_by(|a, b| a.1.mtime.cmp(&b.1.mtime).then(by_path(a, b))),
            SortMode::Extension => {
                items.sort_by(|a, b| extension(&a.0).cmp(extension(&b.0)).then(by_path(a, b)))
            }
        }
        if reverse {
            items.reverse();
        }
    }
}

/// Go's `filepath.Ext`: from the last dot of the last element, or nothing.
fn extension(path: &[u8]) -> &[u8] {
    for (i, &c) in path.iter().enumerate().rev() {
        match c {
            b'/' => return b"",
            b'.' => return &path[i..],
            _ => {}
        }
    }
    b""
}

fn ls_node_json(path: &[u8], n: &Node) -> Vec<u8> {
    let mut o = JsonObject::new()
        .str("name", &n.name)
        .str("type", n.node_type.as_str().as_bytes())
        .str("path", path)
        .num("uid", n.uid)
        .num("gid", n.gid);
    if n.node_type == NodeType::File {
        o = o.num("size", n.size);
    }
    if n.mode != 0 {
        o = o.num("mode", n.mode);
    }
    o = o
        .str("permissions", mode_string(n.mode).as_bytes())
        .str("mtime", n.mtime.format().as_bytes())
        .str("atime", n.atime.format().as_bytes())
        .str("ctime", n.ctime.format().as_bytes());
    if n.inode != 0 {
        o = o.num("inode", n.inode);
    }
    o.str("message_type", b"node")
        .str("struct_type", b"node")
        .finish()
}

/// Go mode bits for a node's type, as restic's long listing adds them.
fn type_bits(t: &NodeType) -> u32 {
    use arca_format::tree::*;
    match t {
        NodeType::Dir => MODE_DIR,
        NodeType::Symlink => MODE_SYMLINK,
        NodeType::Dev => MODE_DEVICE,
        NodeType::Chardev => MODE_DEVICE | MODE_CHAR_DEVICE,
        NodeType::Fifo => MODE_NAMED_PIPE,
        NodeType::Socket => MODE_SOCKET,
        _ => 0,
    }
}

/// One `ls -l` line without the newline. Names and link targets are printed as their raw
/// bytes, as Go's `%s` does (no replacement of invalid UTF-8).
pub(super) fn ls_long(path: &[u8], n: &Node) -> Vec<u8> {
    let mut line = format!(
        "{} {:5} {:5} {:6} {} ",
        mode_string(type_bits(&n.node_type) | n.mode),
        n.uid,
        n.gid,
        n.size,
        local_time(&n.mtime),
    )
    .into_bytes();
    line.extend_from_slice(path);
    if n.node_type == NodeType::Symlink {
        line.extend_from_slice(b" -> ");
        line.extend_from_slice(n.link_target_bytes());
    }
    line
}

pub(super) async fn run(mut repo: Repository, a: LsArgs, g: GlobalOptions) -> Result<i32> {
    if a.ncdu && g.json {
        bail!("only either '--json' or '--ncdu' can be specified");
    }
    if a.ncdu && a.sort != SortMode::Name {
        bail!("--sort and --ncdu are mutually exclusive");
    }
    if a.ncdu && a.reverse {
        bail!("--reverse and --ncdu are mutually exclusive");
    }
    repo.load_index(&NoProgress).await?;
    let sn = snapshots::find(&repo, &a.snapshot, &a.filter.filter()).await?;
    let dirs: Vec<Vec<u8>> = a
        .dirs
        .iter()
        .map(|d| {
            let t = d.trim_end_matches('/');
            if t.starts_with('/') {
                t.as_bytes().to_vec()
            } else {
                [b"/", t.as_bytes()].concat()
            }
        })
        .collect();
    let has_prefix = |base: &[u8], p: &[u8]| {
        p == base || base == b"/" || (p.starts_with(base) && p.get(base.len()) == Some(&b'/'))
    };
    let within = |p: &[u8]| dirs.is_empty() || dirs.iter().any(|d| has_prefix(d, p));
    let approaching = |p: &[u8]| dirs.is_empty() || dirs.iter().any(|d| has_prefix(p, d));
    let mut o = std::io::BufWriter::new(std::io::stdout().lock());
    if a.ncdu {
        let mut ncdu = NcduPrinter::start(&mut o, &sn)?;
        let mut walker = Walker::start(&repo, &sn.tree, b"/").await?;
        while let Some(step) = walker.next().await? {
            if step == Step::Leave {
                ncdu.leave()?;
                continue;
            }
            let (path, node) = (walker.path(), walker.node());
            // As restic: a node inside a listed dir, or on the way to one, is written; a
            // directory the walk does not enter is closed at once.
            let inside = within(path);
            if (inside && a.recursive) || approaching(path) {
                ncdu.node(node)?;
                if node.node_type == NodeType::Dir && node.subtree.is_none() {
                    // Nothing to walk into, so no end of it either.
                    ncdu.leave()?;
                }
            } else if node.node_type == NodeType::Dir {
                if inside {
                    ncdu.node(node)?;
                    ncdu.leave()?;
                }
                walker.skip();
            } else if inside {
                ncdu.node(node)?;
            }
        }
        ncdu.finish()?;
        o.flush()?;
        return Ok(0);
    }
    if g.json {
        o.write_all(&snapshot_json(
            &sn,
            &[("message_type", "snapshot"), ("struct_type", "snapshot")],
        ))?;
        o.write_all(b"\n")?;
    } else if !g.quiet {
        // restic's "%v filtered by %v:" of the snapshot and the listed dirs.
        writeln!(
            o,
            "snapshot {} of [{}] at {} by {}@{} filtered by [{}]:",
            sn.id.short(),
            sn.paths.join(" "),
            go_time_string(&sn.time),
            sn.username,
            sn.hostname,
            a.dirs.join(" "),
        )?;
    }
    // restic's ls: print what is within a listed dir (the dir itself and its entries); descend
    // only towards a listed dir or into the listed dir itself, or everywhere with --recursive.
    let print = |o: &mut dyn Write, path: &[u8], node: &Node| -> std::io::Result<()> {
        if g.json {
            o.write_all(&ls_node_json(path, node))?;
        } else if a.long {
            o.write_all(&ls_long(path, node))?;
        } else {
            o.write_all(path)?;
        }
        o.write_all(b"\n")
    };
    // Sorted or reversed output is collected first, as restic does; the walk's own order is
    // printed as it goes.
    let sorted = a.sort != SortMode::Name || a.reverse;
    let mut collected: Vec<(Vec<u8>, Node)> = Vec::new();
    let mut err = None;
    walk::walk(&repo, &sn.tree, b"/", |path, node| {
        let inside = within(path);
        if inside && sorted {
            collected.push((path.to_vec(), node.clone()));
        } else if inside {
            if let Err(e) = print(&mut o, path, node) {
                err = Some(e);
            }
        }
        Ok(if (inside && a.recursive) || approaching(path) {
            Visit::Descend
        } else {
            Visit::Skip
        })
    })
    .await?;
    if let Some(e) = err {
        return Err(e.into());
    }
    a.sort.apply(&mut collected, a.reverse);
    for (path, node) in &collected {
        print(&mut o, path, node)?;
    }
    o.flush()?;
    Ok(0)
}
