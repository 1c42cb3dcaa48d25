//! The restore target as an open directory, and every change restore makes inside it, made
//! relative to that handle and never through a symbolic link.
//!
//! A path inside the target is resolved by the kernel beneath the target's handle with no
//! symbolic link allowed on the way (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`;
//! on kernels before 5.6, one `openat(O_NOFOLLOW)` per component). The last component is
//! then created, opened or removed relative to its parent's handle, also without following
//! it. So a folder swapped for a symbolic link while restore runs (by a tenant sharing the
//! volume, say) makes the item fail with an error; nothing is written, created, changed or
//! removed outside the target.

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once `openat2` turns out to be missing (ENOSYS): resolve component by component.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

pub(super) struct Target {
    root: PathBuf,
    dir: OwnedFd,
    /// Whether an item of the snapshot may replace a directory that has contents
    /// (`--delete`); otherwise only an empty one is replaced.
    replace_folders: bool,
}

impl Target {
    /// Create the target if it does not exist (private, 0700, as restic does) and open it.
    /// The target's own path is the user's to choose and may pass through symbolic links.
    pub fn create(root: &Path) -> io::Result<Target> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)?;
        let dir = rustix::fs::open(
            root,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Target {
            root: root.to_path_buf(),
            dir,
            replace_folders: false,
        })
    }

    /// The same target, letting items replace directories with contents or not.
    pub fn replacing_folders(self, yes: bool) -> Target {
        Target {
            replace_folders: yes,
            ..self
        }
    }

    pub fn replaces_folders(&self) -> bool {
        self.replace_folders
    }

    /// Open the target if it exists (for a dry run, which creates nothing).
    pub fn open_existing(root: &Path) -> io::Result<Option<Target>> {
        match rustix::fs::open(
            root,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(dir) => Ok(Some(Target {
                root: root.to_path_buf(),
                dir,
                replace_folders: false,
            })),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The full path of `rel`, for messages.
    pub fn shown(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }

    /// Open `rel` (relative, no `..`) beneath the target with `flags`, no symbolic link
    /// followed on the way; the last component is not followed either.
    fn open_beneath(&self, rel: &Path, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        if !NO_OPENAT2.load(Ordering::Relaxed) {
            let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS;
            match rustix::fs::openat2(&self.dir, rel, flags, mode, resolve) {
                Err(rustix::io::Errno::NOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
                other => return Ok(other?),
            }
        }
        let (parent, name) = self.walk_parent(rel)?;
        Ok(rustix::fs::openat(&parent, name, flags, mode)?)
    }

    /// The fallback resolution: the parent of `rel` opened one component at a time.
    fn walk_parent<'a>(&self, rel: &'a Path) -> io::Result<(OwnedFd, &'a OsStr)> {
        let names = components(rel)?;
        let (last, dirs) = names.split_last().ok_or_else(not_beneath)?;
        let mut cur = rustix::io::dup(&self.dir)?;
        for d in dirs {
            cur = rustix::fs::openat(
                &cur,
                *d,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
        }
        Ok((cur, last))
    }

    /// The folder holding `rel`, opened beneath the target, and `rel`'s last name.
    pub fn parent<'a>(&self, rel: &'a Path) -> io::Result<(OwnedFd, &'a OsStr)> {
        let name = rel.file_name().ok_or_else(not_beneath)?;
        let dir = match rel.parent() {
            Some(p) if !p.as_os_str().is_empty() => {
                self.open_beneath(p, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())?
            }
            _ => rustix::io::dup(&self.dir)?,
        };
        Ok((dir, name))
    }

    /// A handle on the item `rel` itself (`O_PATH`), whatever its kind.
    pub fn handle(&self, rel: &Path) -> io::Result<OwnedFd> {
        self.open_beneath(rel, OFlags::PATH, Mode::empty())
    }

    /// What is at `rel`, not following it; `None` when nothing is.
    pub fn lstat(&self, rel: &Path) -> io::Result<Option<rustix::fs::Stat>> {
        let (dir, name) = self.parent(rel)?;
        match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Create (or truncate) the regular file `rel`, private until its metadata is set.
    pub fn create_file(&self, rel: &Path) -> io::Result<fs::File> {
        let fd = self.open_beneath(
            rel,
            OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC,
            Mode::from_raw_mode(0o600),
        )?;
        Ok(fd.into())
    }

    /// Open the existing regular file `rel` for writing.
    pub fn open_write(&self, rel: &Path) -> io::Result<fs::File> {
        Ok(self
            .open_beneath(rel, OFlags::WRONLY, Mode::empty())?
            .into())
    }

    /// Open the regular file `rel` for reading.
    pub fn open_read(&self, rel: &Path) -> io::Result<fs::File> {
        Ok(self
            .open_beneath(rel, OFlags::RDONLY, Mode::empty())?
            .into())
    }

    /// Make the directory `rel`, private until its metadata is set.
    pub fn mkdir(&self, rel: &Path) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        Ok(rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o700))?)
    }

    /// Remove the item `rel`: a directory (only if empty) with `dir`, anything else without.
    pub fn remove(&self, rel: &Path, dir: bool) -> io::Result<()> {
        let (parent, name) = self.parent(rel)?;
        let flags = if dir {
            AtFlags::REMOVEDIR
        } else {
            AtFlags::empty()
        };
        Ok(rustix::fs::unlinkat(&parent, name, flags)?)
    }

    /// The names in the directory `rel` (empty: the target itself), `.` and `..` left out.
    pub fn names(&self, rel: &Path) -> io::Result<Vec<OsString>> {
        let opened;
        let dir = if rel.as_os_str().is_empty() {
            self.dir.as_fd()
        } else {
            opened = self.open_beneath(rel, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty())?;
            opened.as_fd()
        };
        crate::sys::entry_names(dir)
    }

    /// Remove `rel` and everything below it, deepest first, never following a symbolic
    /// link; with `dry_run` only count. Gives how many items went (or would go). The walk
    /// keeps its own stack: a deep tree in the target cannot exhaust the thread's.
    pub fn remove_all(
        &self,
        rel: &Path,
        dry_run: bool,
        removed: &mut dyn FnMut(&Path),
    ) -> io::Result<u64> {
        let mut count = 0;
        let mut stack = vec![(rel.to_path_buf(), false)];
        while let Some((path, listed)) = stack.pop() {
            let Some(st) = self.lstat(&path)? else {
                continue;
            };
            let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
            if is_dir && !listed {
                let names = self.names(&path)?;
                stack.push((path.clone(), true));
                stack.extend(names.into_iter().map(|n| (path.join(n), false)));
                continue;
            }
            if !dry_run {
                self.remove(&path, is_dir)?;
            }
            removed(&path);
            count += 1;
        }
        Ok(count)
    }

    pub fn symlink(&self, rel: &Path, points_to: &OsStr) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        Ok(rustix::fs::symlinkat(points_to, &dir, name)?)
    }

    /// A FIFO or device node (`kind` is `S_IFIFO`, `S_IFBLK` or `S_IFCHR`), private.
    pub fn mknod(&self, rel: &Path, kind: libc::mode_t, dev: u64) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        let file_type = rustix::fs::FileType::from_raw_mode(kind);
        Ok(rustix::fs::mknodat(
            &dir,
            name,
            file_type,
            Mode::from_raw_mode(0o600),
            dev as rustix::fs::Dev,
        )?)
    }

    /// A further name `rel` for the file at `first` (both inside the target).
    pub fn hard_link(&self, first: &Path, rel: &Path) -> io::Result<()> {
        let (from_dir, from_name) = self.parent(first)?;
        let (to_dir, to_name) = self.parent(rel)?;
        Ok(rustix::fs::linkat(
            &from_dir,
            from_name,
            &to_dir,
            to_name,
            AtFlags::empty(),
        )?)
    }
}

/// The names of a relative path; `..`, a root or a prefix is refused (restore's plan never
/// makes one, but nothing here relies on that).
fn components(rel: &Path) -> io::Result<Vec<&OsStr>> {
    rel.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(not_beneath()),
        })
        .collect()
}

fn not_beneath() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "path does not name an item beneath the target",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Target, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let target = Target::create(&t.path().join("target")).unwrap();
        (t, target, outside)
    }

    #[test]
    fn nothing_is_made_through_a_symlinked_folder() {
        let (_t, target, outside) = setup();
        std::os::unix::fs::symlink(&outside, target.shown(Path::new("d"))).unwrap();
        let inside = Path::new("d/x");
        assert!(target.create_file(inside).is_err());
        assert!(target.mkdir(inside).is_err());
        assert!(target.symlink(inside, OsStr::new("/")).is_err());
        assert!(target.mknod(inside, libc::S_IFIFO, 0).is_err());
        assert!(target.lstat(inside).is_err());
        fs::write(outside.join("y"), "outside").unwrap();
        assert!(target.remove(Path::new("d/y"), false).is_err());
        assert!(target.open_read(Path::new("d/y")).is_err());
        let left: Vec<_> = fs::read_dir(&outside).unwrap().collect();
        assert_eq!(left.len(), 1, "only the test's own file is outside");
    }

    #[test]
    fn the_fallback_walk_refuses_symlinked_folders_too() {
        let (_t, target, outside) = setup();
        fs::create_dir(target.shown(Path::new("a"))).unwrap();
        std::os::unix::fs::symlink(&outside, target.shown(Path::new("a/d"))).unwrap();
        assert!(target.walk_parent(Path::new("a/d/x")).is_err());
        assert!(target.walk_parent(Path::new("a/../x")).is_err());
        let (_, name) = target.walk_parent(Path::new("a/x")).unwrap();
        assert_eq!(name, "x");
    }

    #[test]
    fn items_are_made_where_asked() {
        let (_t, target, _) = setup();
        target.mkdir(Path::new("d")).unwrap();
        drop(target.create_file(Path::new("d/f")).unwrap());
        target.symlink(Path::new("d/l"), OsStr::new("f")).unwrap();
        target
            .hard_link(Path::new("d/f"), Path::new("d/h"))
            .unwrap();
        let st = target.lstat(Path::new("d/l")).unwrap().unwrap();
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFLNK);
        assert_eq!(target.lstat(Path::new("d/f")).unwrap().unwrap().st_nlink, 2);
        assert!(target.lstat(Path::new("d/none")).unwrap().is_none());
        target.remove(Path::new("d/l"), false).unwrap();
        assert!(target.remove(Path::new("d"), true).is_err(), "not empty");
    }

    #[test]
    fn remove_all_takes_a_tree_and_nothing_a_link_points_to() {
        let (_t, target, outside) = setup();
        fs::write(outside.join("keep"), "outside").unwrap();
        fs::create_dir_all(target.shown(Path::new("d/e/f"))).unwrap();
        fs::write(target.shown(Path::new("d/e/f/x")), "x").unwrap();
        std::os::unix::fs::symlink(&outside, target.shown(Path::new("d/link"))).unwrap();
        let mut names = target.names(Path::new("d")).unwrap();
        names.sort();
        assert_eq!(names, ["e", "link"]);
        let mut seen = Vec::new();
        let n = target.remove_all(Path::new("d"), true, &mut |p| seen.push(p.to_owned()));
        assert_eq!(n.unwrap(), 5);
        assert_eq!(
            seen.last().unwrap(),
            Path::new("d"),
            "deepest first: {seen:?}"
        );
        assert!(
            target.lstat(Path::new("d/e/f/x")).unwrap().is_some(),
            "a dry run"
        );
        assert_eq!(
            target
                .remove_all(Path::new("d"), false, &mut |_| ())
                .unwrap(),
            5
        );
        assert!(target.lstat(Path::new("d")).unwrap().is_none());
        assert!(
            outside.join("keep").exists(),
            "the link was removed, not followed"
        );
        assert_eq!(target.names(Path::new("")).unwrap(), Vec::<OsString>::new());
    }
}
