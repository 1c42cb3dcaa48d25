//! Comparing two directory trees: names, types, contents, modes, times, link targets, hard links.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What [`compare_trees_with`] checks beyond names, types, contents and symlink targets (which
/// it always checks). [`Default`] checks everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompareOptions {
    /// Permission bits (`mode & 0o7777`) of everything but symlinks.
    pub mode: bool,
    /// mtime (seconds and nanoseconds) of regular files and other non-directories (not symlinks).
    pub file_mtime: bool,
    /// mtime of directories (restic restores them; a tool that does not can turn this off).
    pub dir_mtime: bool,
    /// Compare mode and mtime of the two roots too (not only of what is inside them).
    pub root_metadata: bool,
    /// Names that share an inode in one tree share one in the other, and no others do.
    pub hardlinks: bool,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            mode: true,
            file_mtime: true,
            dir_mtime: true,
            root_metadata: true,
            hardlinks: true,
        }
    }
}

/// [`compare_trees_with`] with [`CompareOptions::default`] (everything checked).
pub fn compare_trees(a: &Path, b: &Path) -> Result<(), String> {
    compare_trees_with(a, b, &CompareOptions::default())
}

/// Compare the trees under `a` and `b`; `Err` holds one line per difference (paths relative to
/// the roots, `{:?}`-quoted so odd bytes are visible), see [`tree_differences`].
pub fn compare_trees_with(a: &Path, b: &Path, opts: &CompareOptions) -> Result<(), String> {
    let diffs = tree_differences(a, b, opts);
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} difference(s) between {} (a) and {} (b):\n{}",
            diffs.len(),
            a.display(),
            b.display(),
            diffs.join("\n")
        ))
    }
}

/// Every difference between the trees under `a` and `b`, one readable line each, in path order:
/// entries only on one side, file type, contents (size or first differing offset), permission
/// bits, mtime (seconds and nanoseconds), symlink targets (bytes), device numbers, and hard-link
/// groups. Empty when the trees match.
pub fn tree_differences(a: &Path, b: &Path, opts: &CompareOptions) -> Vec<String> {
    let mut cmp = Comparer {
        a_root: a.to_path_buf(),
        b_root: b.to_path_buf(),
        opts: opts.clone(),
        diffs: Vec::new(),
        inodes_a: BTreeMap::new(),
        inodes_b: BTreeMap::new(),
    };
    cmp.entry(Path::new(""));
    if opts.hardlinks {
        cmp.hardlink_groups();
    }
    cmp.diffs
}

struct Comparer {
    a_root: PathBuf,
    b_root: PathBuf,
    opts: CompareOptions,
    diffs: Vec<String>,
    /// rel path -> (dev, ino) of regular files present on both sides.
    inodes_a: BTreeMap<PathBuf, (u64, u64)>,
    inodes_b: BTreeMap<PathBuf, (u64, u64)>,
}

fn show(rel: &Path) -> String {
    if rel.as_os_str().is_empty() {
        "\".\" (root)".to_owned()
    } else {
        format!("{rel:?}")
    }
}

fn kind(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "directory"
    } else if t.is_file() {
        "file"
    } else if t.is_symlink() {
        "symlink"
    } else if t.is_fifo() {
        "fifo"
    } else if t.is_socket() {
        "socket"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_char_device() {
        "char device"
    } else {
        "unknown"
    }
}

impl Comparer {
    fn diff(&mut self, rel: &Path, what: String) {
        self.diffs.push(format!("{}: {what}", show(rel)));
    }

    fn entry(&mut self, rel: &Path) {
        let pa = self.a_root.join(rel);
        let pb = self.b_root.join(rel);
        let (ma, mb) = match (fs::symlink_metadata(&pa), fs::symlink_metadata(&pb)) {
            (Ok(ma), Ok(mb)) => (ma, mb),
            (Err(e), _) => return self.diff(rel, format!("cannot stat in a: {e}")),
            (_, Err(e)) => return self.diff(rel, format!("cannot stat in b: {e}")),
        };
        let (ka, kb) = (kind(&ma), kind(&mb));
        if ka != kb {
            return self.diff(rel, format!("type {ka} in a, {kb} in b"));
        }
        let is_root = rel.as_os_str().is_empty();
        let ft = ma.file_type();
        let metadata = !is_root || self.opts.root_metadata;

        if metadata && self.opts.mode && !ft.is_symlink() {
            let (mode_a, mode_b) = (ma.mode() & 0o7777, mb.mode() & 0o7777);
            if mode_a != mode_b {
                self.diff(rel, format!("mode {mode_a:04o} in a, {mode_b:04o} in b"));
            }
        }
        let check_mtime = if ft.is_dir() {
            self.opts.dir_mtime
        } else {
            self.opts.file_mtime && !ft.is_symlink()
        };
        if metadata && check_mtime {
            let (ta, tb) = ((ma.mtime(), ma.mtime_nsec()), (mb.mtime(), mb.mtime_nsec()));
            if ta != tb {
                self.diff(
                    rel,
                    format!("mtime {}.{:09} in a, {}.{:09} in b", ta.0, ta.1, tb.0, tb.1),
                );
            }
        }

        if ft.is_dir() {
            self.directory(rel, &pa, &pb);
        } else if ft.is_file() {
            self.inodes_a
                .insert(rel.to_path_buf(), (ma.dev(), ma.ino()));
            self.inodes_b
                .insert(rel.to_path_buf(), (mb.dev(), mb.ino()));
            self.contents(rel, &pa, &pb, ma.len(), mb.len());
        } else if ft.is_symlink() {
            match (fs::read_link(&pa), fs::read_link(&pb)) {
                (Ok(ta), Ok(tb)) if ta == tb => {}
                (Ok(ta), Ok(tb)) => {
                    self.diff(rel, format!("symlink target {ta:?} in a, {tb:?} in b"))
                }
                (ra, rb) => self.diff(
                    rel,
                    format!("cannot read symlink: a {:?}, b {:?}", ra.err(), rb.err()),
                ),
            }
        } else if (ft.is_block_device() || ft.is_char_device()) && ma.rdev() != mb.rdev() {
            self.diff(
                rel,
                format!("device {:#x} in a, {:#x} in b", ma.rdev(), mb.rdev()),
            );
        }
    }

    fn directory(&mut self, rel: &Path, pa: &Path, pb: &Path) {
        let names = |dir: &Path| -> Result<BTreeSet<OsString>, String> {
            fs::read_dir(dir)
                .and_then(|it| it.map(|e| e.map(|e| e.file_name())).collect())
                .map_err(|e| e.to_string())
        };
        let (na, nb) = match (names(pa), names(pb)) {
            (Ok(na), Ok(nb)) => (na, nb),
            (ra, rb) => {
                return self.diff(
                    rel,
                    format!("cannot list: a {:?}, b {:?}", ra.err(), rb.err()),
                )
            }
        };
        // BTreeSet<OsString> orders by bytes on Unix: the report is in a stable path order.
        for name in na.union(&nb) {
            let child = rel.join(name);
            match (na.contains(name), nb.contains(name)) {
                (true, true) => self.entry(&child),
                (true, false) => self.diff(&child, "only in a".to_owned()),
                _ => self.diff(&child, "only in b".to_owned()),
            }
        }
    }

    fn contents(&mut self, rel: &Path, pa: &Path, pb: &Path, len_a: u64, len_b: u64) {
        if len_a != len_b {
            return self.diff(rel, format!("size {len_a} in a, {len_b} in b"));
        }
        match first_difference(pa, pb) {
            Ok(None) => {}
            Ok(Some(offset)) => self.diff(rel, format!("contents differ (first at byte {offset})")),
            Err(e) => self.diff(rel, format!("cannot read contents: {e}")),
        }
    }

    fn hardlink_groups(&mut self) {
        let groups = |inodes: &BTreeMap<PathBuf, (u64, u64)>| -> BTreeSet<Vec<PathBuf>> {
            let mut by_inode: BTreeMap<(u64, u64), Vec<PathBuf>> = BTreeMap::new();
            for (path, inode) in inodes {
                by_inode.entry(*inode).or_default().push(path.clone());
            }
            by_inode.into_values().filter(|g| g.len() > 1).collect()
        };
        let (ga, gb) = (groups(&self.inodes_a), groups(&self.inodes_b));
        let list = |g: &Vec<PathBuf>| {
            g.iter()
                .map(|p| format!("{p:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for g in ga.difference(&gb) {
            self.diffs.push(format!(
                "hard links: [{}] share an inode in a, not in b",
                list(g)
            ));
        }
        for g in gb.difference(&ga) {
            self.diffs.push(format!(
                "hard links: [{}] share an inode in b, not in a",
                list(g)
            ));
        }
    }
}

/// Offset of the first differing byte of two files of equal length, or `None`.
fn first_difference(a: &Path, b: &Path) -> std::io::Result<Option<u64>> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if let Some(i) = ba[..n.min(m)]
            .iter()
            .zip(&bb[..n.min(m)])
            .position(|(x, y)| x != y)
        {
            return Ok(Some(offset + i as u64));
        }
        if n != m {
            return Ok(Some(offset + n.min(m) as u64));
        }
        if n == 0 {
            return Ok(None);
        }
        offset += n as u64;
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
