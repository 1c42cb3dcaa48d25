//! `arca copy`, `arca init --copy-chunker-params`, `arca rewrite` and `arca repair
//! index|snapshots|packs` against the real restic (0.14).
//!
//! One restic repository is built once: snapshot "first" of `src/` (the Tiny interop dataset)
//! and snapshot "second" of `src/` and `extra/` (a few random files, one of several chunks), so
//! the second backup writes data packs that hold only `extra/` blobs. Every test works on its own
//! `cp -a` copy and judges the result with restic: `check --read-data`, `restore`, `ls`, `list
//! blobs`. restic 0.14 has neither `rewrite` nor `repair snapshots|packs` (0.15–0.16), so those
//! are held to current restic's documented semantics: new snapshots record the rewritten one as
//! `original` and get the tag `rewrite`/`repaired` unless `--forget` removes the old one; repair
//! empties missing file content and drops snapshots whose root tree is unreadable.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arca_tests::*;
use serde_json::Value;

const PASSWORD: &str = "copy rewrite repair password";

struct Fixture {
    restic_bin: PathBuf,
    /// Holds `src/` and `extra/`; the working directory of every backup, so snapshot trees
    /// start at `/src` and `/extra`.
    data: PathBuf,
    /// The restic repository with the two snapshots; only ever copied.
    base: PathBuf,
    first: Value,
    second: Value,
    /// Packs the second backup wrote (data packs hold only `extra/` blobs).
    extra_data_packs: BTreeSet<String>,
    extra_tree_packs: BTreeSet<String>,
}

static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
fn fixture() -> Option<&'static Fixture> {
    FIXTURE
        .get_or_init(|| restic_or_skip().map(build_fixture))
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

fn build_fixture(restic_bin: PathBuf) -> Fixture {
    let tmp = tempfile::Builder::new()
        .prefix("copy-rewrite-repair-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir");
    let root = fs::canonicalize(keep_until_exit(tmp)).unwrap();

    let data = root.join("data");
    make_dataset(&data.join("src"), DatasetScale::Tiny);
    let mut rng = DetRng::new(0xC0B1_4E9A);
    fs::create_dir_all(data.join("extra")).unwrap();
    for (name, size) in [
        ("e1.bin", 300_001),
        ("e2.bin", 300_002),
        ("e3.bin", 300_003),
        // Above the 512 KiB minimum chunk: several blobs.
        ("big.bin", 3 * 1024 * 1024 + 5),
    ] {
        fs::write(data.join("extra").join(name), rng.bytes(size)).unwrap();
    }

    let base = root.join("base");
    let restic = Restic::with_bin(&restic_bin, &base, PASSWORD);
    restic.run(["init"]);
    swap_in_cheap_key(&base, PASSWORD);
    restic
        .cmd([
            "backup",
            "-q",
            "--time",
            "2024-01-01 10:00:00",
            "--tag",
            "first",
            "src",
        ])
        .current_dir(&data)
        .run();
    let before = pack_names(&base);
    restic
        .cmd([
            "backup",
            "-q",
            "--time",
            "2024-01-02 10:00:00",
            "--tag",
            "second,extra",
            "src",
            "extra",
        ])
        .current_dir(&data)
        .run();
    let index = index_packs(&restic);
    let (mut extra_data_packs, mut extra_tree_packs) = (BTreeSet::new(), BTreeSet::new());
    for pack in pack_names(&base).difference(&before) {
        match index[pack][0].kind.as_str() {
            "data" => extra_data_packs.insert(pack.clone()),
            _ => extra_tree_packs.insert(pack.clone()),
        };
    }
    assert!(!extra_data_packs.is_empty() && !extra_tree_packs.is_empty());

    let snaps = snapshots(&restic);
    assert_eq!(snaps.len(), 2, "{snaps:#?}");
    Fixture {
        restic_bin,
        data,
        base,
        first: snaps[0].clone(),
        second: snaps[1].clone(),
        extra_data_packs,
        extra_tree_packs,
    }
}

impl Fixture {
    fn restic(&self, repo: &Path) -> Restic {
        let mut r = Restic::with_bin(&self.restic_bin, repo, PASSWORD);
        r.env("RESTIC_FROM_PASSWORD", PASSWORD);
        r
    }

    fn arca(&self, repo: &Path) -> Arca {
        let mut a = Arca::new(repo, PASSWORD);
        a.env("RESTIC_FROM_PASSWORD", PASSWORD);
        a
    }

    /// A private copy of the base repository at `dir/name`.
    fn copy_base(&self, dir: &Path, name: &str) -> PathBuf {
        let dst = dir.join(name);
        cp_a(&self.base, &dst);
        dst
    }

    /// `restic restore` of `snapshot` into a fresh folder under `dir`, checked against the
    /// sources: every top-level folder in `dirs` must equal its source exactly.
    fn restore_and_compare(&self, restic: &Restic, dir: &Path, snapshot: &str, dirs: &[&str]) {
        let out = restore(restic, dir, snapshot);
        for d in dirs {
            compare_trees(&self.data.join(d), &out.join(d))
                .unwrap_or_else(|e| panic!("restore of {snapshot}, {d}: {e}"));
        }
    }
}

/// A per-test folder (dropped, and so removed, at the end of the test).
fn test_dir(what: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("crr-{what}-"))
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir")
}

/// Every file of a repository but its locks, with its size.
fn repo_files(repo: &Path) -> BTreeSet<(PathBuf, u64)> {
    let mut out = BTreeSet::new();
    let mut stack = vec![repo.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let md = e.metadata().unwrap();
            let rel = e.path().strip_prefix(repo).unwrap().to_owned();
            if md.is_dir() {
                if rel != Path::new("locks") {
                    stack.push(e.path());
                }
            } else {
                out.insert((rel, md.len()));
            }
        }
    }
    out
}

/// Names of the pack files under `data/`.
fn pack_names(repo: &Path) -> BTreeSet<String> {
    fs::read_dir(repo.join("data"))
        .unwrap()
        .flat_map(|d| fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

fn pack_path(repo: &Path, id: &str) -> PathBuf {
    repo.join("data").join(&id[..2]).join(id)
}

fn snapshot_files(repo: &Path) -> BTreeSet<String> {
    fs::read_dir(repo.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// `restic snapshots --json`, oldest first.
fn snapshots(restic: &Restic) -> Vec<Value> {
    let mut all = restic
        .run_json(["snapshots", "--json"])
        .as_array()
        .unwrap()
        .clone();
    all.sort_by(|a, b| a["time"].as_str().cmp(&b["time"].as_str()));
    all
}

fn id_of(sn: &Value) -> &str {
    sn["id"].as_str().unwrap()
}

/// The one snapshot in `all` whose `original` is `original`.
fn copy_of<'a>(all: &'a [Value], original: &str) -> &'a Value {
    let found: Vec<&Value> = all.iter().filter(|s| s["original"] == original).collect();
    assert_eq!(found.len(), 1, "copies of {original} in {all:#?}");
    found[0]
}

/// `(type, id)` of every blob the index lists.
fn blobs(restic: &Restic) -> BTreeSet<(String, String)> {
    restic
        .run_string(["list", "blobs"])
        .lines()
        .map(|l| {
            let (t, id) = l.split_once(' ').unwrap();
            (t.to_owned(), id.to_owned())
        })
        .collect()
}

#[derive(Clone, Debug)]
struct IndexedBlob {
    id: String,
    kind: String,
    offset: u64,
    length: u64,
    /// Plaintext length (`uncompressed_length`, or the stored length minus the crypto overhead).
    plain: u64,
}

/// Pack ID -> blobs, from every index file, as restic reads them.
fn index_packs(restic: &Restic) -> BTreeMap<String, Vec<IndexedBlob>> {
    let mut out: BTreeMap<String, Vec<IndexedBlob>> = BTreeMap::new();
    for file in restic.run_string(["list", "index"]).lines() {
        let idx = restic.run_json(["cat", "index", file]);
        for pack in idx["packs"].as_array().unwrap() {
            let entry = out
                .entry(pack["id"].as_str().unwrap().to_owned())
                .or_default();
            for b in pack["blobs"].as_array().unwrap() {
                let length = b["length"].as_u64().unwrap();
                entry.push(IndexedBlob {
                    id: b["id"].as_str().unwrap().to_owned(),
                    kind: b["type"].as_str().unwrap().to_owned(),
                    offset: b["offset"].as_u64().unwrap(),
                    length,
                    plain: b["uncompressed_length"].as_u64().unwrap_or(length - 32),
                });
            }
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

/// `restic restore` of `snapshot` into a new folder under `dir`; returns the folder.
fn restore(restic: &Restic, dir: &Path, snapshot: &str) -> PathBuf {
    let out = dir.join(format!("restore-{}", &snapshot[..8]));
    restic
        .cmd(["restore", snapshot, "--target"])
        .arg(&out)
        .run();
    out
}

fn stderr_and_stdout(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
}

fn tags(sn: &Value) -> BTreeSet<String> {
    sn["tags"]
        .as_array()
        .map(|t| t.iter().map(|t| t.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// The fields a copy or a rewrite must keep.
fn assert_same_metadata(new: &Value, old: &Value) {
    for key in [
        "time", "paths", "hostname", "username", "uid", "gid", "excludes",
    ] {
        assert_eq!(new[key], old[key], "{key}: {new:#} vs {old:#}");
    }
}

// --- copy ---------------------------------------------------------------------------------------

/// restic repository -> `arca init --copy-chunker-params` + `arca copy`: same chunker, same
/// trees and blobs as `restic copy` gives, restic checks and restores it, a second copy (by arca
/// or by restic) adds nothing, and restic's backups deduplicate against the copied data.
#[test]
fn arca_copies_a_restic_repository_like_restic_copy() {
    let fx = fixture_or_return!();
    let dir = test_dir("copy");
    let a = fx.copy_base(dir.path(), "a");
    let b = dir.path().join("b");
    fx.arca(&b)
        .cmd(["init", "--copy-chunker-params", "--from-repo"])
        .arg(&a)
        .run();
    swap_in_cheap_key(&b, PASSWORD);
    let (ra, rb) = (fx.restic(&a), fx.restic(&b));
    let (config_a, config_b) = (
        ra.run_json(["cat", "config"]),
        rb.run_json(["cat", "config"]),
    );
    assert_eq!(
        config_b["chunker_polynomial"],
        config_a["chunker_polynomial"]
    );
    assert_eq!(config_b["version"], config_a["version"]);
    assert_ne!(config_b["id"], config_a["id"]);
    // Without the flag the polynomial is a fresh random one.
    let plain = dir.path().join("plain");
    fx.arca(&plain).run(["init"]);
    assert_ne!(
        fx.restic(&plain).run_json(["cat", "config"])["chunker_polynomial"],
        config_a["chunker_polynomial"]
    );

    fx.arca(&b).cmd(["copy", "--from-repo"]).arg(&a).run();
    let copies = snapshots(&rb);
    assert_eq!(copies.len(), 2, "{copies:#?}");
    for src in [&fx.first, &fx.second] {
        let c = copy_of(&copies, id_of(src));
        assert_same_metadata(c, src);
        assert_eq!(c["tree"], src["tree"], "trees are copied as they are");
        assert_eq!(c["tags"], src["tags"]);
        assert!(c.get("parent").is_none(), "{c:#}");
    }
    assert_eq!(
        blobs(&rb),
        blobs(&ra),
        "exactly the blobs the snapshots need"
    );
    rb.run(["check", "--read-data"]);
    fx.restore_and_compare(
        &rb,
        dir.path(),
        id_of(copy_of(&copies, id_of(&fx.second))),
        &["src", "extra"],
    );

    // restic's own copy of the same repository: the same snapshots and blobs.
    let c = dir.path().join("c");
    let rc = fx.restic(&c);
    rc.cmd(["init", "--copy-chunker-params", "--from-repo"])
        .arg(&a)
        .run();
    swap_in_cheap_key(&c, PASSWORD);
    rc.cmd(["copy", "--from-repo"]).arg(&a).run();
    assert_eq!(blobs(&rc), blobs(&rb));
    let restic_copies = snapshots(&rc);
    for src in [&fx.first, &fx.second] {
        let ours = rb.run_json(["cat", "snapshot", id_of(copy_of(&copies, id_of(src)))]);
        let theirs = rc.run_json([
            "cat",
            "snapshot",
            id_of(copy_of(&restic_copies, id_of(src))),
        ]);
        assert_eq!(ours, theirs);
    }

    // Copying again adds nothing, whether arca or restic copies.
    let before = repo_files(&b);
    let again = fx
        .arca(&b)
        .cmd(["copy", "-v", "--from-repo"])
        .arg(&a)
        .run_string();
    assert_eq!(
        again.matches("skipping source snapshot").count(),
        2,
        "{again}"
    );
    assert_eq!(
        repo_files(&b),
        before,
        "a second arca copy changed the repository"
    );
    rb.cmd(["copy", "--from-repo"]).arg(&a).run();
    assert_eq!(
        repo_files(&b),
        before,
        "restic copy did not see arca's copies"
    );

    // Same chunker: a restic backup that re-reads every file finds every chunk in the copy.
    let lines = rb
        .cmd(["backup", "--json", "--force", "src", "extra"])
        .current_dir(&fx.data)
        .run_json_lines();
    let summary = lines
        .iter()
        .find(|l| l["message_type"] == "summary")
        .unwrap();
    assert_eq!(summary["data_blobs"], 0, "{summary}");
    assert_eq!(summary["data_added"], 0, "{summary}");
}

/// arca repository -> `restic copy` into a repository made by `arca init` (its own chunker):
/// arca checks and restores it exactly, and `arca copy` recognises restic's copy.
#[test]
fn restic_copies_an_arca_repository_and_arca_restores_it() {
    let fx = fixture_or_return!();
    let dir = test_dir("copy-back");
    let d = dir.path().join("d");
    let e = dir.path().join("e");
    let (ad, ae) = (fx.arca(&d), fx.arca(&e));
    ad.run(["init"]);
    swap_in_cheap_key(&d, PASSWORD);
    ad.cmd(["backup", "-q", "--tag", "arca", "src", "extra"])
        .current_dir(&fx.data)
        .run();
    ae.run(["init"]);
    swap_in_cheap_key(&e, PASSWORD);
    let re = fx.restic(&e);
    re.cmd(["copy", "--from-repo"]).arg(&d).run();

    let originals = snapshots(&fx.restic(&d));
    assert_eq!(originals.len(), 1, "{originals:#?}");
    let src = &originals[0];
    let copies = snapshots(&re);
    assert_eq!(copies.len(), 1, "{copies:#?}");
    let copy = copy_of(&copies, id_of(src));
    assert_same_metadata(copy, src);
    assert_eq!(copy["tree"], src["tree"]);
    assert_eq!(tags(copy), BTreeSet::from(["arca".to_owned()]));

    ae.run(["check", "--read-data"]);
    re.run(["check", "--read-data"]);
    let out = dir.path().join("restore");
    ae.cmd(["restore", id_of(copy), "--target"]).arg(&out).run();
    for sub in ["src", "extra"] {
        compare_trees(&fx.data.join(sub), &out.join(sub))
            .unwrap_or_else(|err| panic!("arca restore of restic's copy, {sub}: {err}"));
    }

    let before = repo_files(&e);
    let again = ae.cmd(["copy", "-v", "--from-repo"]).arg(&d).run_string();
    assert!(again.contains("skipping source snapshot"), "{again}");
    assert_eq!(repo_files(&e), before, "arca copied restic's copy again");
}

// --- rewrite ------------------------------------------------------------------------------------

const EXCLUDES: &[&str] = &["*.txt", "/src/names", "e2.bin"];

/// What `EXCLUDES` leave of a snapshot listing, worked out independently of any matcher.
fn without_excluded(paths: &BTreeSet<String>) -> BTreeSet<String> {
    paths
        .iter()
        .filter(|p| {
            let gone = p.split('/').any(|c| c.ends_with(".txt") || c == "e2.bin")
                || *p == "/src/names"
                || p.starts_with("/src/names/");
            !gone
        })
        .cloned()
        .collect()
}

fn exclude_args() -> Vec<String> {
    EXCLUDES
        .iter()
        .flat_map(|p| ["--exclude".to_owned(), p.to_string()])
        .collect()
}

#[test]
fn rewrite_excludes_files_from_restic_snapshots() {
    let fx = fixture_or_return!();
    let dir = test_dir("rewrite");
    let repo = fx.copy_base(dir.path(), "repo");
    let (arca, restic) = (fx.arca(&repo), fx.restic(&repo));
    let (first, second) = (id_of(&fx.first), id_of(&fx.second));

    // A dry run and a rewrite that excludes nothing write nothing.
    let before = repo_files(&repo);
    arca.cmd(["rewrite", "--dry-run"])
        .args(exclude_args())
        .run();
    arca.run(["rewrite", "--exclude", "no-such-name-*", first]);
    assert_eq!(repo_files(&repo), before);

    // Without --forget: a new snapshot next to the original.
    arca.cmd(["rewrite"]).args(exclude_args()).arg(first).run();
    let all = snapshots(&restic);
    assert_eq!(all.len(), 3, "{all:#?}");
    let new = copy_of(&all, first);
    assert_same_metadata(new, &fx.first);
    assert_ne!(new["tree"], fx.first["tree"]);
    let mut want_tags = tags(&fx.first);
    want_tags.insert("rewrite".to_owned());
    assert_eq!(
        tags(new),
        want_tags,
        "restic tags a rewritten snapshot kept beside its original"
    );
    let old_paths = ls_paths(&restic, first);
    let want = without_excluded(&old_paths);
    assert!(want.len() < old_paths.len() && want.iter().any(|p| p.starts_with("/src/random/")));
    assert_eq!(ls_paths(&restic, id_of(new)), want);
    // Same result as restic's own matcher applied at restore time.
    let kept = restore(&restic, dir.path(), id_of(new));
    let filtered = dir.path().join("restore-filtered");
    restic
        .cmd(["restore", first, "--target"])
        .arg(&filtered)
        .args(exclude_args())
        .run();
    compare_trees(&filtered.join("src"), &kept.join("src")).unwrap();

    // Rewriting a rewritten snapshot: `original` names the one replaced, as in restic.
    let new_id = id_of(new).to_owned();
    arca.run(["rewrite", "--forget", "--exclude", "/src/deep", &new_id]);
    let all = snapshots(&restic);
    assert_eq!(all.len(), 3, "{all:#?}");
    let newer = copy_of(&all, &new_id);
    assert_eq!(tags(newer), want_tags);
    let want: BTreeSet<String> = want
        .into_iter()
        .filter(|p| !p.starts_with("/src/deep"))
        .collect();
    assert_eq!(ls_paths(&restic, id_of(newer)), want);

    // With --forget the original goes and the new snapshot gets no tag.
    arca.cmd(["rewrite", "--forget"])
        .args(exclude_args())
        .arg(second)
        .run();
    let all = snapshots(&restic);
    assert_eq!(all.len(), 3, "{all:#?}");
    assert!(all.iter().all(|s| s["id"] != second), "{all:#?}");
    let new = copy_of(&all, second);
    assert_same_metadata(new, &fx.second);
    assert_eq!(tags(new), tags(&fx.second));
    assert_eq!(
        ls_paths(&restic, id_of(new)),
        without_excluded(&ls_paths(&fx.restic(&fx.base), second))
    );
    restic.run(["check", "--read-data"]);
}

// --- repair -------------------------------------------------------------------------------------

/// All index files deleted: `arca repair index` rebuilds an index restic accepts in full.
#[test]
fn repair_index_rebuilds_a_deleted_index() {
    let fx = fixture_or_return!();
    let dir = test_dir("repair-index");
    let repo = fx.copy_base(dir.path(), "repo");
    let restic = fx.restic(&repo);
    let want = blobs(&restic);
    for e in fs::read_dir(repo.join("index")).unwrap() {
        fs::remove_file(e.unwrap().path()).unwrap();
    }
    restic.expect_failure(["check"]);

    fx.arca(&repo).run(["repair", "index"]);
    assert_eq!(blobs(&restic), want);
    restic.run(["check", "--read-data"]);
    fx.restore_and_compare(&restic, dir.path(), id_of(&fx.second), &["src", "extra"]);
}

/// A lost data pack: `repair index` forgets it, `repair snapshots --forget` empties the files
/// that lost content, keeps the rest, and leaves a repository restic checks clean.
#[test]
fn repair_after_a_lost_data_pack() {
    let fx = fixture_or_return!();
    let dir = test_dir("lost-pack");
    let repo = fx.copy_base(dir.path(), "repo");
    let (arca, restic) = (fx.arca(&repo), fx.restic(&repo));
    let index = index_packs(&restic);
    let mut want = blobs(&restic);
    for pack in &fx.extra_data_packs {
        fs::remove_file(pack_path(&repo, pack)).unwrap();
        for b in &index[pack] {
            want.remove(&(b.kind.clone(), b.id.clone()));
        }
    }

    arca.run(["repair", "index"]);
    assert_eq!(
        blobs(&restic),
        want,
        "the index still names the lost pack's blobs"
    );
    restic.expect_failure(["check"]);

    let before = repo_files(&repo);
    arca.run(["repair", "snapshots", "--dry-run"]);
    assert_eq!(repo_files(&repo), before);

    arca.run(["repair", "snapshots", "--forget"]);
    let all = snapshots(&restic);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(all[0], fx.first, "an undamaged snapshot was rewritten");
    let repaired = copy_of(&all, id_of(&fx.second));
    assert_same_metadata(repaired, &fx.second);
    assert_eq!(tags(repaired), tags(&fx.second));
    restic.run(["check", "--read-data"]);

    let out = restore(&restic, dir.path(), id_of(repaired));
    compare_trees(&fx.data.join("src"), &out.join("src")).unwrap();
    // Every extra/ blob was in the lost pack: the files stay, empty.
    for e in fs::read_dir(fx.data.join("extra")).unwrap() {
        let name = e.unwrap().file_name();
        let len = fs::metadata(out.join("extra").join(&name)).unwrap().len();
        assert_eq!(len, 0, "{name:?}");
    }
}

/// One flipped byte in a data blob: `check --read-data` names the pack, `repair packs` saves
/// every other blob of it and removes it, `repair snapshots` (no --forget) adds a repaired
/// snapshot beside the broken one, and once that is forgotten restic checks clean.
#[test]
fn repair_packs_salvages_the_readable_blobs() {
    let fx = fixture_or_return!();
    let dir = test_dir("repair-packs");
    let repo = fx.copy_base(dir.path(), "repo");
    let (arca, restic) = (fx.arca(&repo), fx.restic(&repo));
    let pack = fx.extra_data_packs.first().unwrap();
    let blobs_in_pack = &index_packs(&restic)[pack];
    assert!(blobs_in_pack.len() >= 4, "{blobs_in_pack:?}");
    let victim = blobs_in_pack
        .iter()
        .max_by_key(|b| b.offset)
        .unwrap()
        .clone();
    let mut want = blobs(&restic);
    want.remove(&("data".to_owned(), victim.id.clone()));

    let path = pack_path(&repo, pack);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    bytes[(victim.offset + victim.length / 2) as usize] ^= 0x40;
    fs::write(&path, bytes).unwrap();

    let out = arca.expect_failure(["check", "--read-data"]);
    assert!(
        stderr_and_stdout(&out).contains(pack.as_str()),
        "{}",
        stderr_and_stdout(&out)
    );
    restic.expect_failure(["check", "--read-data"]);

    let out = arca.cmd(["repair", "packs", pack]).output();
    let text = stderr_and_stdout(&out);
    assert!(out.status.success(), "{text}");
    let lost: Vec<&str> = text.lines().filter(|l| l.starts_with("lost:")).collect();
    assert_eq!(lost.len(), 1, "{text}");
    assert!(lost[0].contains(&victim.id), "{text}");
    assert!(!path.exists(), "the damaged pack is still there");
    assert_eq!(
        blobs(&restic),
        want,
        "salvaged blobs are missing from the index"
    );
    // The snapshot still names the lost blob.
    restic.expect_failure(["check"]);

    arca.run(["repair", "snapshots"]);
    let all = snapshots(&restic);
    assert_eq!(all.len(), 3, "{all:#?}");
    let repaired = copy_of(&all, id_of(&fx.second));
    assert_same_metadata(repaired, &fx.second);
    let mut want_tags = tags(&fx.second);
    want_tags.insert("repaired".to_owned());
    assert_eq!(tags(repaired), want_tags);
    restic.run(["forget", id_of(&fx.second)]);
    restic.run(["check", "--read-data"]);

    // One extra/ file lost the victim's bytes; everything else restores exactly.
    let out = restore(&restic, dir.path(), id_of(repaired));
    compare_trees(&fx.data.join("src"), &out.join("src")).unwrap();
    let mut short = Vec::new();
    for e in fs::read_dir(fx.data.join("extra")).unwrap() {
        let name = e.unwrap().file_name();
        let (orig, got) = (
            fx.data.join("extra").join(&name),
            out.join("extra").join(&name),
        );
        if fs::read(&orig).unwrap() != fs::read(&got).unwrap() {
            let lost_len = fs::metadata(&orig).unwrap().len() - fs::metadata(&got).unwrap().len();
            short.push((name, lost_len));
        }
    }
    assert_eq!(short.len(), 1, "{short:?}");
    assert_eq!(short[0].1, victim.plain, "{short:?}");
}

/// The second snapshot's tree pack lost: its root tree is unreadable, so `repair snapshots`
/// removes it (restic does so even without --forget); the first snapshot is untouched.
#[test]
fn repair_snapshots_removes_a_snapshot_whose_root_tree_is_gone() {
    let fx = fixture_or_return!();
    let dir = test_dir("lost-root");
    let repo = fx.copy_base(dir.path(), "repo");
    let (arca, restic) = (fx.arca(&repo), fx.restic(&repo));
    for pack in &fx.extra_tree_packs {
        fs::remove_file(pack_path(&repo, pack)).unwrap();
    }
    arca.run(["repair", "index"]);
    arca.run(["repair", "snapshots"]);
    assert_eq!(snapshots(&restic), vec![fx.first.clone()]);
    assert_eq!(
        snapshot_files(&repo),
        BTreeSet::from([id_of(&fx.first).to_owned()])
    );
    restic.run(["check", "--read-data"]);
    fx.restore_and_compare(&restic, dir.path(), id_of(&fx.first), &["src"]);
}
