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
pub async fn walk(
    repo: &Repository,
    root: &Id,
    base: &[u8],
    mut visit: impl FnMut(&[u8], &Node) -> Result<Visit>,
) -> Result<()> {
    let mut walker = Walker::start(repo, root, base).await?;
    while let Some(step) = walker.next().await? {
        if step == Step::Node && visit(walker.path(), walker.node())? == Visit::Skip {
            walker.skip();
        }
    }
    Ok(())
}

/// What [`Walker::next`] reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A node: [`Walker::path`] and [`Walker::node`] give it. A directory is descended into
    /// on the next step unless [`Walker::skip`] is called first.
    Node,
    /// The end of a directory descended into (never of the root): [`Walker::path`] is the
    /// directory's path, and everything below it has been reached.
    Leave,
}

/// One level of the walk: a tree, the next node in it, and the length of its own path.
struct Level {
    /// The ID of `tree`.
    id: Id,
    tree: Tree,
    next: usize,
    dir_len: usize,
    /// Per node, whether its name came earlier in the same tree; empty when no name repeats
    /// (always for trees restic writes, which are sorted).
    repeated: Vec<bool>,
}

/// A depth-first walk in tree order that the caller drives step by step, so it can do
/// asynchronous work between nodes (restore writes a batch of what it has seen, then
/// walks on).
///
/// One path buffer serves every level (a name is appended on the way down and cut off on
/// the way back), so memory grows with the depth times a tree, not with the number of paths
/// or the depth squared: a chain of 30,000 folders costs its trees, and a tree reached by
/// many paths (a DAG) is held once per level it is open at.
pub struct Walker<'r> {
    repo: &'r Repository,
    path: Vec<u8>,
    stack: Vec<Level>,
    /// The subtree of the directory node just returned, entered on the next step.
    descend: Option<Id>,
    /// The tree of the directory the last [`Step::Leave`] (or the end of the walk) left.
    left: Option<Tree>,
}

impl<'r> Walker<'r> {
    /// A walk of the tree `root`, whose own path is `base`.
    pub async fn start(repo: &'r Repository, root: &Id, base: &[u8]) -> Result<Walker<'r>> {
        let path = base.to_vec();
        let level = Level::new(*root, repo.load_tree(root).await?, path.len());
        Ok(Walker {
            repo,
            path,
            stack: vec![level],
            descend: None,
            left: None,
        })
    }

    /// The next node or directory end; `None` when the walk is over.
    pub async fn next(&mut self) -> Result<Option<Step>> {
        if let Some(sub) = self.descend.take() {
            let tree = self.repo.load_tree(&sub).await?;
            self.stack.push(Level::new(sub, tree, self.path.len()));
        }
        let Some(level) = self.stack.last_mut() else {
            return Ok(None);
        };
        let Some(node) = level.tree.nodes.get(level.next) else {
            let dir_len = level.dir_len;
            self.left = self.stack.pop().map(|l| l.tree);
            if self.stack.is_empty() {
                return Ok(None);
            }
            self.path.truncate(dir_len);
            return Ok(Some(Step::Leave));
        };
        level.next += 1;
        self.path.truncate(level.dir_len);
        if !self.path.ends_with(b"/") {
            self.path.push(b'/');
        }
        self.path.extend_from_slice(&node.name);
        if node.node_type == NodeType::Dir {
            self.descend = node.subtree;
        }
        Ok(Some(Step::Node))
    }

    /// The path of the node or directory the last step reached.
    pub fn path(&self) -> &[u8] {
        &self.path
    }

    /// The node the last [`Step::Node`] reached.
    pub fn node(&self) -> &Node {
        let level = self.stack.last().expect("a node was reached");
        &level.tree.nodes[level.next - 1]
    }

    /// The names in the directory the last [`Step::Leave`] left, or in the root once the
    /// walk is over.
    pub fn left_names(&self) -> impl Iterator<Item = &[u8]> {
        self.left
            .iter()
            .flat_map(|t| t.nodes.iter().map(|n| n.name.as_slice()))
    }

    /// The ID of the tree that holds the node the last [`Step::Node`] reached.
    pub fn tree_id(&self) -> Id {
        self.stack.last().expect("a node was reached").id
    }

    /// Whether the node's name came earlier in its tree (restic never writes that).
    pub fn repeats_a_name(&self) -> bool {
        let level = self.stack.last().expect("a node was reached");
        level.repeated.get(level.next - 1).copied().unwrap_or(false)
    }

    /// Do not descend into the directory node just reached.
    pub fn skip(&mut self) {
        self.descend = None;
    }
}

impl Level {
    fn new(id: Id, tree: Tree, dir_len: usize) -> Level {
        let sorted = tree.nodes.windows(2).all(|w| w[0].name < w[1].name);
        let repeated = if sorted {
            Vec::new()
        } else {
            let mut seen = std::collections::HashSet::new();
            tree.nodes
                .iter()
                .map(|n| !seen.insert(n.name.as_slice()))
                .collect()
        };
        Level {
            id,
            tree,
            next: 0,
            dir_len,
            repeated,
        }
    }
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
