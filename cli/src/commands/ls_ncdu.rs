//! `arca ls --ncdu`: a snapshot's listing in ncdu's JSON export format (version 1.2), as
//! restic 0.15+ writes it, so `ncdu -f` can browse what a snapshot holds.
//!
//! The layout is restic's byte for byte: `[1, 2, <snapshot>, [{"name":"/"}` and then one
//! line per node, each directory opening a nested array closed after what it holds.

use crate::output::{go_escape, JsonObject};
use arca_format::tree::{Node, NodeType, MODE_PERM, MODE_SETGID, MODE_SETUID, MODE_STICKY};
use std::io::{self, Write};

/// ncdu's block size: the disk usage shown is the size rounded up to it.
const BLOCK: u64 = 512;

pub(super) struct NcduPrinter<W: Write> {
    out: W,
    depth: usize,
}

impl<W: Write> NcduPrinter<W> {
    /// Starts the export with the snapshot (restic's JSON of it, as stored).
    pub fn start(mut out: W, snapshot: &arca_format::snapshot::Snapshot) -> io::Result<Self> {
        let sn = go_escape(serde_json::to_vec(snapshot).expect("serialisable"));
        out.write_all(b"[1, 2, ")?;
        out.write_all(&sn)?;
        out.write_all(b", [{\"name\":\"/\"}")?;
        Ok(NcduPrinter { out, depth: 1 })
    }

    /// One node; a directory opens a level that [`NcduPrinter::leave`] closes.
    pub fn node(&mut self, node: &Node) -> io::Result<()> {
        let json = node_json(node);
        if node.node_type == NodeType::Dir {
            write!(
                self.out,
                ",\n{}[\n{}",
                indent(self.depth),
                indent(self.depth + 1)
            )?;
            self.out.write_all(&json)?;
            self.depth += 1;
        } else {
            write!(self.out, ",\n{}", indent(self.depth))?;
            self.out.write_all(&json)?;
        }
        Ok(())
    }

    pub fn leave(&mut self) -> io::Result<()> {
        self.depth = self.depth.saturating_sub(1);
        write!(self.out, "\n{}]", indent(self.depth))
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(b"\n]\n]\n")?;
        Ok(self.out)
    }
}

fn indent(depth: usize) -> String {
    "  ".repeat(depth)
}

/// ncdu's entry for a node: sizes, identity, permission bits and the modification time
/// (never negative: ncdu refuses that).
fn node_json(n: &Node) -> Vec<u8> {
    let mut mode = n.mode & MODE_PERM;
    for (go, unix) in [
        (MODE_SETUID, 0o4000),
        (MODE_SETGID, 0o2000),
        (MODE_STICKY, 0o1000),
    ] {
        if n.mode & go != 0 {
            mode |= unix;
        }
    }
    JsonObject::new()
        .str("name", &n.name)
        .num("asize", n.size)
        .num("dsize", n.size.div_ceil(BLOCK).saturating_mul(BLOCK))
        .num("dev", n.device_id)
        .num("ino", n.inode)
        .num("nlink", n.links)
        .raw(
            "notreg",
            if matches!(n.node_type, NodeType::Dir | NodeType::File) {
                b"false"
            } else {
                b"true"
            },
        )
        .num("uid", n.uid)
        .num("gid", n.gid)
        .num("mode", mode)
        .num("mtime", n.mtime.unix_secs().max(0))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_written_as_restic_writes_it() {
        let mut n = Node::new(b"sticky", NodeType::Dir);
        n.mode = arca_format::tree::MODE_DIR | MODE_STICKY | MODE_SETGID | 0o755;
        n.size = 1000;
        n.links = 2;
        assert_eq!(
            String::from_utf8(node_json(&n)).unwrap(),
            r#"{"name":"sticky","asize":1000,"dsize":1024,"dev":0,"ino":0,"nlink":2,"notreg":false,"uid":0,"gid":0,"mode":2029,"mtime":0}"#
        );
        let link = Node::new(b"l<ink>", NodeType::Symlink);
        let json = String::from_utf8(node_json(&link)).unwrap();
        assert!(json.contains(r#""notreg":true"#), "{json}");
    }
}
