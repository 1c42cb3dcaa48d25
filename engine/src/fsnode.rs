//! Tree nodes from file-system metadata, field for field as restic fills them,
//! so that trees of the same directory are byte-identical to restic's.

use arca_format::gotime::GoTime;
use arca_format::tree::{go_mode_from_unix, ExtendedAttribute, Node, NodeType};
use rustix::fs::{AtFlags, OFlags};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where an item to back up is. Below a target: the handle of the folder it was listed in
/// and its name there, so every look at it (stat, open, link, attributes) is at that very
/// folder, and a folder on the way swapped for a symbolic link meanwhile leads nowhere
/// else. A target itself (the user's to choose): its path.
#[derive(Clone, Copy)]
pub struct Loc<'a> {
    /// The full path, for messages, selection and the snapshot.
    pub path: &'a Path,
    pub at: Option<(BorrowedFd<'a>, &'a OsStr)>,
}

impl Loc<'_> {
    /// The item's own status (never what a symbolic link points to).
    pub fn stat(&self) -> io::Result<FileStat> {
        Ok(FileStat(match self.at {
            Some((dir, name)) => rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?,
            None => rustix::fs::lstat(self.path)?,
        }))
    }

    /// Open the item itself with `flags`, never following a symbolic link.
    pub fn open(&self, flags: OFlags) -> io::Result<OwnedFd> {
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mode = rustix::fs::Mode::empty();
        Ok(match self.at {
            Some((dir, name)) => rustix::fs::openat(dir, name, flags, mode)?,
            None => rustix::fs::open(self.path, flags, mode)?,
        })
    }

    fn read_link(&self) -> io::Result<Vec<u8>> {
        let target = match self.at {
            Some((dir, name)) => rustix::fs::readlinkat(dir, name, Vec::new())?,
            None => rustix::fs::readlinkat(rustix::fs::CWD, self.path, Vec::new())?,
        };
        Ok(target.into_bytes())
    }

    /// A path naming the item for the calls that only take paths (extended attributes,
    /// which do not follow its last component): through `/proc/self/fd` for the folder.
    fn attribute_path(&self) -> PathBuf {
        match self.at {
            Some((dir, name)) => {
                PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name)
            }
            None => self.path.to_path_buf(),
        }
    }
}

/// An item's status as `lstat` gives it.
pub struct FileStat(pub rustix::fs::Stat);

// The fields' integer types differ between architectures (`st_nlink` is 32 bits on
// aarch64, for one): the casts are needed there, if not on x86_64.
#[allow(clippy::unnecessary_cast)]
impl FileStat {
    /// The status of `path`, following symbolic links (restic does for the folders above
    /// a target).
    pub fn following(path: &Path) -> io::Result<FileStat> {
        Ok(FileStat(rustix::fs::stat(path)?))
    }
    pub fn mode(&self) -> u32 {
        self.0.st_mode
    }
    pub fn kind(&self) -> u32 {
        self.0.st_mode & libc::S_IFMT
    }
    pub fn is_dir(&self) -> bool {
        self.kind() == libc::S_IFDIR
    }
    pub fn is_file(&self) -> bool {
        self.kind() == libc::S_IFREG
    }
    pub fn size(&self) -> u64 {
        self.0.st_size as u64
    }
    pub fn dev(&self) -> u64 {
        self.0.st_dev
    }
    pub fn ino(&self) -> u64 {
        self.0.st_ino
    }
    pub fn nlink(&self) -> u64 {
        self.0.st_nlink as u64
    }
    pub fn uid(&self) -> u32 {
        self.0.st_uid
    }
    pub fn gid(&self) -> u32 {
        self.0.st_gid
    }
    pub fn rdev(&self) -> u64 {
        self.0.st_rdev
    }
    pub fn mtime(&self) -> (i64, u32) {
        (self.0.st_mtime as i64, self.0.st_mtime_nsec as u32)
    }
    pub fn atime(&self) -> (i64, u32) {
        (self.0.st_atime as i64, self.0.st_atime_nsec as u32)
    }
    pub fn ctime(&self) -> (i64, u32) {
        (self.0.st_ctime as i64, self.0.st_ctime_nsec as u32)
    }
}

/// Caches uid/gid → name lookups (restic caches them too).
#[derive(Default)]
pub struct NameCache {
    users: Mutex<HashMap<u32, String>>,
    groups: Mutex<HashMap<u32, String>>,
}

impl NameCache {
    pub fn user(&self, uid: u32) -> String {
        let mut m = self.users.lock().expect("name cache");
        m.entry(uid)
            .or_insert_with(|| crate::sys::user_name(uid).unwrap_or_default())
            .clone()
    }
    pub fn group(&self, gid: u32) -> String {
        let mut m = self.groups.lock().expect("name cache");
        m.entry(gid)
            .or_insert_with(|| crate::sys::group_name(gid).unwrap_or_default())
            .clone()
    }
}

pub fn node_type(md: &FileStat) -> NodeType {
    match md.kind() {
        libc::S_IFREG => NodeType::File,
        libc::S_IFDIR => NodeType::Dir,
        libc::S_IFLNK => NodeType::Symlink,
        libc::S_IFBLK => NodeType::Dev,
        libc::S_IFCHR => NodeType::Chardev,
        libc::S_IFIFO => NodeType::Fifo,
        libc::S_IFSOCK => NodeType::Socket,
        _ => NodeType::Irregular,
    }
}

/// Build the node for the item at `loc` (already lstat'ed into `md`). Content and subtree
/// are left for the caller. Errors reading the link target are returned.
pub fn node_from_metadata(
    loc: &Loc,
    md: &FileStat,
    with_atime: bool,
    names: &NameCache,
) -> std::io::Result<Node> {
    let name = loc
        .path
        .file_name()
        .map(|n| n.as_bytes().to_vec())
        .unwrap_or_default();
    let t = node_type(md);
    let mut n = Node::new(name, t.clone());
    n.mode = go_mode_from_unix(md.mode());
    let at = |(secs, nanos): (i64, u32)| GoTime::from_unix(secs, nanos);
    n.mtime = at(md.mtime());
    n.atime = if with_atime { at(md.atime()) } else { n.mtime };
    n.ctime = at(md.ctime());
    n.uid = md.uid();
    n.gid = md.gid();
    n.user = names.user(md.uid());
    n.group = names.group(md.gid());
    n.inode = md.ino();
    n.device_id = md.dev();
    match t {
        NodeType::File => {
            n.size = md.size();
            n.links = md.nlink();
        }
        NodeType::Symlink => {
            n.set_link_target(&loc.read_link()?);
            n.links = md.nlink();
        }
        NodeType::Dev | NodeType::Chardev => {
            n.device = md.rdev();
            n.links = md.nlink();
        }
        _ => {}
    }
    n.extended_attributes = read_xattrs(&loc.attribute_path());
    Ok(n)
}

/// Extended attributes in the order the kernel lists them; unsupported file systems
/// simply have none.
fn read_xattrs(path: &Path) -> Vec<ExtendedAttribute> {
    let Ok(names) = xattr::list(path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in names {
        if let Ok(Some(value)) = xattr::get(path, &name) {
            out.push(ExtendedAttribute {
                name: name.to_string_lossy().into_owned(),
                value,
            });
        }
    }
    out
}
