//! `arca find --blob|--tree|--pack IDs [--show-pack-id]`: where objects of the repository
//! are used, as restic reports it. Snapshots are searched newest first; each file whose
//! content holds a wanted blob is reported, and a wanted tree where a directory (or a root)
//! is it, with restic's stop once as many trees were found as are wanted (roots included,
//! which 0.14 did not look at). IDs may be given whole or in their 8-character short form.

use crate::output::{local_time, JsonObject};
use anyhow::{bail, Result};
use arca_engine::walk::{Step, Walker};
use arca_engine::Repository;
use arca_format::pack::BlobType;
use arca_format::snapshot::Snapshot;
use arca_format::tree::NodeType;
use arca_format::Id;
use std::collections::BTreeSet;
use std::io::Write;

/// What kind of ID the patterns are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    Blob,
    Tree,
    Pack,
}

/// The IDs looked for, as given (full or short) until a match names them in full.
pub struct IdSearch {
    blobs: BTreeSet<String>,
    trees: BTreeSet<String>,
    /// Trees found so far, over all snapshots: as restic, a snapshot's walk stops once as
    /// many trees were found as are looked for (when no blobs are).
    found: usize,
    /// Searching by pack, restic 0.19 reports every place (measured: its output has the
    /// trees of a pack in every snapshot), so the stop applies to --tree only.
    stop_early: bool,
    json: bool,
    printed: usize,
}

impl IdSearch {
    /// The search for `ids` of `kind`; for packs, the blobs and trees the index places in
    /// them.
    pub fn new(repo: &Repository, kind: IdKind, ids: &[String], json: bool) -> Result<IdSearch> {
        let mut search = IdSearch {
            blobs: BTreeSet::new(),
            trees: BTreeSet::new(),
            found: 0,
            stop_early: kind == IdKind::Tree,
            json,
            printed: 0,
        };
        match kind {
            IdKind::Blob => search.blobs.extend(ids.iter().cloned()),
            IdKind::Tree => search.trees.extend(ids.iter().cloned()),
            IdKind::Pack => search.add_packs(repo, ids)?,
        }
        Ok(search)
    }

    fn add_packs(&mut self, repo: &Repository, ids: &[String]) -> Result<()> {
        let index = repo.index();
        let wanted: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        for t in [BlobType::Data, BlobType::Tree] {
            for e in index.iter(t) {
                let pack = index.pack_id(e.pack);
                let (full, short) = (pack.to_hex(), pack.short());
                let Some(given) = wanted
                    .get(full.as_str())
                    .or_else(|| wanted.get(short.as_str()))
                else {
                    continue;
                };
                seen.insert(given);
                match t {
                    BlobType::Data => self.blobs.insert(e.id.to_hex()),
                    BlobType::Tree => self.trees.insert(e.id.to_hex()),
                };
            }
        }
        let missing: Vec<&str> = wanted.difference(&seen).copied().collect();
        if !missing.is_empty() {
            bail!("unable to find pack(s): [{}]", missing.join(" "));
        }
        Ok(())
    }

    /// Look through `sn`, printing what is found.
    pub async fn search(&mut self, repo: &Repository, sn: &Snapshot) -> Result<()> {
        if self.tree_at(&sn.tree, b"/", sn)? {
            return Ok(());
        }
        let mut walker = Walker::start(repo, &sn.tree, b"/").await?;
        while let Some(step) = walker.next().await? {
            if step != Step::Node {
                continue;
            }
            let node = walker.node();
            if node.node_type == NodeType::Dir && !self.trees.is_empty() {
                if let Some(sub) = node.subtree {
                    if self.tree_at(&sub, walker.path(), sn)? {
                        return Ok(());
                    }
                }
            }
            if node.node_type == NodeType::File && !self.blobs.is_empty() {
                let parent = walker.tree_id();
                let hits: Vec<Id> = node
                    .content
                    .iter()
                    .flatten()
                    .filter(|id| self.take(BlobType::Data, id))
                    .copied()
                    .collect();
                for id in hits {
                    self.print("blob", &id, walker.path(), Some(&parent), sn)?;
                }
            }
        }
        Ok(())
    }

    /// Report `id` where it is the tree of `path`; whether this snapshot's walk is over.
    fn tree_at(&mut self, id: &Id, path: &[u8], sn: &Snapshot) -> Result<bool> {
        if !self.take(BlobType::Tree, id) {
            return Ok(false);
        }
        self.print("tree", id, path, None, sn)?;
        self.found += 1;
        Ok(self.stop_early && self.found >= self.trees.len() && self.blobs.is_empty())
    }

    /// Whether `id` is looked for; a short form that matches is replaced by the full ID.
    fn take(&mut self, t: BlobType, id: &Id) -> bool {
        let set = match t {
            BlobType::Data => &mut self.blobs,
            BlobType::Tree => &mut self.trees,
        };
        let full = id.to_hex();
        if set.contains(&full) {
            return true;
        }
        if set.remove(&id.short()) {
            set.insert(full);
            return true;
        }
        false
    }

    fn print(
        &mut self,
        kind: &str,
        id: &Id,
        path: &[u8],
        parent: Option<&Id>,
        sn: &Snapshot,
    ) -> Result<()> {
        let mut out = std::io::stdout().lock();
        if self.json {
            let mut o = JsonObject::new()
                .str("object_type", kind.as_bytes())
                .str("id", id.to_hex().as_bytes())
                .str("path", path);
            if let Some(p) = parent {
                o = o.str("parent_tree", p.to_hex().as_bytes());
            }
            let o = o
                .str("snapshot", sn.id.to_hex().as_bytes())
                .str("time", sn.time.format().as_bytes())
                .finish();
            out.write_all(if self.printed == 0 { b"[" } else { b"," })?;
            out.write_all(&o)?;
        } else {
            writeln!(out, "Found {kind} {}", id.to_hex())?;
            match parent {
                Some(p) => {
                    out.write_all(b" ... in file ")?;
                    out.write_all(path)?;
                    writeln!(out, "\n     (tree {})", p.to_hex())?;
                }
                None => {
                    out.write_all(b" ... path ")?;
                    out.write_all(path)?;
                    out.write_all(b"\n")?;
                }
            }
            writeln!(
                out,
                " ... in snapshot {} ({})",
                sn.id.short(),
                local_time(&sn.time)
            )?;
        }
        self.printed += 1;
        Ok(())
    }

    /// End the JSON array.
    pub fn finish(&self) -> Result<()> {
        if self.json {
            let end: &[u8] = if self.printed == 0 { b"[]\n" } else { b"]\n" };
            std::io::stdout().lock().write_all(end)?;
        }
        Ok(())
    }

    /// `--show-pack-id`: the pack of each object looked for, as restic prints it.
    pub fn show_packs(&self, repo: &Repository) -> Result<()> {
        let index = repo.index();
        let mut out = std::io::stdout().lock();
        for (t, set) in [(BlobType::Data, &self.blobs), (BlobType::Tree, &self.trees)] {
            for given in set {
                let Ok(id) = given.parse::<Id>() else {
                    writeln!(
                        out,
                        "Note: cannot find pack for object '{given}', unable to parse ID"
                    )?;
                    continue;
                };
                let Some(e) = index.lookup(t, &id) else {
                    let kind = if t == BlobType::Data { "data" } else { "tree" };
                    writeln!(
                        out,
                        "Object {kind} with type {} not found in the index",
                        id.short()
                    )?;
                    continue;
                };
                let pack = index.pack_id(e.pack);
                let kind = if t == BlobType::Data { "data" } else { "tree" };
                writeln!(out, "Object belongs to pack {}", pack.to_hex())?;
                writeln!(
                    out,
                    " ... Pack {}: <Blob ({kind}) {}, offset {}, length {}, uncompressed length {}>",
                    pack.short(),
                    id.short(),
                    e.offset,
                    e.length,
                    e.uncompressed_length
                )?;
            }
        }
        Ok(())
    }
}
