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
}

/// A directory the walk is inside.
struct OpenDir {
    item: Item,
    /// Whether it is restored: it is selected, or holds something selected found so far.
    /// restic restores every directory that holds something it restored, selected or not.
    entered: bool,
}

pub(super) struct Planner<'a> {
    walker: Walker<'a>,
    opts: &'a RestoreOptions,
    open: Vec<OpenDir>,
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
                break;
            };
            match step {
                Step::Leave => {
                    let dir = self.open.pop().expect("each directory left was entered");
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
