//! Restoring one batch of the plan: its directories, then file contents, hard links and
//! other items, and metadata last (files and other items, then the directories the batch
//! finished, deepest first, so their times survive the writes inside them).

use super::contents::{create_file, write_contents, PlannedFile};
use super::delete::delete_unexpected;
use super::metadata::set_metadata;
use super::plan::Batch;
use super::target::Target;
use super::{rel_path, Overwrite, RestoreOptions, RestoreReport};
use crate::error::Result;
use crate::progress::{ItemAction, Progress};
use crate::repo::Repository;
use arca_format::tree::{Node, NodeType};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// What restoring one batch needs from the ones before it.
pub(super) struct Restorer<'a> {
    repo: &'a Arc<Repository>,
    target: &'a Arc<Target>,
    opts: &'a RestoreOptions,
    progress: &'a dyn Progress,
    /// Directories known to be directories in the target (made or found by [`ensure_dir`]):
    /// this batch's, and those of earlier batches that the walk is still inside.
    made: HashSet<PathBuf>,
    /// The first path restored of each hard-linked inode; later names link to it.
    first_of_inode: HashMap<(u64, u64), PathBuf>,
}

impl<'a> Restorer<'a> {
    pub fn new(
        repo: &'a Arc<Repository>,
        target: &'a Arc<Target>,
        opts: &'a RestoreOptions,
        progress: &'a dyn Progress,
    ) -> Restorer<'a> {
        Restorer {
            repo,
            target,
            opts,
            progress,
            made: HashSet::new(),
            first_of_inode: HashMap::new(),
        }
    }

    /// Forget the directories checked so far except those still `open` (relative paths
    /// as the plan gives them): the rest are finished, and remembering them all would grow
    /// with the snapshot.
    pub fn keep_open_only<'p>(&mut self, open: impl Iterator<Item = &'p [u8]>) {
        let open: HashSet<PathBuf> = open.map(rel_path).collect();
        self.made.retain(|d| open.contains(d));
    }

    pub async fn restore(&mut self, batch: Batch, report: &mut RestoreReport) -> Result<()> {
        let (target, opts) = (self.target, self.opts);
        let items = batch.items;
        report.implicit_dirs += batch.implicit_dirs;
        // Directories first (created private; final modes come at the end). Remember which
        // exist so the files below do not check their parents again.
        for it in items.iter().filter(|i| i.node.node_type == NodeType::Dir) {
            if let Err(e) = ensure_dir(target, &mut self.made, &rel_path(&it.rel), opts.overwrite) {
                report.errors.push(e);
            }
        }

        // Decide which files to write; link the rest of each hard-link group later.
        let mut wanted: Vec<(usize, PathBuf)> = Vec::new();
        let mut hardlinks: Vec<(PathBuf, PathBuf)> = Vec::new();
        for (i, it) in items.iter().enumerate() {
            if it.node.node_type != NodeType::File {
                continue;
            }
            let path = rel_path(&it.rel);
            if let Some(parent) = path.parent() {
                if let Err(e) = ensure_dir(target, &mut self.made, parent, opts.overwrite) {
                    report.errors.push(e);
                    continue;
                }
            }
            if it.node.links > 1 && it.node.inode != 0 {
                let key = (it.node.device_id, it.node.inode);
                if let Some(first) = self.first_of_inode.get(&key) {
                    hardlinks.push((first.clone(), path));
                    continue;
                }
                self.first_of_inode.insert(key, path.clone());
            }
            wanted.push((i, path));
        }
        // Which existing files to keep is decided up front (on all cores: it touches every
        // file); always overwriting needs no look at all. (Like the loops around it, this
        // blocks the calling task; restore owns its runtime thread.)
        let keep: Vec<bool> = if opts.overwrite == Overwrite::Always {
            vec![false; wanted.len()]
        } else {
            wanted
                .par_iter()
                .map(|(i, path)| skip_existing(target, path, &items[*i].node, opts.overwrite))
                .collect()
        };
        let mut files: Vec<PlannedFile> = Vec::new();
        let mut file_items: Vec<usize> = Vec::new();
        for ((i, path), keep) in wanted.into_iter().zip(keep) {
            if keep {
                let node = &items[i].node;
                report.skipped += 1;
                report.skipped_bytes = report.skipped_bytes.saturating_add(node.size);
                self.progress
                    .item(ItemAction::Unchanged, &items[i].rel, Some(node.size));
                continue;
            }
            files.push(PlannedFile {
                rel: path,
                size: items[i].node.size,
                content: items[i].node.content.clone().unwrap_or_default(),
                created: OnceLock::new(),
                replaced_a_file: AtomicBool::new(false),
            });
            file_items.push(i);
        }
        // Sizes come from the trees, which may claim anything: no wrapping sum.
        let bytes: u64 = files.iter().fold(0u64, |t, f| t.saturating_add(f.size));
        report.bytes = report.bytes.saturating_add(bytes);
        self.progress.set_total(report.bytes);
        // Creating thousands of files is kernel work on the CPU while the contents mostly
        // wait for the disk: the files are created in the background while the contents are
        // written, and a job that needs a file first creates it itself.
        let files = Arc::new(files);
        let allocate = !opts.sparse;
        let creating = {
            let (files, target) = (files.clone(), target.clone());
            tokio::task::spawn_blocking(move || {
                files.par_iter().for_each(|f| {
                    f.created
                        .get_or_init(|| create_file(&target, f, allocate).map(drop));
                })
            })
        };
        let write_errors = write_contents(self.repo, target, &files, opts, self.progress).await;
        creating.await.expect("file creation does not panic");
        report.errors.extend(write_errors?);
        let mut restored_items = Vec::with_capacity(file_items.len());
        for (f, i) in files.iter().zip(file_items) {
            match f.created.get() {
                Some(Err(e)) => report.errors.push(e.clone()),
                _ => {
                    let action = if f.replaced_a_file.load(Ordering::Relaxed) {
                        ItemAction::Updated
                    } else {
                        ItemAction::Restored
                    };
                    self.progress.item(action, &items[i].rel, Some(f.size));
                    restored_items.push(i)
                }
            }
        }
        let file_items = restored_items;
        report.files += file_items.len() as u64;

        for (first, link) in &hardlinks {
            let shown = target.shown(link);
            if opts.overwrite == Overwrite::Never && !matches!(target.lstat(link), Ok(None)) {
                report.skipped += 1;
                continue;
            }
            if let Err(e) = remove_for_replacement(target, link) {
                report
                    .errors
                    .push(format!("{}: cannot replace: {e}", shown.display()));
                continue;
            }
            match target.hard_link(first, link) {
                Ok(()) => {
                    report.files += 1;
                    let rel = link.as_os_str().as_bytes();
                    self.progress
                        .item(ItemAction::Restored, &[b"/", rel].concat(), Some(0));
                }
                Err(e) => report
                    .errors
                    .push(format!("{}: cannot create hard link: {e}", shown.display())),
            }
        }

        // Other node types, then metadata: files and others, then directories bottom-up.
        // Existing items that the overwrite mode keeps are left alone, metadata included.
        let is_other = |t: &NodeType| {
            matches!(
                t,
                NodeType::Symlink | NodeType::Fifo | NodeType::Dev | NodeType::Chardev
            )
        };
        let mut kept: HashSet<&[u8]> = HashSet::new();
        for it in items.iter().filter(|i| is_other(&i.node.node_type)) {
            let p = rel_path(&it.rel);
            if keep_existing_other(target, &p, &it.node, opts.overwrite) {
                kept.insert(&it.rel);
                report.skipped += 1;
                self.progress
                    .item(ItemAction::Unchanged, &it.rel, Some(it.node.size));
                continue;
            }
            let device = matches!(it.node.node_type, NodeType::Dev | NodeType::Chardev);
            if device && !opts.privileged_files {
                kept.insert(&it.rel);
                report.withheld.push(format!(
                    "{}: device node not restored",
                    target.shown(&p).display()
                ));
                continue;
            }
            let res = match it.node.node_type {
                NodeType::Symlink => create_symlink(target, &p, it.node.link_target_bytes()),
                NodeType::Fifo => make_node(target, &p, libc::S_IFIFO, 0),
                NodeType::Dev => make_node(target, &p, libc::S_IFBLK, it.node.device),
                _ => make_node(target, &p, libc::S_IFCHR, it.node.device),
            };
            match res {
                Ok(true) => {
                    report.others += 1;
                    self.progress.item(ItemAction::Restored, &it.rel, None);
                }
                Ok(false) => {
                    kept.insert(&it.rel);
                }
                Err(e) => {
                    // Whatever is there was not made by this restore: its metadata stays.
                    kept.insert(&it.rel);
                    report
                        .errors
                        .push(format!("{}: {e}", target.shown(&p).display()));
                }
            }
        }
        let meta_errors: Vec<String> = file_items
            .par_iter()
            .flat_map_iter(|&i| {
                let mut errs = Vec::new();
                set_metadata(
                    target,
                    &rel_path(&items[i].rel),
                    &items[i].node,
                    opts.privileged_files,
                    &mut errs,
                );
                errs
            })
            .collect();
        report.errors.extend(meta_errors);
        let mut errs = Vec::new();
        for it in items
            .iter()
            .filter(|i| is_other(&i.node.node_type) && !kept.contains(i.rel.as_slice()))
        {
            let p = rel_path(&it.rel);
            set_metadata(target, &p, &it.node, opts.privileged_files, &mut errs);
        }
        // What the snapshot does not have goes before the directories get their times.
        for c in &batch.cleanups {
            report.deleted +=
                delete_unexpected(target, c, opts, false, &mut report.errors, self.progress);
        }
        // Only directories that are directories in the target (made or found by
        // `ensure_dir`); what stood in the way of one was reported then and is not touched.
        for it in &batch.finished {
            let p = rel_path(&it.rel);
            if self.made.contains(&p) {
                set_metadata(target, &p, &it.node, opts.privileged_files, &mut errs);
                report.dirs += 1;
                self.progress.item(ItemAction::Restored, &it.rel, None);
            }
        }
        report.errors.extend(errs);

        if opts.verify {
            let started = std::time::Instant::now();
            report
                .errors
                .extend(super::verify::verify_files(self.repo, target, &files).await);
            report.verify_time += started.elapsed();
            // restic (0.17 on) counts the files whose content it wrote: further names of a
            // hard link share the inode checked through the first name and are not counted.
            report.verified_files += files.len() as u64;
        }
        Ok(())
    }
}

/// Make sure directory `dir` (relative to the target) and its parents are directories,
/// creating what is missing, never following a symbolic link; each one checked is added to
/// `made`, and those already there are not looked at again. A file, link or special file in
/// the way is replaced when the overwrite mode replaces things (`always`, `if-changed`, as
/// restic 0.17+), and kept, with an error, otherwise.
pub(super) fn ensure_dir(
    target: &Target,
    made: &mut HashSet<PathBuf>,
    dir: &Path,
    overwrite: Overwrite,
) -> std::result::Result<(), String> {
    let replaces = matches!(overwrite, Overwrite::Always | Overwrite::IfChanged);
    let mut cur = PathBuf::new();
    for c in dir.components() {
        cur.push(c);
        if made.contains(&cur) {
            continue;
        }
        let shown = || target.shown(&cur).display().to_string();
        let found = target
            .lstat(&cur)
            .map_err(|e| format!("{}: cannot look at: {e}", shown()))?;
        let missing = match found {
            Some(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => false,
            Some(_) if replaces => {
                target
                    .remove(&cur, false)
                    .map_err(|e| format!("{}: cannot replace with a directory: {e}", shown()))?;
                true
            }
            Some(_) => {
                return Err(format!(
                    "{}: exists and is not a directory, not restoring into it",
                    shown()
                ))
            }
            None => true,
        };
        if missing {
            target
                .mkdir(&cur)
                .map_err(|e| format!("{}: cannot create directory: {e}", shown()))?;
        }
        made.insert(cur.clone());
    }
    Ok(())
}

pub(super) fn skip_existing(target: &Target, rel: &Path, node: &Node, mode: Overwrite) -> bool {
    let Ok(Some(st)) = target.lstat(rel) else {
        // Nothing there, or what leads there is not a plain folder: writing will say which.
        return false;
    };
    let node_mtime = (node.mtime.unix_secs(), node.mtime.unix_nanos_part());
    let existing = (st.st_mtime, st.st_mtime_nsec as u32);
    let is_file = st.st_mode & libc::S_IFMT == libc::S_IFREG;
    match mode {
        Overwrite::Always => false,
        Overwrite::Never => true,
        Overwrite::IfNewer => existing >= node_mtime,
        Overwrite::IfChanged => is_file && st.st_size as u64 == node.size && existing == node_mtime,
    }
}

/// Clear the way for a new item: a file, link or special file is removed, a directory only
/// when it is empty. A directory with something in it is removed only with `--delete` (as
/// restic 0.17+): restoring into a populated target must not otherwise lose what is there.
pub(super) fn remove_for_replacement(target: &Target, rel: &Path) -> std::io::Result<()> {
    let removed = match target.lstat(rel)? {
        Some(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR && target.replaces_folders() => {
            target.remove_all(rel, false, &mut |_| ()).map(drop)
        }
        Some(st) => target.remove(rel, st.st_mode & libc::S_IFMT == libc::S_IFDIR),
        None => Ok(()),
    };
    match removed {
        Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => Err(std::io::Error::new(
            e.kind(),
            "a directory with contents is in the way, not replaced",
        )),
        other => other,
    }
}

/// Whether an existing item at `path` stays as it is under the overwrite mode, for items
/// other than regular files (which [`skip_existing`] decides with their size and time).
pub(super) fn keep_existing_other(
    target: &Target,
    rel: &Path,
    node: &Node,
    mode: Overwrite,
) -> bool {
    match mode {
        Overwrite::Always | Overwrite::IfChanged => false,
        Overwrite::Never => !matches!(target.lstat(rel), Ok(None)),
        Overwrite::IfNewer => skip_existing(target, rel, node, mode),
    }
}

fn create_symlink(target: &Target, rel: &Path, points_to: &[u8]) -> std::io::Result<bool> {
    remove_for_replacement(target, rel)?;
    target.symlink(rel, OsStr::from_bytes(points_to))?;
    Ok(true)
}

fn make_node(target: &Target, rel: &Path, kind: libc::mode_t, dev: u64) -> std::io::Result<bool> {
    if kind != libc::S_IFIFO && !crate::sys::is_root() {
        // Device nodes need root; restic skips them likewise.
        return Ok(false);
    }
    remove_for_replacement(target, rel)?;
    target.mknod(rel, kind, dev)?;
    Ok(true)
}
