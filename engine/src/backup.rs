//! `backup`: walk the targets, reuse unchanged files from the parent snapshot, chunk
//! and store the rest, build trees bottom-up, then write index and snapshot.
//!
//! Directories are processed in parallel on a dedicated rayon pool: the entries of a
//! directory are handled concurrently (files are read and chunked on the worker that
//! picks them; subdirectories recurse), and a directory's tree is stored once all its
//! entries are done. Memory is bounded by the open packs, the upload queue, one chunk
//! per worker and the node lists of directories in progress.

use crate::error::{Error, Result};
use crate::fsnode::{node_from_metadata, node_type, FileStat, Loc, NameCache};
use crate::progress::Progress;
use crate::repo::Repository;
use crate::sys::entry_names;
use crate::writer::{BlobWriter, WriterOptions};
use arca_chunker::{ChunkIter, ChunkerTables, Pol};
use arca_format::gotime::GoTime;
use arca_format::pack::BlobType;
use arca_format::snapshot::{Snapshot, Summary};
use arca_format::tree::{Node, NodeType, Tree};
use arca_format::Id;
use arca_storage::FileType;
use rayon::prelude::*;
use rustix::fs::OFlags;
use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

mod targets;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
pub use targets::absolute;
use targets::{clean, resolve_targets, TargetTree};

/// Decides what is left out. Called with absolute paths.
pub trait Selector: Send + Sync {
    /// Cheap check before lstat.
    fn select_by_name(&self, _path: &Path) -> bool {
        true
    }
    /// Check with the item's status.
    fn select(&self, _path: &Path, _md: &FileStat) -> bool {
        true
    }
}

pub struct SelectAll;
impl Selector for SelectAll {}

pub struct BackupOptions {
    pub paths: Vec<PathBuf>,
    pub tags: Vec<String>,
    pub hostname: String,
    pub parent: Option<Snapshot>,
    /// Re-read every file even if the parent says it is unchanged.
    pub force: bool,
    pub with_atime: bool,
    pub excludes: Vec<String>,
    pub selector: Arc<dyn Selector>,
    pub writer: WriterOptions,
    pub time: Option<GoTime>,
    pub threads: usize,
    pub program_version: String,
    /// Back up the entries of the one directory in `paths` as the snapshot's root, as
    /// `restic backup .` run inside it does. The tree then does not depend on where the
    /// directory is mounted: a pod volume keeps its parent match when the pod (and the
    /// pod UID in its host path) changes.
    pub contents_of: bool,
    /// Write no snapshot when the new tree is the parent's (restic's `--skip-if-unchanged`).
    pub skip_if_unchanged: bool,
    /// What the unchanged-file test leaves out (`--ignore-ctime`, `--ignore-inode`).
    pub ignore: ChangeIgnore,
}

/// Metadata the parent comparison ignores, for file systems where it is not stable (FUSE and
/// network mounts renumber inodes; some tools touch ctimes).
#[derive(Clone, Copy, Debug, Default)]
pub struct ChangeIgnore {
    pub ctime: bool,
    /// Implies `ctime`, as in restic.
    pub inode: bool,
}

#[derive(Debug, Default)]
pub struct BackupResult {
    pub snapshot: Option<Snapshot>,
    pub summary: Summary,
    /// Items that could not be read: reported and skipped.
    pub errors: Vec<String>,
    /// No snapshot was written: nothing changed since the parent and `skip_if_unchanged`.
    pub skipped: bool,
}

#[derive(Default)]
struct Counters {
    files_new: AtomicU64,
    files_changed: AtomicU64,
    files_unmodified: AtomicU64,
    dirs_new: AtomicU64,
    dirs_changed: AtomicU64,
    dirs_unmodified: AtomicU64,
    files: AtomicU64,
    bytes: AtomicU64,
}

struct Archiver<'a> {
    repo: Arc<Repository>,
    writer: Arc<BlobWriter>,
    tables: ChunkerTables,
    names: NameCache,
    opts: &'a BackupOptions,
    counters: Counters,
    errors: Mutex<Vec<String>>,
    progress: &'a dyn Progress,
    rt: tokio::runtime::Handle,
    /// The working directory, to give the selector absolute paths.
    cwd: PathBuf,
}

/// restic's rule: a file changed if type, size, mtime, ctime or inode differ (ctime and inode
/// unless ignored).
fn file_changed(md: &FileStat, old: &Node, ignore: ChangeIgnore) -> bool {
    let ignore_ctime = ignore.ctime || ignore.inode;
    old.node_type != NodeType::File
        || old.size != md.size()
        || (old.mtime.unix_secs(), old.mtime.unix_nanos_part()) != md.mtime()
        || (!ignore_ctime && (old.ctime.unix_secs(), old.ctime.unix_nanos_part()) != md.ctime())
        || (!ignore.inode && old.inode != md.ino())
}

/// Open the item at `loc` (never following it) and make sure it is the one `md` describes:
/// an item replaced between the look and the open is reported, not read.
fn open_checked(loc: &Loc, md: &FileStat, flags: OFlags) -> std::io::Result<OwnedFd> {
    let fd = loc.open(flags)?;
    let now = rustix::fs::fstat(&fd)?;
    if (now.st_dev, now.st_ino) != (md.dev(), md.ino()) {
        return Err(std::io::Error::other(
            "replaced by another item while being read; not saved",
        ));
    }
    Ok(fd)
}

impl Archiver<'_> {
    fn error(&self, path: &Path, msg: impl std::fmt::Display) {
        // I/O errors already name their path; do not repeat it.
        let msg = msg.to_string();
        let prefix = format!("{}: ", path.display());
        let line = if msg.starts_with(&prefix) {
            msg
        } else {
            format!("{prefix}{msg}")
        };
        self.errors.lock().expect("errors mutex").push(line);
    }

    /// The path the selector sees: absolute, as restic calls its filters with
    /// `filepath.Abs(item)` (so absolute exclude patterns match relative targets).
    fn select_path<'p>(&self, path: &'p Path) -> std::borrow::Cow<'p, Path> {
        if path.is_absolute() {
            std::borrow::Cow::Borrowed(path)
        } else {
            std::borrow::Cow::Owned(clean(&self.cwd.join(path)))
        }
    }

    fn load_tree(&self, id: Option<Id>) -> Option<Tree> {
        let id = id?;
        match self.rt.block_on(self.repo.load_tree(&id)) {
            Ok(t) => Some(t),
            Err(e) => {
                self.error(
                    Path::new("/"),
                    format!("cannot load parent tree {}: {e}", id.short()),
                );
                None
            }
        }
    }

    fn save_tree(&self, nodes: Vec<Node>) -> Result<Id> {
        let tree = Tree::new(nodes);
        let bytes = tree.encode().map_err(Error::TreeEncoding)?;
        Ok(self.writer.save(BlobType::Tree, &bytes)?.0)
    }

    /// Save a target tree level (the synthetic top levels of the snapshot).
    fn save_target_tree(&self, t: &TargetTree, parent: Option<Tree>) -> Result<Id> {
        let children: Vec<(&Vec<u8>, &TargetTree)> = t.nodes.iter().collect();
        let results: Vec<Result<Option<Node>>> = children
            .par_iter()
            .map(|(name, sub)| {
                let old = parent
                    .as_ref()
                    .and_then(|p| p.nodes.iter().find(|n| &n.name == *name).cloned());
                if let Some(path) = &sub.path {
                    let at = t
                        .folder
                        .as_ref()
                        .map(|f| (f.as_fd(), OsStr::from_bytes(name)));
                    let loc = Loc { path, at };
                    return Ok(self.save_path(loc, name, old.as_ref()));
                }
                let info = sub
                    .info_path
                    .as_ref()
                    .expect("intermediate dirs have an info path");
                // restic follows symlinks for the directories above a target.
                let md = FileStat::following(info).map_err(Error::io(info))?;
                let loc = Loc {
                    path: info,
                    at: None,
                };
                let mut node = node_from_metadata(&loc, &md, self.opts.with_atime, &self.names)
                    .map_err(Error::io(info))?;
                node.name = name.to_vec();
                let old_tree = self.load_tree(old.as_ref().and_then(|o| o.subtree));
                let id = self.save_target_tree(sub, old_tree)?;
                node.subtree = Some(id);
                self.count_dir(&node, old.as_ref());
                Ok(Some(node))
            })
            .collect();
        let mut nodes = Vec::new();
        for r in results {
            if let Some(n) = r? {
                nodes.push(n);
            }
        }
        self.save_tree(nodes)
    }

    fn count_dir(&self, node: &Node, old: Option<&Node>) {
        let c = match old {
            None => &self.counters.dirs_new,
            Some(o) if o == node => &self.counters.dirs_unmodified,
            Some(_) => &self.counters.dirs_changed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Save one file-system item; None if excluded or unreadable (reported).
    fn save_path(&self, loc: Loc, name: &[u8], old: Option<&Node>) -> Option<Node> {
        let path = loc.path;
        let sel = self.select_path(path);
        if !self.opts.selector.select_by_name(&sel) {
            return None;
        }
        let md = match loc.stat() {
            Ok(md) => md,
            Err(e) => {
                self.error(path, e);
                return None;
            }
        };
        if !self.opts.selector.select(&sel, &md) {
            return None;
        }
        let t = node_type(&md);
        if t == NodeType::Socket {
            return None;
        }
        let mut node = match node_from_metadata(&loc, &md, self.opts.with_atime, &self.names) {
            Ok(n) => n,
            Err(e) => {
                self.error(path, e);
                return None;
            }
        };
        node.name = name.to_vec();
        match t {
            NodeType::File => {
                let reuse = match old {
                    Some(o) if !self.opts.force && !file_changed(&md, o, self.opts.ignore) => {
                        let content = o.content.clone().unwrap_or_default();
                        content
                            .iter()
                            .all(|id| self.writer.has(BlobType::Data, id))
                            .then_some(content)
                    }
                    _ => None,
                };
                let reused = reuse.is_some();
                let content = match reuse {
                    Some(c) => {
                        self.progress.add(md.size());
                        c
                    }
                    None => match self.save_file(&loc, &md) {
                        Ok(c) => c,
                        Err(e) => {
                            self.error(path, e);
                            return None;
                        }
                    },
                };
                node.content = Some(content);
                // Like restic, only files actually saved count as processed.
                self.counters.files.fetch_add(1, Ordering::Relaxed);
                self.counters.bytes.fetch_add(md.size(), Ordering::Relaxed);
                self.progress.file_done();
                // As restic: a file the parent comparison calls unchanged counts as unmodified
                // (with --ignore-ctime its node may still differ); one read again counts as
                // unmodified only if its node came out the same.
                let c = match old {
                    None => &self.counters.files_new,
                    Some(_) if reused => &self.counters.files_unmodified,
                    Some(o) if *o == node => &self.counters.files_unmodified,
                    Some(_) => &self.counters.files_changed,
                };
                c.fetch_add(1, Ordering::Relaxed);
            }
            NodeType::Dir => {
                let old_tree = self.load_tree(old.and_then(|o| o.subtree));
                match self.save_dir(&loc, &md, old_tree) {
                    Ok(id) => node.subtree = Some(id),
                    Err(e) => {
                        self.error(path, e);
                        return None;
                    }
                }
                self.count_dir(&node, old);
            }
            _ => {}
        }
        Some(node)
    }

    /// Save a folder: its entries are looked at relative to the folder's own handle.
    fn save_dir(&self, loc: &Loc, md: &FileStat, parent: Option<Tree>) -> Result<Id> {
        let dir = loc.path;
        let handle =
            open_checked(loc, md, OFlags::RDONLY | OFlags::DIRECTORY).map_err(Error::io(dir))?;
        let mut names = entry_names(&handle).map_err(Error::io(dir))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let old_nodes: Vec<Node> = parent.map(|t| t.nodes).unwrap_or_default();
        let find_old = |name: &[u8]| {
            old_nodes
                .binary_search_by(|n| n.name.as_slice().cmp(name))
                .ok()
                .map(|i| &old_nodes[i])
        };
        let nodes: Vec<Option<Node>> = names
            .par_iter()
            .with_max_len(1)
            .map(|name| {
                let path = dir.join(name);
                let loc = Loc {
                    path: &path,
                    at: Some((handle.as_fd(), name.as_os_str())),
                };
                self.save_path(loc, name.as_bytes(), find_old(name.as_bytes()))
            })
            .collect();
        self.save_tree(nodes.into_iter().flatten().collect())
    }

    /// Chunk a file and store its blobs; returns the content list.
    fn save_file(&self, loc: &Loc, md: &FileStat) -> Result<Vec<Id>> {
        let f = std::fs::File::from(
            open_checked(loc, md, OFlags::RDONLY).map_err(Error::io(loc.path))?,
        );
        let mut content = Vec::new();
        for chunk in ChunkIter::new(f, &self.tables) {
            let chunk = chunk.map_err(Error::io(loc.path))?;
            let (id, _) = self.writer.save(BlobType::Data, &chunk)?;
            self.progress.add(chunk.len() as u64);
            content.push(id);
        }
        Ok(content)
    }
}

/// Run a backup. Must be called from within a tokio runtime (the work runs on a
/// dedicated thread pool; uploads on the runtime).
pub async fn backup(
    repo: Arc<Repository>,
    opts: BackupOptions,
    progress: Arc<dyn Progress>,
) -> Result<BackupResult> {
    let start = GoTime::now();
    let pol = Pol(repo.config().chunker_polynomial);
    if pol.deg() != 53 {
        return Err(Error::Config(format!(
            "chunker polynomial {:x} does not have degree 53",
            pol.0
        )));
    }
    let tables = ChunkerTables::new(pol);
    let writer = BlobWriter::new(repo.clone(), opts.writer.clone());
    let rt = tokio::runtime::Handle::current();
    let opts = Arc::new(opts);
    let (tree, errors, counters) = {
        let (repo, writer, opts, progress) =
            (repo.clone(), writer.clone(), opts.clone(), progress.clone());
        tokio::task::spawn_blocking(move || -> Result<(Id, Vec<String>, Counters)> {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(opts.threads.max(1))
                .stack_size(16 << 20)
                .build()
                .map_err(Error::ThreadPool)?;
            let arch = Archiver {
                repo: repo.clone(),
                writer: writer.clone(),
                tables,
                names: NameCache::default(),
                opts: &opts,
                counters: Counters::default(),
                errors: Mutex::new(Vec::new()),
                progress: progress.as_ref(),
                rt,
                cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            };
            let tree = pool.install(|| -> Result<Id> {
                let parent_tree = arch.load_tree(opts.parent.as_ref().map(|p| p.tree));
                let tt = if opts.contents_of {
                    TargetTree::contents(&opts.paths)?
                } else {
                    TargetTree::build(&resolve_targets(&opts.paths)?)?
                };
                arch.save_target_tree(&tt, parent_tree)
            })?;
            Ok((
                tree,
                arch.errors.into_inner().expect("errors mutex"),
                arch.counters,
            ))
        })
        .await
        .map_err(Error::task("backup worker"))??
    };
    finish(
        repo,
        writer,
        &opts,
        tree,
        start,
        errors,
        counters,
        opts.paths.iter().map(|p| absolute(p)).collect(),
    )
    .await
}

/// Back up one stream (restic's `--stdin`) as a single file named `name`.
pub async fn backup_stdin(
    repo: Arc<Repository>,
    opts: BackupOptions,
    name: String,
    reader: Box<dyn std::io::Read + Send>,
    progress: Arc<dyn Progress>,
) -> Result<BackupResult> {
    let start = GoTime::now();
    let tables = ChunkerTables::new(Pol(repo.config().chunker_polynomial));
    let writer = BlobWriter::new(repo.clone(), opts.writer.clone());
    let counters = Counters::default();
    let (w, p) = (writer.clone(), progress.clone());
    let (content, size) = tokio::task::spawn_blocking(move || -> Result<(Vec<Id>, u64)> {
        let mut content = Vec::new();
        let mut size = 0u64;
        for chunk in ChunkIter::new(reader, &tables) {
            let chunk = chunk.map_err(Error::io("stdin"))?;
            size += chunk.len() as u64;
            p.add(chunk.len() as u64);
            content.push(w.save(BlobType::Data, &chunk)?.0);
        }
        Ok((content, size))
    })
    .await
    .map_err(Error::task("stdin worker"))??;
    // restic's stdin node: a regular 0644 file owned by the caller, stamped with the
    // snapshot time (`--time` if given, else now).
    let now = opts.time.unwrap_or_else(GoTime::now);
    let mut node = Node::new(name.as_bytes().to_vec(), NodeType::File);
    node.mode = 0o644;
    node.mtime = now;
    node.atime = now;
    node.ctime = now;
    node.uid = crate::sys::uid();
    node.gid = crate::sys::gid();
    node.size = size;
    node.content = Some(content);
    counters.files.store(1, Ordering::Relaxed);
    counters.files_new.store(1, Ordering::Relaxed);
    counters.bytes.store(size, Ordering::Relaxed);
    let w = writer.clone();
    let tree = tokio::task::spawn_blocking(move || {
        let bytes = Tree::new(vec![node])
            .encode()
            .map_err(Error::TreeEncoding)?;
        Ok::<_, Error>(w.save(BlobType::Tree, &bytes)?.0)
    })
    .await
    .map_err(Error::task("stdin worker"))??;
    let path = PathBuf::from(format!("/{name}"));
    finish(
        repo,
        writer,
        &opts,
        tree,
        start,
        Vec::new(),
        counters,
        vec![path],
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn finish(
    repo: Arc<Repository>,
    writer: Arc<BlobWriter>,
    opts: &BackupOptions,
    tree: Id,
    start: GoTime,
    errors: Vec<String>,
    counters: Counters,
    paths: Vec<PathBuf>,
) -> Result<BackupResult> {
    let w = writer.clone();
    tokio::task::spawn_blocking(move || w.finish())
        .await
        .map_err(Error::task("writer"))??;
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let summary = Summary {
        backup_start: Some(start),
        backup_end: Some(GoTime::now()),
        files_new: ld(&counters.files_new),
        files_changed: ld(&counters.files_changed),
        files_unmodified: ld(&counters.files_unmodified),
        dirs_new: ld(&counters.dirs_new),
        dirs_changed: ld(&counters.dirs_changed),
        dirs_unmodified: ld(&counters.dirs_unmodified),
        data_blobs: ld(&writer.stats.data_blobs) as i64,
        tree_blobs: ld(&writer.stats.tree_blobs) as i64,
        data_added: ld(&writer.stats.data_added),
        data_added_packed: ld(&writer.stats.data_added_packed),
        total_files_processed: ld(&counters.files),
        total_bytes_processed: ld(&counters.bytes),
    };
    let mut sn = Snapshot {
        time: opts.time.unwrap_or(start),
        parent: opts.parent.as_ref().map(|p| p.id),
        tree,
        paths: paths
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
        hostname: opts.hostname.clone(),
        username: crate::sys::username(),
        uid: crate::sys::uid(),
        gid: crate::sys::gid(),
        excludes: opts.excludes.clone(),
        tags: opts.tags.clone(),
        original: None,
        program_version: opts.program_version.clone(),
        summary: Some(summary.clone()),
        id: Id::default(),
    };
    let unchanged = opts.parent.as_ref().is_some_and(|p| p.tree == tree);
    let skipped = opts.skip_if_unchanged && unchanged;
    let save = !opts.writer.dry_run && !skipped;
    if save {
        sn.id = repo
            .save_unpacked(FileType::Snapshot, &sn.to_json())
            .await?;
    }
    Ok(BackupResult {
        snapshot: save.then_some(sn),
        summary,
        errors,
        skipped,
    })
}

/// Count the files and bytes a backup of `paths` will read, for progress totals.
pub fn scan(paths: &[PathBuf], selector: &dyn Selector, progress: &dyn Progress) -> (u64, u64) {
    let (mut files, mut bytes) = (0u64, 0u64);
    // Absolute paths for the selector, as in the backup itself.
    let mut stack: Vec<PathBuf> = paths.iter().map(|p| absolute(p)).collect();
    while let Some(p) = stack.pop() {
        if !selector.select_by_name(&p) {
            continue;
        }
        let Ok(md) = (Loc { path: &p, at: None }).stat() else {
            continue;
        };
        if !selector.select(&p, &md) {
            continue;
        }
        if md.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else if md.is_file() {
            files += 1;
            bytes += md.size();
            if files % 1000 == 0 {
                progress.set_total(bytes);
            }
        }
    }
    progress.set_total(bytes);
    (files, bytes)
}
