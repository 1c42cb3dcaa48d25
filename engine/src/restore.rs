//! `restore`: recreate a snapshot's tree under a target directory.
//!
//! The plan is made from the trees first; then file contents are fetched pack by pack
//! (one ranged read per pack, several packs at once) and written at their offsets in
//! every file that needs them; metadata comes last, directories bottom-up so their
//! mtimes survive the writes inside them.

use crate::error::{Error, Result};
use crate::filter::Patterns;
use crate::progress::Progress;
use crate::repo::{decode_blob_into, BlobScratch, Repository};
use crate::walk::{walk, Visit};
use arca_format::pack::{BlobType, PackedBlob};
use arca_format::tree::{Node, NodeType};
use arca_format::Id;
use arca_storage::FileType;
use futures::StreamExt;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

mod metadata;
mod target;
use metadata::set_metadata;
use target::Target;

/// The ID of a MinSize (512 KiB) all-zero chunk, skipped with `--sparse`.
pub const ZERO_CHUNK_ID: &str = "07854d2fef297a06ba81685e660c332de36d5d18d546927d30daad6d7fda1541";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Overwrite {
    #[default]
    Always,
    IfChanged,
    IfNewer,
    Never,
}

impl Overwrite {
    pub fn parse(s: &str) -> Option<Overwrite> {
        Some(match s {
            "always" => Overwrite::Always,
            "if-changed" => Overwrite::IfChanged,
            "if-newer" => Overwrite::IfNewer,
            "never" => Overwrite::Never,
            _ => return None,
        })
    }
}

pub struct RestoreOptions {
    pub target: PathBuf,
    pub include: Patterns,
    pub exclude: Patterns,
    pub sparse: bool,
    pub overwrite: Overwrite,
    pub verify: bool,
    /// How many packs to fetch and write at once.
    pub concurrency: usize,
    /// Restore device nodes, setuid and setgid bits and file capabilities
    /// (`security.capability`) as the snapshot has them. Off for restores into pods, whose
    /// snapshots a tenant controls: a root restore must not hand them privileges.
    pub privileged_files: bool,
}

impl RestoreOptions {
    /// Everything, into `target`, overwriting what is there, without privileged files (what
    /// the cluster agents need).
    pub fn everything(target: PathBuf) -> RestoreOptions {
        let none = || Patterns::new(&[], false).expect("no patterns is valid");
        RestoreOptions {
            target,
            include: none(),
            exclude: none(),
            sparse: false,
            overwrite: Overwrite::Always,
            verify: false,
            concurrency: 3,
            privileged_files: false,
        }
    }
}

#[derive(Debug, Default)]
pub struct RestoreReport {
    pub files: u64,
    pub dirs: u64,
    pub others: u64,
    pub bytes: u64,
    pub skipped: u64,
    pub verified_files: u64,
    /// How long `--verify` took.
    pub verify_time: std::time::Duration,
    /// Problems with single items; the rest was restored.
    pub errors: Vec<String>,
    /// Privileged parts left out on purpose ([`RestoreOptions::privileged_files`] off).
    pub withheld: Vec<String>,
}

struct Item {
    /// Path relative to the snapshot root, `/`-separated, starting with `/`.
    rel: Vec<u8>,
    node: Node,
}

struct PlannedFile {
    /// Relative to the target.
    rel: PathBuf,
    size: u64,
    content: Vec<Id>,
    /// Set by whoever creates the file: the background pass, or the first job to write to
    /// it if that comes first.
    created: OnceLock<std::result::Result<(), String>>,
}

/// The longest path (relative to the target) restore makes: the kernel's limit for one
/// path (`PATH_MAX`, the terminating NUL included). A deeper item could not be created by
/// path anyway, so it is reported once, with everything below it, instead of failing once
/// per item; this also bounds restore's memory when a tree is thousands of levels deep.
const MAX_PATH: usize = 4095;

/// A path of any length, shortened for a message to its start and end.
fn shortened(rel: &[u8]) -> String {
    const KEEP: usize = 120;
    if rel.len() <= 2 * KEEP {
        return String::from_utf8_lossy(rel).into_owned();
    }
    format!(
        "{}…{}",
        String::from_utf8_lossy(&rel[..KEEP]),
        String::from_utf8_lossy(&rel[rel.len() - KEEP..])
    )
}

/// Names that would step outside the directory they are in are refused.
fn check_name(name: &[u8]) -> std::result::Result<(), String> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(format!(
            "invalid node name {:?}",
            String::from_utf8_lossy(name)
        ));
    }
    Ok(())
}

/// An item's path relative to the target (its snapshot path without the leading `/`).
fn rel_path(rel: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(rel.strip_prefix(b"/").unwrap_or(rel)))
}

pub async fn restore(
    repo: Arc<Repository>,
    root: Id,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let mut report = RestoreReport::default();
    let items = plan(&repo, &root, opts, &mut report).await?;
    // restic creates the target private (0700) when it does not exist. Everything below
    // is made relative to this handle, never through a symbolic link (see `target`).
    let target = Arc::new(Target::create(&opts.target).map_err(Error::io(&opts.target))?);

    // Directories first (created private; final modes come at the end). Remember which
    // exist so the files below do not check their parents again.
    let mut made: HashSet<PathBuf> = HashSet::new();
    for it in items.iter().filter(|i| i.node.node_type == NodeType::Dir) {
        if let Err(e) = ensure_dir(&target, &mut made, &rel_path(&it.rel), opts.overwrite) {
            report.errors.push(e);
        }
    }

    // Decide which files to write; link the rest of each hard-link group later.
    let mut wanted: Vec<(usize, PathBuf)> = Vec::new();
    let mut hardlinks: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut first_of_inode: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for (i, it) in items.iter().enumerate() {
        if it.node.node_type != NodeType::File {
            continue;
        }
        let path = rel_path(&it.rel);
        if let Some(parent) = path.parent() {
            if let Err(e) = ensure_dir(&target, &mut made, parent, opts.overwrite) {
                report.errors.push(e);
                continue;
            }
        }
        if it.node.links > 1 && it.node.inode != 0 {
            let key = (it.node.device_id, it.node.inode);
            if let Some(first) = first_of_inode.get(&key) {
                hardlinks.push((first.clone(), path));
                continue;
            }
            first_of_inode.insert(key, path.clone());
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
            .map(|(i, path)| skip_existing(&target, path, &items[*i].node, opts.overwrite))
            .collect()
    };
    let mut files: Vec<PlannedFile> = Vec::new();
    let mut file_items: Vec<usize> = Vec::new();
    for ((i, path), keep) in wanted.into_iter().zip(keep) {
        if keep {
            report.skipped += 1;
            continue;
        }
        files.push(PlannedFile {
            rel: path,
            size: items[i].node.size,
            content: items[i].node.content.clone().unwrap_or_default(),
            created: OnceLock::new(),
        });
        file_items.push(i);
    }
    // Sizes come from the trees, which may claim anything: no wrapping sum.
    let total: u64 = files.iter().fold(0u64, |t, f| t.saturating_add(f.size));
    progress.set_total(total);
    // Creating thousands of files is kernel work on the CPU while the contents mostly wait
    // for the disk: the files are created in the background while the contents are
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
    let write_errors = write_contents(&repo, &target, &files, opts, progress).await;
    creating.await.expect("file creation does not panic");
    report.errors.extend(write_errors?);
    let mut restored_items = Vec::with_capacity(file_items.len());
    for (f, i) in files.iter().zip(file_items) {
        match f.created.get() {
            Some(Err(e)) => report.errors.push(e.clone()),
            _ => restored_items.push(i),
        }
    }
    let file_items = restored_items;
    report.files = file_items.len() as u64;
    report.bytes = total;

    for (first, link) in &hardlinks {
        let shown = target.shown(link);
        if opts.overwrite == Overwrite::Never && !matches!(target.lstat(link), Ok(None)) {
            report.skipped += 1;
            continue;
        }
        if let Err(e) = remove_for_replacement(&target, link) {
            report
                .errors
                .push(format!("{}: cannot replace: {e}", shown.display()));
            continue;
        }
        match target.hard_link(first, link) {
            Ok(()) => report.files += 1,
            Err(e) => report
                .errors
                .push(format!("{}: cannot create hard link: {e}", shown.display())),
        }
    }

    // Other node types, then metadata: files and others, then directories bottom-up.
    // Existing items that the overwrite mode keeps are left alone, metadata included.
    let mut kept: HashSet<&[u8]> = HashSet::new();
    for it in &items {
        let p = rel_path(&it.rel);
        let other = matches!(
            it.node.node_type,
            NodeType::Symlink | NodeType::Fifo | NodeType::Dev | NodeType::Chardev
        );
        if other && keep_existing_other(&target, &p, &it.node, opts.overwrite) {
            kept.insert(&it.rel);
            report.skipped += 1;
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
            NodeType::Symlink => create_symlink(&target, &p, it.node.link_target_bytes()),
            NodeType::Fifo => make_node(&target, &p, libc::S_IFIFO, 0),
            NodeType::Dev => make_node(&target, &p, libc::S_IFBLK, it.node.device),
            NodeType::Chardev => make_node(&target, &p, libc::S_IFCHR, it.node.device),
            _ => continue,
        };
        match res {
            Ok(true) => report.others += 1,
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
                &target,
                &rel_path(&items[i].rel),
                &items[i].node,
                opts.privileged_files,
                &mut errs,
            );
            errs
        })
        .collect();
    report.errors.extend(meta_errors);
    for it in items.iter().filter(|i| {
        matches!(
            i.node.node_type,
            NodeType::Symlink | NodeType::Fifo | NodeType::Dev | NodeType::Chardev
        ) && !kept.contains(i.rel.as_slice())
    }) {
        let p = rel_path(&it.rel);
        set_metadata(
            &target,
            &p,
            &it.node,
            opts.privileged_files,
            &mut report.errors,
        );
    }
    // Only directories that are directories in the target (made or found by `ensure_dir`);
    // what stood in the way of one was reported then and is not touched.
    for it in items
        .iter()
        .rev()
        .filter(|i| i.node.node_type == NodeType::Dir)
    {
        let p = rel_path(&it.rel);
        if made.contains(&p) {
            set_metadata(
                &target,
                &p,
                &it.node,
                opts.privileged_files,
                &mut report.errors,
            );
            report.dirs += 1;
        }
    }

    if opts.verify {
        let started = std::time::Instant::now();
        report
            .errors
            .extend(verify_files(&repo, &target, &files).await);
        report.verify_time = started.elapsed();
        // restic (0.17 on) counts the files whose content it wrote: further names of a hard
        // link share the inode checked through the first name and are not counted.
        report.verified_files = files.len() as u64;
    }
    Ok(report)
}

/// Walk the tree and collect what to restore, applying name checks and filters.
async fn plan(
    repo: &Repository,
    root: &Id,
    opts: &RestoreOptions,
    report: &mut RestoreReport,
) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut errors = Vec::new();
    // Unselected directories above the current node, not yet in `items`: restic restores the
    // metadata of every directory that holds something it restored, selected or not.
    let mut pending: Vec<Item> = Vec::new();
    let mut seen: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    walk(repo, root, b"/", |rel, node| {
        while let Some(dir) = pending.last() {
            if rel.starts_with(&dir.rel) && rel.get(dir.rel.len()) == Some(&b'/') {
                break;
            }
            pending.pop();
        }
        if rel.len() > MAX_PATH {
            errors.push(format!(
                "{}: path longer than {MAX_PATH} bytes, not restored, nor what is below it",
                shortened(rel)
            ));
            return Ok(Visit::Skip);
        }
        if let Err(e) = check_name(&node.name) {
            errors.push(format!(
                "{}: {e}, not restored",
                String::from_utf8_lossy(rel)
            ));
            return Ok(Visit::Skip);
        }
        // A name twice in one tree (restic never writes that) could make a later symlink
        // replace a directory whose contents were restored, and the metadata pass follow it
        // out of the target: the first node wins.
        if !seen.insert(rel.to_vec()) {
            errors.push(format!(
                "{}: duplicate name in tree, not restored",
                String::from_utf8_lossy(rel)
            ));
            return Ok(Visit::Skip);
        }
        if opts.exclude.matches(rel) {
            return Ok(Visit::Skip);
        }
        let selected = opts.include.is_empty() || opts.include.matches(rel);
        if selected {
            items.append(&mut pending);
            items.push(Item {
                rel: rel.to_vec(),
                node: node.clone(),
            });
        } else if node.node_type == NodeType::Dir {
            pending.push(Item {
                rel: rel.to_vec(),
                node: node.clone(),
            });
        }
        // Unselected directories are still searched: something inside may be included.
        Ok(Visit::Descend)
    })
    .await?;
    report.errors.extend(errors);
    Ok(items)
}

/// Make sure directory `dir` (relative to the target) and its parents are directories,
/// creating what is missing, never following a symbolic link; each one checked is added to
/// `made`, and those already there are not looked at again. A file, link or special file in
/// the way is replaced when the overwrite mode replaces things (`always`, `if-changed`, as
/// restic 0.17+), and kept, with an error, otherwise.
fn ensure_dir(
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

fn skip_existing(target: &Target, rel: &Path, node: &Node, mode: Overwrite) -> bool {
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

/// Create (or truncate) a file of `size` bytes. With `allocate`, a file large enough for
/// direct writes gets its blocks reserved now: ext4 lets direct writes into allocated
/// blocks share the file's lock, while writes into a hole take it exclusively and hold it
/// while the device works, so jobs writing different parts of one large file would
/// otherwise take turns. (A sparse restore must leave holes, so it does not allocate.)
fn create_file(
    target: &Target,
    f: &PlannedFile,
    allocate: bool,
) -> std::result::Result<fs::File, String> {
    let (rel, size) = (&f.rel, f.size);
    let shown = || target.shown(rel).display().to_string();
    if let Ok(Some(st)) = target.lstat(rel) {
        if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_nlink > 1 {
            // Replace links and other types instead of writing through them.
            remove_for_replacement(target, rel)
                .map_err(|e| format!("{}: cannot replace: {e}", shown()))?;
        }
    }
    let file = target
        .create_file(rel)
        .map_err(|e| format!("{}: cannot create: {e}", shown()))?;
    if !(allocate && size >= arca_storage::direct::DIRECT_MIN as u64 && preallocate(&file, size)) {
        file.set_len(size)
            .map_err(|e| format!("{}: cannot set size: {e}", shown()))?;
    }
    Ok(file)
}

/// A file to write a job's blobs into: created here if nobody has yet, or opened.
/// `None` when its creation failed; that is reported once, after the contents.
fn open_target(
    target: &Target,
    f: &PlannedFile,
    allocate: bool,
) -> Option<std::result::Result<fs::File, String>> {
    let mut fresh = None;
    let state = f.created.get_or_init(|| {
        create_file(target, f, allocate).map(|file| {
            fresh = Some(file);
        })
    });
    if let Some(file) = fresh {
        return Some(Ok(file));
    }
    state.as_ref().ok()?;
    Some(
        target
            .open_write(&f.rel)
            .map_err(|e| format!("{}: {e}", target.shown(&f.rel).display())),
    )
}

/// Reserve `size` bytes of blocks (the size grows to match); false where the filesystem
/// cannot, and the caller sets the size instead.
#[cfg(target_os = "linux")]
fn preallocate(f: &fs::File, size: u64) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(len) = libc::off_t::try_from(size) else {
        return false;
    };
    // SAFETY: fallocate on a descriptor we own, with integer arguments only.
    unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, len) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn preallocate(_f: &fs::File, _size: u64) -> bool {
    false
}

/// Clear the way for a new item: a file, link or special file is removed, a directory only
/// when it is empty. A directory with something in it is never removed (as restic 0.17+
/// without `--delete`): restoring into a populated target must not lose what is there.
fn remove_for_replacement(target: &Target, rel: &Path) -> std::io::Result<()> {
    let removed = match target.lstat(rel)? {
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
fn keep_existing_other(target: &Target, rel: &Path, node: &Node, mode: Overwrite) -> bool {
    match mode {
        Overwrite::Always | Overwrite::IfChanged => false,
        Overwrite::Never => !matches!(target.lstat(rel), Ok(None)),
        Overwrite::IfNewer => skip_existing(target, rel, node, mode),
    }
}

/// Bytes of a pack one restore job reads at most (unless a single blob is larger).
const READ_SPAN: u64 = 4 << 20;

/// Where one blob's plaintext goes: file number and offset.
type Targets = Vec<(usize, u64)>;
/// A pack's number and blobs from one stretch of it, in pack order.
type Stretch = (u32, Vec<(PackedBlob, Targets)>);

async fn write_contents(
    repo: &Arc<Repository>,
    target: &Arc<Target>,
    files: &Arc<Vec<PlannedFile>>,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<Vec<String>> {
    let index = repo.index().clone();
    let zero: Id = ZERO_CHUNK_ID.parse().expect("constant ID");
    // pack -> blob -> targets
    let mut by_pack: HashMap<u32, HashMap<Id, (PackedBlob, Targets)>> = HashMap::new();
    let mut errors = Vec::new();
    for (fi, f) in files.iter().enumerate() {
        let mut offset = 0u64;
        for id in &f.content {
            let Some(e) = index.lookup(BlobType::Data, id) else {
                errors.push(format!(
                    "{}: data blob {id} not found in index",
                    target.shown(&f.rel).display()
                ));
                break;
            };
            let b = e.to_packed(BlobType::Data, *id);
            let len = b.data_length() as u64;
            if !(opts.sparse && *id == zero) {
                by_pack
                    .entry(e.pack)
                    .or_default()
                    .entry(*id)
                    .or_insert((b, Vec::new()))
                    .1
                    .push((fi, offset));
            } else {
                progress.add(len);
            }
            offset += len;
        }
    }
    let errors = Arc::new(Mutex::new(errors));
    let sparse = opts.sparse;
    let scratches: Arc<Mutex<Vec<BlobScratch>>> = Arc::default();
    // One job per stretch of a pack of at most READ_SPAN (a blob more if one is larger):
    // small reads keep memory low per job, so more jobs can overlap reading, decoding and
    // writing, which on a disk-bound restore is what sets the pace.
    let mut per_pack: Vec<Vec<Stretch>> = Vec::new();
    for (pack, blobs) in by_pack {
        let mut stretches = Vec::new();
        let mut blobs: Vec<(PackedBlob, Targets)> = blobs.into_values().collect();
        blobs.sort_by_key(|(b, _)| b.offset);
        let mut current: Vec<(PackedBlob, Targets)> = Vec::new();
        for (b, t) in blobs {
            if let Some((first, _)) = current.first() {
                if (b.offset as u64 + b.length as u64).saturating_sub(first.offset as u64)
                    > READ_SPAN
                {
                    stretches.push((pack, std::mem::take(&mut current)));
                }
            }
            current.push((b, t));
        }
        if !current.is_empty() {
            stretches.push((pack, current));
        }
        per_pack.push(stretches);
    }
    // Jobs running together take stretches of different packs: neighbouring stretches of
    // one pack usually continue one file, and writes to one file queue on its lock.
    let rounds = per_pack.iter().map(Vec::len).max().unwrap_or(0);
    let mut per_pack: Vec<_> = per_pack.into_iter().map(Vec::into_iter).collect();
    let stretches: Vec<Stretch> = (0..rounds)
        .flat_map(|_| {
            per_pack
                .iter_mut()
                .filter_map(Iterator::next)
                .collect::<Vec<_>>()
        })
        .collect();
    let jobs = stretches.into_iter().map(|(pack, blobs)| {
        let scratches = scratches.clone();
        let repo = repo.clone();
        let files = files.clone();
        let target = target.clone();
        let errors = errors.clone();
        let pack_id = index.pack_id(pack);
        async move {
            let start = blobs[0].0.offset as u64;
            let end = blobs
                .iter()
                .map(|(b, _)| b.offset as u64 + b.length as u64)
                .max()
                .unwrap_or(start);
            let raw = match repo
                .backend()
                .read_range(FileType::Pack, &pack_id.to_hex(), start, end - start)
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    let mut errs = errors.lock().expect("errors mutex");
                    errs.push(format!("pack {pack_id}: {e}"));
                    return 0u64;
                }
            };
            let key = repo.key().clone();
            tokio::task::spawn_blocking(move || {
                let mut written = 0u64;
                let mut open: HashMap<usize, fs::File> = HashMap::new();
                // Recycled decode buffers: fresh ones would fault in new pages for every
                // blob. One set per running job, so memory stays bounded.
                let mut scratch = scratches
                    .lock()
                    .expect("scratch mutex")
                    .pop()
                    .unwrap_or_default();
                {
                    for (b, targets) in blobs {
                        let lo = (b.offset as u64 - start) as usize;
                        let plain = match decode_blob_into(
                            &key,
                            &b,
                            &raw[lo..lo + b.length as usize],
                            &mut scratch,
                            targets.first().map_or(0, |&(_, off)| off),
                        ) {
                            Ok(p) => p,
                            Err(e) => {
                                errors
                                    .lock()
                                    .expect("errors mutex")
                                    .push(format!("pack {pack_id}: data blob {}: {e}", b.id));
                                continue;
                            }
                        };
                        let all_zero = sparse && plain.iter().all(|&x| x == 0);
                        for (fi, off) in targets {
                            if !all_zero {
                                let f = match open.entry(fi) {
                                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                                    std::collections::hash_map::Entry::Vacant(v) => {
                                        match open_target(&target, &files[fi], !sparse) {
                                            Some(Ok(f)) => v.insert(f),
                                            Some(Err(e)) => {
                                                errors.lock().expect("errors mutex").push(e);
                                                continue;
                                            }
                                            None => continue,
                                        }
                                    }
                                };
                                // Large aligned stretches bypass the page cache.
                                if let Err(e) = arca_storage::direct::write_all_at(f, plain, off) {
                                    errors.lock().expect("errors mutex").push(format!(
                                        "{}: write: {e}",
                                        target.shown(&files[fi].rel).display()
                                    ));
                                }
                            }
                            written += plain.len() as u64;
                        }
                    }
                }
                scratches.lock().expect("scratch mutex").push(scratch);
                written
            })
            .await
            .expect("restore writer does not panic")
        }
    });
    let mut stream = futures::stream::iter(jobs).buffer_unordered(opts.concurrency.max(1));
    while let Some(n) = stream.next().await {
        progress.add(n);
    }
    drop(stream);
    let errs = std::mem::take(&mut *errors.lock().expect("errors mutex"));
    Ok(errs)
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

/// Re-read every written file and compare each blob with its ID.
async fn verify_files(
    repo: &Arc<Repository>,
    target: &Arc<Target>,
    files: &[PlannedFile],
) -> Vec<String> {
    let index = repo.index().clone();
    let work: Vec<(PathBuf, Vec<(Id, u64)>)> = files
        .iter()
        .map(|f| {
            let blobs = f
                .content
                .iter()
                .map(|id| {
                    (
                        *id,
                        index
                            .lookup(BlobType::Data, id)
                            .map(|e| e.to_packed(BlobType::Data, *id).data_length() as u64)
                            .unwrap_or(0),
                    )
                })
                .collect();
            (f.rel.clone(), blobs)
        })
        .collect();
    let target = target.clone();
    tokio::task::spawn_blocking(move || {
        use rayon::prelude::*;
        work.par_iter()
            .filter_map(|(rel, blobs)| {
                let path = target.shown(rel);
                let f = match target.open_read(rel) {
                    Ok(f) => f,
                    Err(e) => return Some(format!("{}: verify: {e}", path.display())),
                };
                let mut off = 0u64;
                // The lengths come from the index: read in bounded pieces, never allocating
                // what a damaged index claims (up to 4 GiB per blob).
                let biggest = blobs.iter().map(|(_, len)| *len).max().unwrap_or(0);
                let mut buf = vec![0u8; biggest.min(1 << 20) as usize];
                for (id, len) in blobs {
                    let mut h = <sha2::Sha256 as sha2::Digest>::new();
                    let mut done = 0u64;
                    while done < *len {
                        let n = (*len - done).min(buf.len() as u64) as usize;
                        if let Err(e) = f.read_exact_at(&mut buf[..n], off + done) {
                            return Some(format!("{}: verify: {e}", path.display()));
                        }
                        sha2::Digest::update(&mut h, &buf[..n]);
                        done += n as u64;
                    }
                    if Id(sha2::Digest::finalize(h).into()) != *id {
                        return Some(format!(
                            "{}: verify: content at offset {off} does not match blob {id}",
                            path.display()
                        ));
                    }
                    off += len;
                }
                None
            })
            .collect()
    })
    .await
    .expect("verification does not panic")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn created_files_have_their_size_and_large_ones_are_allocated_unless_sparse() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let target = Target::create(dir.path()).expect("target");
        let size = 3 * arca_storage::direct::DIRECT_MIN as u64 + 17;
        let (full, holey) = (dir.path().join("full"), dir.path().join("holey"));
        let planned = |name: &str, size: u64| PlannedFile {
            rel: PathBuf::from(name),
            size,
            content: Vec::new(),
            created: OnceLock::new(),
        };
        drop(create_file(&target, &planned("full", size), true).expect("create"));
        drop(create_file(&target, &planned("holey", size), false).expect("create"));
        for p in [&full, &holey] {
            assert_eq!(fs::metadata(p).unwrap().len(), size, "{}", p.display());
        }
        assert_eq!(
            fs::metadata(&holey).unwrap().blocks(),
            0,
            "a sparse restore keeps holes"
        );
        let f = fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("full"))
            .unwrap();
        if preallocate(&f, size) {
            // Where the filesystem allocates, every byte has a block before any write.
            assert!(fs::metadata(&full).unwrap().blocks() * 512 >= size);
        }
        // Creating again over an existing file truncates it to the new size.
        drop(create_file(&target, &planned("full", 5), true).expect("re-create"));
        assert_eq!(fs::metadata(&full).unwrap().len(), 5);
    }
}
