//! restic's `recover`: a new snapshot holding every directory tree that no snapshot and no
//! other tree refers to, so that data whose snapshot was forgotten by mistake can be
//! restored until a prune removes it. (Not to be confused with `recovery`, the keys that
//! open a location's repositories after the cluster is gone.)

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::repo::Repository;
use crate::writer::{BlobWriter, WriterOptions};
use arca_format::gotime::GoTime;
use arca_format::pack::BlobType;
use arca_format::snapshot::Snapshot;
use arca_format::tree::{Node, NodeType, Tree};
use arca_format::Id;
use arca_storage::FileType;
use futures::StreamExt;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// What the search for unreferenced trees found.
#[derive(Debug, Default)]
pub struct Roots {
    /// How many tree blobs the index holds.
    pub trees: usize,
    /// Trees no snapshot and no loadable tree refers to, in ID order.
    pub roots: Vec<Id>,
    /// Trees that could not be loaded, with why; they count as unreferenced unless
    /// something refers to them, as in restic.
    pub unreadable: Vec<(Id, String)>,
}

/// Every tree of the index that is neither a snapshot's root nor a subtree of a tree
/// that loads. Needs the index loaded; loads each tree once.
pub async fn unreferenced_trees(
    repo: &Repository,
    snapshots: &[Snapshot],
    progress: &dyn Progress,
) -> Result<Roots> {
    let index = repo.index().clone();
    let mut referenced: HashMap<Id, bool> =
        index.iter(BlobType::Tree).map(|e| (e.id, false)).collect();
    let ids: Vec<Id> = referenced.keys().copied().collect();
    progress.set_total(ids.len() as u64);
    let mut unreadable = Vec::new();
    let mut loads = futures::stream::iter(ids.iter().copied())
        .map(|id| async move { (id, repo.load_tree(&id).await) })
        .buffer_unordered(repo.backend().connections().max(1));
    while let Some((id, tree)) = loads.next().await {
        progress.add(1);
        match tree {
            Ok(tree) => {
                for subtree in tree
                    .nodes
                    .iter()
                    .filter(|n| n.node_type == NodeType::Dir)
                    .filter_map(|n| n.subtree)
                {
                    referenced.insert(subtree, true);
                }
            }
            Err(e) => unreadable.push((id, e.to_string())),
        }
    }
    for sn in snapshots {
        referenced.insert(sn.tree, true);
    }
    let roots: BTreeSet<Id> = referenced
        .into_iter()
        .filter(|(_, seen)| !seen)
        .map(|(id, _)| id)
        .collect();
    unreadable.sort();
    Ok(Roots {
        trees: ids.len(),
        roots: roots.into_iter().collect(),
        unreadable,
    })
}

/// The tree that holds each root as a directory named by its short ID (restic's node:
/// mode 0755 without the directory bit, the times now, no owner).
pub fn recovered_tree(roots: &[Id]) -> Tree {
    let now = GoTime::now();
    let short: BTreeSet<String> = roots.iter().map(|id| id.short()).collect();
    // Two roots sharing a short ID would make two nodes of one name: such roots keep
    // their whole ID instead.
    let unique = short.len() == roots.len();
    let mut nodes: Vec<Node> = roots
        .iter()
        .map(|id| {
            let name = if unique { id.short() } else { id.to_hex() };
            let mut node = Node::new(name, NodeType::Dir);
            node.mode = 0o755;
            node.mtime = now;
            node.atime = now;
            node.ctime = now;
            node.subtree = Some(*id);
            node
        })
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Tree::new(nodes)
}

/// Store the tree of `roots` and a snapshot of it (path `/recover`, tag `recovered`, this
/// machine's host name, as restic); returns the new snapshot's ID.
pub async fn save_recovered(
    repo: Arc<Repository>,
    roots: &[Id],
    writer: WriterOptions,
) -> Result<Id> {
    let bytes = recovered_tree(roots)
        .encode()
        .map_err(Error::TreeEncoding)?;
    let w = BlobWriter::new(repo.clone(), writer);
    let tree = tokio::task::spawn_blocking(move || {
        let (id, _) = w.save(BlobType::Tree, &bytes)?;
        // The tree and its index first, then the snapshot that names it.
        w.finish()?;
        Ok::<_, Error>(id)
    })
    .await
    .map_err(Error::task("writer"))??;
    let sn = Snapshot {
        time: GoTime::now(),
        parent: None,
        tree,
        paths: vec!["/recover".to_owned()],
        hostname: crate::sys::hostname(),
        username: crate::sys::username(),
        uid: crate::sys::uid(),
        gid: crate::sys::gid(),
        excludes: Vec::new(),
        tags: vec!["recovered".to_owned()],
        original: None,
        program_version: String::new(),
        summary: None,
        id: Id::default(),
    };
    repo.save_unpacked(FileType::Snapshot, &sn.to_json()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recovered_tree_names_roots_by_short_id_in_order() {
        let a = format!("ff{}", "0".repeat(62)).parse::<Id>().unwrap();
        let b = format!("0a{}", "1".repeat(62)).parse::<Id>().unwrap();
        let t = recovered_tree(&[a, b]);
        let names: Vec<_> = t.nodes.iter().map(|n| n.name_str_lossy()).collect();
        assert_eq!(names, ["0a111111", "ff000000"]);
        assert_eq!(t.nodes[1].subtree, Some(a));
        assert_eq!(t.nodes[0].mode, 0o755);
        assert!(t.check_order().is_ok());
    }

    #[test]
    fn roots_sharing_a_short_id_keep_their_whole_id() {
        let a = format!("12345678{}", "0".repeat(56)).parse::<Id>().unwrap();
        let b = format!("12345678{}", "1".repeat(56)).parse::<Id>().unwrap();
        let t = recovered_tree(&[b, a]);
        assert_eq!(t.nodes[0].name, a.to_hex().into_bytes());
        assert_eq!(t.nodes[1].name, b.to_hex().into_bytes());
    }
}
