//! Owner, mode, extended attributes and times of a restored item, set on the item itself and
//! never through a symbolic link.
//!
//! The item is opened with `O_PATH | O_NOFOLLOW` beneath the target (no symbolic link on the
//! way either, see `target`) and checked to be of the kind restored there; everything is then
//! set through `/proc/self/fd/N`, which names that very inode. So a symbolic link found (or
//! swapped in) where a directory or file was restored, or on the way to it, is reported, not
//! followed out of the target. Symbolic links themselves get the calls that act on the link
//! (`fchownat`, `lsetxattr`, `utimensat` with `AT_SYMLINK_NOFOLLOW`), relative to their
//! folder's handle.

use super::target::Target;
use arca_format::tree::{unix_mode_from_go, Node, NodeType};
use rustix::fs::{AtFlags, Timespec, Timestamps};
use std::ffi::CString;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The extended attribute holding a file's capabilities.
const CAPABILITY_XATTR: &str = "security.capability";

/// Ownership (as root), mode, extended attributes and times, in that order (chown clears
/// setuid bits, so mode comes after it). Without `privileged`, setuid and setgid bits of
/// non-directories and file capabilities are left out. Problems are added to `errors`.
pub(super) fn set_metadata(
    target: &Target,
    rel: &Path,
    node: &Node,
    privileged: bool,
    errors: &mut Vec<String>,
) {
    let path = target.shown(rel);
    let result = if node.node_type == NodeType::Symlink {
        set_on_link(target, rel, &path, node, errors)
    } else {
        set_on_inode(target, rel, &path, node, privileged, errors)
    };
    if let Err(e) = result {
        errors.push(format!("{}: {e}", path.display()));
    }
}

fn set_on_inode(
    target: &Target,
    rel: &Path,
    path: &Path,
    node: &Node,
    privileged: bool,
    errors: &mut Vec<String>,
) -> Result<(), String> {
    let handle = target.handle(rel).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            "a symbolic link is in its place or on the way to it; not following it".to_string()
        } else {
            format!("cannot open to set metadata: {e}")
        }
    })?;
    let kind = file_kind(&handle).map_err(|e| format!("stat: {e}"))?;
    if kind != expected_kind(&node.node_type) {
        return Err(if kind == libc::S_IFLNK {
            "is a symbolic link, not what was restored there; not following it".to_string()
        } else {
            "is not what was restored there; its metadata is left alone".to_string()
        });
    }
    let inode = PathBuf::from(format!("/proc/self/fd/{}", handle.as_raw_fd()));
    let say = |what: &str, e: std::io::Error| format!("{}: {what}: {e}", path.display());
    if crate::sys::is_root() {
        if let Err(e) = std::os::unix::fs::chown(&inode, Some(node.uid), Some(node.gid)) {
            errors.push(say("chown", e));
        }
    }
    use std::os::unix::fs::PermissionsExt;
    let mut mode = unix_mode_from_go(node.mode);
    if !privileged && node.node_type != NodeType::Dir {
        mode &= !(libc::S_ISUID | libc::S_ISGID);
    }
    if let Err(e) = fs::set_permissions(&inode, fs::Permissions::from_mode(mode)) {
        errors.push(say("chmod", e));
    }
    for xa in &node.extended_attributes {
        if !privileged && xa.name == CAPABILITY_XATTR {
            continue;
        }
        if let Err(e) = xattr::set_deref(&inode, &xa.name, &xa.value) {
            errors.push(say(&format!("setxattr {}", xa.name), e));
        }
    }
    if let Err(e) = set_times(&inode, node) {
        errors.push(say("set times", e));
    }
    Ok(())
}

fn set_on_link(
    target: &Target,
    rel: &Path,
    path: &Path,
    node: &Node,
    errors: &mut Vec<String>,
) -> Result<(), String> {
    let (dir, name) = target
        .parent(rel)
        .map_err(|e| format!("cannot set metadata: {e}"))?;
    let st = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| format!("cannot set metadata: {e}"))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFLNK {
        return Err("is not the symbolic link restored there; its metadata is left alone".into());
    }
    let say = |what: &str, e: std::io::Error| format!("{}: {what}: {e}", path.display());
    if crate::sys::is_root() {
        let (uid, gid) = (
            rustix::fs::Uid::from_raw(node.uid),
            rustix::fs::Gid::from_raw(node.gid),
        );
        if let Err(e) =
            rustix::fs::chownat(&dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)
        {
            errors.push(say("lchown", e.into()));
        }
    }
    // The link by its folder's handle: /proc/self/fd/N names that folder, and the link in
    // it is not followed (lsetxattr).
    let link = PathBuf::from(format!("/proc/self/fd/{}", dir.as_fd().as_raw_fd())).join(name);
    for xa in &node.extended_attributes {
        if let Err(e) = xattr::set(&link, &xa.name, &xa.value) {
            errors.push(say(&format!("setxattr {}", xa.name), e));
        }
    }
    if let Err(e) = rustix::fs::utimensat(&dir, name, &timestamps(node), AtFlags::SYMLINK_NOFOLLOW)
    {
        errors.push(say("set times", e.into()));
    }
    Ok(())
}

fn expected_kind(t: &NodeType) -> libc::mode_t {
    match t {
        NodeType::Dir => libc::S_IFDIR,
        NodeType::Symlink => libc::S_IFLNK,
        NodeType::Fifo => libc::S_IFIFO,
        NodeType::Dev => libc::S_IFBLK,
        NodeType::Chardev => libc::S_IFCHR,
        NodeType::Socket => libc::S_IFSOCK,
        _ => libc::S_IFREG,
    }
}

fn file_kind(fd: &OwnedFd) -> std::io::Result<libc::mode_t> {
    Ok(rustix::fs::fstat(fd)?.st_mode & libc::S_IFMT)
}

fn timestamps(node: &Node) -> Timestamps {
    let ts = |secs: i64, nanos: u32| Timespec {
        tv_sec: secs as _,
        tv_nsec: nanos as _,
    };
    Timestamps {
        last_access: ts(node.atime.unix_secs(), node.atime.unix_nanos_part()),
        last_modification: ts(node.mtime.unix_secs(), node.mtime.unix_nanos_part()),
    }
}

/// `utimensat` on `/proc/self/fd/N` with the node's access and modification times (a FIFO
/// or device is never opened for it, which could block or act on a device).
fn set_times(inode: &Path, node: &Node) -> std::io::Result<()> {
    let c = CString::new(inode.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path contains NUL"))?;
    Ok(rustix::fs::utimensat(
        rustix::fs::CWD,
        c.as_c_str(),
        &timestamps(node),
        AtFlags::empty(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir_node(mode: u32) -> Node {
        let mut n = Node::new(b"a".to_vec(), NodeType::Dir);
        let t = arca_format::gotime::GoTime::from_unix(1_000_000_000, 5);
        (n.mtime, n.atime) = (t, t);
        n.mode = arca_format::tree::go_mode_from_unix(libc::S_IFDIR | mode);
        n
    }

    #[test]
    fn a_symlink_where_a_directory_was_restored_is_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o700)).unwrap();
        let target = Target::create(&t.path().join("target")).unwrap();
        std::os::unix::fs::symlink(&outside, target.shown(Path::new("a"))).unwrap();

        let mut errors = Vec::new();
        set_metadata(
            &target,
            Path::new("a"),
            &dir_node(0o2777),
            true,
            &mut errors,
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("symbolic link"), "{errors:?}");
        let mode = fs::metadata(&outside).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700, "the folder outside the target was changed");
    }

    #[test]
    fn without_privilege_setuid_and_setgid_files_lose_those_bits() {
        let t = tempfile::tempdir().unwrap();
        let target = Target::create(t.path()).unwrap();
        let (f, d) = (t.path().join("f"), t.path().join("d"));
        fs::write(&f, "x").unwrap();
        fs::create_dir(&d).unwrap();
        let mut file = Node::new(b"f".to_vec(), NodeType::File);
        file.mode = arca_format::tree::go_mode_from_unix(libc::S_IFREG | 0o6755);
        let mut errors = Vec::new();
        set_metadata(&target, Path::new("f"), &file, false, &mut errors);
        set_metadata(
            &target,
            Path::new("d"),
            &dir_node(0o2775),
            false,
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&f), 0o755, "setuid and setgid dropped");
        assert_eq!(
            mode(&d),
            0o2775,
            "a directory's setgid (group inheritance) stays"
        );
        set_metadata(&target, Path::new("f"), &file, true, &mut errors);
        assert_eq!(mode(&f), 0o6755, "kept when privileged files are asked for");
    }

    #[test]
    fn a_directory_gets_its_mode_and_times() {
        let t = tempfile::tempdir().unwrap();
        let target = Target::create(t.path()).unwrap();
        let d = t.path().join("a");
        fs::create_dir(&d).unwrap();
        let node = dir_node(0o751);
        let mut errors = Vec::new();
        set_metadata(&target, Path::new("a"), &node, true, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let md = fs::metadata(&d).unwrap();
        assert_eq!(md.permissions().mode() & 0o7777, 0o751);
        use std::os::unix::fs::MetadataExt;
        assert_eq!((md.mtime(), md.mtime_nsec()), (1_000_000_000, 5));
    }
}
