//! Restoring into a target that already holds things, with each `--overwrite` mode, side by
//! side with restic on the same target: no mode removes a directory that has something in
//! it, `never` changes nothing that exists, and nothing is followed out of the target.
//!
//! The snapshot has, at each name, something other than what the target has there: a file,
//! a symlink and a FIFO where the target has a directory with a file in it (`f`, `s`, `p`), a
//! file where it has an empty directory (`e`), a newer file over an old one (`g`), a symlink
//! over a file (`l`), a directory over a file (`d`) and a file over a symlink that leads out
//! of the target (`q`).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use arca_tests::*;

const NAMES: [&str; 8] = ["f", "s", "p", "e", "g", "l", "d", "q"];

fn make_source(src: &Path) {
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("f"), "new f").unwrap();
    std::os::unix::fs::symlink("x", src.join("l")).unwrap();
    std::os::unix::fs::symlink("somewhere", src.join("s")).unwrap();
    nix_mkfifo(&src.join("p"));
    fs::write(src.join("e"), "new e").unwrap();
    fs::write(src.join("g"), "new g").unwrap();
    fs::write(src.join("d/inner"), "inner").unwrap();
    fs::write(src.join("q"), "new q").unwrap();
}

fn nix_mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// The target as a user had it, made after the snapshot (so its items are newer, except `g`).
fn populate(target: &Path, outside: &Path) {
    for (dir, precious) in [("f", "precious1"), ("s", "precious2"), ("p", "precious3")] {
        fs::create_dir_all(target.join(dir)).unwrap();
        fs::write(target.join(dir).join(precious), precious).unwrap();
    }
    fs::create_dir(target.join("e")).unwrap();
    fs::write(target.join("g"), "old g").unwrap();
    let y2000 = filetime::FileTime::from_unix_time(946_684_800, 0);
    filetime::set_file_mtime(target.join("g"), y2000).unwrap();
    fs::write(target.join("l"), "old l").unwrap();
    fs::write(target.join("d"), "old d").unwrap();
    std::os::unix::fs::symlink(outside, target.join("q")).unwrap();
}

/// What each name is after a restore, in a word or two.
fn outcome(target: &Path, outside: &Path) -> BTreeMap<&'static str, String> {
    NAMES
        .iter()
        .map(|&n| {
            let p = target.join(n);
            let md = fs::symlink_metadata(&p).unwrap();
            let what = if md.file_type().is_symlink() {
                let to = fs::read_link(&p).unwrap();
                if to == outside {
                    "symlink->outside".to_string()
                } else {
                    format!("symlink->{}", to.display())
                }
            } else if md.is_dir() {
                let mut names: Vec<String> = fs::read_dir(&p)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                format!("dir[{}]", names.join(","))
            } else if md.file_type().is_fifo() {
                "fifo".to_string()
            } else {
                format!("file:{}", fs::read_to_string(&p).unwrap())
            };
            (n, what)
        })
        .collect()
}

fn table(rows: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
    rows.iter().map(|(n, w)| (*n, w.to_string())).collect()
}

/// What restic 0.17+ does, and Arca in every mode except where noted.
fn replacing() -> BTreeMap<&'static str, String> {
    table(&[
        ("f", "dir[precious1]"),
        ("s", "dir[precious2]"),
        ("p", "dir[precious3]"),
        ("e", "file:new e"),
        ("g", "file:new g"),
        ("l", "symlink->x"),
        ("d", "dir[inner]"),
        ("q", "file:new q"),
    ])
}

/// Everything that exists is kept (`never`; `if-newer` but for the old file `g`).
fn keeping(g: &str) -> BTreeMap<&'static str, String> {
    table(&[
        ("f", "dir[precious1]"),
        ("s", "dir[precious2]"),
        ("p", "dir[precious3]"),
        ("e", "dir[]"),
        ("g", g),
        ("l", "file:old l"),
        ("d", "file:old d"),
        ("q", "symlink->outside"),
    ])
}

struct Scene {
    _dir: tempfile::TempDir,
    repo: PathBuf,
    work: PathBuf,
    runs: usize,
}

impl Scene {
    fn new() -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let src = dir.path().join("src");
        make_source(&src);
        let arca = Arca::new(&repo, "pw");
        arca.run(["init"]);
        arca.cmd(["backup", "."]).current_dir(&src).run();
        let work = dir.path().to_path_buf();
        Scene {
            _dir: dir,
            repo,
            work,
            runs: 0,
        }
    }

    /// A fresh populated target, restored into by `program` with `args`; what it holds after,
    /// and whether the restore said it succeeded.
    fn restore(
        &mut self,
        runner: &Runner,
        args: &[&str],
    ) -> (BTreeMap<&'static str, String>, bool) {
        self.runs += 1;
        let target = self.work.join(format!("target-{}", self.runs));
        let outside = self.work.join(format!("outside-{}", self.runs));
        fs::create_dir_all(&target).unwrap();
        fs::create_dir_all(&outside).unwrap();
        populate(&target, &outside);
        let out = runner
            .cmd(["restore", "latest", "--target"])
            .arg(&target)
            .args(args)
            .env("RESTIC_REPOSITORY", &self.repo)
            .env("RESTIC_PASSWORD", "pw")
            .output();
        let what = format!("{} restore {args:?}", runner.program().display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{what}: {err}");
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            0,
            "{what} wrote outside the target"
        );
        (outcome(&target, &outside), out.status.success())
    }
}

fn restics() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = ["restic", "restic-new"]
        .iter()
        .filter_map(|name| {
            let bin = find_tool(name);
            if bin.is_none() && *name == "restic" {
                require_tool(name);
            }
            bin
        })
        .collect();
    found.dedup();
    found
}

#[test]
fn each_overwrite_mode_keeps_populated_directories_and_matches_restic() {
    let mut scene = Scene::new();
    let arca = Arca::plain();
    let modes = ["always", "if-changed", "if-newer", "never"];
    let mut arca_said = BTreeMap::new();
    for mode in modes {
        let (got, ok) = scene.restore(&arca, &["--overwrite", mode]);
        // The populated directories in the way are reported, and make the exit non-zero
        // (where the mode would have replaced them).
        assert!(!ok, "arca --overwrite {mode} reported no error");
        let want = match mode {
            "always" | "if-changed" => replacing(),
            "if-newer" => keeping("file:new g"),
            _ => keeping("file:old g"),
        };
        assert_eq!(got, want, "arca --overwrite {mode}");
        arca_said.insert(mode, got);
    }

    for bin in restics() {
        let restic = Restic::with_bin(&bin, &scene.repo, "pw");
        match dialect_of(&bin) {
            Dialect::V0_14 => {
                // restic 0.14 has no --overwrite: it overwrites files and refuses every other
                // kind of replacement. Arca's `always` follows restic 0.17+ there (`e`, `l`,
                // `d`, `q`); both keep every populated directory.
                let (got, _) = scene.restore(&restic, &[]);
                assert_eq!(got, keeping("file:new g"), "restic 0.14");
                let differ: Vec<&str> = NAMES
                    .iter()
                    .copied()
                    .filter(|n| got[n] != arca_said["always"][n])
                    .collect();
                assert_eq!(differ, ["e", "l", "d", "q"], "arca always vs restic 0.14");
            }
            Dialect::Current => {
                for mode in modes {
                    let (got, _) = scene.restore(&restic, &["--overwrite", mode]);
                    let mut want = arca_said[mode].clone();
                    if matches!(mode, "if-newer" | "never") {
                        // restic replaces a file by a directory even here; `never` in Arca
                        // changes nothing that exists.
                        want.insert("d", "dir[inner]".into());
                    }
                    assert_eq!(got, want, "restic {} --overwrite {mode}", bin.display());
                }
            }
        }
    }
}

/// A snapshot with `a -> outside` restored, then one with a directory `a` (mode 2777) over
/// it: the folder the link led to keeps its mode and gets nothing, in every mode.
#[test]
fn directory_metadata_never_follows_a_symlink_out_of_the_target() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (repo, src, outside) = (
        dir.path().join("repo"),
        dir.path().join("src"),
        dir.path().join("outside"),
    );
    fs::create_dir_all(&src).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o700)).unwrap();
    let arca = Arca::new(&repo, "pw");
    arca.run(["init"]);
    std::os::unix::fs::symlink(&outside, src.join("a")).unwrap();
    arca.cmd(["backup", "--tag", "link", "."])
        .current_dir(&src)
        .run();
    fs::remove_file(src.join("a")).unwrap();
    fs::create_dir(src.join("a")).unwrap();
    fs::write(src.join("a/inside"), "x").unwrap();
    fs::set_permissions(src.join("a"), fs::Permissions::from_mode(0o2777)).unwrap();
    arca.cmd(["backup", "--tag", "dir", "."])
        .current_dir(&src)
        .run();

    for mode in ["always", "if-changed", "if-newer", "never"] {
        let target = dir.path().join(format!("target-{mode}"));
        let restore = |tag: &str| {
            arca.cmd([
                "restore",
                "latest",
                "--tag",
                tag,
                "--overwrite",
                mode,
                "--target",
            ])
            .arg(&target)
            .output()
        };
        assert!(restore("link").status.success(), "{mode}: first restore");
        assert_eq!(fs::read_link(target.join("a")).unwrap(), outside);
        let out = restore("dir");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{mode}: {err}");
        let md = fs::metadata(&outside).unwrap();
        assert_eq!(
            md.permissions().mode() & 0o7777,
            0o700,
            "{mode}: the folder outside the target was chmod'ed"
        );
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            0,
            "{mode}: written outside"
        );
    }
}
