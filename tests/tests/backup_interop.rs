//! Interop of `arca backup` and `arca prune` with the real restic (0.14).
//!
//! - round trips: an arca backup of the Small interop dataset into repositories made by
//!   `arca init` (v2 and v1) and `restic init` (v2) passes `restic check --read-data` and restores
//!   exactly with both restic and arca; a restic backup restores exactly with arca;
//! - dedup parity: the same unchanged directory backed up by restic and by arca (either order,
//!   relative and absolute target paths) gives the same root tree and adds no blob the second
//!   time;
//! - incremental backups: counters and `restic diff` of arca's snapshots match restic's;
//! - prune: `arca prune` (`--max-unused 0%` and the default 5%) after `restic forget` leaves a
//!   repository restic checks and restores from; restic's own prune accepts arca's repository;
//! - the selection flags (`--exclude` and friends, `--files-from`, `--stdin`, `--tag`, `--host`,
//!   `--dry-run`) select the same items as restic with the same flags;
//! - unreadable items (run as `nobody`, so that mode 000 bites): the snapshot is written and the
//!   exit code is 3, like restic.
//!
//! Everything lives under one temporary folder in `CARGO_TARGET_TMPDIR` (not `/tmp`, whose
//! mtime changes whenever any test makes a temporary folder: restic keeps every component of an
//! absolute target path in the tree, so the ancestors of an absolute target must stay still).
//! Set `ARCA_INTEROP_KEEP=1` to keep it after the run (the path is printed).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use arca_tests::*;
use serde_json::Value;

const PASSWORD: &str = "backup interop password, not on argv";

struct Fixture {
    restic_bin: PathBuf,
    /// Holds only `data/` and `out/` once built, so that its metadata stays still.
    root: PathBuf,
    /// The Small dataset (`root/data/src`): never modified.
    src: PathBuf,
    summary: DatasetSummary,
}

static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
fn fixture() -> Option<&'static Fixture> {
    FIXTURE
        .get_or_init(|| {
            let restic_bin = restic_or_skip()?;
            // Snapshots hold every ancestor of the backed-up folder, with its mtime: the
            // dedup tests compare trees of two backups, so no ancestor may change between
            // them. `target/tmp`, shared by every test binary, changes all the time; this
            // folder beside it is this binary's alone.
            let parent = Path::new(env!("CARGO_TARGET_TMPDIR"))
                .parent()
                .expect("target/tmp has a parent")
                .join("backup-interop");
            fs::create_dir_all(&parent).expect("backup-interop folder");
            let tmp = tempfile::Builder::new()
                .prefix("run-")
                .tempdir_in(&parent)
                .expect("temp dir");
            let root = fs::canonicalize(tmp.path()).unwrap();
            // Traversable by `nobody` (the unreadable-items test runs as that user).
            fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
            fs::create_dir(root.join("out")).unwrap();
            fs::set_permissions(root.join("out"), fs::Permissions::from_mode(0o755)).unwrap();
            let src = root.join("data/src");
            let summary = make_dataset(&src, DatasetScale::Small);
            let keep = std::env::var_os("ARCA_INTEROP_KEEP").is_some_and(|v| !v.is_empty());
            if keep {
                let _ = tmp.keep();
                eprintln!("keeping the backup interop folder {}", root.display());
            } else {
                keep_until_exit(tmp);
            }
            Some(Fixture {
                restic_bin,
                root,
                src,
                summary,
            })
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

impl Fixture {
    fn restic(&self, repo: &Path) -> Restic {
        Restic::with_bin(&self.restic_bin, repo, PASSWORD)
    }

    fn restic_with_bin(&self, bin: &Path, repo: &Path) -> Restic {
        Restic::with_bin(bin, repo, PASSWORD)
    }

    fn arca(&self, repo: &Path) -> Arca {
        Arca::new(repo, PASSWORD)
    }

    /// A fresh, empty folder under `out/` for one test.
    fn scratch(&self, what: &str) -> PathBuf {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = self.root.join("out").join(format!("{n:03}-{what}"));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A new, empty repository at `path`.
    fn init(&self, path: &Path, kind: RepoKind) -> PathBuf {
        match kind {
            RepoKind::ArcaV2 => {
                self.arca(path).run(["init"]);
            }
            RepoKind::ArcaV1 => {
                self.arca(path).run(["init", "--repository-version", "1"]);
            }
            RepoKind::ResticV2 => {
                self.restic(path).run(["init"]);
            }
            RepoKind::ResticV1 => {
                self.restic(path).run(["init", "--repository-version", "1"]);
            }
        }
        let version = self.restic(path).run_json(["cat", "config"])["version"].clone();
        assert_eq!(version, kind.version(), "{kind:?}");
        path.to_owned()
    }
}

#[derive(Clone, Copy, Debug)]
enum RepoKind {
    ArcaV2,
    ArcaV1,
    ResticV2,
    #[allow(dead_code)]
    ResticV1,
}

impl RepoKind {
    fn version(self) -> u64 {
        match self {
            RepoKind::ArcaV2 | RepoKind::ResticV2 => 2,
            RepoKind::ArcaV1 | RepoKind::ResticV1 => 1,
        }
    }
}

// --- small helpers ------------------------------------------------------------------------------

/// The `summary` line of `backup --json` output.
fn summary_of(lines: &[Value]) -> Value {
    lines
        .iter()
        .rev()
        .find(|l| l["message_type"] == "summary")
        .cloned()
        .unwrap_or_else(|| panic!("no summary line in {lines:#?}"))
}

fn num(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no number {key} in {v}"))
}

/// The snapshot (as `restic snapshots --json` prints it) whose ID starts with `id`.
fn snapshot(restic: &Restic, id: &str) -> Value {
    let all = restic.run_json(["snapshots", "--json"]);
    let found: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["id"].as_str().unwrap().starts_with(id))
        .collect();
    assert_eq!(found.len(), 1, "snapshot {id} in {all:#}");
    found[0].clone()
}

/// The full ID of the snapshot a `backup --json` summary reports (restic 0.14 prints a short
/// one).
fn snapshot_id(restic: &Restic, summary: &Value) -> String {
    let id = summary["snapshot_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no snapshot_id in {summary}"));
    snapshot(restic, id)["id"].as_str().unwrap().to_owned()
}

fn tree_of(restic: &Restic, id: &str) -> String {
    snapshot(restic, id)["tree"].as_str().unwrap().to_owned()
}

/// `(data blobs, tree blobs)` as `restic list blobs` counts them.
fn blob_counts(restic: &Restic) -> (usize, usize) {
    let text = restic.run_string(["list", "blobs"]);
    let data = text.lines().filter(|l| l.starts_with("data ")).count();
    let tree = text.lines().filter(|l| l.starts_with("tree ")).count();
    assert_eq!(data + tree, text.lines().count(), "{text}");
    (data, tree)
}

/// Every file name (with its size) below `dir`, relative: a snapshot of what a repository folder
/// holds.
fn listing(dir: &Path) -> BTreeSet<(PathBuf, u64)> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let md = fs::symlink_metadata(e.path()).unwrap();
            if md.is_dir() {
                stack.push(e.path());
            }
            out.insert((
                e.path().strip_prefix(dir).unwrap().to_owned(),
                if md.is_dir() { 0 } else { md.len() },
            ));
        }
    }
    out
}

/// The paths `restic ls --json` lists for a snapshot.
fn ls_paths(restic: &Restic, id: &str) -> BTreeSet<String> {
    restic
        .run_json_lines(["ls", "--json", id])
        .into_iter()
        .filter(|l| l["struct_type"] == "node")
        .map(|l| l["path"].as_str().unwrap().to_owned())
        .collect()
}

/// `(path, modifier)` of `restic diff --metadata --json a b`.
fn diff_changes(restic: &Restic, a: &str, b: &str) -> BTreeSet<(String, String)> {
    restic
        .run_json_lines(["diff", "--metadata", "--json", a, b])
        .into_iter()
        .filter(|l| l["message_type"] == "change")
        .map(|l| {
            (
                l["path"].as_str().unwrap().to_owned(),
                l["modifier"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// mtime and ctime of every ancestor of `path` restic stores in the tree (all but `/`).
fn ancestor_stamps(path: &Path) -> Vec<(i64, i64, i64, i64)> {
    path.ancestors()
        .filter(|p| p.parent().is_some())
        .map(|p| {
            let md = fs::metadata(p).unwrap();
            (md.mtime(), md.mtime_nsec(), md.ctime(), md.ctime_nsec())
        })
        .collect()
}

fn write_file(path: &Path, data: &[u8]) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn set_mtime(path: &Path, secs: i64, nanos: u32) {
    filetime::set_file_mtime(path, filetime::FileTime::from_unix_time(secs, nanos)).unwrap();
}

/// `restic restore` and `arca restore` of `snapshot` reproduce `source` (backed up under its
/// absolute path).
fn restore_both_and_compare(fx: &Fixture, repo: &Path, snapshot: &str, source: &Path) {
    let out = fx.scratch("restore-restic");
    fx.restic(repo)
        .cmd(["restore", snapshot, "--target"])
        .arg(&out)
        .run();
    compare_trees(source, &out.join(source.strip_prefix("/").unwrap()))
        .unwrap_or_else(|e| panic!("restic restore of {snapshot}: {e}"));
    let out = fx.scratch("restore-arca");
    fx.arca(repo)
        .cmd(["restore", snapshot, "--target"])
        .arg(&out)
        .run();
    compare_trees(source, &out.join(source.strip_prefix("/").unwrap()))
        .unwrap_or_else(|e| panic!("arca restore of {snapshot}: {e}"));
}

// --- 1. round trips -----------------------------------------------------------------------------

/// `arca backup` of the Small dataset into a new repository of `kind`: restic checks every byte
/// of it, and both restic and arca restore the source exactly.
fn arca_backup_round_trip(kind: RepoKind) {
    let fx = fixture_or_return!();
    let repo = fx.init(&fx.scratch("round-trip").join("repo"), kind);
    let lines = fx
        .arca(&repo)
        .cmd(["backup", "--json"])
        .arg(&fx.src)
        .run_json_lines();
    let summary = summary_of(&lines);
    assert_eq!(
        num(&summary, "files_new"),
        fx.summary.files as u64,
        "{summary}"
    );
    assert_eq!(num(&summary, "files_changed"), 0, "{summary}");
    assert_eq!(num(&summary, "files_unmodified"), 0, "{summary}");
    assert_eq!(
        num(&summary, "total_files_processed"),
        fx.summary.files as u64
    );
    assert_eq!(num(&summary, "total_bytes_processed"), fx.summary.bytes);

    let restic = fx.restic(&repo);
    let id = snapshot_id(&restic, &summary);
    let sn = snapshot(&restic, &id);
    assert_eq!(sn["paths"], serde_json::json!([fx.src.to_str().unwrap()]));
    restic.run(["check", "--read-data"]);
    restore_both_and_compare(fx, &repo, &id, &fx.src);
}

#[test]
fn arca_backup_into_arca_v2_repository_round_trips() {
    arca_backup_round_trip(RepoKind::ArcaV2);
}

#[test]
fn arca_backup_into_restic_v2_repository_round_trips() {
    arca_backup_round_trip(RepoKind::ResticV2);
}

#[test]
fn arca_backup_into_v1_repository_round_trips() {
    arca_backup_round_trip(RepoKind::ArcaV1);
}

// --- 2. dedup parity ----------------------------------------------------------------------------

/// Which tool backs up first.
#[derive(Clone, Copy, Debug, PartialEq)]
enum First {
    Restic,
    Arca,
}

/// Back up `target` (relative to `cwd`, or absolute) with the first tool, then the same
/// unchanged directory with the other one with `--force`: the second backup adds nothing and
/// has the same root tree. Returns the first snapshot's ID.
///
/// restic keeps the ancestors of an absolute target in the tree: if one of them changed between
/// the two backups, the pair is repeated (up to three times).
fn dedup_pair(fx: &Fixture, repo: &Path, cwd: &Path, target: &Path, first: First) -> String {
    let restic = fx.restic(repo);
    let arca = fx.arca(repo);
    let abs = cwd.join(target);
    for attempt in 1..=3 {
        let stamps = ancestor_stamps(&abs);
        let restic_backup = |force: bool| {
            let mut args = vec!["backup", "--json"];
            if force {
                args.push("--force");
            }
            summary_of(
                &restic
                    .cmd(args)
                    .arg(target)
                    .current_dir(cwd)
                    .run_json_lines(),
            )
        };
        let arca_backup = || {
            summary_of(
                &arca
                    .cmd(["backup", "--json", "--force"])
                    .arg(target)
                    .current_dir(cwd)
                    .run_json_lines(),
            )
        };
        let first_summary = match first {
            First::Restic => restic_backup(false),
            First::Arca => arca_backup(),
        };
        let first_id = snapshot_id(&restic, &first_summary);
        let blobs_before = blob_counts(&restic);
        let packs_before = listing(&repo.join("data"));
        let second_summary = match first {
            First::Restic => arca_backup(),
            First::Arca => restic_backup(true),
        };
        let second_id = snapshot_id(&restic, &second_summary);
        let (first_tree, second_tree) = (tree_of(&restic, &first_id), tree_of(&restic, &second_id));
        if first_tree != second_tree && ancestor_stamps(&abs) != stamps && attempt < 3 {
            eprintln!(
                "an ancestor of {} changed during the backups, trying again",
                abs.display()
            );
            continue;
        }
        let what = format!("{first:?} first, target {}", target.display());
        assert_eq!(
            first_tree, second_tree,
            "{what}: same root tree\nfirst {first_summary}\nsecond {second_summary}"
        );
        assert_eq!(
            num(&second_summary, "data_blobs"),
            0,
            "{what}: {second_summary}"
        );
        assert_eq!(
            num(&second_summary, "tree_blobs"),
            0,
            "{what}: {second_summary}"
        );
        assert_eq!(
            num(&second_summary, "data_added"),
            0,
            "{what}: {second_summary}"
        );
        assert_eq!(blob_counts(&restic), blobs_before, "{what}: blob count");
        assert_eq!(
            listing(&repo.join("data")),
            packs_before,
            "{what}: no new packs"
        );
        assert_eq!(
            num(&second_summary, "total_files_processed"),
            num(&first_summary, "total_files_processed"),
            "{what}"
        );
        assert_eq!(
            num(&second_summary, "total_bytes_processed"),
            num(&first_summary, "total_bytes_processed"),
            "{what}"
        );
        return first_id;
    }
    unreachable!()
}

#[test]
fn restic_then_arca_adds_nothing_and_gives_the_same_tree() {
    let fx = fixture_or_return!();
    let repo = fx.init(
        &fx.scratch("dedup-restic-first").join("repo"),
        RepoKind::ResticV2,
    );
    let data = fx.src.parent().unwrap();
    dedup_pair(fx, &repo, data, Path::new("src"), First::Restic);
    let restic_snapshot = dedup_pair(fx, &repo, data, &fx.src, First::Restic);
    // A restic backup restored by arca.
    let out = fx.scratch("arca-restores-restic");
    fx.arca(&repo)
        .cmd(["restore", &restic_snapshot, "--target"])
        .arg(&out)
        .run();
    compare_trees(&fx.src, &out.join(fx.src.strip_prefix("/").unwrap())).unwrap();
}

#[test]
fn arca_then_restic_adds_nothing_and_gives_the_same_tree() {
    let fx = fixture_or_return!();
    let repo = fx.init(
        &fx.scratch("dedup-arca-first").join("repo"),
        RepoKind::ArcaV2,
    );
    let data = fx.src.parent().unwrap();
    dedup_pair(fx, &repo, data, Path::new("src"), First::Arca);
    dedup_pair(fx, &repo, data, &fx.src, First::Arca);
    // The same from one level up, with a `./` in front.
    dedup_pair(
        fx,
        &repo,
        data.parent().unwrap(),
        Path::new("./data/src"),
        First::Arca,
    );
    // And from another folder, through `../..` (restic stores `data/src`).
    dedup_pair(
        fx,
        &repo,
        &fx.scratch("elsewhere"),
        Path::new("../../data/src"),
        First::Restic,
    );
}

// --- 3. incremental backups ---------------------------------------------------------------------

/// The changes between the second and third backup of the incremental test.
fn modify_incremental(src: &Path) {
    let changed = src.join("text/medium.txt");
    let mut data = fs::read(&changed).unwrap();
    data.extend_from_slice(b"appended after the second backup\n");
    fs::write(&changed, &data).unwrap();
    set_mtime(&changed, 1_650_000_000, 5);
    write_file(
        &src.join("added/new-file.txt"),
        b"added before the third backup\n",
    );
    write_file(&src.join("text/another-new.txt"), b"another new file\n");
    fs::remove_file(src.join("random/size-00004097.bin")).unwrap();
    // Metadata only: a new mode.
    fs::set_permissions(
        src.join("perms/mode-0640"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
}

#[test]
fn incremental_backups_reuse_the_parent_and_report_changes_like_restic() {
    let fx = fixture_or_return!();
    let dir = fx.scratch("incremental");
    let src = dir.join("src");
    let summary = make_dataset(&src, DatasetScale::Tiny);
    let files = summary.files as u64;
    let arca_repo = fx.init(&dir.join("arca-repo"), RepoKind::ArcaV2);
    let restic_repo = fx.init(&dir.join("restic-repo"), RepoKind::ResticV2);
    let arca = fx.arca(&arca_repo);
    let restic_a = fx.restic(&arca_repo);
    let restic_r = fx.restic(&restic_repo);
    let arca_backup = || {
        summary_of(
            &arca
                .cmd(["backup", "--json", "src"])
                .current_dir(&dir)
                .run_json_lines(),
        )
    };
    let restic_backup = || {
        summary_of(
            &restic_r
                .cmd(["backup", "--json", "src"])
                .current_dir(&dir)
                .run_json_lines(),
        )
    };
    let counters = [
        "files_new",
        "files_changed",
        "files_unmodified",
        "dirs_new",
        "dirs_changed",
        "dirs_unmodified",
        "total_files_processed",
        "total_bytes_processed",
    ];
    let same_counters = |a: &Value, r: &Value, what: &str| {
        for key in counters {
            assert_eq!(
                num(a, key),
                num(r, key),
                "{what}: {key}\narca {a}\nrestic {r}"
            );
        }
    };

    let a1 = arca_backup();
    let r1 = restic_backup();
    assert_eq!(num(&a1, "files_new"), files, "{a1}");
    same_counters(&a1, &r1, "first backup");
    let a1_id = snapshot_id(&restic_a, &a1);
    let r1_id = snapshot_id(&restic_r, &r1);

    // Unchanged: everything comes from the parent.
    let a2 = arca_backup();
    let r2 = restic_backup();
    assert_eq!(num(&a2, "files_unmodified"), files, "{a2}");
    assert_eq!(num(&a2, "files_new"), 0, "{a2}");
    assert_eq!(num(&a2, "files_changed"), 0, "{a2}");
    assert_eq!(num(&a2, "data_blobs"), 0, "{a2}");
    assert_eq!(num(&a2, "tree_blobs"), 0, "{a2}");
    same_counters(&a2, &r2, "unchanged backup");
    let a2_id = snapshot_id(&restic_a, &a2);
    let a2_snapshot = snapshot(&restic_a, &a2_id);
    assert_eq!(
        a2_snapshot["parent"],
        Value::from(a1_id.clone()),
        "{a2_snapshot}"
    );
    assert_eq!(tree_of(&restic_a, &a1_id), tree_of(&restic_a, &a2_id));

    modify_incremental(&src);
    let a3 = arca_backup();
    let r3 = restic_backup();
    same_counters(&a3, &r3, "backup after changes");
    assert_eq!(num(&a3, "files_new"), 2, "{a3}");
    assert_eq!(num(&a3, "files_changed"), 2, "{a3}");
    assert_eq!(num(&a3, "files_unmodified"), files - 3, "{a3}");
    assert_eq!(num(&a3, "dirs_new"), 1, "{a3}");
    let a3_id = snapshot_id(&restic_a, &a3);
    let r3_id = snapshot_id(&restic_r, &r3);
    // Same data, same trees: arca's third snapshot has restic's tree.
    assert_eq!(tree_of(&restic_a, &a3_id), tree_of(&restic_r, &r3_id));

    let arca_changes = diff_changes(&restic_a, &a1_id, &a3_id);
    let restic_changes = diff_changes(&restic_r, &r1_id, &r3_id);
    assert_eq!(arca_changes, restic_changes);
    let expected: BTreeSet<(String, String)> = [
        ("/src/added/", "+"),
        ("/src/added/new-file.txt", "+"),
        ("/src/text/another-new.txt", "+"),
        ("/src/text/medium.txt", "M"),
        ("/src/random/size-00004097.bin", "-"),
        ("/src/perms/mode-0640", "U"),
        // Directories whose contents (and so subtree) changed.
        ("/src/", "U"),
        ("/src/perms/", "U"),
        ("/src/random/", "U"),
        ("/src/text/", "U"),
    ]
    .into_iter()
    .map(|(p, m)| (p.to_owned(), m.to_owned()))
    .collect();
    assert_eq!(arca_changes, expected);

    restic_a.run(["check", "--read-data"]);
    let out = fx.scratch("incremental-restore");
    restic_a
        .cmd(["restore", &a3_id, "--target"])
        .arg(&out)
        .run();
    compare_trees(&src, &out.join("src")).unwrap();
}

// --- 4. prune -----------------------------------------------------------------------------------

struct PruneBase {
    /// An arca repository with three snapshots, one per state.
    repo: PathBuf,
    /// (snapshot ID, source folder) per state, oldest first.
    states: Vec<(String, PathBuf)>,
}

static PRUNE_BASE: OnceLock<PruneBase> = OnceLock::new();

/// Three states of a folder (each in its own folder, kept for comparison), backed up by arca:
/// the first state's unique data becomes unused once its snapshot is forgotten, some of it in
/// packs that also hold data still used.
fn prune_base(fx: &Fixture) -> &'static PruneBase {
    PRUNE_BASE.get_or_init(|| {
        let dir = fx.scratch("prune-base");
        let repo = fx.init(&dir.join("repo"), RepoKind::ArcaV2);
        let arca = fx.arca(&repo);
        let restic = fx.restic(&repo);
        let s1 = dir.join("s1");
        make_dataset(&s1, DatasetScale::Tiny);
        let mut rng = DetRng::new(99);
        write_file(&s1.join("unique/only-in-s1.bin"), &rng.bytes(3 << 20));
        write_file(&s1.join("unique/small-only-in-s1.bin"), &rng.bytes(100_000));
        write_file(&s1.join("shared/in-all.bin"), &rng.bytes(2 << 20));
        let s2 = dir.join("s2");
        cp_a(&s1, &s2);
        fs::remove_dir_all(s2.join("unique")).unwrap();
        write_file(&s2.join("later/only-in-s2-s3.bin"), &rng.bytes(1 << 20));
        let s3 = dir.join("s3");
        cp_a(&s2, &s3);
        write_file(&s3.join("text/small.txt"), b"changed in s3\n");
        let mut states = Vec::new();
        for s in [s1, s2, s3] {
            let lines = arca.cmd(["backup", "--json"]).arg(&s).run_json_lines();
            states.push((snapshot_id(&restic, &summary_of(&lines)), s));
        }
        PruneBase { repo, states }
    })
}

/// A copy of the prune base repository with the first snapshot forgotten by restic.
fn forgotten_copy(fx: &Fixture, base: &PruneBase, what: &str) -> PathBuf {
    let repo = fx.scratch(what).join("repo");
    cp_a(&base.repo, &repo);
    fx.restic(&repo).run(["forget", &base.states[0].0]);
    repo
}

fn repo_size(repo: &Path) -> u64 {
    listing(&repo.join("data")).iter().map(|(_, n)| n).sum()
}

/// After `prune`, restic checks every byte and restores the remaining snapshots exactly.
fn check_after_prune(fx: &Fixture, base: &PruneBase, repo: &Path) {
    let restic = fx.restic(repo);
    restic.run(["check", "--read-data"]);
    let left: BTreeSet<String> = restic
        .run_json(["snapshots", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        left,
        base.states[1..].iter().map(|(id, _)| id.clone()).collect()
    );
    for (id, source) in &base.states[1..] {
        let out = fx.scratch("after-prune");
        restic.cmd(["restore", id, "--target"]).arg(&out).run();
        compare_trees(source, &out.join(source.strip_prefix("/").unwrap()))
            .unwrap_or_else(|e| panic!("restic restore of {id} after prune: {e}"));
    }
}

/// The lines of `restic prune --dry-run` that say what it would still do.
fn restic_prune_plan(restic: &Restic, max_unused: &str) -> BTreeMap<String, String> {
    let text = restic.run_string(["prune", "--dry-run", "--max-unused", max_unused]);
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| ["to repack", "to delete", "total prune"].contains(&k.as_str()))
        .collect()
}

#[test]
fn arca_prune_max_unused_0_leaves_nothing_unused() {
    let fx = fixture_or_return!();
    let base = prune_base(fx);
    let repo = forgotten_copy(fx, base, "prune-0");
    let before = repo_size(&repo);
    fx.arca(&repo).run(["prune", "--max-unused", "0%"]);
    let after = repo_size(&repo);
    assert!(
        after + (3 << 20) <= before,
        "the 3 MiB only s1 had are gone: {before} -> {after}"
    );
    check_after_prune(fx, base, &repo);
    // restic finds nothing left to do.
    let plan = restic_prune_plan(&fx.restic(&repo), "0%");
    assert_eq!(plan["total prune"], "0 blobs / 0 B", "{plan:?}");
}

#[test]
fn arca_prune_default_max_unused() {
    let fx = fixture_or_return!();
    let base = prune_base(fx);
    let repo = forgotten_copy(fx, base, "prune-default");
    let before = repo_size(&repo);
    fx.arca(&repo).run(["prune"]);
    let after = repo_size(&repo);
    assert!(
        after < before,
        "prune removed something: {before} -> {after}"
    );
    check_after_prune(fx, base, &repo);
    // No pack is left that holds nothing but unused blobs.
    let plan = restic_prune_plan(&fx.restic(&repo), "5%");
    assert_eq!(plan["to delete"], "0 blobs / 0 B", "{plan:?}");
}

#[test]
fn restic_prune_accepts_a_repository_arca_wrote() {
    let fx = fixture_or_return!();
    let base = prune_base(fx);
    let repo = forgotten_copy(fx, base, "restic-prune");
    for max_unused in ["5%", "0%"] {
        fx.restic(&repo).run(["prune", "--max-unused", max_unused]);
        check_after_prune(fx, base, &repo);
    }
}

// --- 5. selection flags -------------------------------------------------------------------------

struct SelectBase {
    /// The folder holding `src` (the working directory of the backups).
    dir: PathBuf,
    /// A restic v2 repository both tools back up into.
    repo: PathBuf,
}

static SELECT_BASE: OnceLock<SelectBase> = OnceLock::new();

const MARKER_HEADER: &[u8] = b"KEEP-ME-OUT v1\n";

/// The Tiny dataset plus cache folders, marker files and names that differ in case.
fn select_base(fx: &Fixture) -> &'static SelectBase {
    SELECT_BASE.get_or_init(|| {
        let dir = fx.scratch("select");
        let src = dir.join("src");
        make_dataset(&src, DatasetScale::Tiny);
        let tag = "Signature: 8a477f597d28d172789f06886806bc55\n# a cache\n";
        write_file(&src.join("cache/CACHEDIR.TAG"), tag.as_bytes());
        write_file(&src.join("cache/blob.dat"), b"cached");
        write_file(&src.join("cache/sub/more.dat"), b"cached too");
        write_file(&src.join("fake-cache/CACHEDIR.TAG"), b"not a signature");
        write_file(&src.join("fake-cache/kept.dat"), b"kept");
        write_file(&src.join("marked/.nobackup"), b"");
        write_file(&src.join("marked/gone.txt"), b"gone");
        write_file(&src.join("marked/deeper/gone.txt"), b"gone");
        let mut marker = MARKER_HEADER.to_vec();
        marker.extend_from_slice(b"and more\n");
        write_file(&src.join("with-header/MARKER"), &marker);
        write_file(&src.join("with-header/gone.txt"), b"gone");
        write_file(&src.join("wrong-header/MARKER"), b"KEEP-ME-IN\n");
        write_file(&src.join("wrong-header/kept.txt"), b"kept");
        write_file(&src.join("case/UPPER.TXT"), b"upper");
        write_file(&src.join("case/lower.txt"), b"lower");
        write_file(&src.join("case/Mixed.Txt"), b"mixed");
        write_file(&src.join("case/other.dat"), b"other");
        let repo = fx.init(&dir.join("repo"), RepoKind::ResticV2);
        SelectBase { dir, repo }
    })
}

/// Back up `src` with restic and with arca (`--force`, same flags, same working directory);
/// both must select the same items (and so, with the same metadata, give the same tree).
/// Returns (restic's snapshot, arca's snapshot) and the paths they hold.
fn same_selection(
    fx: &Fixture,
    base: &SelectBase,
    flags: &[&str],
    env: &[(&str, &str)],
) -> (String, String, BTreeSet<String>) {
    let restic = fx.restic(&base.repo);
    let arca = fx.arca(&base.repo);
    let mut inv = restic
        .cmd(["backup", "--json", "--force"])
        .args(flags)
        .current_dir(&base.dir);
    for (k, v) in env {
        inv = inv.env(k, v);
    }
    let r = summary_of(&inv.run_json_lines());
    let mut inv = arca
        .cmd(["backup", "--json", "--force"])
        .args(flags)
        .current_dir(&base.dir);
    for (k, v) in env {
        inv = inv.env(k, v);
    }
    let a = summary_of(&inv.run_json_lines());
    let (r_id, a_id) = (snapshot_id(&restic, &r), snapshot_id(&restic, &a));
    let (r_paths, a_paths) = (ls_paths(&restic, &r_id), ls_paths(&restic, &a_id));
    let only_restic: Vec<_> = r_paths.difference(&a_paths).collect();
    let only_arca: Vec<_> = a_paths.difference(&r_paths).collect();
    assert!(
        only_restic.is_empty() && only_arca.is_empty(),
        "flags {flags:?}: only in restic's snapshot {only_restic:#?}, only in arca's {only_arca:#?}"
    );
    let (r_sn, a_sn) = (snapshot(&restic, &r_id), snapshot(&restic, &a_id));
    assert_eq!(a_sn["paths"], r_sn["paths"], "flags {flags:?}");
    assert_eq!(a_sn["excludes"], r_sn["excludes"], "flags {flags:?}");
    assert_eq!(a_sn["tree"], r_sn["tree"], "flags {flags:?}: same tree");
    for key in [
        "files_new",
        "dirs_new",
        "total_files_processed",
        "total_bytes_processed",
    ] {
        assert_eq!(
            num(&a, key),
            num(&r, key),
            "flags {flags:?}: {key}\narca {a}\nrestic {r}"
        );
    }
    (r_id, a_id, a_paths)
}

fn all_paths(fx: &Fixture, base: &SelectBase) -> &'static BTreeSet<String> {
    static ALL: OnceLock<BTreeSet<String>> = OnceLock::new();
    ALL.get_or_init(|| same_selection(fx, base, &["src"], &[]).2)
}

/// The selection drops `gone` and keeps `kept` (paths in the snapshot, `/src/...`).
fn assert_selection(paths: &BTreeSet<String>, gone: &[&str], kept: &[&str]) {
    for p in gone {
        assert!(!paths.contains(*p), "{p} should be excluded");
    }
    for p in kept {
        assert!(paths.contains(*p), "{p} should be kept");
    }
}

#[test]
fn exclude_patterns_select_like_restic() {
    let fx = fixture_or_return!();
    let base = select_base(fx);
    let all = all_paths(fx, base);
    let abs_text = base.dir.join("src/text");
    let flags = [
        "--exclude",
        "*.bin",
        "--exclude",
        "level-05",
        "--exclude",
        "names/dir*",
        "-e",
        abs_text.to_str().unwrap(),
        "--exclude",
        "src/links/to-*",
        "src",
    ];
    let (_, _, paths) = same_selection(fx, base, &flags, &[]);
    assert!(paths.len() < all.len());
    assert_selection(
        &paths,
        &[
            "/src/random/size-00000001.bin",
            "/src/deep/level-01/level-02/level-03/level-04/level-05",
            "/src/text",
            "/src/links/to-dir",
            "/src/names/dir with spaces & \"quotes\"",
        ],
        &[
            "/src/links/relative",
            "/src/deep/level-01/level-02/level-03/level-04",
            "/src/case/UPPER.TXT",
        ],
    );
}

#[test]
fn iexclude_selects_like_restic() {
    let fx = fixture_or_return!();
    let base = select_base(fx);
    let (_, _, paths) = same_selection(
        fx,
        base,
        &["--iexclude", "*.txt", "--iexclude", "CASE/other.DAT", "src"],
        &[],
    );
    assert_selection(
        &paths,
        &[
            "/src/case/UPPER.TXT",
            "/src/case/lower.txt",
            "/src/case/Mixed.Txt",
            "/src/case/other.dat",
        ],
        &["/src/case", "/src/times/epoch"],
    );
}

#[test]
fn exclude_file_selects_like_restic() {
    let fx = fixture_or_return!();
    let base = select_base(fx);
    let file = fx.scratch("exclude-file").join("excludes");
    fs::write(
        &file,
        "# a comment\n\n   *.dat   \n$EXCLUDED_DIR\n${EXCLUDED_DIR}-not\nsrc/names/*space*\n",
    )
    .unwrap();
    let (_, _, paths) = same_selection(
        fx,
        base,
        &["--exclude-file", file.to_str().unwrap(), "src"],
        &[("EXCLUDED_DIR", "hardlinks")],
    );
    assert_selection(
        &paths,
        &[
            "/src/hardlinks",
            "/src/case/other.dat",
            "/src/names/nbsp\u{a0}space.txt",
        ],
        &["/src/case/lower.txt", "/src/perms"],
    );
}

#[test]
fn exclude_caches_selects_like_restic() {
    let fx = fixture_or_return!();
    let base = select_base(fx);
    let (_, _, paths) = same_selection(fx, base, &["--exclude-caches", "src"], &[]);
    assert_selection(
        &paths,
        &["/src/cache/blob.dat", "/src/cache/sub"],
        &[
            "/src/cache",
            "/src/cache/CACHEDIR.TAG",
            "/src/fake-cache/kept.dat",
        ],
    );
}

#[test]
fn exclude_if_present_selects_like_restic() {
    let fx = fixture_or_return!();
    let base = select_base(fx);
    let (_, _, paths) =
        same_selection(fx, base, &["--exclude-if-present", ".nobackup", "src"], &[]);
    assert_selection(
        &paths,
        &["/src/marked/gone.txt", "/src/marked/deeper"],
        &[
            "/src/marked",
            "/src/marked/.nobackup",
            "/src/with-header/gone.txt",
        ],
    );
    let header = format!("MARKER:{}", String::from_utf8_lossy(MARKER_HEADER));
    let (_, _, paths) = same_selection(
        fx,
        base,
        &[
            "--exclude-if-present",
            &header,
            "--exclude-if-present",
            ".nobackup",
            "src",
        ],
        &[],
    );
    assert_selection(
        &paths,
        &["/src/with-header/gone.txt", "/src/marked/gone.txt"],
        &["/src/with-header/MARKER", "/src/wrong-header/kept.txt"],
    );
}

#[test]
fn exclude_larger_than_selects_like_restic() {
    let fx = fixture_or_return!();
    let base = select_base(fx);
    let (_, _, paths) = same_selection(fx, base, &["--exclude-larger-than", "4k", "src"], &[]);
    assert_selection(
        &paths,
        &[
            "/src/random/size-00004097.bin",
            "/src/random/size-00065536.bin",
        ],
        &[
            "/src/random/size-00004096.bin",
            "/src/random/size-00004095.bin",
            "/src/random",
        ],
    );
    let (_, _, paths) = same_selection(fx, base, &["--exclude-larger-than", "4095", "src"], &[]);
    assert_selection(
        &paths,
        &["/src/random/size-00004096.bin"],
        &["/src/random/size-00004095.bin"],
    );
}

#[test]
fn files_from_selects_like_restic() {
    let fx = fixture_or_return!();
    let base = select_base(fx);
    let list = fx.scratch("files-from").join("list");
    fs::write(
        &list,
        "# what to back up\n\nsrc/text\n  src/random/size-0000409*  \nsrc/links/relative\nsrc/case/[lM]*\n",
    )
    .unwrap();
    let (r_id, _, paths) = same_selection(fx, base, &["--files-from", list.to_str().unwrap()], &[]);
    assert_selection(
        &paths,
        &[
            "/src/names",
            "/src/random/size-00000001.bin",
            "/src/case/UPPER.TXT",
        ],
        &[
            "/src/text/small.txt",
            "/src/random/size-00004095.bin",
            "/src/random/size-00004097.bin",
            "/src/links/relative",
            "/src/case/lower.txt",
            "/src/case/Mixed.Txt",
        ],
    );
    let sn = snapshot(&fx.restic(&base.repo), &r_id);
    assert_eq!(sn["paths"].as_array().unwrap().len(), 7, "{sn}");
}

#[test]
fn stdin_backup_like_restic() {
    let fx = fixture_or_return!();
    let base = select_base(fx);
    let restic = fx.restic(&base.repo);
    let arca = fx.arca(&base.repo);
    let mut data = DetRng::new(5).bytes(1 << 20);
    data.extend_from_slice(&vec![b'x'; 2 << 20]);
    let args = [
        "backup",
        "--json",
        "--stdin",
        "--stdin-filename",
        "dump-of.sql",
    ];
    let r = summary_of(&restic.cmd(args).stdin(data.clone()).run_json_lines());
    let a = summary_of(&arca.cmd(args).stdin(data.clone()).run_json_lines());
    // Same chunks: restic stored them already.
    assert_eq!(num(&a, "data_blobs"), 0, "{a}");
    let (r_id, a_id) = (snapshot_id(&restic, &r), snapshot_id(&restic, &a));
    let node = |id: &str| {
        let nodes: Vec<Value> = restic
            .run_json_lines(["ls", "--json", id])
            .into_iter()
            .filter(|l| l["struct_type"] == "node")
            .collect();
        assert_eq!(nodes.len(), 1, "{nodes:#?}");
        nodes[0].clone()
    };
    let (rn, an) = (node(&r_id), node(&a_id));
    for key in ["name", "type", "path", "size", "mode", "uid", "gid"] {
        assert_eq!(an[key], rn[key], "{key}: arca {an} restic {rn}");
    }
    assert_eq!(
        snapshot(&restic, &a_id)["paths"],
        snapshot(&restic, &r_id)["paths"]
    );
    let dumped = restic.run(["dump", &a_id, "/dump-of.sql"]);
    assert!(dumped == data, "restic dump of arca's stdin snapshot");

    // With the same --time, the whole tree is the same (the node is stamped with it).
    let time = ["--time", "2021-02-03 04:05:06"];
    let r = summary_of(
        &restic
            .cmd(args)
            .args(time)
            .stdin(data.clone())
            .run_json_lines(),
    );
    let a = summary_of(&arca.cmd(args).args(time).stdin(data).run_json_lines());
    let (r_id, a_id) = (snapshot_id(&restic, &r), snapshot_id(&restic, &a));
    let (r_tree, a_tree) = (tree_of(&restic, &r_id), tree_of(&restic, &a_id));
    assert_eq!(
        a_tree,
        r_tree,
        "arca's tree {}\nrestic's tree {}",
        restic.run_string(["cat", "blob", &a_tree]),
        restic.run_string(["cat", "blob", &r_tree])
    );
    assert_eq!(
        snapshot(&restic, &a_id)["time"],
        snapshot(&restic, &r_id)["time"]
    );
}

/// Missing targets are skipped with a warning (exit 0); all missing is an error.
#[test]
fn missing_targets_are_skipped_like_restic() {
    let fx = fixture_or_return!();
    let dialect = dialect_of(&fx.restic_bin);
    let base = select_base(fx);
    // Some targets missing: both skip them with a warning and save a snapshot of the rest.
    // Current restic (and arca) then exit with 3, an incomplete backup; 0.14 exited 0.
    let restic = fx.restic(&base.repo);
    let backup = |runner: &Runner| -> (Output, Value) {
        let out = runner
            .cmd([
                "backup",
                "--json",
                "--force",
                "src/text",
                "src/no-such-file",
            ])
            .current_dir(&base.dir)
            .output();
        let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("src/no-such-file does not exist, skipping"),
            "{}: {stderr}",
            runner.program().display()
        );
        (out, summary_of(&lines))
    };
    let (r_out, r) = backup(&restic);
    let (a_out, a) = backup(&fx.arca(&base.repo));
    let restic_code = if dialect.is_0_14() { 0 } else { 3 };
    assert_eq!(r_out.status.code(), Some(restic_code), "restic: {r_out:?}");
    assert_eq!(a_out.status.code(), Some(3), "arca: {a_out:?}");
    let (r_id, a_id) = (snapshot_id(&restic, &r), snapshot_id(&restic, &a));
    let (r_paths, a_paths) = (ls_paths(&restic, &r_id), ls_paths(&restic, &a_id));
    assert_eq!(a_paths, r_paths);
    assert_selection(&a_paths, &["/src/names"], &["/src/text/small.txt"]);
    let (r_sn, a_sn) = (snapshot(&restic, &r_id), snapshot(&restic, &a_id));
    assert_eq!(a_sn["paths"].as_array().unwrap().len(), 1, "{a_sn}");
    assert_eq!(a_sn["paths"], r_sn["paths"]);
    assert_eq!(a_sn["tree"], r_sn["tree"]);

    // None left: an error naming the problem (0.14 said "target", current restic "source").
    for runner in [&*restic, &*fx.arca(&base.repo)] {
        let out = runner
            .cmd(["backup", "no-such-file", "nor-this"])
            .current_dir(&base.dir)
            .expect_failure();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let is_restic_0_14 = dialect.is_0_14() && runner.program() == fx.restic_bin;
        let expected = if is_restic_0_14 {
            "all target directories/files do not exist"
        } else {
            "all source directories/files do not exist"
        };
        assert!(
            stderr.contains(expected) && stderr.contains("no-such-file does not exist, skipping"),
            "{}: {stderr}",
            runner.program().display()
        );
    }
}

#[test]
fn tags_and_host_like_restic() {
    let fx = fixture_or_return!();
    let base = select_base(fx);
    let flags = [
        "--tag",
        "one,two",
        "--tag",
        "three",
        "--host",
        "elsewhere",
        "src/text",
    ];
    let (r_id, a_id, _) = same_selection(fx, base, &flags, &[]);
    let restic = fx.restic(&base.repo);
    let (r, a) = (snapshot(&restic, &r_id), snapshot(&restic, &a_id));
    assert_eq!(a["tags"], serde_json::json!(["one", "two", "three"]), "{a}");
    assert_eq!(a["tags"], r["tags"]);
    assert_eq!(a["hostname"], "elsewhere");
    assert_eq!(a["hostname"], r["hostname"]);
    // `snapshots --tag` and `--host` find it.
    let found = restic.run_json([
        "snapshots",
        "--json",
        "--host",
        "elsewhere",
        "--tag",
        "two,three",
    ]);
    assert_eq!(found.as_array().unwrap().len(), 2, "{found:#}");
}

#[test]
fn dry_run_writes_nothing() {
    let fx = fixture_or_return!();
    let base = select_base(fx);
    let repo = fx.init(&fx.scratch("dry-run").join("repo"), RepoKind::ArcaV2);
    let before = listing(&repo);
    let a = summary_of(
        &fx.arca(&repo)
            .cmd(["backup", "--json", "--dry-run", "src"])
            .current_dir(&base.dir)
            .run_json_lines(),
    );
    assert_eq!(
        listing(&repo),
        before,
        "arca --dry-run wrote to the repository"
    );
    let r = summary_of(
        &fx.restic(&repo)
            .cmd(["backup", "--json", "--dry-run", "src"])
            .current_dir(&base.dir)
            .run_json_lines(),
    );
    assert_eq!(
        listing(&repo),
        before,
        "restic --dry-run wrote to the repository"
    );
    for key in [
        "files_new",
        "dirs_new",
        "data_blobs",
        "tree_blobs",
        "data_added",
        "total_files_processed",
        "total_bytes_processed",
    ] {
        assert_eq!(num(&a, key), num(&r, key), "{key}\narca {a}\nrestic {r}");
    }
    assert!(num(&a, "data_blobs") > 0, "{a}");
    let snapshots = fx.restic(&repo).run_json(["snapshots", "--json"]);
    assert_eq!(snapshots, serde_json::json!([]));
}

// --- 6. unreadable items --------------------------------------------------------------------------

const NOBODY: u32 = 65534;

/// Run as `nobody` (we are root: mode 000 stops nobody, not root), with a HOME nobody can use.
fn as_nobody(inv: Invocation<'_>, home: &Path) -> Output {
    let mut cmd = inv.command();
    cmd.uid(NOBODY)
        .gid(NOBODY)
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("RESTIC_CACHE_DIR", home.join("cache"));
    cmd.output().expect("start as nobody")
}

fn chown_nobody(path: &Path) {
    std::os::unix::fs::lchown(path, Some(NOBODY), Some(NOBODY)).unwrap();
}

#[test]
fn unreadable_items_give_a_snapshot_and_exit_code_3() {
    let fx = fixture_or_return!();
    // SAFETY: geteuid has no preconditions.
    if !arca_engine::sys::is_root() {
        eprintln!("SKIPPED: unreadable_items_give_a_snapshot_and_exit_code_3 needs root (to run as nobody)");
        return;
    }
    let dir = fx.scratch("unreadable");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let home = dir.join("home");
    fs::create_dir(&home).unwrap();
    chown_nobody(&home);
    let src = dir.join("src");
    write_file(&src.join("readable.txt"), b"fine\n");
    write_file(&src.join("secret.txt"), b"unreadable\n");
    write_file(&src.join("locked/inside.txt"), b"in an unreadable dir\n");
    write_file(&src.join("sub/fine.txt"), b"fine too\n");
    write_file(&src.join("sub/secret-too.txt"), b"unreadable\n");
    for p in ["secret.txt", "sub/secret-too.txt", "locked"] {
        fs::set_permissions(src.join(p), fs::Permissions::from_mode(0o000)).unwrap();
    }
    let repo_dir = dir.join("repos");
    fs::create_dir(&repo_dir).unwrap();
    chown_nobody(&repo_dir);
    let repo = repo_dir.join("repo");
    // A copy of restic that nobody can run (the bench's build is cached under root's home).
    let restic_copy = dir.join("bin").join("restic");
    fs::create_dir_all(restic_copy.parent().unwrap()).unwrap();
    fs::copy(&fx.restic_bin, &restic_copy).unwrap();
    fs::set_permissions(&restic_copy, fs::Permissions::from_mode(0o755)).unwrap();
    let restic = fx.restic_with_bin(&restic_copy, &repo);
    let out = as_nobody(restic.cmd(["init"]), &home);
    assert!(out.status.success(), "{out:?}");

    let json_lines = |bytes: &[u8]| -> Vec<Value> {
        String::from_utf8_lossy(bytes)
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    };
    // (output, stdout JSON lines, stderr JSON lines)
    let backup = |runner: &Runner| {
        let out = as_nobody(
            runner.cmd(["backup", "--json", "src"]).current_dir(&dir),
            &home,
        );
        let (stdout, stderr) = (json_lines(&out.stdout), json_lines(&out.stderr));
        (out, stdout, stderr)
    };
    let (r_out, r_lines, r_errors) = backup(&restic);
    assert_eq!(r_out.status.code(), Some(3), "restic: {r_out:?}");
    let (a_out, a_lines, a_errors) = backup(&fx.arca(&repo));
    assert_eq!(
        a_out.status.code(),
        Some(3),
        "arca: {}\n{}",
        String::from_utf8_lossy(&a_out.stderr),
        String::from_utf8_lossy(&a_out.stdout)
    );
    // Errors go to stderr (restic's scanner reports the unreadable directory once more).
    let archival = |lines: &[Value]| {
        lines
            .iter()
            .filter(|l| l["message_type"] == "error" && l["during"] == "archival")
            .count()
    };
    assert_eq!(archival(&a_errors), 3, "arca {a_errors:#?}");
    assert_eq!(
        archival(&a_errors),
        archival(&r_errors),
        "arca {a_errors:#?}\nrestic {r_errors:#?}"
    );
    let (r, a) = (summary_of(&r_lines), summary_of(&a_lines));
    for key in ["total_files_processed", "total_bytes_processed"] {
        assert_eq!(num(&a, key), num(&r, key), "{key}: arca {a}\nrestic {r}");
    }
    let (r_id, a_id) = (snapshot_id(&restic, &r), snapshot_id(&restic, &a));
    let (r_paths, a_paths) = (ls_paths(&restic, &r_id), ls_paths(&restic, &a_id));
    assert_eq!(a_paths, r_paths);
    assert_selection(
        &a_paths,
        &[
            "/src/secret.txt",
            "/src/sub/secret-too.txt",
            "/src/locked/inside.txt",
        ],
        &["/src/readable.txt", "/src/sub/fine.txt"],
    );
    restic.run(["check", "--read-data"]);
}
