//! Rewriting snapshot trees: `rewrite --exclude` drops matching paths, `repair
//! snapshots` drops missing file content and invalid nodes, fixes file sizes and
//! replaces unreadable directories with empty ones (a snapshot whose root is
//! unreadable is dropped, as restic does). Unchanged subtrees keep their IDs (they
//! are never re-encoded).

use crate::error::{Error, Result};
use crate::filter::Patterns;
use crate::repo::Repository;
use crate::walk::join;
use crate::writer::BlobWriter;
use arca_format::pack::BlobType;
use arca_format::snapshot::Snapshot;
use arca_format::tree::{NodeType, Tree};
use arca_format::Id;
use arca_storage::FileType;
use std::collections::HashMap;
use std::sync::Arc;

pub enum Mode {
    Exclude(Patterns),
    Repair,
}

pub struct TreeRewriter<'a> {
    repo: &'a Repository,
    writer: Arc<BlobWriter>,
    mode: Mode,
    done: HashMap<(Id, Vec<u8>), Id>,
    /// What was changed, one line per item, for the user.
    pub changes: Vec<String>,
}

impl<'a> TreeRewriter<'a> {
    pub fn new(repo: &'a Repository, writer: Arc<BlobWriter>, mode: Mode) -> Self {
        TreeRewriter {
            repo,
            writer,
            mode,
            done: HashMap::new(),
            changes: Vec::new(),
        }
    }

    async fn save(&self, tree: Tree) -> Result<Id> {
        let bytes = tree.encode().map_err(Error::TreeEncoding)?;
        let w = self.writer.clone();
        tokio::task::spawn_blocking(move || w.save(BlobType::Tree, &bytes).map(|(id, _)| id))
            .await
            .map_err(Error::task("writer"))?
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

    /// The rewritten ID of tree `id` found at `path` (`/`-separated, starting at `/`).
    pub async fn rewrite(&mut self, id: Id, path: &[u8]) -> Result<Id> {
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
                    return self.save(Tree::default()).await;
                }
                Mode::Exclude(_) => return Err(e),
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
                    Some(sub) => {
                        let new = Box::pin(self.rewrite(sub, &p)).await?;
                        if new != sub {
                            node.subtree = Some(new);
                            changed = true;
                        }
                    }
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
        let new_id = if changed {
            self.save(Tree::new(nodes)).await?
        } else {
            id
        };
        self.done.insert((id, path.to_vec()), new_id);
        Ok(new_id)
    }
}

/// Save `sn` with a new tree as a new snapshot whose `original` is `sn`, then remove
/// `sn` if `forget_old`; otherwise the new snapshot gets `tag` (restic's `rewrite` or
/// `repaired`) to tell the two apart. Returns the new snapshot's ID.
pub async fn replace_snapshot(
    repo: &Repository,
    sn: &Snapshot,
    tree: Id,
    forget_old: bool,
    tag: &str,
) -> Result<Id> {
    let mut new = sn.clone();
    new.tree = tree;
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
