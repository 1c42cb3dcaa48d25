//! `diff`: what changed between two snapshot trees, with restic's modifiers
//! (`+` added, `-` removed, `M` content changed, `T` type changed, `U` metadata,
//! `?` content changed but metadata identical: probable bit rot).

use crate::error::{Error, Result};
use crate::repo::Repository;
use crate::walk::join;
use arca_format::pack::BlobType;
use arca_format::tree::{Node, NodeType};
use arca_format::Id;
use std::collections::HashSet;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DiffStat {
    pub files: u64,
    pub dirs: u64,
    pub others: u64,
    pub data_blobs: u64,
    pub tree_blobs: u64,
    pub bytes: u64,
}

impl DiffStat {
    fn add(&mut self, n: &Node) {
        match n.node_type {
            NodeType::File => self.files += 1,
            NodeType::Dir => self.dirs += 1,
            _ => self.others += 1,
        }
    }
}

#[derive(Debug, Default)]
pub struct DiffResult {
    pub changed_files: u64,
    pub added: DiffStat,
    pub removed: DiffStat,
}

type BlobSet = HashSet<(BlobType, Id)>;

fn add_blobs(set: &mut BlobSet, n: Option<&Node>) {
    let Some(n) = n else { return };
    match n.node_type {
        NodeType::File => set.extend(n.content.iter().flatten().map(|id| (BlobType::Data, *id))),
        NodeType::Dir => set.extend(n.subtree.map(|id| (BlobType::Tree, id))),
        _ => {}
    }
}

struct Comparer<'a, F: FnMut(&[u8], &str)> {
    repo: &'a Repository,
    metadata: bool,
    report: F,
    before: BlobSet,
    after: BlobSet,
    common: BlobSet,
    res: DiffResult,
}

fn dir_path(prefix: &[u8], n: &Node) -> Vec<u8> {
    let mut p = join(prefix, &n.name);
    if n.node_type == NodeType::Dir {
        p.push(b'/');
    }
    p
}

impl<F: FnMut(&[u8], &str)> Comparer<'_, F> {
    fn subtree(n: &Node) -> Result<Id> {
        n.subtree
            .ok_or_else(|| Error::DirWithoutSubtree(n.name_str_lossy().into_owned()))
    }

    /// Report every node below `id` with `mode`, depth first in pre-order (a directory, then
    /// everything in it, then its next sibling), as restic's printDir does.
    async fn print_dir(&mut self, mode: &str, removed: bool, prefix: &[u8], id: Id) -> Result<()> {
        let nodes = self.repo.load_tree(&id).await?.nodes;
        let mut stack = vec![(prefix.to_vec(), nodes.into_iter())];
        while let Some((prefix, iter)) = stack.last_mut() {
            let Some(n) = iter.next() else {
                stack.pop();
                continue;
            };
            let name = dir_path(prefix, &n);
            (self.report)(&name, mode);
            if removed {
                self.res.removed.add(&n);
                add_blobs(&mut self.before, Some(&n));
            } else {
                self.res.added.add(&n);
                add_blobs(&mut self.after, Some(&n));
            }
            if n.node_type == NodeType::Dir {
                let nodes = self.repo.load_tree(&Self::subtree(&n)?).await?.nodes;
                stack.push((name, nodes.into_iter()));
            }
        }
        Ok(())
    }

    async fn collect_dir(&mut self, id: Id) -> Result<()> {
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            for n in self.repo.load_tree(&id).await?.nodes {
                add_blobs(&mut self.common, Some(&n));
                if n.node_type == NodeType::Dir {
                    stack.push(Self::subtree(&n)?);
                }
            }
        }
        Ok(())
    }

    async fn diff_tree(&mut self, prefix: Vec<u8>, id1: Id, id2: Id) -> Result<()> {
        let t1 = self.repo.load_tree(&id1).await?.nodes;
        let t2 = self.repo.load_tree(&id2).await?.nodes;
        let (mut i, mut j) = (0, 0);
        while i < t1.len() || j < t2.len() {
            let (n1, n2) = match (t1.get(i), t2.get(j)) {
                (Some(a), Some(b)) if a.name == b.name => {
                    i += 1;
                    j += 1;
                    (Some(a), Some(b))
                }
                (Some(a), Some(b)) if a.name < b.name => {
                    i += 1;
                    (Some(a), None)
                }
                (Some(_), Some(b)) => {
                    j += 1;
                    (None, Some(b))
                }
                (Some(a), None) => {
                    i += 1;
                    (Some(a), None)
                }
                (None, b) => {
                    j += 1;
                    (None, b)
                }
            };
            add_blobs(&mut self.before, n1);
            add_blobs(&mut self.after, n2);
            match (n1, n2) {
                (Some(a), Some(b)) => {
                    let mut name = join(&prefix, &b.name);
                    let mut m = String::new();
                    if a.node_type != b.node_type {
                        m.push('T');
                    }
                    if b.node_type == NodeType::Dir {
                        name.push(b'/');
                    }
                    if a.node_type == NodeType::File
                        && b.node_type == NodeType::File
                        && a.content != b.content
                    {
                        m.push('M');
                        self.res.changed_files += 1;
                        let (mut x, mut y) = (a.clone(), b.clone());
                        x.content = None;
                        y.content = None;
                        if x == y {
                            m.push('?');
                        }
                    } else if self.metadata && a != b {
                        m.push('U');
                    }
                    if !m.is_empty() {
                        (self.report)(&name, &m);
                    }
                    if a.node_type == NodeType::Dir && b.node_type == NodeType::Dir {
                        let (s1, s2) = (Self::subtree(a)?, Self::subtree(b)?);
                        if s1 == s2 {
                            self.collect_dir(s1).await?;
                        } else {
                            Box::pin(self.diff_tree(name, s1, s2)).await?;
                        }
                    }
                    // A directory replaced by another type: restic 0.14 counts only its tree
                    // blob, not the blobs below it.
                }
                (Some(a), None) => {
                    let name = dir_path(&prefix, a);
                    (self.report)(&name, "-");
                    self.res.removed.add(a);
                    if a.node_type == NodeType::Dir {
                        self.print_dir("-", true, &name, Self::subtree(a)?).await?;
                    }
                }
                (None, Some(b)) => {
                    let name = dir_path(&prefix, b);
                    (self.report)(&name, "+");
                    self.res.added.add(b);
                    if b.node_type == NodeType::Dir {
                        self.print_dir("+", false, &name, Self::subtree(b)?).await?;
                    }
                }
                (None, None) => unreachable!("one side always has a node"),
            }
        }
        Ok(())
    }
}

/// Compare two trees; `report(path, modifier)` is called for every change in order.
pub async fn diff(
    repo: &Repository,
    tree1: Id,
    tree2: Id,
    metadata: bool,
    report: impl FnMut(&[u8], &str),
) -> Result<DiffResult> {
    let mut c = Comparer {
        repo,
        metadata,
        report,
        before: BlobSet::new(),
        after: BlobSet::new(),
        common: BlobSet::new(),
        res: DiffResult::default(),
    };
    c.before.insert((BlobType::Tree, tree1));
    c.after.insert((BlobType::Tree, tree2));
    c.diff_tree(b"/".to_vec(), tree1, tree2).await?;
    let both: BlobSet = c.before.intersection(&c.after).copied().collect();
    let index = repo.index();
    let count = |set: &BlobSet, stat: &mut DiffStat| {
        for (t, id) in set
            .iter()
            .filter(|h| !both.contains(h) && !c.common.contains(h))
        {
            match t {
                BlobType::Data => stat.data_blobs += 1,
                BlobType::Tree => stat.tree_blobs += 1,
            }
            if let Some(e) = index.lookup(*t, id) {
                stat.bytes += e.to_packed(*t, *id).data_length() as u64;
            }
        }
    };
    let mut res = std::mem::take(&mut c.res);
    count(&c.before, &mut res.removed);
    count(&c.after, &mut res.added);
    Ok(res)
}
