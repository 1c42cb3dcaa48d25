//! Interop of arca's read side with repositories written by the real restic (0.14.0 or the
//! current one: arca prints what the current restic prints, and 0.14's known differences are
//! applied to arca's output when the restic under test is 0.14, see `arca_tests::dialect`).
//!
//! One set of repositories is built per test binary ([`fixture`]): the interop dataset (Tiny
//! scale plus a few multi-chunk, compressible and sparse files) is backed up by restic into
//! - `v1`: `restic init --repository-version 1`,
//! - `v2-auto`: `restic init` (v2) with the default compression (auto),
//! - `v2-off`: `restic init` (v2), every backup with `--compression off`,
//!
//! four times each, with files changed, added and removed between the backups, different hosts
//! and tags, one snapshot of two subfolders only and one taken in another time zone. Every test
//! then runs arca and restic on the same repository and compares what they print or restore.
//!
//! Set `ARCA_INTEROP_KEEP=1` to keep the repositories after the run (the path is printed).

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arca_tests::*;
use serde_json::Value;

const PASSWORD: &str = "interop password, not on argv";

/// One restic repository of the fixture.
struct RepoCase {
    name: &'static str,
    path: PathBuf,
    /// A copy of the repository with restic's own key file (scrypt as restic calibrated it)
    /// in place of the cheap one.
    pristine: PathBuf,
    /// The file name (ID) and bytes of the key file restic wrote.
    restic_key: (String, Vec<u8>),
    /// Full snapshot IDs, oldest first: 0 and 1 of `src` by host alpha, 2 of `src/text` and
    /// `src/names` by host beta in another time zone, 3 (latest) of `src` by beta.
    snapshots: Vec<String>,
}

struct Fixture {
    root: PathBuf,
    restic_bin: PathBuf,
    dialect: Dialect,
    /// The backed-up source folder (absolute, canonical).
    src: PathBuf,
    repos: Vec<RepoCase>,
}

impl Fixture {
    fn restic(&self, repo: &RepoCase) -> Restic {
        Restic::with_bin(&self.restic_bin, &repo.path, PASSWORD)
    }

    fn arca(&self, repo: &RepoCase) -> Arca {
        Arca::new(&repo.path, PASSWORD)
    }

    /// A fresh, empty folder under the fixture's root for one test's output.
    fn scratch(&self, what: &str) -> PathBuf {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = self.root.join("out").join(format!("{n:03}-{what}"));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The snapshot path of `rel` (relative to the source folder), as restic stores it.
    fn snap_path(&self, rel: &str) -> String {
        let p = self.src.join(rel);
        p.to_str()
            .expect("the temp dir path is UTF-8")
            .trim_end_matches('/')
            .to_owned()
    }
}

static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();

/// The shared repositories, built on first use; `None` when restic is missing (outside CI).
fn fixture() -> Option<&'static Fixture> {
    FIXTURE
        .get_or_init(|| {
            let bin = restic_or_skip()?;
            Some(build_fixture(bin))
        })
        .as_ref()
}

macro_rules! fixture_or_return {
    () => {
        match fixture() {
            Some(f) => f,
            None => return,
        }
    };
}

fn write_file(path: &Path, data: &[u8]) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Extra files on top of the Tiny dataset: several chunks, compressible text, 512 KiB runs of
/// zeros (restic's sparse restore skips exactly those chunks).
fn add_extra_files(src: &Path) {
    let mut rng = DetRng::new(7);
    write_file(&src.join("big/random-3M.bin"), &rng.bytes(3 << 20));
    let mut text = Vec::new();
    let mut line = 0u32;
    while text.len() < 1_500_000 {
        line += 1;
        writeln!(
            text,
            "{line:07} the quick brown fox jumps over the lazy dog {}",
            line % 97
        )
        .unwrap();
    }
    write_file(&src.join("big/text-1.5M.txt"), &text);
    // 64 KiB of data, 3 MiB of zeros, 64 KiB of data: the chunker cuts the zeros at every
    // 512 KiB (MinSize), so the file holds several all-zero chunks.
    let mut sparse = rng.bytes(64 << 10);
    sparse.resize(sparse.len() + (3 << 20), 0);
    sparse.extend(rng.bytes(64 << 10));
    write_file(&src.join("sparse/zero-runs.bin"), &sparse);
}

fn set_mtime(path: &Path, secs: i64) {
    let t = filetime::FileTime::from_unix_time(secs, 123_000_000);
    filetime::set_file_mtime(path, t).unwrap();
}

/// Changes between the first and the second backup: a changed file, a new one, a removed one.
fn first_changes(src: &Path) {
    let changed = src.join("text/medium.txt");
    let mut data = fs::read(&changed).unwrap();
    data.extend_from_slice(b"appended after the first backup\n");
    write_file(&changed, &data);
    set_mtime(&changed, 1_650_000_000);
    write_file(
        &src.join("added/new-file.txt"),
        b"added before the second backup\n",
    );
    write_file(&src.join("added/<new&odd>\"name\".txt"), b"odd\n");
    fs::remove_file(src.join("random/size-00004097.bin")).unwrap();
    fs::remove_dir_all(src.join("deep/level-01/level-02/level-03/level-04/level-05/level-06/level-07/level-08/level-09/level-10/level-11/level-12/level-13")).unwrap();
    std::os::unix::fs::symlink("new-file.txt", src.join("added/link-to-new")).unwrap();
    write_file(
        &src.join("added/dir-then-file/inside.bin"),
        &DetRng::new(11).bytes(3000),
    );
    set_mtime(&src.join("added"), 1_650_000_100);
}

/// Changes before the last backup: a file becomes a directory and a directory a file, a mode
/// changes, a file shrinks.
fn second_changes(src: &Path) {
    fs::remove_file(src.join("empty/empty-file")).unwrap();
    fs::create_dir(src.join("empty/empty-file")).unwrap();
    write_file(
        &src.join("empty/empty-file/now-a-dir.txt"),
        b"a file that took the name of an empty file\n",
    );
    fs::remove_dir_all(src.join("added/dir-then-file")).unwrap();
    write_file(&src.join("added/dir-then-file"), b"was a directory\n");
    let mode = src.join("perms/mode-0640");
    fs::set_permissions(&mode, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let shrunk = src.join("big/random-3M.bin");
    let data = fs::read(&shrunk).unwrap();
    write_file(&shrunk, &data[..(2 << 20) + 5]);
    set_mtime(&shrunk, 1_660_000_000);
}

fn build_fixture(restic_bin: PathBuf) -> Fixture {
    let tmp = tempfile::Builder::new()
        .prefix("arca-read-interop-")
        .tempdir()
        .expect("temp dir");
    let root = fs::canonicalize(tmp.path()).unwrap();
    let src = root.join("src");
    make_dataset(&src, DatasetScale::Tiny);
    add_extra_files(&src);

    let specs: [(&'static str, &[&str], &[&str]); 3] = [
        ("v1", &["--repository-version", "1"], &[]),
        ("v2-auto", &[], &[]),
        ("v2-off", &[], &["--compression", "off"]),
    ];
    // restic init calibrates scrypt for a second or two: the three run at once.
    let mut repos: Vec<RepoCase> = std::thread::scope(|scope| {
        let handles: Vec<_> = specs
            .iter()
            .map(|(name, init_args, _)| {
                let path = root.join("repos").join(name);
                let restic_bin = &restic_bin;
                scope.spawn(move || {
                    let restic = Restic::with_bin(restic_bin, &path, PASSWORD);
                    restic.cmd(["init"]).args(*init_args).run();
                    let restic_key = swap_in_cheap_key(&path, PASSWORD);
                    RepoCase {
                        name,
                        path,
                        pristine: PathBuf::new(),
                        restic_key,
                        snapshots: Vec::new(),
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    // Each stage: changes to the source, then the same backup into every repository.
    let src_s = src.to_str().unwrap().to_owned();
    let text_s = src.join("text").to_str().unwrap().to_owned();
    let names_s = src.join("names").to_str().unwrap().to_owned();
    type Stage<'a> = (Vec<&'a str>, Vec<&'a str>, Option<&'a str>);
    let stages: Vec<Stage> = vec![
        (
            vec!["--host", "alpha", "--tag", "first"],
            vec![&src_s],
            None,
        ),
        (
            vec!["--host", "alpha", "--tag", "second,extra"],
            vec![&src_s],
            None,
        ),
        // Two subfolders only, in another time zone (snapshot time with an offset).
        (
            vec!["--host", "beta"],
            vec![&text_s, &names_s],
            Some("Europe/Berlin"),
        ),
        (vec!["--host", "beta", "--tag", "last"], vec![&src_s], None),
    ];
    for (i, (args, paths, tz)) in stages.iter().enumerate() {
        match i {
            1 => first_changes(&src),
            3 => second_changes(&src),
            _ => {}
        }
        std::thread::scope(|scope| {
            for (repo, (_, _, backup_args)) in repos.iter_mut().zip(specs.iter()) {
                let restic_bin = &restic_bin;
                scope.spawn(move || {
                    let restic = Restic::with_bin(restic_bin, &repo.path, PASSWORD);
                    let mut cmd = restic
                        .cmd(["backup", "--json"])
                        .args(args)
                        .args(*backup_args);
                    if let Some(tz) = tz {
                        cmd = cmd.env("TZ", tz);
                    }
                    let lines = cmd.args(paths).run_json_lines();
                    let summary = lines
                        .iter()
                        .find(|l| l["message_type"] == "summary")
                        .unwrap_or_else(|| panic!("no summary from restic backup: {lines:?}"));
                    repo.snapshots
                        .push(summary["snapshot_id"].as_str().unwrap().to_owned());
                });
            }
        });
    }

    // restic 0.14's backup summary has the short ID: look up the full ones.
    for repo in &mut repos {
        let restic = Restic::with_bin(&restic_bin, &repo.path, PASSWORD);
        let all = restic.run_json(["snapshots", "--json"]);
        let full: Vec<String> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect();
        for id in &mut repo.snapshots {
            let matching: Vec<&String> = full.iter().filter(|f| f.starts_with(&**id)).collect();
            assert_eq!(matching.len(), 1, "snapshot {id} in {full:?}");
            *id = matching[0].clone();
        }
    }

    // The pristine copies: restic's key file instead of the cheap one.
    for repo in &mut repos {
        let pristine = root.join("pristine").join(repo.name);
        fs::create_dir_all(pristine.parent().unwrap()).unwrap();
        cp_a(&repo.path, &pristine);
        let keys = pristine.join("keys");
        for entry in fs::read_dir(&keys).unwrap() {
            fs::remove_file(entry.unwrap().path()).unwrap();
        }
        write_file(&keys.join(&repo.restic_key.0), &repo.restic_key.1);
        repo.pristine = pristine;
    }

    let keep = std::env::var_os("ARCA_INTEROP_KEEP").is_some_and(|v| !v.is_empty());
    if keep {
        let kept = tmp.keep();
        eprintln!("ARCA_INTEROP_KEEP: repositories kept in {}", kept.display());
    } else {
        // A static holds the fixture, and statics are never dropped.
        keep_until_exit(tmp);
    }
    Fixture {
        root,
        dialect: dialect_of(&restic_bin),
        restic_bin,
        src,
        repos,
    }
}

// ------------------------------------------------------------------------------------------------
// Helpers

fn os(s: impl AsRef<OsStr>) -> OsString {
    s.as_ref().to_owned()
}

/// Arguments as OsStrings (paths of the dataset may hold any bytes).
macro_rules! args {
    ($($a:expr),* $(,)?) => { vec![$(os($a)),*] };
}

fn show_args(args: &[OsString]) -> String {
    args.iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Fixture {
    /// restic for read-only commands (`--no-cache` from the runner, and `--no-lock`).
    fn restic_ro(&self, repo: &RepoCase) -> Restic {
        let mut r = self.restic(repo);
        r.global_arg("--no-lock");
        r
    }

    fn arca_ro(&self, repo: &RepoCase) -> Arca {
        let mut a = self.arca(repo);
        a.global_arg("--no-lock");
        a
    }

    /// Run the same command line with restic and arca (both must succeed); their stdouts.
    fn both(&self, repo: &RepoCase, args: &[OsString]) -> (Vec<u8>, Vec<u8>) {
        let r = self.restic_ro(repo).cmd(args).run();
        let a = self.arca_ro(repo).cmd(args).run();
        (r, a)
    }

    /// The same command line gives byte-identical output from restic and arca.
    fn assert_same(&self, repo: &RepoCase, args: &[OsString]) -> Vec<u8> {
        let (r, a) = self.both(repo, args);
        let a = self.in_restics_dialect(args, a);
        assert_bytes_eq(&r, &a, &format!("[{}] `{}`", repo.name, show_args(args)));
        r
    }

    /// arca's output of `args` as the restic under test prints it.
    fn in_restics_dialect(&self, args: &[OsString], arca_out: Vec<u8>) -> Vec<u8> {
        if !self.dialect.is_0_14() {
            return arca_out;
        }
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        arca_tests::dialect::as_restic_0_14(&args, &arca_out)
    }

    fn snap(&self, repo: &RepoCase, i: usize) -> String {
        repo.snapshots[i].clone()
    }
}

/// Panic with the first differing line when `restic` and `arca` differ.
fn assert_bytes_eq(restic: &[u8], arca: &[u8], what: &str) {
    if restic == arca {
        return;
    }
    let rl: Vec<&[u8]> = restic.split(|&b| b == b'\n').collect();
    let al: Vec<&[u8]> = arca.split(|&b| b == b'\n').collect();
    let i = rl
        .iter()
        .zip(&al)
        .position(|(x, y)| x != y)
        .unwrap_or(rl.len().min(al.len()));
    let line = |v: &[&[u8]]| {
        v.get(i)
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .unwrap_or_else(|| "<end of output>".into())
    };
    let at = restic
        .iter()
        .zip(arca)
        .position(|(x, y)| x != y)
        .unwrap_or(restic.len().min(arca.len()));
    let around = |b: &[u8]| {
        String::from_utf8_lossy(&b[at.saturating_sub(60)..(at + 60).min(b.len())]).into_owned()
    };
    panic!(
        "{what}: arca's output differs from restic's ({} vs {} bytes), first at line {}:\n\
         restic: {:?}\narca:   {:?}\naround byte {at}:\nrestic: {:?}\narca:   {:?}",
        restic.len(),
        arca.len(),
        i + 1,
        line(&rl),
        line(&al),
        around(restic),
        around(arca)
    );
}

fn lines_sorted(out: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = String::from_utf8_lossy(out)
        .lines()
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

fn json(out: &[u8], what: &str) -> Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

/// Compare two restored (or extracted) trees: everything but the target folder's own metadata.
fn assert_trees_eq(restic_dir: &Path, arca_dir: &Path, what: &str) {
    let opts = CompareOptions {
        root_metadata: false,
        ..CompareOptions::default()
    };
    // `a` is restic's tree, `b` arca's.
    if let Err(e) = compare_trees_with(restic_dir, arca_dir, &opts) {
        panic!("{what}: arca's tree differs from restic's (a = restic, b = arca):\n{e}");
    }
}

/// Number of files below `dir` (regular files, any depth): a restore that produced nothing
/// must not pass as "identical".
fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let ft = entry.file_type().unwrap();
        if ft.is_dir() {
            n += count_files(&entry.path());
        } else if ft.is_file() {
            n += 1;
        }
    }
    n
}

/// Regular files under `dir`: (names, distinct inodes).
fn file_names_and_inodes(dir: &Path) -> (usize, usize) {
    fn walk(dir: &Path, names: &mut usize, inodes: &mut BTreeSet<(u64, u64)>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let ft = entry.file_type().unwrap();
            if ft.is_dir() {
                walk(&entry.path(), names, inodes);
            } else if ft.is_file() {
                let m = entry.metadata().unwrap();
                *names += 1;
                inodes.insert((m.dev(), m.ino()));
            }
        }
    }
    let (mut names, mut inodes) = (0, BTreeSet::new());
    walk(dir, &mut names, &mut inodes);
    (names, inodes.len())
}

/// `path` relative to `/`, for joining under a restore target.
fn rel(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap()
}

// ------------------------------------------------------------------------------------------------
// The fixture itself

#[test]
fn fixture_has_the_expected_snapshots() {
    let f = fixture_or_return!();
    for repo in &f.repos {
        assert_eq!(repo.snapshots.len(), 4, "{}", repo.name);
        let version = f.restic_ro(repo).run_json(["cat", "config"])["version"].clone();
        let want = if repo.name == "v1" { 1 } else { 2 };
        assert_eq!(version, want, "{}: repository version", repo.name);
    }
    // The source holds what the acceptance line promises.
    for name in [
        &b"names/quote\"d.txt"[..],
        b"names/back\\slash.txt",
        b"names/<angle>.txt",
        b"names/amp&ersand.txt",
        b"names/tab\tinside.txt",
        b"names/latin1-\xe9\xff.bin",
        b"names/ctrl\x01.txt",
        b"empty/.hidden-empty",
    ] {
        assert!(
            f.src.join(OsStr::from_bytes(name)).is_file(),
            "{:?}",
            OsStr::from_bytes(name)
        );
    }
    assert!(fs::symlink_metadata(f.src.join("links/relative"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(
        fs::metadata(f.src.join("hardlinks/original"))
            .unwrap()
            .nlink()
            >= 3
    );
}

// ------------------------------------------------------------------------------------------------
// restore

/// Restore `spec` with restic and arca (same extra flags) into fresh folders; both must succeed.
/// Returns (restic's target, arca's target, restic's stdout, arca's stdout).
fn restore_both(
    f: &Fixture,
    repo: &RepoCase,
    what: &str,
    restic_spec: &str,
    restic_extra: &[OsString],
    arca_spec: &str,
    arca_extra: &[OsString],
) -> (PathBuf, PathBuf, String, String) {
    let out = f.scratch(&format!("{}-{what}", repo.name));
    let (rt, at) = (out.join("restic"), out.join("arca"));
    // With locks (the default), as a user would run them.
    let r = f
        .restic(repo)
        .cmd(["restore", restic_spec, "--target"])
        .arg(&rt)
        .args(restic_extra)
        .run();
    let a = f
        .arca(repo)
        .cmd(["restore", arca_spec, "--target"])
        .arg(&at)
        .args(arca_extra)
        .run();
    (
        rt,
        at,
        String::from_utf8_lossy(&r).into_owned(),
        String::from_utf8_lossy(&a).into_owned(),
    )
}

#[test]
fn restore_latest_and_older_snapshots_like_restic() {
    let f = fixture_or_return!();
    for repo in &f.repos {
        let older = f.snap(repo, 0);
        let two_paths = f.snap(repo, 2);
        for (what, spec) in [
            ("latest", "latest"),
            ("oldest", older.as_str()),
            ("two-paths", &two_paths[..8]),
        ] {
            let (rt, at, _, _) = restore_both(f, repo, what, spec, &[], spec, &[]);
            assert!(count_files(&rt) > 20, "{what}: restic restored little");
            assert_trees_eq(&rt, &at, &format!("[{}] restore {what}", repo.name));
        }
    }
}

/// restic 0.14 has no `snapshot:subfolder`: arca's subfolder restore must equal the subfolder of
/// restic's restore with `--include <subfolder>`.
#[test]
fn restore_subfolder_like_restic() {
    let f = fixture_or_return!();
    for repo in &f.repos {
        let older = f.snap(repo, 1);
        let deep = f.src.join("deep/level-01/level-02");
        for (what, snap, sub) in [
            ("names", "latest".to_owned(), f.src.join("names")),
            ("deep", older, deep),
        ] {
            let sub_s = sub.to_str().unwrap();
            let (rt, at, _, _) = restore_both(
                f,
                repo,
                &format!("sub-{what}"),
                &snap,
                &[os("--include"), os(sub_s)],
                &format!("{snap}:{sub_s}"),
                &[],
            );
            let restic_sub = rt.join(rel(&sub));
            assert!(count_files(&restic_sub) > 0);
            assert!(
                !at.join(rel(&sub)).exists(),
                "arca put the subfolder's full path under the target"
            );
            assert_trees_eq(
                &restic_sub,
                &at,
                &format!("[{}] restore {snap}:{sub_s}", repo.name),
            );
        }
    }
}

#[test]
fn restore_with_include_and_exclude_like_restic() {
    let f = fixture_or_return!();
    let links = f.snap_path("links");
    let random = f.snap_path("random");
    let cases: Vec<(&str, Vec<OsString>)> = vec![
        ("inc-txt", args!["--include", "*.txt"]),
        (
            "inc-two",
            args!["--include", &links, "--include", "hardlinks"],
        ),
        ("inc-glob-dir", args!["--include", "level-1?"]),
        ("iinc", args!["--iinclude", "*.TXT"]),
        ("exc-two", args!["--exclude", "names", "--exclude", "*.bin"]),
        ("exc-abs", args!["--exclude", &random]),
        ("iexc", args!["--iexclude", "RANDOM", "--iexclude", "*.TXT"]),
    ];
    for repo in &f.repos {
        for (what, flags) in &cases {
            let (rt, at, _, _) = restore_both(f, repo, what, "latest", flags, "latest", flags);
            assert!(count_files(&rt) > 0, "{what}: restic restored nothing");
            assert_trees_eq(
                &rt,
                &at,
                &format!("[{}] restore latest {}", repo.name, show_args(flags)),
            );
        }
    }
}

/// restic 0.14 has no `--sparse`: arca's sparse restore must hold the same tree as restic's
/// plain restore, with holes where the snapshot has all-zero chunks.
#[test]
fn sparse_restore_has_holes_and_the_same_contents() {
    let f = fixture_or_return!();
    for repo in &f.repos {
        let (rt, at, _, _) = restore_both(
            f,
            repo,
            "sparse",
            "latest",
            &[],
            "latest",
            &[os("--sparse")],
        );
        assert_trees_eq(&rt, &at, &format!("[{}] restore --sparse", repo.name));
        let file = at.join(rel(&f.src)).join("sparse/zero-runs.bin");
        let meta = fs::metadata(&file).unwrap();
        assert!(
            meta.blocks() * 512 < meta.len() - (2 << 20),
            "[{}] {} is not sparse: {} blocks of 512 for {} bytes",
            repo.name,
            file.display(),
            meta.blocks(),
            meta.len()
        );
    }
}

#[test]
fn restore_verify_like_restic() {
    let f = fixture_or_return!();
    let verified = |out: &str| -> u64 {
        let line = out
            .lines()
            .find(|l| l.starts_with("finished verifying "))
            .unwrap_or_else(|| panic!("no `finished verifying` line in:\n{out}"));
        line.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    for repo in &f.repos {
        let older = f.snap(repo, 1);
        for spec in ["latest", older.as_str()] {
            let flags = args!["--verify"];
            let (rt, at, r_out, a_out) =
                restore_both(f, repo, "verify", spec, &flags, spec, &flags);
            assert_trees_eq(
                &rt,
                &at,
                &format!("[{}] restore --verify {spec}", repo.name),
            );
            // Current restic verifies each file it wrote once (further hard-link names share
            // the inode); 0.14 counted every name.
            let (names, inodes) = file_names_and_inodes(&at);
            assert!(names > inodes, "the fixture has hard links");
            assert_eq!(verified(&a_out), inodes as u64, "arca: {a_out}");
            let restic_counts = if f.dialect.is_0_14() { names } else { inodes };
            assert_eq!(
                verified(&r_out),
                restic_counts as u64,
                "[{}] number of verified files\nrestic: {r_out}\narca: {a_out}",
                repo.name
            );
            // The first line (`restoring snapshot ... to ...`) is restic's too.
            let first = |s: &str| s.lines().next().unwrap_or("").to_owned();
            let mut a_first = first(&a_out);
            if f.dialect.is_0_14() {
                a_first = arca_tests::dialect::restore_first_line_as_0_14(&a_first);
            }
            let a_first = a_first.replace(at.to_str().unwrap(), "TARGET");
            let r_first = first(&r_out).replace(rt.to_str().unwrap(), "TARGET");
            assert_eq!(a_first, r_first, "[{}] restore's first line", repo.name);
        }
    }
}

// ------------------------------------------------------------------------------------------------
// snapshots, ls, cat, list

#[test]
fn snapshots_json_is_restics() {
    let f = fixture_or_return!();
    let src = f.snap_path("");
    let text = f.snap_path("text");
    let names = f.snap_path("names");
    for repo in &f.repos {
        let s1 = f.snap(repo, 1);
        let (s0, s2) = (f.snap(repo, 0), f.snap(repo, 2));
        let cases: Vec<Vec<OsString>> = vec![
            args![],
            args!["--host", "alpha"],
            args!["--host", "beta"],
            args!["--tag", "second"],
            args!["--tag", "first", "--tag", "last"],
            args!["--tag", "second,extra"],
            args!["--tag", "extra,first"],
            args!["--path", &src],
            args!["--path", &text, "--path", &names],
            args!["--host", "beta", "--path", &src],
            args!["latest"],
            args![&s1[..8]],
            args![&s0, &s2[..10]],
            args!["--latest", "1"],
        ];
        for flags in cases {
            let mut cmd = args!["snapshots", "--json"];
            cmd.extend(flags.iter().cloned());
            let out = f.assert_same(repo, &cmd);
            let list = json(&out, "snapshots --json");
            if flags.is_empty() {
                assert_eq!(list.as_array().unwrap().len(), 4);
            }
        }
    }
}

#[test]
fn ls_is_restics_for_every_snapshot() {
    let f = fixture_or_return!();
    for repo in &f.repos {
        for id in &repo.snapshots {
            for flags in [&["--json"][..], &["-l"], &[]] {
                let mut cmd = args!["ls"];
                cmd.extend(flags.iter().map(os));
                cmd.push(os(id));
                let out = f.assert_same(repo, &cmd);
                assert!(out.split(|&b| b == b'\n').count() > 40, "ls printed little");
            }
        }
        // Listing only some directories, recursively or not, by short ID and by `latest`.
        let s1 = f.snap(repo, 1);
        let deep = f.snap_path("deep/level-01/level-02/");
        let cases: Vec<Vec<OsString>> = vec![
            args!["latest", f.snap_path("hardlinks")],
            args!["--recursive", "latest", f.snap_path("hardlinks")],
            args![
                "--json",
                "latest",
                f.snap_path("names"),
                f.snap_path("perms") + "/"
            ],
            args!["-l", "--recursive", &s1[..8], &deep],
            args!["latest", f.snap_path("hardlinks/sub/third-name")],
            args!["--host", "alpha", "latest"],
            args!["--json", "--tag", "first", "latest", "/"],
        ];
        for flags in cases {
            let mut cmd = args!["ls"];
            cmd.extend(flags);
            f.assert_same(repo, &cmd);
        }
    }
}

/// `cat tree` does not exist in restic 0.14: compare `arca cat tree` with `restic cat blob` of
/// the same tree ID, found by walking restic's own tree blobs.
#[test]
fn cat_is_restics() {
    let f = fixture_or_return!();
    for repo in &f.repos {
        let restic = f.restic_ro(repo);
        let list = |kind: &str| -> Vec<String> {
            lines_sorted(&restic.run(["list", kind]))
                .into_iter()
                .filter(|l| !l.is_empty())
                .collect()
        };
        f.assert_same(repo, &[os("cat"), os("config")]);
        f.assert_same(repo, &[os("cat"), os("masterkey")]);
        for key in list("keys") {
            f.assert_same(repo, &[os("cat"), os("key"), os(&key)]);
        }
        for id in list("snapshots") {
            f.assert_same(repo, &[os("cat"), os("snapshot"), os(&id)]);
            f.assert_same(repo, &[os("cat"), os("snapshot"), os(&id[..8])]);
        }
        let indexes = list("index");
        assert!(!indexes.is_empty());
        for id in &indexes {
            f.assert_same(repo, &[os("cat"), os("index"), os(id)]);
        }
        for id in list("packs").iter().take(3) {
            f.assert_same(repo, &[os("cat"), os("pack"), os(id)]);
        }
        let blobs = list("blobs");
        let of_type = |t: &str| -> Vec<String> {
            blobs
                .iter()
                .filter_map(|l| l.strip_prefix(&format!("{t} ")).map(str::to_owned))
                .collect()
        };
        let (data, trees) = (of_type("data"), of_type("tree"));
        assert!(data.len() > 10 && trees.len() > 10, "{blobs:?}");
        for id in data.iter().take(6).chain(trees.iter().take(6)) {
            f.assert_same(repo, &[os("cat"), os("blob"), os(id)]);
        }

        // cat tree <snapshot> and <snapshot>:<path>.
        for (i, id) in repo.snapshots.iter().enumerate() {
            let snap = json(&restic.run(["cat", "snapshot", id]), "cat snapshot");
            let root = snap["tree"].as_str().unwrap().to_owned();
            let restic_root = restic.run(["cat", "blob", &root]);
            let arca = f.arca_ro(repo);
            assert_bytes_eq(
                &restic_root,
                &arca.run(["cat", "tree", id]),
                &format!("[{}] cat tree {id}", repo.name),
            );
            assert_bytes_eq(
                &restic_root,
                &arca.run(["cat", "tree", &root]),
                &format!("[{}] cat tree {root}", repo.name),
            );
            if i == 2 {
                continue; // the snapshot of text/ and names/ only
            }
            // Walk restic's trees down to src/hardlinks.
            let target = f.src.join("hardlinks");
            let mut tree = root;
            for comp in rel(&target).components() {
                let raw = restic.run(["cat", "blob", &tree]);
                let nodes = json(&raw, "tree blob")["nodes"].as_array().unwrap().clone();
                let name = comp.as_os_str().to_str().unwrap();
                let node = nodes
                    .iter()
                    .find(|n| n["name"] == name)
                    .unwrap_or_else(|| panic!("no {name} in tree {tree}"));
                tree = node["subtree"].as_str().unwrap().to_owned();
            }
            assert_bytes_eq(
                &restic.run(["cat", "blob", &tree]),
                &arca.run(["cat", "tree", &format!("{id}:{}", target.display())]),
                &format!("[{}] cat tree {id}:{}", repo.name, target.display()),
            );
        }
    }
}

/// The key file restic wrote (restic's scrypt parameters), in the pristine copies.
#[test]
fn cat_key_of_restics_own_key_file() {
    let f = fixture_or_return!();
    for repo in &f.repos {
        let id = &repo.restic_key.0;
        let r = Restic::with_bin(&f.restic_bin, &repo.pristine, PASSWORD)
            .cmd(["--no-lock", "cat", "key", id])
            .run();
        let a = Arca::new(&repo.pristine, PASSWORD)
            .cmd(["--no-lock", "cat", "key", id])
            .run();
        assert_bytes_eq(
            &r,
            &a,
            &format!("[{}] cat key {id} (restic's key)", repo.name),
        );
        assert_eq!(json(&a, "cat key")["kdf"], "scrypt");
    }
}

#[test]
fn list_is_restics() {
    let f = fixture_or_return!();
    for repo in &f.repos {
        for kind in ["packs", "index", "snapshots", "keys", "blobs"] {
            let (r, a) = f.both(repo, &[os("list"), os(kind)]);
            let (r, a) = (lines_sorted(&r), lines_sorted(&a));
            assert!(!r.is_empty(), "restic listed no {kind}");
            if kind == "snapshots" {
                assert_eq!(r.len(), 4);
            }
            assert_eq!(
                a, r,
                "[{}] list {kind} (sorted lines; left arca)",
                repo.name
            );
        }
    }
}

// ------------------------------------------------------------------------------------------------
// stats, diff, find, dump, check

/// restic 0.14's `stats --json` has total_size, total_file_count, total_blob_count (omitempty)
/// and snapshots_count; arca may add the compression fields of newer restic versions.
#[test]
fn stats_json_values_are_restics() {
    let f = fixture_or_return!();
    const NEWER_FIELDS: [&str; 4] = [
        "total_uncompressed_size",
        "compression_ratio",
        "compression_progress",
        "compression_space_saving",
    ];
    for repo in &f.repos {
        let (s0, s2) = (f.snap(repo, 0), f.snap(repo, 2));
        for mode in ["restore-size", "raw-data"] {
            let cases: Vec<Vec<OsString>> = vec![
                args![],
                args!["latest"],
                args![&s0[..8], &s2],
                args!["--host", "beta"],
            ];
            for flags in cases {
                let mut cmd = args!["stats", "--json", "--mode", mode];
                cmd.extend(flags);
                let (r, a) = f.both(repo, &cmd);
                let what = format!("[{}] `{}`", repo.name, show_args(&cmd));
                let (r, mut a) = (json(&r, &what), json(&a, &what));
                if f.dialect.is_0_14() {
                    a = arca_tests::dialect::stats_json_as_0_14(a);
                }
                let (r, a) = (r.as_object().unwrap(), a.as_object().unwrap());
                assert!(r["total_size"].as_u64().unwrap() > 0, "{what}: {r:?}");
                for (key, value) in r {
                    assert_eq!(a.get(key), Some(value), "{what}: field {key}\narca: {a:?}");
                }
                for key in a.keys() {
                    assert!(
                        r.contains_key(key) || NEWER_FIELDS.contains(&key.as_str()),
                        "{what}: arca prints {key}, restic does not"
                    );
                }
            }
        }
    }
}

#[test]
fn diff_is_restics() {
    let f = fixture_or_return!();
    for repo in &f.repos {
        let s = &repo.snapshots;
        let pairs = [(0, 1), (1, 3), (0, 2), (2, 0), (3, 1), (0, 3)];
        for (x, y) in pairs {
            let cmd = args!["diff", "--json", &s[x], &s[y]];
            let (r, a) = f.both(repo, &cmd);
            let what = format!("[{}] `{}`", repo.name, show_args(&cmd));
            assert_eq!(lines_sorted(&a), lines_sorted(&r), "{what} (sorted lines)");
            // Same order too: restic's is deterministic (tree order, depth first).
            assert_bytes_eq(&r, &a, &what);
            assert!(r.split(|&b| b == b'\n').count() > 3, "{what}: no changes?");
        }
        f.assert_same(repo, &[os("diff"), os(&s[1][..8]), os(&s[3][..8])]);
        f.assert_same(repo, &[os("diff"), os("--metadata"), os(&s[0]), os(&s[3])]);
    }
}

#[test]
fn find_json_is_restics() {
    let f = fixture_or_return!();
    let text = f.snap_path("text");
    let as_set = |out: &[u8], what: &str| -> BTreeSet<String> {
        let mut v = json(out, what);
        if f.dialect.is_0_14() {
            // Applied to restic's own output too: a no-op there.
            v = arca_tests::dialect::find_json_as_0_14(v);
        }
        v.as_array()
            .unwrap_or_else(|| panic!("{what}: not an array"))
            .iter()
            .map(|v| v.to_string())
            .collect()
    };
    for repo in &f.repos {
        let s1 = f.snap(repo, 1);
        let cases: Vec<Vec<OsString>> = vec![
            args!["*.txt"],
            args!["names/*space*"],
            args!["level-1?"],
            args![&text],
            args!["**/sub/*"],
            args!["*&*", "<*", "*\"*"],
            args!["-i", "QUOTE*"],
            args!["--host", "alpha", "size-*"],
            args!["--snapshot", &s1[..8], "new*"],
            args!["dir-*"],
            args!["no-such-name-anywhere"],
        ];
        for flags in cases {
            let mut cmd = args!["find", "--json"];
            let expect_none = flags[0] == "no-such-name-anywhere";
            cmd.extend(flags);
            let (r, a) = f.both(repo, &cmd);
            let what = format!("[{}] `{}`", repo.name, show_args(&cmd));
            let (r, a) = (as_set(&r, &what), as_set(&a, &what));
            assert_eq!(r.is_empty(), expect_none, "{what}: restic found {r:?}");
            assert_eq!(a, r, "{what}: the snapshots' matches differ (left arca)");
        }
    }
}

/// `tar -tv` listing (names, modes, owners, sizes, mtimes, link targets, in order) and the
/// extracted trees of two tar archives are the same.
fn assert_tars_eq(restic_tar: &[u8], arca_tar: &[u8], scratch: &Path, what: &str) {
    let tar = require_tool("tar");
    let write = |name: &str, data: &[u8]| {
        let p = scratch.join(name);
        fs::write(&p, data).unwrap();
        p
    };
    let (rf, af) = (write("restic.tar", restic_tar), write("arca.tar", arca_tar));
    let listing = |file: &Path| {
        let out = std::process::Command::new(&tar)
            .args([
                "--list",
                "--verbose",
                "--full-time",
                "--numeric-owner",
                "--file",
            ])
            .arg(file)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{what}: tar --list {}: {out:?}",
            file.display()
        );
        out.stdout
    };
    let listed = listing(&rf);
    assert!(
        listed.split(|&b| b == b'\n').count() > 3,
        "{what}: small tar"
    );
    assert_bytes_eq(&listed, &listing(&af), &format!("{what}: tar -tv"));
    let extract = |file: &Path, dir: &str| {
        let dir = scratch.join(dir);
        fs::create_dir_all(&dir).unwrap();
        let out = std::process::Command::new(&tar)
            .args(["--extract", "--warning=no-timestamp", "--file"])
            .arg(file)
            .arg("-C")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{what}: tar -x {}: {out:?}",
            file.display()
        );
        dir
    };
    let (rd, ad) = (extract(&rf, "restic-x"), extract(&af, "arca-x"));
    // Directory mtimes were compared in the listing; the dumped folder and its parents are not
    // in the archives, and tar gives them the time of extraction.
    let opts = CompareOptions {
        root_metadata: false,
        dir_mtime: false,
        ..CompareOptions::default()
    };
    if let Err(e) = compare_trees_with(&rd, &ad, &opts) {
        panic!("{what}: extracted: arca's tree differs from restic's (a = restic, b = arca):\n{e}");
    }
}

#[test]
fn dump_is_restics() {
    let f = fixture_or_return!();
    for repo in &f.repos {
        let s0 = f.snap(repo, 0);
        let files: Vec<(&str, &[u8])> = vec![
            ("latest", b"big/random-3M.bin"),
            ("latest", b"big/text-1.5M.txt"),
            ("latest", b"sparse/zero-runs.bin"),
            ("latest", b"empty/.hidden-empty"),
            ("latest", b"names/quote\"d.txt"),
            ("latest", b"names/tab\tinside.txt"),
            ("latest", b"names/back\\slash.txt"),
            ("latest", b"names/latin1-\xe9\xff.bin"),
            ("latest", b"names/dir-\xfe\xfd/inner.txt"),
            ("latest", b"hardlinks/sub/third-name"),
            (&s0[..8], b"big/random-3M.bin"),
            (&s0[..8], b"text/medium.txt"),
        ];
        for (snap, file) in files {
            let path = f.src.join(OsStr::from_bytes(file));
            let out = f.assert_same(repo, &[os("dump"), os(snap), os(&path)]);
            if snap == "latest" {
                // Unchanged since the last backup: the dump is the source file.
                assert_eq!(out, fs::read(&path).unwrap(), "{}", path.display());
            }
        }
        for (snap, dir) in [("latest", "names"), (&s0[..8], "hardlinks"), ("latest", "")] {
            let path = f.src.join(dir);
            let cmd = args!["dump", snap, &path];
            let (r, a) = f.both(repo, &cmd);
            let what = format!("[{}] `{}`", repo.name, show_args(&cmd));
            assert_tars_eq(&r, &a, &f.scratch(&format!("{}-tar", repo.name)), &what);
        }
    }
}

#[test]
fn check_read_data_passes() {
    let f = fixture_or_return!();
    for repo in &f.repos {
        let out = f.arca(repo).cmd(["check", "--read-data"]).output();
        assert!(
            out.status.success(),
            "[{}] arca check --read-data failed: {}\n{}",
            repo.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("no errors were found"),
            "{out:?}"
        );
    }
}
