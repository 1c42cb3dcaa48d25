//! Interop of `arca forget` with the real restic (0.14.0 or the current one).
//!
//! A repository is made by restic with 32 snapshots at chosen `--time` values (hours, days,
//! ISO-week and year boundaries, a leap day, several hosts, path sets and tags), all times
//! distinct so that no order depends on ties. For many policies, `restic forget --dry-run
//! --json` and `arca forget --dry-run --json` must give the same groups, the same kept and
//! removed snapshots (as the same JSON objects) and the same reasons. Against restic 0.14 one
//! documented difference is allowed: arca follows current restic, which also keeps the oldest
//! snapshot of a group when a rule still has room (reason `oldest ...`); 0.14 does not. Then real
//! forgets by arca (by policy, by ID, with `--prune`, `--unsafe-allow-remove-all`) must leave
//! what restic's dry run predicted, and `restic check` must pass.
//!
//! A second repository, written with `TZ=Europe/Berlin` around both 2024 DST changes, checks
//! that buckets and `--keep-within*` arithmetic follow the local zone exactly like restic.
//!
//! Both programs run with `TZ=UTC` unless a test says otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arca_tests::*;
use serde_json::Value;

const PASSWORD: &str = "forget interop password";

struct Fixture {
    root: PathBuf,
    restic_bin: PathBuf,
    dialect: Dialect,
    /// The repository all dry runs use (never changed).
    repo: PathBuf,
    /// Backed-up folders (absolute).
    dir_a: String,
    dir_b: String,
    /// The Europe/Berlin repository.
    berlin: PathBuf,
}

impl Fixture {
    fn restic(&self, repo: &Path) -> Restic {
        Restic::with_bin(&self.restic_bin, repo, PASSWORD)
    }
    fn arca(&self, repo: &Path) -> Arca {
        Arca::new(repo, PASSWORD)
    }
    /// A private copy of the main repository for a test that changes it.
    fn copy(&self, what: &str) -> PathBuf {
        let _shared = shared_repos();
        let dst = self.root.join("copies").join(what);
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        cp_a(&self.repo, &dst);
        dst
    }
}

static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();

/// `forget` (restic's and arca's, dry run or not) takes an exclusive lock: tests that run
/// commands on the shared repositories, or copy them, take turns.
fn shared_repos() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

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

/// (time, host, which paths: "a", "b" or "ab", tags)
const SNAPSHOTS: &[(&str, &str, &str, &str)] = &[
    // host alpha, path a
    ("2020-12-28 09:00:00", "alpha", "a", ""),
    ("2020-12-31 23:30:00", "alpha", "a", ""),
    ("2021-01-03 12:00:00", "alpha", "a", ""),
    ("2021-01-04 00:00:00", "alpha", "a", ""),
    ("2021-06-30 10:00:00", "alpha", "a", ""),
    ("2022-02-28 10:00:00", "alpha", "a", ""),
    ("2022-03-31 10:00:00", "alpha", "a", ""),
    ("2023-07-15 08:00:00", "alpha", "a", "monthly"),
    ("2023-12-31 22:00:00", "alpha", "a", ""),
    ("2024-01-29 10:00:00", "alpha", "a", ""),
    ("2024-02-05 10:00:00", "alpha", "a", ""),
    ("2024-02-26 10:00:00", "alpha", "a", "y,x"),
    ("2024-02-29 10:00:00", "alpha", "a", ""),
    ("2024-03-01 09:00:00", "alpha", "a", ""),
    ("2024-03-02 09:00:00", "alpha", "a", ""),
    ("2024-03-02 09:30:00", "alpha", "a", ""),
    ("2024-03-02 10:15:00", "alpha", "a", "keep"),
    ("2024-03-02 10:45:00", "alpha", "a", ""),
    ("2024-03-03 00:00:00", "alpha", "a", ""),
    ("2024-03-03 23:59:59", "alpha", "a", ""),
    // host beta, path a
    ("2024-01-10 12:00:00", "beta", "a", "keep"),
    ("2024-02-10 12:00:00", "beta", "a", ""),
    ("2024-02-11 12:00:00", "beta", "a", "daily"),
    ("2024-03-01 12:00:00", "beta", "a", ""),
    ("2024-03-02 12:00:00", "beta", "a", "daily,keep"),
    ("2024-03-03 12:00:00", "beta", "a", ""),
    // host alpha, paths a and b
    ("2023-01-01 00:00:00", "alpha", "ab", ""),
    ("2023-06-01 00:00:00", "alpha", "ab", "x,y"),
    ("2024-01-01 00:00:00", "alpha", "ab", ""),
    ("2024-03-03 06:00:00", "alpha", "ab", ""),
    // host gamma, path b
    ("2024-02-01 00:00:00", "gamma", "b", "keep"),
    ("2024-03-01 00:00:00", "gamma", "b", ""),
];

/// Local times in Europe/Berlin around the DST changes of 2024 (Mar 31 02:00 -> 03:00,
/// Oct 27 03:00 -> 02:00).
const BERLIN: &[&str] = &[
    "2024-03-29 23:30:00",
    "2024-03-30 01:30:00",
    "2024-03-30 03:30:00",
    "2024-03-30 23:59:00",
    "2024-03-31 01:59:00",
    "2024-03-31 03:00:00",
    "2024-03-31 03:30:00",
    "2024-03-31 04:10:00",
    "2024-04-01 00:30:00",
    "2024-04-01 03:15:00",
    "2024-10-26 02:30:00",
    "2024-10-26 03:30:00",
    "2024-10-27 01:30:00",
    "2024-10-27 03:30:00",
    "2024-10-28 02:45:00",
];

fn build_fixture(restic_bin: PathBuf) -> Fixture {
    let tmp = tempfile::Builder::new()
        .prefix("forget-interop-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir");
    let root = fs::canonicalize(tmp.path()).unwrap();
    let data = root.join("data");
    for (dir, content) in [("a", "alpha file\n"), ("b", "bravo file\n")] {
        fs::create_dir_all(data.join(dir)).unwrap();
        fs::write(data.join(dir).join("file.txt"), content).unwrap();
    }
    let dir_a = data.join("a").to_str().unwrap().to_owned();
    let dir_b = data.join("b").to_str().unwrap().to_owned();

    let repo = root.join("repo");
    let restic = Restic::with_bin(&restic_bin, &repo, PASSWORD);
    restic.run(["init"]);
    swap_in_cheap_key(&repo, PASSWORD);
    for (time, host, which, tags) in SNAPSHOTS {
        let mut args: Vec<String> = vec![
            "backup".into(),
            "-q".into(),
            "--time".into(),
            time.to_string(),
            "--host".into(),
            host.to_string(),
        ];
        if !tags.is_empty() {
            args.push("--tag".into());
            args.push(tags.to_string());
        }
        if which.contains('a') {
            args.push(dir_a.clone());
        }
        if which.contains('b') {
            args.push(dir_b.clone());
        }
        restic.run(&args);
    }
    let n = restic.run_json(["snapshots", "--json"]);
    assert_eq!(n.as_array().unwrap().len(), SNAPSHOTS.len());

    let berlin = root.join("berlin");
    let restic = Restic::with_bin(&restic_bin, &berlin, PASSWORD);
    restic.run(["init"]);
    swap_in_cheap_key(&berlin, PASSWORD);
    for time in BERLIN {
        restic
            .cmd(["backup", "-q", "--host", "b", "--time", time, &dir_a])
            .env("TZ", "Europe/Berlin")
            .run();
    }

    let keep = std::env::var_os("ARCA_INTEROP_KEEP").is_some_and(|v| !v.is_empty());
    if keep {
        eprintln!("keeping the forget interop folder {}", root.display());
        let _ = tmp.keep();
    } else {
        // A static holds the fixture, and statics are never dropped.
        keep_until_exit(tmp);
    }
    Fixture {
        root,
        dialect: dialect_of(&restic_bin),
        restic_bin,
        repo,
        dir_a,
        dir_b,
        berlin,
    }
}

// ------------------------------------------------------------------ comparing

/// One group of `forget --json`, keyed by (host, tags, paths).
#[derive(Debug, Default)]
struct Group {
    /// Newest first.
    keep: Vec<String>,
    remove: BTreeSet<String>,
    matches: BTreeMap<String, Vec<String>>,
    objects: BTreeMap<String, Value>,
}

type Groups = BTreeMap<String, Group>;

fn group_key(g: &Value) -> String {
    format!("host={} tags={} paths={}", g["host"], g["tags"], g["paths"])
}

fn list(v: &Value) -> Vec<Value> {
    match v {
        Value::Null => Vec::new(),
        Value::Array(a) => a.clone(),
        other => panic!("expected an array or null, got {other}"),
    }
}

fn id_of(s: &Value) -> String {
    s["id"].as_str().expect("snapshot has an id").to_owned()
}

fn parse_groups(v: &Value, restic_014: bool) -> Groups {
    let mut out = Groups::new();
    for g in v.as_array().expect("forget --json prints an array") {
        let mut grp = Group::default();
        let keep = list(&g["keep"]);
        for s in &keep {
            grp.keep.push(id_of(s));
            grp.objects.insert(id_of(s), s.clone());
        }
        for s in list(&g["remove"]) {
            grp.remove.insert(id_of(&s));
            grp.objects.insert(id_of(&s), s.clone());
        }
        let reasons = list(&g["reasons"]);
        assert_eq!(
            reasons.len(),
            keep.len(),
            "one reason per kept snapshot: {g}"
        );
        for (i, r) in reasons.iter().enumerate() {
            // restic 0.14's reasons hold the snapshot without its ID, in the order of `keep`;
            // current restic (and arca) add id and short_id.
            let id = if restic_014 {
                assert_eq!(r["snapshot"]["time"], keep[i]["time"], "{g}");
                grp.keep[i].clone()
            } else {
                assert_eq!(id_of(&r["snapshot"]), grp.keep[i]);
                assert_eq!(
                    r["snapshot"], keep[i],
                    "reason snapshot equals the kept one"
                );
                assert!(
                    r.get("counters").is_none(),
                    "current restic has no counters"
                );
                id_of(&r["snapshot"])
            };
            let m: Vec<String> = list(&r["matches"])
                .iter()
                .map(|x| x.as_str().unwrap().to_owned())
                .collect();
            grp.matches.insert(id, m);
        }
        let k = group_key(g);
        assert!(out.insert(k.clone(), grp).is_none(), "group {k} twice");
    }
    out
}

/// Compare restic's and arca's dry runs. Returns how many snapshots arca keeps only as
/// `oldest ...`. Against restic 0.14 (`dialect`), which lacks that rule, those snapshots count
/// as removed and `oldest ...` reasons are left out; against current restic all is exact.
fn compare(restic: &Groups, arca: &Groups, what: &str, dialect: Dialect) -> usize {
    assert_eq!(
        restic.keys().collect::<Vec<_>>(),
        arca.keys().collect::<Vec<_>>(),
        "{what}: groups"
    );
    let mut oldest_only = 0;
    for (k, r) in restic {
        let a = &arca[k];
        let only_oldest: BTreeSet<&String> = a
            .keep
            .iter()
            .filter(|id| a.matches[*id].iter().all(|m| m.starts_with("oldest ")))
            .collect();
        oldest_only += only_oldest.len();
        if !dialect.is_0_14() {
            assert_eq!(r.keep, a.keep, "{what}: {k}: kept snapshots");
            assert_eq!(r.remove, a.remove, "{what}: {k}: removed");
            assert_eq!(r.matches, a.matches, "{what}: {k}: reasons");
            assert_eq!(r.objects, a.objects, "{what}: {k}: JSON of the snapshots");
            continue;
        }
        let a_keep: Vec<&String> = a
            .keep
            .iter()
            .filter(|id| !only_oldest.contains(id))
            .collect();
        let r_keep: Vec<&String> = r.keep.iter().collect();
        assert_eq!(r_keep, a_keep, "{what}: {k}: kept snapshots");
        let mut a_remove: BTreeSet<&String> = a.remove.iter().collect();
        a_remove.extend(only_oldest.iter().copied());
        assert_eq!(
            r.remove.iter().collect::<BTreeSet<_>>(),
            a_remove,
            "{what}: {k}: removed"
        );
        for id in &r.keep {
            let a_matches: Vec<&String> = a.matches[id]
                .iter()
                .filter(|m| !m.starts_with("oldest "))
                .collect();
            assert_eq!(
                r.matches[id].iter().collect::<Vec<_>>(),
                a_matches,
                "{what}: {k}: reasons for {id}"
            );
        }
        for (id, obj) in &r.objects {
            assert_eq!(obj, &a.objects[id], "{what}: {k}: JSON of snapshot {id}");
        }
    }
    oldest_only
}

fn dry_runs(f: &Fixture, repo: &Path, tz: &str, policy: &[&str]) -> (Groups, Groups) {
    let mut args = vec!["forget", "--dry-run", "--json"];
    args.extend_from_slice(policy);
    let r = f.restic(repo).cmd(&args).env("TZ", tz).run_json();
    let a = f.arca(repo).cmd(&args).env("TZ", tz).run_json();
    (
        parse_groups(&r, f.dialect.is_0_14()),
        parse_groups(&a, false),
    )
}

fn snapshot_ids(f: &Fixture, repo: &Path) -> BTreeSet<String> {
    f.restic(repo)
        .run_json(["snapshots", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect()
}

fn all_kept(g: &Groups) -> BTreeSet<String> {
    g.values().flat_map(|g| g.keep.iter().cloned()).collect()
}

// ------------------------------------------------------------------ tests

#[test]
fn dry_run_json_matches_restic() {
    let f = fixture_or_return!();
    let _shared = shared_repos();
    let a = f.dir_a.as_str();
    let b = f.dir_b.as_str();
    let policies: Vec<Vec<&str>> = vec![
        vec!["--keep-last", "5"],
        vec!["--keep-last", "40"],
        vec!["--keep-hourly", "4"],
        vec!["--keep-daily", "7"],
        vec!["--keep-weekly", "4"],
        vec!["--keep-weekly", "12"],
        vec!["--keep-monthly", "6"],
        vec!["--keep-yearly", "3"],
        vec!["-d", "3", "-w", "2", "-m", "3", "-y", "2"],
        vec![
            "--keep-daily",
            "2",
            "--keep-weekly",
            "2",
            "--keep-monthly",
            "2",
            "--keep-yearly",
            "10",
        ],
        vec!["--keep-within", "1m15d"],
        vec!["--keep-within", "1d"],
        vec!["--keep-within", "2y", "--group-by", "host"],
        vec!["--keep-within", "1y2m3d4h"],
        vec!["--keep-within", "36h"],
        vec!["--keep-within-hourly", "2d"],
        vec!["--keep-within-daily", "10d"],
        vec!["--keep-within-weekly", "2m"],
        vec!["--keep-within-monthly", "1y"],
        vec!["--keep-within-yearly", "3y"],
        vec![
            "--keep-within-daily",
            "7d",
            "--keep-within-weekly",
            "1m",
            "--keep-within-monthly",
            "1y",
            "--keep-within-yearly",
            "75y",
        ],
        vec!["--keep-tag", "keep", "--keep-last", "1"],
        vec![
            "--keep-tag",
            "x,y",
            "--keep-tag",
            "keep",
            "--keep-monthly",
            "2",
        ],
        vec!["--keep-tag", "", "--keep-last", "1"],
        vec!["--keep-last", "2", "--group-by", ""],
        vec!["--keep-last", "1", "--group-by", "tags"],
        vec!["--keep-last", "2", "--group-by", "host,paths,tags"],
        vec!["--keep-daily", "3", "--group-by", "paths"],
        vec!["--keep-daily", "2", "--host", "beta"],
        vec!["--keep-last", "1", "--tag", "keep"],
        vec![
            "--keep-last",
            "1",
            "--tag",
            "daily,keep",
            "--tag",
            "monthly",
        ],
        vec!["--keep-last", "1", "--path", b],
        vec!["--keep-last", "1", "--path", a, "--path", b],
        vec![
            "--keep-hourly",
            "3",
            "--keep-within",
            "6h",
            "--host",
            "alpha",
            "--host",
            "gamma",
        ],
    ];
    let mut report = Vec::new();
    for p in &policies {
        let (r, ar) = dry_runs(f, &f.repo, "UTC", p);
        let what = format!("forget {}", p.join(" "));
        let oldest = compare(&r, &ar, &what, f.dialect);
        report.push(format!(
            "{what}: {} groups, {oldest} kept only as oldest",
            r.len()
        ));
    }
    eprintln!("{}", report.join("\n"));
    // Most policies use up their counts: the comparison is exact there.
    assert!(
        report
            .iter()
            .filter(|l| l.ends_with(" 0 kept only as oldest"))
            .count()
            >= 20
    );
}

#[test]
fn local_zone_buckets_and_within_match_restic() {
    let f = fixture_or_return!();
    let _shared = shared_repos();
    for tz in ["Europe/Berlin", "UTC", "America/New_York"] {
        for p in [
            vec!["--keep-hourly", "6"],
            vec!["--keep-daily", "4"],
            vec!["--keep-daily", "20"],
            vec!["--keep-weekly", "2"],
            vec!["--keep-within", "1d"],
            vec!["--keep-within", "1d1h"],
            vec!["--keep-within", "7m1d"],
            vec!["--keep-within-hourly", "1d"],
            vec!["--keep-within-daily", "7m2d"],
        ] {
            let (r, a) = dry_runs(f, &f.berlin, tz, &p);
            compare(
                &r,
                &a,
                &format!("TZ={tz} forget {}", p.join(" ")),
                f.dialect,
            );
        }
    }
}

#[test]
fn text_output_matches_restic() {
    let f = fixture_or_return!();
    let _shared = shared_repos();
    // Single groups (restic prints groups in random order) whose counts are used up.
    for p in [
        vec!["--keep-last", "5", "--group-by", ""],
        vec!["--keep-daily", "2", "--keep-within", "1d", "--host", "beta"],
        vec![
            "--keep-last",
            "2",
            "--path",
            f.dir_b.as_str(),
            "--host",
            "alpha",
        ],
        vec![
            "--keep-tag",
            "keep",
            "--keep-monthly",
            "1",
            "--host",
            "beta",
            "--compact",
        ],
        vec![
            "--keep-weekly",
            "3",
            "--host",
            "alpha",
            "--path",
            f.dir_b.as_str(),
            "--compact",
        ],
    ] {
        let mut args = vec!["forget", "--dry-run"];
        args.extend_from_slice(&p);
        let r = f.restic(&f.repo).run_string(&args);
        let mut a = f.arca(&f.repo).run_string(&args);
        if f.dialect.is_0_14() {
            a = arca_tests::dialect::without_zone_footer(&a);
        }
        assert_eq!(r, a, "forget {}", p.join(" "));
    }
}

#[test]
fn real_forget_leaves_what_restic_predicted() {
    let f = fixture_or_return!();
    let repo = f.copy("policy");
    let policy = ["-d", "3", "-w", "2", "-m", "3", "-y", "2"];
    let (r, a) = dry_runs(f, &repo, "UTC", &policy);
    compare(&r, &a, "before the real forget", f.dialect);
    let before = snapshot_ids(f, &repo);

    let mut args = vec!["forget"];
    args.extend_from_slice(&policy);
    let out = f.arca(&repo).run_string(&args);
    assert!(
        out.starts_with("Applying Policy: keep 3 daily, 2 weekly, 3 monthly, 2 yearly snapshots\n"),
        "{out}"
    );
    assert!(!out.contains("Would have removed"), "{out}");

    let after = snapshot_ids(f, &repo);
    assert_eq!(after, all_kept(&a), "arca left what its own dry run said");
    let removed: BTreeSet<String> = before.difference(&after).cloned().collect();
    let predicted_removed: BTreeSet<String> =
        r.values().flat_map(|g| g.remove.iter().cloned()).collect();
    // Exactly restic's prediction (with 0.14: apart from snapshots arca keeps as "oldest").
    if !f.dialect.is_0_14() {
        assert_eq!(removed, predicted_removed);
    }
    assert!(removed.is_subset(&predicted_removed));
    for id in predicted_removed.difference(&removed) {
        let g = a.values().find(|g| g.matches.contains_key(id)).unwrap();
        assert!(
            g.matches[id].iter().all(|m| m.starts_with("oldest ")),
            "{id}"
        );
    }
    f.restic(&repo).run(["check"]);
    assert!(f
        .restic(&repo)
        .run_string(["list", "locks"])
        .trim()
        .is_empty());
    // The same policy again removes nothing.
    let again = f.arca(&repo).cmd(&args).arg("--json").run_json();
    assert!(again
        .as_array()
        .unwrap()
        .iter()
        .all(|g| g["remove"].is_null()));
}

#[test]
fn forget_by_id() {
    let f = fixture_or_return!();
    let repo = f.copy("ids");
    let before = snapshot_ids(f, &repo);
    let ids: Vec<&String> = before.iter().collect();
    let full = ids[0].clone();
    let short = ids[1][..8].to_owned();
    let out = f
        .arca(&repo)
        .cmd(["forget", "--dry-run", &full, &short, "deadbeef"])
        .output();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut shorts = [full[..8].to_owned(), short.clone()];
    shorts.sort();
    assert_eq!(
        stdout,
        format!(
            "Would have removed the following snapshots:\n{{{} {}}}\n\n",
            shorts[0], shorts[1]
        )
    );
    assert!(stderr.contains("Ignoring \"deadbeef\""), "{stderr}");
    assert_eq!(snapshot_ids(f, &repo), before);

    // Policies are ignored when IDs are given; --json prints nothing then, like restic.
    let out = f
        .arca(&repo)
        .run(["forget", "--json", "--keep-last", "100", &full, &short]);
    assert!(out.is_empty());
    let after = snapshot_ids(f, &repo);
    let expected: BTreeSet<String> = before
        .iter()
        .filter(|id| **id != full && !id.starts_with(&short))
        .cloned()
        .collect();
    assert_eq!(after, expected);

    // `latest` honours the filters.
    let beta_latest = f
        .restic(&repo)
        .run_json(["snapshots", "--json", "--host", "beta", "latest"]);
    let beta_latest = id_of(&beta_latest[0]);
    f.arca(&repo).run(["forget", "--host", "beta", "latest"]);
    let after2 = snapshot_ids(f, &repo);
    assert!(!after2.contains(&beta_latest));
    assert_eq!(after2.len(), after.len() - 1);
    f.restic(&repo).run(["check"]);
}

#[test]
fn refusals_and_remove_all() {
    let f = fixture_or_return!();
    let repo = f.copy("refusals");
    let before = snapshot_ids(f, &repo);

    // No policy: current restic refuses with an error (0.14 printed a note and exited 0).
    let out = f.arca(&repo).expect_failure(["forget"]);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("no policy was specified, no snapshots will be removed"));
    f.arca(&repo).expect_failure(["forget", "--keep-last", "0"]);
    // --unsafe-allow-remove-all needs a filter.
    let out = f
        .arca(&repo)
        .expect_failure(["forget", "--unsafe-allow-remove-all"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "--unsafe-allow-remove-all is not allowed unless a snapshot filter option is specified"
    ));
    // A policy that would empty a group.
    let out = f
        .arca(&repo)
        .expect_failure(["forget", "--keep-tag", "keep"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("refusing to delete last snapshot of snapshot group \"host alpha, path ["),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Bad values.
    for bad in [
        vec!["forget", "--keep-last", "-2"],
        vec!["forget", "--keep-within", "-1d"],
        vec!["forget", "--keep-within", "5w"],
        vec!["forget", "--keep-last", "1", "--group-by", "bogus"],
    ] {
        f.arca(&repo).expect_failure(&bad);
    }
    let out = f
        .arca(&repo)
        .expect_failure(["--no-lock", "forget", "--keep-last", "1"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-lock is only applicable"));
    assert_eq!(
        snapshot_ids(f, &repo),
        before,
        "nothing removed by refused runs"
    );

    // --no-lock with --dry-run is fine.
    f.arca(&repo)
        .run(["--no-lock", "forget", "--dry-run", "--keep-last", "1"]);

    // Everything of host beta.
    let out = f
        .arca(&repo)
        .run_string(["forget", "--unsafe-allow-remove-all", "--host", "beta"]);
    assert!(out.starts_with("Applying Policy: remove\n"), "{out}");
    let after = snapshot_ids(f, &repo);
    assert_eq!(before.len() - after.len(), 6);
    let hosts: BTreeSet<String> = f
        .restic(&repo)
        .run_json(["snapshots", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["hostname"].as_str().unwrap().to_owned())
        .collect();
    assert!(!hosts.contains("beta"));

    // "unlimited" (and -1) keep everything.
    let all = f
        .arca(&repo)
        .run_json(["forget", "--dry-run", "--json", "--keep-last", "unlimited"]);
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .all(|g| g["remove"].is_null()));
    let all = f
        .arca(&repo)
        .run_json(["forget", "--dry-run", "--json", "--keep-last", "-1"]);
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .all(|g| g["remove"].is_null()));
    f.restic(&repo).run(["check"]);
}

#[test]
fn forget_with_prune() {
    let f = fixture_or_return!();
    let repo = f.copy("prune");
    // Make some data only old snapshots reference, so that prune has something to delete.
    let extra = f.root.join("extra");
    fs::create_dir_all(&extra).unwrap();
    fs::write(extra.join("only-old.bin"), vec![7u8; 300_000]).unwrap();
    f.restic(&repo).run([
        "backup",
        "-q",
        "--time",
        "2019-01-01 00:00:00",
        "--host",
        "old",
        extra.to_str().unwrap(),
    ]);
    let packs_before = f
        .restic(&repo)
        .run_string(["list", "packs"])
        .lines()
        .count();
    let out = f.arca(&repo).run_string([
        "forget",
        "--keep-last",
        "1",
        "--group-by",
        "",
        "--prune",
        "--max-unused",
        "0",
    ]);
    assert!(
        out.contains("snapshots have been removed, running prune"),
        "{out}"
    );
    assert_eq!(snapshot_ids(f, &repo).len(), 1);
    let packs_after = f
        .restic(&repo)
        .run_string(["list", "packs"])
        .lines()
        .count();
    assert!(
        packs_after < packs_before,
        "{packs_before} -> {packs_after}"
    );
    f.restic(&repo).run(["check", "--read-data"]);
}
