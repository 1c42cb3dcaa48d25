//! What to restore, found by walking the snapshot's trees and handed out in batches.
//!
//! A batch holds about [`RestoreOptions::batch_bytes`] of plan, so restore's memory is bounded by
//! the work in flight and not by how many paths the trees describe: a tree reached by many
//! paths (a DAG, 2^40 paths in 40 levels of a tiny repository) is restored batch by batch
//! instead of being planned whole before anything is written.

use super::{check_name, shortened, Problems, RestoreOptions, MAX_PATH};
use crate::error::Result;
use crate::repo::Repository;
use crate::walk::{Step, Walker};
use arca_format::tree::{Node, NodeType};
use arca_format::Id;

/// One thing to restore.
pub(super) struct Item {
    /// Path relative to the snapshot root, `/`-separated, starting with `/`.
    pub rel: Vec<u8>,
    pub node: Node,
}

/// Part of the restore, to be done before the next part is planned.
#[derive(Default)]
pub(super) struct Batch {
    /// In walk order: every directory before what it holds.
    pub items: Vec<Item>,
    /// Directories whose contents are all in this batch or earlier ones, each after what it
    /// holds: their metadata is set once the batch's items are done.
    pub finished: Vec<Item>,
    /// With `--delete`: restored directories and the names their trees hold; whatever else
    /// is in them in the target (and selected by the filters) is removed, after the
    /// batch's items and before the directories' metadata.
    pub cleanups: Vec<Cleanup>,
    /// Directories finished in this batch that were restored only because they hold
    /// something selected (restic leaves them out of its total).
    pub implicit_dirs: u64,
}

/// A restored directory (`/` is the target itself) and every name its tree holds, those the
/// filters leave out included: restic keeps them too.
pub(super) struct Cleanup {
    pub rel: Vec<u8>,
    pub expected: std::collections::HashSet<Vec<u8>>,
}

/// A directory the walk is inside.
struct OpenDir {
    item: Item,
    /// Whether it is restored: it is selected, or holds something selected found so far.
    /// restic restores every directory that holds something it restored, selected or not.
    entered: bool,
    /// Whether the filters select it itself.
    selected: bool,
}

pub(super) struct Planner<'a> {
    walker: Walker<'a>,
    opts: &'a RestoreOptions,
    open: Vec<OpenDir>,
    /// Whether anything at all is restored: only then is the target itself cleaned up.
    restores_any: bool,
    /// Set once a name that cannot be restored is met: nothing is deleted after that.
    refuse_delete: bool,
    done: bool,
}

impl<'a> Planner<'a> {
    pub async fn start(
        repo: &'a Repository,
        root: &Id,
        opts: &'a RestoreOptions,
    ) -> Result<Planner<'a>> {
        Ok(Planner {
            walker: Walker::start(repo, root, b"/").await?,
            opts,
            open: Vec::new(),
            restores_any: false,
            refuse_delete: false,
            done: false,
        })
    }

    /// The next batch; `None` once everything has been handed out. Items refused (names
    /// that would leave their folder, paths too long to create) are added to `errors`.
    pub async fn next_batch(&mut self, errors: &mut Problems) -> Result<Option<Batch>> {
        if self.done {
            return Ok(None);
        }
        let mut batch = Batch::default();
        let mut weight = 0usize;
        while weight < self.opts.batch_bytes.max(1) {
            let Some(step) = self.walker.next().await? else {
                self.done = true;
                if self.opts.delete && self.restores_any && !self.refuse_delete {
                    batch.cleanups.push(self.cleanup(b"/"));
                }
                break;
            };
            match step {
                Step::Leave => {
                    let dir = self.open.pop().expect("each directory left was entered");
                    if dir.entered && self.opts.delete && !self.refuse_delete {
                        let cleanup = self.cleanup(&dir.item.rel);
                        weight += cleanup.expected.iter().map(|n| n.len() + 32).sum::<usize>();
                        batch.cleanups.push(cleanup);
                    }
                    if dir.entered && !dir.selected {
                        batch.implicit_dirs += 1;
                    }
                    if dir.entered {
                        weight += weight_of(&dir.item);
                        batch.finished.push(dir.item);
                    }
                }
                Step::Node => weight += self.visit(&mut batch, errors),
            }
        }
        Ok(Some(batch))
    }

    /// The directories the walk is inside that are restored, as relative paths: ones that
    /// later batches still fill.
    pub fn open_dirs(&self) -> impl Iterator<Item = &[u8]> {
        self.open
            .iter()
            .filter(|d| d.entered)
            .map(|d| d.item.rel.as_slice())
    }

    /// The clean-up of the directory `rel` that the walk has just left.
    fn cleanup(&self, rel: &[u8]) -> Cleanup {
        Cleanup {
            rel: rel.to_vec(),
            expected: self.walker.left_names().map(<[u8]>::to_vec).collect(),
        }
    }

    /// Adds the node just reached to the batch if it is restored; gives the weight added.
    fn visit(&mut self, batch: &mut Batch, errors: &mut Problems) -> usize {
        let (rel, node) = (self.walker.path(), self.walker.node());
        if rel.len() > MAX_PATH {
            errors.push(format!(
                "{}: path longer than {MAX_PATH} bytes, not restored, nor what is below it",
                shortened(rel)
            ));
            self.walker.skip();
            return 0;
        }
        if let Err(e) = check_name(&node.name) {
            // As restic: a tree with a name that cannot be restored turns deleting off.
            self.refuse_delete = true;
            errors.push(format!(
                "{}: {e}, not restored",
                String::from_utf8_lossy(rel)
            ));
            self.walker.skip();
            return 0;
        }
        // A name twice in one tree (restic never writes that) could make a later symlink
        // replace a directory whose contents were restored, and the metadata pass follow it
        // out of the target: the first node wins.
        if self.walker.repeats_a_name() {
            errors.push(format!(
                "{}: duplicate name in tree, not restored",
                String::from_utf8_lossy(rel)
            ));
            self.walker.skip();
            return 0;
        }
        if self.opts.exclude.matches(rel) {
            self.walker.skip();
            return 0;
        }
        let selected = self.opts.include.is_empty() || self.opts.include.matches(rel);
        let descends = node.node_type == NodeType::Dir && node.subtree.is_some();
        let item = || Item {
            rel: rel.to_vec(),
            node: node.clone(),
        };
        let mut weight = 0;
        if selected {
            self.restores_any = true;
            for dir in self.open.iter_mut().filter(|d| !d.entered) {
                dir.entered = true;
                weight += weight_of(&dir.item);
                batch.items.push(Item {
                    rel: dir.item.rel.clone(),
                    node: dir.item.node.clone(),
                });
            }
            let it = item();
            weight += weight_of(&it);
            if descends {
                self.open.push(OpenDir {
                    item: item(),
                    entered: true,
                    selected: true,
                });
            } else if node.node_type == NodeType::Dir {
                // Nothing below it: finished as soon as it is made.
                batch.finished.push(item());
            }
            batch.items.push(it);
        } else if descends {
            // Unselected directories are still searched: something inside may be included.
            self.open.push(OpenDir {
                item: item(),
                entered: false,
                selected: false,
            });
        }
        weight
    }
}

/// Roughly the bytes an item's plan takes: its path, its blob IDs and its attributes.
fn weight_of(it: &Item) -> usize {
    let n = &it.node;
    let content = n.content.as_ref().map_or(0, |c| c.len() * 32);
    let attributes: usize = n
        .extended_attributes
        .iter()
        .map(|x| x.name.len() + x.value.len())
        .sum();
    256 + it.rel.len() + n.name.len() + content + attributes + n.link_target_bytes().len()
}
