//! The filesystem: an inode per name reached, folders of snapshot trees loaded when first
//! looked into, files read blob by blob. Engine calls are async; FUSE's callbacks run on
//! its own thread and wait for them on the runtime given. As restic's, the folders above
//! the snapshots look for new snapshots when used, at most once a minute.

use crate::blobs::{BlobCache, FileBlobs};
use crate::layout::{Layout, Templates};
use arca_engine::progress::NoProgress;
use arca_engine::snapshots::SnapshotFilter;
use arca_engine::Repository;
use arca_format::pack::BlobType;
use arca_format::snapshot::Snapshot;
use arca_format::tree::{Node, NodeType};
use arca_format::Id;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, INodeNo, LockOwner, OpenFlags, ReplyAttr,
    ReplyData, ReplyDirectory, ReplyEntry, ReplyXattr, Request,
};
use std::collections::{BTreeSet, HashMap};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Nothing in a snapshot changes: the kernel may keep what it was told.
const TTL: Duration = Duration::from_secs(60);

/// restic's blob cache of a mount: 64 MiB.
const BLOB_CACHE: usize = 64 << 20;

/// restic lists the snapshots again when the folders above them are used, at most this often.
pub const RELOAD_AFTER: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, Default)]
pub struct MountOptions {
    /// Owner of the folders above the snapshots: root instead of the user running arca.
    pub owner_root: bool,
    /// How the folders above the snapshots are named.
    pub templates: Templates,
    /// Which snapshots are served, when they are listed again.
    pub filter: SnapshotFilter,
}

enum What {
    /// A folder of the layout above the snapshots.
    Folder,
    /// A `latest` link.
    Link(Vec<u8>),
    /// A snapshot's own folder: its root tree.
    Snapshot(Id),
    /// An item of a snapshot; folders carry their tree.
    Item(Box<Node>),
}

struct Inode {
    what: What,
    time: SystemTime,
    /// Names and inodes below a folder, once known, sorted by name (looked up by halving).
    children: Option<Children>,
    blobs: Option<Arc<FileBlobs>>,
}

type Children = Arc<Vec<(Vec<u8>, u64)>>;

fn sorted(mut children: Vec<(Vec<u8>, u64)>) -> Children {
    children.sort_by(|a, b| a.0.cmp(&b.0));
    Arc::new(children)
}

/// The folders above the snapshots as last laid out.
struct View {
    /// Every path of the layout and its inode, kept across reloads: a path still there keeps
    /// its number, so what the kernel holds stays valid.
    paths: HashMap<String, u64>,
    /// The snapshots laid out: a reload that finds the same ones changes nothing.
    shown: BTreeSet<Id>,
    checked: Instant,
}

pub struct RepoFs {
    /// Replaced, with a fresh index, when new snapshots are found.
    repo: RwLock<Arc<Repository>>,
    rt: tokio::runtime::Handle,
    inodes: Mutex<Vec<Inode>>,
    view: Mutex<View>,
    cache: BlobCache,
    owner: (u32, u32),
    opts: MountOptions,
}

fn go_time(t: &arca_format::gotime::GoTime) -> SystemTime {
    let (s, n) = (t.unix_secs(), t.unix_nanos_part());
    if s >= 0 {
        UNIX_EPOCH + Duration::new(s as u64, n)
    } else {
        UNIX_EPOCH - Duration::from_secs(s.unsigned_abs())
    }
}

impl RepoFs {
    /// The filesystem of `snapshots` (the index loaded); the folders above them are dated
    /// now, as restic dates them by when the mount started.
    pub fn new(
        repo: Arc<Repository>,
        rt: tokio::runtime::Handle,
        snapshots: &[Snapshot],
        opts: &MountOptions,
    ) -> RepoFs {
        let owner = if opts.owner_root {
            (0, 0)
        } else {
            (arca_engine::sys::uid(), arca_engine::sys::gid())
        };
        let fs = RepoFs {
            repo: RwLock::new(repo),
            rt,
            inodes: Mutex::new(Vec::new()),
            view: Mutex::new(View {
                paths: HashMap::new(),
                shown: snapshots.iter().map(|s| s.id).collect(),
                checked: Instant::now(),
            }),
            cache: BlobCache::new(BLOB_CACHE),
            owner,
            opts: opts.clone(),
        };
        fs.build(snapshots);
        fs
    }

    fn repo(&self) -> Arc<Repository> {
        self.repo.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// List the snapshots again if the last look is a minute old; when they changed, load
    /// the index again (their data is in packs it did not know) and lay them out anew. A
    /// failed look keeps what is served, until the next minute.
    fn reload(&self) {
        let mut view = self.view.lock().unwrap_or_else(|e| e.into_inner());
        if view.checked.elapsed() < RELOAD_AFTER {
            return;
        }
        view.checked = Instant::now();
        let repo = self.repo();
        let Ok(all) = self.rt.block_on(arca_engine::snapshots::load_all(&repo)) else {
            return;
        };
        let snapshots: Vec<Snapshot> = all
            .into_iter()
            .filter(|s| self.opts.filter.matches(s))
            .collect();
        let shown: BTreeSet<Id> = snapshots.iter().map(|s| s.id).collect();
        if shown == view.shown {
            return;
        }
        let mut fresh = repo.detached();
        if self.rt.block_on(fresh.load_index(&NoProgress)).is_err() {
            return;
        }
        *self.repo.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
        view.shown = shown;
        drop(view);
        self.build(&snapshots);
    }

    fn add(&self, inodes: &mut Vec<Inode>, what: What, time: SystemTime) -> u64 {
        inodes.push(Inode {
            what,
            time,
            children: None,
            blobs: None,
        });
        inodes.len() as u64
    }

    /// Lay out `snapshots`. A path laid out before keeps its inode when it still shows the
    /// same kind of thing (a snapshot folder: the same tree); folders get their new names.
    fn build(&self, snapshots: &[Snapshot]) {
        let now = SystemTime::now();
        let layout = Layout::new(snapshots, &self.opts.templates);
        let mut inodes = self.inodes.lock().unwrap_or_else(|e| e.into_inner());
        let mut view = self.view.lock().unwrap_or_else(|e| e.into_inner());
        // Paths in order put every folder (the mount point, "", first) before what it
        // holds: number them all first.
        let mut paths = HashMap::with_capacity(layout.entries.len());
        for (path, entry) in &layout.entries {
            let sn = entry.snapshot.map(|i| &snapshots[i]);
            let (what, time) = match (sn, &entry.link) {
                (Some(sn), Some(link)) => {
                    (What::Link(link.clone().into_bytes()), go_time(&sn.time))
                }
                (Some(sn), None) => (What::Snapshot(sn.tree), go_time(&sn.time)),
                (None, _) => (What::Folder, now),
            };
            let same = view.paths.get(path).copied().filter(|&ino| {
                match (&inodes[ino as usize - 1].what, &what) {
                    (What::Folder, What::Folder) | (What::Link(_), What::Link(_)) => true,
                    (What::Snapshot(a), What::Snapshot(b)) => a == b,
                    _ => false,
                }
            });
            let ino = match same {
                // A folder keeps its time; a link may point elsewhere now.
                Some(ino) if matches!(what, What::Folder) => ino,
                Some(ino) => {
                    let old = &mut inodes[ino as usize - 1];
                    (old.what, old.time) = (what, time);
                    ino
                }
                None => self.add(&mut inodes, what, time),
            };
            paths.insert(path.as_str(), ino);
        }
        for (path, entry) in &layout.entries {
            if entry.snapshot.is_some() {
                continue;
            }
            let children = entry
                .names
                .iter()
                .map(|n| {
                    (
                        n.clone().into_bytes(),
                        paths[format!("{path}/{n}").as_str()],
                    )
                })
                .collect();
            inodes[paths[path.as_str()] as usize - 1].children = Some(sorted(children));
        }
        view.paths = paths
            .into_iter()
            .map(|(p, ino)| (p.to_owned(), ino))
            .collect();
    }

    /// The children of folder `ino`, loading its tree the first time; a folder above the
    /// snapshots may look for new ones first.
    fn children(&self, ino: u64) -> Result<Children, Errno> {
        let above = {
            let inodes = self.inodes.lock().unwrap_or_else(|e| e.into_inner());
            let node = ino.checked_sub(1).and_then(|i| inodes.get(i as usize));
            matches!(node.map(|n| &n.what), Some(What::Folder))
        };
        if above {
            self.reload();
        }
        let tree_id = {
            let inodes = self.inodes.lock().unwrap_or_else(|e| e.into_inner());
            let node = inodes.get(ino as usize - 1).ok_or(Errno::ENOENT)?;
            if let Some(c) = &node.children {
                return Ok(c.clone());
            }
            match &node.what {
                What::Snapshot(id) => *id,
                What::Item(n) if n.node_type == NodeType::Dir => n.subtree.ok_or(Errno::EIO)?,
                _ => return Err(Errno::ENOTDIR),
            }
        };
        let tree = self
            .rt
            .block_on(self.repo().load_tree(&tree_id))
            .map_err(|_| Errno::EIO)?;
        let mut inodes = self.inodes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = &inodes[ino as usize - 1].children {
            return Ok(c.clone());
        }
        let mut children = Vec::with_capacity(tree.nodes.len());
        for node in tree.nodes {
            let name = node.name.clone();
            let time = go_time(&node.mtime);
            let child = self.add(&mut inodes, What::Item(Box::new(node)), time);
            children.push((name, child));
        }
        let children = sorted(children);
        inodes[ino as usize - 1].children = Some(children.clone());
        Ok(children)
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let inodes = self.inodes.lock().unwrap_or_else(|e| e.into_inner());
        let node = inodes.get(ino.checked_sub(1)? as usize)?;
        let t = node.time;
        let mut a = FileAttr {
            ino: INodeNo(ino),
            size: 0,
            blocks: 0,
            atime: t,
            mtime: t,
            ctime: t,
            crtime: t,
            kind: FileType::Directory,
            perm: 0o555,
            nlink: 1,
            uid: self.owner.0,
            gid: self.owner.1,
            rdev: 0,
            flags: 0,
            blksize: 512,
        };
        match &node.what {
            What::Folder => {}
            What::Link(target) => {
                a.kind = FileType::Symlink;
                a.perm = 0o777;
                a.size = target.len() as u64;
                (a.uid, a.gid) = (0, 0);
            }
            What::Snapshot(_) => {
                a.nlink = 2;
                (a.uid, a.gid) = (0, 0);
            }
            What::Item(n) => {
                a.kind = match n.node_type {
                    NodeType::Dir => FileType::Directory,
                    NodeType::Symlink => FileType::Symlink,
                    NodeType::Dev => FileType::BlockDevice,
                    NodeType::Chardev => FileType::CharDevice,
                    NodeType::Fifo => FileType::NamedPipe,
                    NodeType::Socket => FileType::Socket,
                    _ => FileType::RegularFile,
                };
                // Go keeps setuid, setgid and sticky apart from the permission bits.
                a.perm = (arca_format::tree::unix_mode_from_go(n.mode) & 0o7777) as u16;
                a.uid = n.uid;
                a.gid = n.gid;
                a.size = match n.node_type {
                    NodeType::Symlink => n.link_target_bytes().len() as u64,
                    _ => n.size,
                };
                a.blocks = a.size.div_ceil(512);
                a.rdev = n.device as u32;
                a.atime = go_time(&n.atime);
                a.ctime = go_time(&n.ctime);
                a.nlink = match n.node_type {
                    NodeType::Dir => 2,
                    _ => n.links.max(1) as u32,
                };
            }
        }
        Some(a)
    }

    fn blobs(&self, ino: u64) -> Result<Arc<FileBlobs>, Errno> {
        let mut inodes = self.inodes.lock().unwrap_or_else(|e| e.into_inner());
        let node = inodes.get_mut(ino as usize - 1).ok_or(Errno::ENOENT)?;
        if let Some(b) = &node.blobs {
            return Ok(b.clone());
        }
        let What::Item(n) = &node.what else {
            return Err(Errno::EISDIR);
        };
        let content = n.content.clone().unwrap_or_default();
        let blobs = Arc::new(FileBlobs::new(&self.repo(), &content).ok_or(Errno::EIO)?);
        node.blobs = Some(blobs.clone());
        Ok(blobs)
    }

    /// The extended attributes stored with item `ino` (none above the snapshots).
    fn xattrs(&self, ino: u64) -> Vec<(String, Vec<u8>)> {
        let inodes = self.inodes.lock().unwrap_or_else(|e| e.into_inner());
        match inodes.get(ino as usize - 1).map(|n| &n.what) {
            Some(What::Item(n)) => n
                .extended_attributes
                .iter()
                .map(|a| (a.name.clone(), a.value.clone()))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn read_at(&self, ino: u64, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let blobs = self.blobs(ino)?;
        let mut out = Vec::with_capacity(size as usize);
        for (id, from, to) in blobs.span(offset, u64::from(size)) {
            let blob = match self.cache.get(&id) {
                Some(b) => b,
                None => {
                    let b = self
                        .rt
                        .block_on(self.repo().read_blob(BlobType::Data, &id))
                        .map_err(|_| Errno::EIO)?;
                    let b = Arc::new(b);
                    self.cache.put(id, b.clone());
                    b
                }
            };
            out.extend_from_slice(blob.get(from..to).ok_or(Errno::EIO)?);
        }
        Ok(out)
    }
}

impl Filesystem for RepoFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let children = match self.children(parent.into()) {
            Ok(c) => c,
            Err(e) => return reply.error(e),
        };
        let found = children
            .binary_search_by(|(n, _)| n.as_slice().cmp(name.as_bytes()))
            .ok()
            .and_then(|i| self.attr(children[i].1));
        match found {
            Some(a) => reply.entry(&TTL, &a, fuser::Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr(ino.into()) {
            Some(a) => reply.attr(&TTL, &a),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let inodes = self.inodes.lock().unwrap_or_else(|e| e.into_inner());
        match inodes.get(u64::from(ino) as usize - 1).map(|n| &n.what) {
            Some(What::Link(t)) => reply.data(t),
            Some(What::Item(n)) if n.node_type == NodeType::Symlink => {
                reply.data(n.link_target_bytes())
            }
            _ => reply.error(Errno::EINVAL),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.read_at(ino.into(), offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let found = self
            .xattrs(ino.into())
            .into_iter()
            .find(|(n, _)| n.as_bytes() == name.as_bytes());
        match found {
            None => reply.error(Errno::ENODATA),
            Some((_, v)) => xattr_reply(reply, size, &v),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        // Names, each ended by a NUL.
        let mut list = Vec::new();
        for (n, _) in self.xattrs(ino.into()) {
            list.extend_from_slice(n.as_bytes());
            list.push(0);
        }
        xattr_reply(reply, size, &list);
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let children = match self.children(ino.into()) {
            Ok(c) => c,
            Err(e) => return reply.error(e),
        };
        let mut entries = vec![
            (u64::from(ino), FileType::Directory, b".".to_vec()),
            (u64::from(ino), FileType::Directory, b"..".to_vec()),
        ];
        for (name, child) in children.iter().cloned() {
            let kind = self.attr(child).map_or(FileType::RegularFile, |a| a.kind);
            entries.push((child, kind, name));
        }
        for (i, (child, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(
                INodeNo(child),
                (i + 1) as u64,
                kind,
                OsStr::from_bytes(&name),
            ) {
                break;
            }
        }
        reply.ok();
    }
}

/// FUSE's protocol for attribute values and lists: the length when asked with size 0,
/// the bytes when they fit, ERANGE when they do not.
fn xattr_reply(reply: ReplyXattr, size: u32, data: &[u8]) {
    if size == 0 {
        reply.size(data.len() as u32);
    } else if data.len() <= size as usize {
        reply.data(data);
    } else {
        reply.error(Errno::ERANGE);
    }
}
