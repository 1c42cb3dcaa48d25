//! Rewriting snapshot trees: `rewrite --exclude` drops matching paths, `rewrite
//! --include` keeps only matching paths and the folders that lead to them, `repair
//! snapshots` drops missing file content and invalid nodes, fixes file sizes and
//! replaces unreadable directories with empty ones (a snapshot whose root is
//! unreadable is dropped, as restic does). Unchanged subtrees keep their IDs (they
//! are never re-encoded).

use crate::error::{Error, Result};
use crate::filter::Patterns;
use crate::repo::Repository;
use crate::walk::join;
use crate::writer::BlobWriter;
use arca_format::gotime::GoTime;
use arca_format::pack::BlobType;
use arca_format::snapshot::{Snapshot, Summary};
use arca_format::tree::{NodeType, Tree};
use arca_format::Id;
use arca_storage::FileType;
use std::collections::HashMap;
use std::sync::Arc;

pub enum Mode {
    Exclude(Patterns),
    /// Keep what matches (with everything below it) and the folders on the way; a
    /// folder left empty goes, and a snapshot where nothing matches is left as it is.
    Include(Patterns),
    Repair,
}

pub struct TreeRewriter<'a> {
    repo: &'a Repository,
    writer: Arc<BlobWriter>,
    mode: Mode,
    /// Rewritten trees by (tree, path); `None` for a folder `--include` leaves empty.
    done: HashMap<(Id, Vec<u8>), Option<Id>>,
    /// What was changed, one line per item, for the user.
    pub changes: Vec<String>,
    /// The trees this rewriter wrote, by ID: they reach the index only when the writer
    /// flushes, and a summary of the new snapshot reads them before that.
    pub saved: HashMap<Id, Tree>,
}

impl<'a> TreeRewriter<'a> {
    pub fn new(repo: &'a Repository, writer: Arc<BlobWriter>, mode: Mode) -> Self {
        TreeRewriter {
            repo,
            writer,
            mode,
            done: HashMap::new(),
            changes: Vec::new(),
            saved: HashMap::new(),
        }
    }

    async fn save(&mut self, tree: Tree) -> Result<Id> {
        let bytes = tree.encode().map_err(Error::TreeEncoding)?;
        let w = self.writer.clone();
        let id =
            tokio::task::spawn_blocking(move || w.save(BlobType::Tree, &bytes).map(|(id, _)| id))
                .await
                .map_err(Error::task("writer"))??;
        self.saved.insert(id, tree);
        Ok(id)
    }

    /// The rewritten root tree of a snapshot, or `None` when repairing a snapshot whose
    /// root tree cannot be loaded: restic removes such a snapshot rather than keep an
    /// empty one.
    pub async fn rewrite_root(&mut self, id: Id) -> Result<Option<Id>> {
        if matches!(self.mode, Mode::Repair) {
            if let Err(e) = self.repo.load_tree(&id).await {
                self.changes
                    .push(format!("/: root directory not readable ({e})"));
                return Ok(None);
            }
        }
        self.rewrite(id, b"/").await.map(Some)
    }

    /// The rewritten ID of tree `id` found at `path` (`/`-separated, starting at `/`);
    /// `id` itself when `--include` matches nothing in it, as restic keeps such a snapshot.
    pub async fn rewrite(&mut self, id: Id, path: &[u8]) -> Result<Id> {
        Ok(self.rewrite_dir(id, path).await?.unwrap_or(id))
    }

    /// As [`rewrite`](Self::rewrite), with `None` for a folder `--include` leaves empty.
    async fn rewrite_dir(&mut self, id: Id, path: &[u8]) -> Result<Option<Id>> {
        // Exclusion depends on the path, so memoise per (tree, path).
        if let Some(done) = self.done.get(&(id, path.to_vec())) {
            return Ok(*done);
        }
        let tree = match self.repo.load_tree(&id).await {
            Ok(t) => t,
            Err(e) => match self.mode {
                Mode::Repair => {
                    self.changes.push(format!(
                        "{}: unreadable directory ({e}) replaced with an empty one",
                        String::from_utf8_lossy(path)
                    ));
                    return self.save(Tree::default()).await.map(Some);
                }
                Mode::Exclude(_) | Mode::Include(_) => return Err(e),
            },
        };
        let mut changed = false;
        let mut nodes = Vec::with_capacity(tree.nodes.len());
        for mut node in tree.nodes {
            let p = join(path, &node.name);
            match &self.mode {
                Mode::Exclude(patterns) if patterns.matches(&p) => {
                    self.changes
                        .push(format!("excluded {}", String::from_utf8_lossy(&p)));
                    changed = true;
                    continue;
                }
                // Everything below a match matches too: kept whole.
                Mode::Include(patterns) if patterns.matches(&p) => {
                    nodes.push(node);
                    continue;
                }
                Mode::Include(_) if node.node_type != NodeType::Dir => {
                    changed = true;
                    continue;
                }
                // restic's invalid type is the empty string.
                Mode::Repair
                    if matches!(&node.node_type, NodeType::Irregular)
                        || matches!(&node.node_type, NodeType::Other(t) if t.is_empty()) =>
                {
                    self.changes.push(format!(
                        "{}: removed node with invalid type {:?}",
                        String::from_utf8_lossy(&p),
                        node.node_type.as_str()
                    ));
                    changed = true;
                    continue;
                }
                Mode::Repair if node.node_type == NodeType::File => {
                    let index = self.repo.index();
                    let content = node.content.clone().unwrap_or_default();
                    let mut size = 0u64;
                    let kept: Vec<Id> = content
                        .iter()
                        .copied()
                        .filter(|c| match index.lookup(BlobType::Data, c) {
                            Some(e) => {
                                size += e.to_packed(BlobType::Data, *c).data_length() as u64;
                                true
                            }
                            None => false,
                        })
                        .collect();
                    let what = if kept.len() != content.len() {
                        "removed missing content"
                    } else {
                        "fixed incorrect size"
                    };
                    if kept.len() != content.len() || size != node.size {
                        self.changes
                            .push(format!("{}: {what}", String::from_utf8_lossy(&p)));
                        node.content = Some(kept);
                        node.size = size;
                        changed = true;
                    }
                }
                _ => {}
            }
            if node.node_type == NodeType::Dir {
                match node.subtree {
                    Some(sub) => match Box::pin(self.rewrite_dir(sub, &p)).await? {
                        Some(new) if new != sub => {
                            node.subtree = Some(new);
                            changed = true;
                        }
                        Some(_) => {}
                        None => {
                            changed = true;
                            continue;
                        }
                    },
                    None if matches!(self.mode, Mode::Repair) => {
                        node.subtree = Some(self.save(Tree::default()).await?);
                        self.changes.push(format!(
                            "{}: directory without subtree replaced with an empty one",
                            String::from_utf8_lossy(&p)
                        ));
                        changed = true;
                    }
                    None => {}
                }
            }
            nodes.push(node);
        }
        let new_id = if matches!(self.mode, Mode::Include(_)) && nodes.is_empty() {
            None
        } else if changed {
            Some(self.save(Tree::new(nodes)).await?)
        } else {
            Some(id)
        };
        self.done.insert((id, path.to_vec()), new_id);
        Ok(new_id)
    }
}

/// What `rewrite` changes in a snapshot besides its tree (restic 0.18's `--new-host`,
/// `--new-time` and `--snapshot-summary`).
#[derive(Clone, Debug, Default)]
pub struct SnapshotEdit {
    pub hostname: Option<String>,
    pub time: Option<GoTime>,
    /// Give a snapshot without a summary one counting its files and their bytes.
    pub add_summary: bool,
    /// When the tree changes, count the files and bytes of a summary again (restic 0.17 on
    /// does so for `rewrite`: excluded files leave the totals).
    pub recount: bool,
}

impl SnapshotEdit {
    pub fn is_empty(&self) -> bool {
        self.hostname.is_none() && self.time.is_none() && !self.add_summary
    }

    /// Whether [`apply`](Self::apply) wants the totals of `tree` for `sn`.
    pub fn needs_totals(&self, sn: &Snapshot, tree: Id) -> bool {
        match sn.summary {
            None => self.add_summary,
            Some(_) => self.recount && tree != sn.tree,
        }
    }

    /// Whether `sn` with `tree` and these edits differs from `sn`.
    pub fn changes(&self, sn: &Snapshot, tree: Id) -> bool {
        tree != sn.tree
            || self.hostname.as_ref().is_some_and(|h| *h != sn.hostname)
            || self.time.is_some_and(|t| t != sn.time)
            || (self.add_summary && sn.summary.is_none())
    }

    /// `sn` with `tree` and these edits; `totals` (files, bytes of `tree`, from
    /// [`tree_totals`]) are needed only to add a summary.
    pub fn apply(&self, sn: &Snapshot, tree: Id, totals: Option<(u64, u64)>) -> Snapshot {
        let mut new = sn.clone();
        new.tree = tree;
        if let Some(h) = &self.hostname {
            new.hostname = h.clone();
        }
        if let Some(t) = &self.time {
            new.time = *t;
        }
        if let (Some(summary), Some((files, bytes))) = (&mut new.summary, totals) {
            summary.total_files_processed = files;
            summary.total_bytes_processed = bytes;
        } else if let (true, None, Some((files, bytes))) = (self.add_summary, &new.summary, totals)
        {
            // As restic: the counts it can know from the tree, zero times for the rest.
            let zero = GoTime::parse("0001-01-01T00:00:00Z").expect("a valid time");
            new.summary = Some(Summary {
                backup_start: Some(zero),
                backup_end: Some(zero),
                total_files_processed: files,
                total_bytes_processed: bytes,
                ..Summary::default()
            });
        }
        new
    }
}

/// How many files a tree holds (every name counted, hard links too) and their bytes; trees
/// in `unsaved` (written but not yet indexed) are taken from there.
pub async fn tree_totals(
    repo: &Repository,
    root: Id,
    unsaved: &HashMap<Id, Tree>,
) -> Result<(u64, u64)> {
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        let tree = match unsaved.get(&id) {
            Some(t) => t.clone(),
            None => repo.load_tree(&id).await?,
        };
        for node in tree.nodes {
            match node.node_type {
                NodeType::File => {
                    files += 1;
                    bytes += node.size;
                }
                NodeType::Dir => stack.extend(node.subtree),
                _ => {}
            }
        }
    }
    Ok((files, bytes))
}

/// Save `new` (an edit of `sn`) as a new snapshot whose `original` is `sn`, then remove
/// `sn` if `forget_old`; otherwise the new snapshot gets `tag` (restic's `rewrite` or
/// `repaired`) to tell the two apart. Returns the new snapshot's ID.
pub async fn replace_snapshot(
    repo: &Repository,
    sn: &Snapshot,
    new: Snapshot,
    forget_old: bool,
    tag: &str,
) -> Result<Id> {
    let mut new = new;
    // restic points at the snapshot just replaced, not at an earlier original.
    new.original = Some(sn.id);
    if !forget_old && !new.tags.iter().any(|t| t == tag) {
        new.tags.push(tag.to_owned());
    }
    let id = repo
        .save_unpacked(FileType::Snapshot, &new.to_json())
        .await?;
    if forget_old {
        remove_snapshot(repo, &sn.id).await?;
    }
    Ok(id)
}

/// Remove the snapshot file `id`.
pub async fn remove_snapshot(repo: &Repository, id: &Id) -> Result<()> {
    Ok(repo
        .backend()
        .remove(FileType::Snapshot, &id.to_hex())
        .await?)
}
