//! Walking snapshot trees depth-first in name order, as `ls` and `find` print them.

use crate::error::{Error, Result};
use crate::repo::Repository;
use arca_format::tree::{Node, NodeType, Tree};
use arca_format::Id;

/// Join a directory path (bytes, `/`-separated, starting with `/`) and a name.
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    if !p.ends_with(b"/") {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// What the visitor wants after seeing a node.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    /// Continue, descending into the node if it is a directory.
    Descend,
    /// Continue without descending.
    Skip,
}

/// Visit every node below `root` (whose path is `base`), parents before children.
///
/// One path buffer serves every level (a name is appended on the way down and cut off on
/// the way back), so memory grows with the depth times a tree, not with the depth squared:
/// a chain of 30,000 folders costs its trees, not 30,000 copies of ever longer paths.
pub async fn walk(
    repo: &Repository,
    root: &Id,
    base: &[u8],
    mut visit: impl FnMut(&[u8], &Node) -> Result<Visit>,
) -> Result<()> {
    let mut path = base.to_vec();
    // Per level: its tree, the next node to visit, and the length of the level's own path.
    let mut stack: Vec<(Tree, usize, usize)> = vec![(repo.load_tree(root).await?, 0, path.len())];
    while let Some((tree, pos, dir_len)) = stack.last_mut() {
        let Some(node) = tree.nodes.get(*pos) else {
            stack.pop();
            continue;
        };
        *pos += 1;
        path.truncate(*dir_len);
        if !path.ends_with(b"/") {
            path.push(b'/');
        }
        path.extend_from_slice(&node.name);
        let action = visit(&path, node)?;
        if action == Visit::Descend && node.node_type == NodeType::Dir {
            if let Some(sub) = node.subtree {
                let t = repo.load_tree(&sub).await?;
                stack.push((t, 0, path.len()));
            }
        }
    }
    Ok(())
}

/// Resolve `path` (like `/home/user` or `home/user`) inside a snapshot's tree.
/// Returns the tree ID of the directory, or the node if it is not a directory.
pub async fn resolve(repo: &Repository, root: &Id, path: &str) -> Result<(Id, Option<Node>)> {
    resolve_bytes(repo, root, path.as_bytes()).await
}

/// [`resolve`] for a path of any bytes (names need not be UTF-8).
pub async fn resolve_bytes(
    repo: &Repository,
    root: &Id,
    path: &[u8],
) -> Result<(Id, Option<Node>)> {
    let not_found = || Error::PathNotFound(String::from_utf8_lossy(path).into_owned());
    let mut tree_id = *root;
    let parts: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .collect();
    for (i, part) in parts.iter().enumerate() {
        let tree = repo.load_tree(&tree_id).await?;
        let node = tree
            .nodes
            .into_iter()
            .find(|n| n.name == *part)
            .ok_or_else(not_found)?;
        match (node.node_type == NodeType::Dir, node.subtree) {
            (true, Some(sub)) => tree_id = sub,
            _ if i + 1 == parts.len() => return Ok((tree_id, Some(node))),
            _ => return Err(not_found()),
        }
    }
    Ok((tree_id, None))
}
