//! `--dry-run`: the plan is walked and counted as a restore would count it (what would be
//! restored, skipped by the overwrite mode, and deleted), and nothing in the target is
//! created, changed or removed. A target that does not exist is taken as empty.

use super::batch::{keep_existing_other, skip_existing};
use super::delete::delete_unexpected;
use super::plan::Batch;
use super::target::Target;
use super::{rel_path, RestoreOptions, RestoreReport};
use crate::progress::{ItemAction, Progress};
use arca_format::tree::NodeType;
use std::collections::HashSet;

pub(super) struct DryRun<'a> {
    target: Option<Target>,
    opts: &'a RestoreOptions,
    /// Hard-linked inodes seen: further names are counted without their size again.
    inodes: HashSet<(u64, u64)>,
}

impl<'a> DryRun<'a> {
    pub fn new(target: Option<Target>, opts: &'a RestoreOptions) -> DryRun<'a> {
        DryRun {
            target,
            opts,
            inodes: HashSet::new(),
        }
    }

    pub fn count(&mut self, batch: Batch, report: &mut RestoreReport, progress: &dyn Progress) {
        let opts = self.opts;
        report.implicit_dirs += batch.implicit_dirs;
        for it in &batch.items {
            let n = &it.node;
            let path = rel_path(&it.rel);
            match n.node_type {
                NodeType::Dir => {}
                NodeType::File => {
                    let further_link =
                        n.links > 1 && n.inode != 0 && !self.inodes.insert((n.device_id, n.inode));
                    let keep = self
                        .target
                        .as_ref()
                        .is_some_and(|t| skip_existing(t, &path, n, opts.overwrite));
                    if keep {
                        report.skipped += 1;
                        report.skipped_bytes = report.skipped_bytes.saturating_add(n.size);
                        progress.item(ItemAction::Unchanged, &it.rel, Some(n.size));
                    } else {
                        report.files += 1;
                        let size = if further_link { 0 } else { n.size };
                        report.bytes = report.bytes.saturating_add(size);
                        let replaces_a_file = self.target.as_ref().is_some_and(|t| {
                            matches!(t.lstat(&path), Ok(Some(st)) if st.st_mode & libc::S_IFMT == libc::S_IFREG)
                        });
                        let action = if replaces_a_file && !further_link {
                            ItemAction::Updated
                        } else {
                            ItemAction::Restored
                        };
                        progress.item(action, &it.rel, Some(size));
                    }
                }
                _ => {
                    let keep = self
                        .target
                        .as_ref()
                        .is_some_and(|t| keep_existing_other(t, &path, n, opts.overwrite));
                    let device = matches!(n.node_type, NodeType::Dev | NodeType::Chardev);
                    if keep {
                        report.skipped += 1;
                        progress.item(ItemAction::Unchanged, &it.rel, Some(n.size));
                    } else if !device || (opts.privileged_files && crate::sys::is_root()) {
                        report.others += 1;
                        progress.item(ItemAction::Restored, &it.rel, None);
                    }
                }
            }
        }
        if let Some(target) = &self.target {
            for c in &batch.cleanups {
                report.deleted +=
                    delete_unexpected(target, c, opts, true, &mut report.errors, progress);
            }
        }
        for it in &batch.finished {
            report.dirs += 1;
            progress.item(ItemAction::Restored, &it.rel, None);
        }
    }
}
