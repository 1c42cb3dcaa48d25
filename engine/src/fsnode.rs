//! Tree nodes from file-system metadata, field for field as restic fills them,
//! so that trees of the same directory are byte-identical to restic's.

use arca_format::gotime::GoTime;
use arca_format::tree::{go_mode_from_unix, ExtendedAttribute, Node, NodeType};
use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;

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

pub fn node_type(md: &Metadata) -> NodeType {
    let ft = md.mode() & libc::S_IFMT;
    match ft {
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

/// Build the node for `path` (already lstat'ed into `md`). Content and subtree are
/// left for the caller. Errors reading the link target or xattrs are returned.
pub fn node_from_metadata(
    path: &Path,
    md: &Metadata,
    with_atime: bool,
    names: &NameCache,
) -> std::io::Result<Node> {
    let name = path
        .file_name()
        .map(|n| n.as_bytes().to_vec())
        .unwrap_or_default();
    let t = node_type(md);
    let mut n = Node::new(name, t.clone());
    n.mode = go_mode_from_unix(md.mode());
    n.mtime = GoTime::from_unix(md.mtime(), md.mtime_nsec() as u32);
    n.atime = if with_atime {
        GoTime::from_unix(md.atime(), md.atime_nsec() as u32)
    } else {
        n.mtime
    };
    n.ctime = GoTime::from_unix(md.ctime(), md.ctime_nsec() as u32);
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
            let target = std::fs::read_link(path)?;
            n.set_link_target(target.as_os_str().as_bytes());
            n.links = md.nlink();
        }
        NodeType::Dev | NodeType::Chardev => {
            n.device = md.rdev();
            n.links = md.nlink();
        }
        _ => {}
    }
    n.extended_attributes = read_xattrs(path);
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
