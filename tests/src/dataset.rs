//! The interop dataset: a directory tree with the cases a backup tool gets wrong.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use filetime::FileTime;

/// Seed used by [`make_dataset`].
pub const DEFAULT_SEED: u64 = 0x00A2_CA5E_ED00_0001;

/// How big [`make_dataset`] makes the files. The names, links, modes and times are the same at
/// every scale; only the sizes of the random, text and sparse files change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetScale {
    /// About 0.6 MiB of file data: for quick tests of metadata and names.
    Tiny,
    /// About 25 MiB: random files up to 10 MiB (above restic's 8 MiB maximum chunk size, so
    /// the chunker cuts several chunks), 2.3 MiB of text, a 4 MiB sparse file.
    Small,
}

/// What [`make_dataset`] made. `files` counts every name of a regular file (a file with two hard
/// links counts twice), `bytes` is the sum of their apparent sizes (holes included), `dirs`
/// excludes the root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DatasetSummary {
    pub files: usize,
    pub dirs: usize,
    pub symlinks: usize,
    pub bytes: u64,
    /// Whether setuid/setgid files were made (only when running as root).
    pub setid_files: bool,
}

/// A small deterministic generator (SplitMix64): the same seed gives the same bytes on every
/// platform and every version, unlike `rand`'s `StdRng`.
#[derive(Clone, Debug)]
pub struct DetRng(u64);

impl DetRng {
    pub fn new(seed: u64) -> Self {
        DetRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-enough value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        self.fill(&mut buf);
        buf
    }
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

/// [`make_dataset_seeded`] with [`DEFAULT_SEED`].
pub fn make_dataset(root: &Path, scale: DatasetScale) -> DatasetSummary {
    make_dataset_seeded(root, scale, DEFAULT_SEED)
}

/// Build the interop dataset under `root` (created if missing; should be empty). Contents, modes
/// and times depend only on `seed` and `scale` (absolute symlinks also contain `root`).
///
/// Layout:
/// - `random/`: incompressible files of 1 B, 100 B, 4095–4097 B, 64 KiB, 512 KiB ± 1, 1 MiB,
///   3 MiB + 17 and 10 MiB + 333 (Small), and a `copy-of-size-*.bin` with the same bytes as the
///   3 MiB file (Tiny: the 64 KiB one), a separate inode: dedup, not a hard link.
/// - `text/`: compressible text (`small.txt` 200 B up to `huge.txt` 2 MiB), one without a final
///   newline.
/// - `empty/`: empty files and `empty/empty-dir/`.
/// - `deep/`: a chain of 24 directories with files at the bottom and in the middle.
/// - `names/`: names with `"` `\` `<` `>` `&`, tab, newline, CR, non-UTF-8 bytes, U+00A0,
///   U+2028, DEL, 0x01, emoji, umlauts, NFC and NFD forms of é, shell metacharacters, leading
///   and trailing spaces, a 255-byte name; two directories with odd names (one not UTF-8).
/// - `links/`: symlinks relative, absolute, dangling (relative and absolute), to a directory,
///   to a symlink, to itself, and with `"` and a newline in the target. Targets are all valid
///   UTF-8 (restic 0.14 replaces invalid UTF-8 in link targets with U+FFFD).
/// - `hardlinks/`: one inode with three names (one in a subdirectory), a pair, and a file with
///   the same content but its own inode.
/// - `perms/`: modes 0600, 0755, 0444, 0640, 0700 directory, 1777 directory; setuid (4755) and
///   setgid (2755) files when running as root.
/// - `sparse/`: a file with holes and data, a file that is one hole.
/// - `times/`: mtimes at the epoch, before 1970, after 2038, in 2200, with odd nanoseconds.
///
/// Every other file and directory gets a pseudo-random mtime (2001–2023, random nanoseconds);
/// directory mtimes are set last, deepest first, so they stick.
pub fn make_dataset_seeded(root: &Path, scale: DatasetScale, seed: u64) -> DatasetSummary {
    fs::create_dir_all(root).unwrap_or_else(|e| panic!("cannot create {}: {e}", root.display()));
    let root = fs::canonicalize(root).expect("canonical dataset root");
    let mut b = Builder {
        root: root.clone(),
        rng: DetRng::new(seed),
        modes: Vec::new(),
        times: Vec::new(),
        setid_files: false,
    };
    b.random_files(scale);
    b.text_files(scale);
    b.empty();
    b.deep();
    b.names();
    b.links();
    b.hardlinks();
    b.perms();
    b.sparse(scale);
    b.fixed_times();
    b.finish()
}

struct Builder {
    root: PathBuf,
    rng: DetRng,
    /// Modes applied after the default 0644/0755 pass.
    modes: Vec<(PathBuf, u32)>,
    /// Fixed (seconds, nanoseconds) mtimes, applied instead of random ones.
    times: Vec<(PathBuf, i64, u32)>,
    setid_files: bool,
}

impl Builder {
    fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    fn dir(&self, rel: impl AsRef<Path>) -> PathBuf {
        let path = self.path(rel);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        path
    }

    fn write(&self, rel: impl AsRef<Path>, data: &[u8]) -> PathBuf {
        let path = self.path(rel);
        fs::write(&path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    fn write_random(&mut self, rel: impl AsRef<Path>, size: u64) -> PathBuf {
        let path = self.path(rel);
        let mut file = File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut buf = vec![0u8; MIB as usize];
        let mut left = size;
        while left > 0 {
            let n = left.min(MIB) as usize;
            self.rng.fill(&mut buf[..n]);
            file.write_all(&buf[..n]).expect("write random data");
            left -= n as u64;
        }
        path
    }

    fn text(&mut self, size: u64) -> Vec<u8> {
        const WORDS: &[&str] = &[
            "arca",
            "restic",
            "backup",
            "snapshot",
            "repository",
            "chunk",
            "blob",
            "pack",
            "index",
            "tree",
            "the",
            "and",
            "of",
            "to",
            "data",
            "volume",
            "pod",
            "node",
            "key",
            "lock",
            "prune",
            "check",
            "restore",
            "archive",
            "operator",
            "lorem",
            "ipsum",
            "dolor",
            "sit",
            "amet",
            "zstd",
            "polynomial",
        ];
        let mut out = Vec::with_capacity(size as usize + 80);
        let mut line = 0u64;
        while (out.len() as u64) < size {
            line += 1;
            out.extend_from_slice(format!("{line:06}").as_bytes());
            for _ in 0..4 + self.rng.below(9) {
                out.push(b' ');
                out.extend_from_slice(
                    WORDS[self.rng.below(WORDS.len() as u64) as usize].as_bytes(),
                );
            }
            out.push(b'\n');
        }
        out.truncate(size as usize);
        out
    }

    fn random_files(&mut self, scale: DatasetScale) {
        self.dir("random");
        let mut sizes = vec![1, 100, 4095, 4096, 4097, 64 * KIB];
        let copied = match scale {
            DatasetScale::Tiny => {
                sizes.extend([200 * KIB + 3]);
                64 * KIB
            }
            DatasetScale::Small => {
                sizes.extend([
                    512 * KIB - 1,
                    512 * KIB + 1,
                    MIB,
                    3 * MIB + 17,
                    10 * MIB + 333,
                ]);
                3 * MIB + 17
            }
        };
        for size in sizes {
            self.write_random(format!("random/size-{size:08}.bin"), size);
        }
        let src = self.path(format!("random/size-{copied:08}.bin"));
        let dst = self.path(format!("random/copy-of-size-{copied:08}.bin"));
        fs::copy(&src, &dst).expect("copy random file");
    }

    fn text_files(&mut self, scale: DatasetScale) {
        self.dir("text");
        let mut files = vec![("small.txt", 200), ("medium.txt", 16 * KIB)];
        match scale {
            DatasetScale::Tiny => files.push(("large.txt", 64 * KIB)),
            DatasetScale::Small => {
                files.extend([("large.txt", 256 * KIB), ("huge.txt", 2 * MIB)]);
            }
        }
        for (name, size) in files {
            let text = self.text(size);
            self.write(Path::new("text").join(name), &text);
        }
        self.write("text/no-final-newline.txt", b"one line without a newline");
    }

    fn empty(&mut self) {
        self.dir("empty/empty-dir");
        self.write("empty/empty-file", b"");
        self.write("empty/.hidden-empty", b"");
    }

    fn deep(&mut self) {
        let mut rel = PathBuf::from("deep");
        for level in 1..=24 {
            rel.push(format!("level-{level:02}"));
            if level == 12 {
                self.dir(&rel);
                let data = self.rng.bytes(300);
                self.write(rel.join("middle.bin"), &data);
            }
        }
        self.dir(&rel);
        self.write(rel.join("bottom.txt"), b"the bottom of a 24-level chain\n");
    }

    fn names(&mut self) {
        self.dir("names");
        let long = format!("{}.txt", "L".repeat(251));
        let names: Vec<&[u8]> = vec![
            b"quote\"d.txt",
            b"back\\slash.txt",
            b"<angle>.txt",
            b"amp&ersand.txt",
            b"tab\tinside.txt",
            b"new\nline.txt",
            b"carriage\rreturn.txt",
            b"latin1-\xe9\xff.bin", // not UTF-8
            "nbsp\u{a0}space.txt".as_bytes(),
            "line\u{2028}separator.txt".as_bytes(),
            b"del\x7f.txt",
            b"ctrl\x01.txt",
            "emoji-\u{1F980}\u{1F4E6}\u{1F389}.txt".as_bytes(),
            "Gr\u{fc}\u{df}e-\u{c4}rger-\u{d6}l.txt".as_bytes(),
            "\u{e9}-nfc.txt".as_bytes(),
            "e\u{301}-nfd.txt".as_bytes(),
            b" leading-space.txt",
            b"trailing-space.txt ",
            b"-leading-dash.txt",
            b".hidden",
            b"..double-dot",
            b"~tilde",
            b"$dollar{var}",
            b"star*question?",
            b"[brackets]",
            b"'single'",
            b"%percent%20",
            b"#hash",
            b"semi;colon",
            b"pipe|bar",
            b"back`tick`",
            b"colon:name",
            long.as_bytes(),
        ];
        for name in names {
            let mut data = name.to_vec();
            data.extend(self.rng.bytes(16));
            self.write(Path::new("names").join(OsStr::from_bytes(name)), &data);
        }
        let odd_dir = Path::new("names").join("dir with spaces & \"quotes\"");
        self.dir(&odd_dir);
        self.write(
            odd_dir.join("inner\nnewline.txt"),
            b"inside an odd directory\n",
        );
        let non_utf8_dir = Path::new("names").join(OsStr::from_bytes(b"dir-\xfe\xfd"));
        self.dir(&non_utf8_dir);
        self.write(
            non_utf8_dir.join("inner.txt"),
            b"inside a non-UTF-8 directory\n",
        );
    }

    fn links(&mut self) {
        let dir = self.dir("links");
        let link = |target: &Path, name: &str| {
            symlink(target, dir.join(name))
                .unwrap_or_else(|e| panic!("symlink {name} -> {}: {e}", target.display()));
        };
        link(Path::new("../text/small.txt"), "relative");
        link(&self.path("text/small.txt"), "absolute");
        link(Path::new("does-not-exist"), "dangling");
        link(
            Path::new("/nonexistent/arca-test-target"),
            "dangling-absolute",
        );
        link(Path::new("../deep"), "to-dir");
        link(Path::new("relative"), "to-link");
        link(Path::new("loop"), "loop");
        link(Path::new("../names/quote\"d.txt"), "odd-target");
        link(Path::new("../names/new\nline.txt"), "newline-target");
    }

    fn hardlinks(&mut self) {
        self.dir("hardlinks/sub");
        let data = self.rng.bytes(5000);
        let original = self.write("hardlinks/original", &data);
        fs::hard_link(&original, self.path("hardlinks/second-name")).expect("hard link");
        fs::hard_link(&original, self.path("hardlinks/sub/third-name")).expect("hard link");
        self.write("hardlinks/same-content-own-inode", &data);
        let pair = self.write("hardlinks/pair-a", b"a pair of names\n");
        fs::hard_link(&pair, self.path("hardlinks/pair-b")).expect("hard link");
    }

    fn perms(&mut self) {
        self.dir("perms");
        for mode in [0o600, 0o755, 0o444, 0o640] {
            let path = self.write(
                format!("perms/mode-{mode:04o}"),
                format!("{mode:o}\n").as_bytes(),
            );
            self.modes.push((path, mode));
        }
        let private = self.dir("perms/private-0700");
        self.write("perms/private-0700/inside", b"private\n");
        self.modes.push((private, 0o700));
        let sticky = self.dir("perms/sticky-1777");
        self.modes.push((sticky, 0o1777));
        if arca_engine::sys::is_root() {
            for mode in [0o4755, 0o2755] {
                let path = self.write(format!("perms/setid-{mode:04o}"), b"#!/bin/sh\n");
                self.modes.push((path, mode));
            }
            self.setid_files = true;
        }
    }

    fn sparse(&mut self, scale: DatasetScale) {
        self.dir("sparse");
        let (len, piece, second) = match scale {
            DatasetScale::Tiny => (256 * KIB, 4 * KIB, 100 * KIB + 7),
            DatasetScale::Small => (4 * MIB, 64 * KIB, MIB + 7),
        };
        let path = self.path("sparse/holes.bin");
        let mut file = File::create(&path).expect("create sparse file");
        file.set_len(len).expect("set_len");
        file.write_all(&self.rng.bytes(piece as usize))
            .expect("write");
        file.seek(SeekFrom::Start(second)).expect("seek");
        file.write_all(&self.rng.bytes(piece as usize))
            .expect("write");
        drop(file);
        let all_hole = File::create(self.path("sparse/all-hole.bin")).expect("create");
        all_hole.set_len(len / 4).expect("set_len");
    }

    fn fixed_times(&mut self) {
        self.dir("times");
        let cases: [(&str, i64, u32); 6] = [
            ("epoch", 0, 0),
            ("before-1970", -315_619_200, 123_456_789), // 1960-01-01T00:00:00.123456789Z
            ("after-2038", 2_147_483_648, 1),           // one second past i32
            ("year-2200", 7_258_118_400, 999_999_999),
            ("odd-nanos", 1_600_000_000, 1),
            ("whole-second", 1_700_000_000, 0),
        ];
        for (name, secs, nanos) in cases {
            let path = self.write(Path::new("times").join(name), name.as_bytes());
            self.times.push((path, secs, nanos));
        }
        let dir = self.dir("times/dir-in-1999");
        self.times.push((dir, 915_148_800, 500_000_000));
    }

    fn finish(mut self) -> DatasetSummary {
        let mut entries = Vec::new();
        collect_post_order(&self.root, &mut entries);
        let mut summary = DatasetSummary {
            setid_files: self.setid_files,
            ..DatasetSummary::default()
        };
        // Modes: a known default for everything (independent of the umask), then the special ones.
        for (path, meta) in &entries {
            let mode = if meta.is_dir() {
                if path != &self.root {
                    summary.dirs += 1;
                }
                0o755
            } else if meta.is_file() {
                summary.files += 1;
                summary.bytes += meta.len();
                0o644
            } else {
                summary.symlinks += 1;
                continue;
            };
            set_mode(path, mode);
        }
        for (path, mode) in &self.modes {
            set_mode(path, *mode);
        }
        // Times last, children before their directory, so directory mtimes stick.
        for (path, meta) in &entries {
            let (secs, nanos) = match self.times.iter().find(|(p, _, _)| p == path) {
                Some(&(_, secs, nanos)) => (secs, nanos),
                None => (
                    978_307_200 + self.rng.below(700_000_000) as i64, // 2001-01-01 + up to 22 years
                    self.rng.below(1_000_000_000) as u32,
                ),
            };
            let time = FileTime::from_unix_time(secs, nanos);
            let result = if meta.file_type().is_symlink() {
                filetime::set_symlink_file_times(path, time, time)
            } else {
                filetime::set_file_times(path, time, time)
            };
            result.unwrap_or_else(|e| panic!("set times of {}: {e}", path.display()));
        }
        summary
    }
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// Every entry under and including `dir`, children (sorted by name bytes) before their parent.
fn collect_post_order(dir: &Path, out: &mut Vec<(PathBuf, fs::Metadata)>) {
    let mut children: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    children.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    for child in children {
        let meta = fs::symlink_metadata(&child).expect("lstat");
        if meta.is_dir() {
            collect_post_order(&child, out);
        } else {
            out.push((child, meta));
        }
    }
    let meta = fs::symlink_metadata(dir).expect("lstat");
    out.push((dir.to_path_buf(), meta));
}
