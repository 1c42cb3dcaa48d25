//! Crash safety: `arca backup` and `arca prune` killed with SIGKILL at any moment leave a
//! repository that the real restic accepts (at worst unreferenced packs, and for prune duplicate
//! index entries, both of which restic calls non-critical), and the next run completes.
//!
//! DESIGN.md's ordering rule is what makes this hold: a pack is stored before an index names it,
//! an index before a snapshot refers to it, and nothing is deleted until the index that no longer
//! needs it is written. These tests check the rule from the outside, on real files, with the real
//! `arca` binary and restic 0.14:
//!
//! - `backup_killed_at_any_moment`: a backup of ~90 MiB (the interop dataset at Small scale plus
//!   random bulk files, `--pack-size 4`) is killed at 12 moments, each into a fresh copy of an
//!   empty repository: fixed delays (2 and 120 ms), fractions of a measured unkilled run (0.45
//!   to 0.9, and 1.5: past the end), and moments picked by watching the repository (the lock
//!   file appears; the first and third pack appear; the index appears; the snapshot appears).
//! - `prune_killed_at_any_moment`: a repository with five snapshots over changing data, three of
//!   them forgotten, pruned with `--max-unused 0%` (so it repacks, writes new index files,
//!   removes the old ones and deletes packs) and killed at 11 moments chosen the same way.
//!
//! After every kill:
//! - `restic check` of the state the kill left passes and reports no error (unreferenced packs
//!   and packs named by two index files are reported by restic as non-critical, and counted).
//!   restic 0.14 refuses to run anything but `unlock` while any lock exists, stale or not, so
//!   this check runs with `--no-lock`;
//! - `arca check` passes, with the killed process's lock still there (arca ignores it: a dead PID
//!   on this host is stale, restic's rule);
//! - prune: the remaining snapshots restore exactly what they were made from (`--no-lock`; the
//!   latest every time, the older one every other time);
//! - the next `arca backup` / `arca prune` completes, with the stale lock still there;
//! - `restic unlock` (stale locks only) leaves no lock behind: restic agrees every lock left was
//!   stale;
//! - a locking `restic check --read-data` passes (after a prune: with no unreferenced or
//!   duplicate pack left); for backup, whenever the killed run left an index, `restore latest`
//!   gives exactly the source. In the last round of each test the latest snapshot is restored
//!   and compared too.
//!
//! Comparing restored trees (`compare_trees`, built without optimisation in the dev profile) is
//! the costliest step, so it is done where it adds to what `check --read-data` proves.
//!
//! The tests print how many kills landed in each phase (run with `--nocapture` to see it) and
//! assert that the interesting phases were all hit. Set `ARCA_CRASH_KEEP=1` to keep the work
//! folder (its path is printed).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use arca_tests::*;

const PASSWORD: &str = "crash safety password";
const MIB: usize = 1024 * 1024;
/// A killed or completing run that takes longer than this is a hang.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// The two tests measure timings and kill at moments within a run: run them one at a time so
/// they do not slow each other down (the machine may have only two cores).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The work folder of one test: removed at the end unless `ARCA_CRASH_KEEP` is set.
struct Workdir {
    _tmp: Option<tempfile::TempDir>,
    path: PathBuf,
}

fn workdir(name: &str) -> Workdir {
    let tmp = tempfile::Builder::new()
        .prefix(&format!("arca-crash-{name}-"))
        .tempdir()
        .expect("temporary folder");
    if std::env::var_os("ARCA_CRASH_KEEP").is_some_and(|v| !v.is_empty()) {
        let path = tmp.keep();
        eprintln!("ARCA_CRASH_KEEP: keeping {}", path.display());
        return Workdir { _tmp: None, path };
    }
    Workdir {
        path: tmp.path().to_path_buf(),
        _tmp: Some(tmp),
    }
}

// --- what is in a repository -------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Pack,
    Index,
    Snapshot,
    Lock,
}

fn is_id(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The stored files (valid IDs only) of one kind, and how many temporary files of an unfinished
/// write lie next to them.
fn list_kind(repo: &Path, kind: Kind) -> (BTreeSet<String>, usize) {
    let mut ids = BTreeSet::new();
    let mut tmp = 0;
    let mut scan = |dir: &Path| {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_id(&name) {
                ids.insert(name);
            } else if name.contains("-tmp-") {
                tmp += 1;
            }
        }
    };
    match kind {
        Kind::Pack => {
            for sub in fs::read_dir(repo.join("data"))
                .expect("data folder")
                .flatten()
            {
                scan(&sub.path());
            }
        }
        Kind::Index => scan(&repo.join("index")),
        Kind::Snapshot => scan(&repo.join("snapshots")),
        Kind::Lock => scan(&repo.join("locks")),
    }
    (ids, tmp)
}

#[derive(Clone, Debug, Default)]
struct RepoFiles {
    files: BTreeMap<Kind, BTreeSet<String>>,
    tmp: usize,
}

impl RepoFiles {
    fn scan(repo: &Path) -> RepoFiles {
        let mut files = BTreeMap::new();
        let mut tmp = 0;
        for kind in [Kind::Pack, Kind::Index, Kind::Snapshot, Kind::Lock] {
            let (ids, t) = list_kind(repo, kind);
            files.insert(kind, ids);
            tmp += t;
        }
        RepoFiles { files, tmp }
    }

    fn get(&self, kind: Kind) -> &BTreeSet<String> {
        &self.files[&kind]
    }

    /// Files of `kind` here that `base` does not have.
    fn added(&self, base: &RepoFiles, kind: Kind) -> usize {
        self.get(kind).difference(base.get(kind)).count()
    }

    /// Files of `kind` that `base` has and this does not.
    fn removed(&self, base: &RepoFiles, kind: Kind) -> usize {
        base.get(kind).difference(self.get(kind)).count()
    }
}

// --- killing a run -----------------------------------------------------------------------------

/// When to send SIGKILL.
#[derive(Clone, Debug)]
enum Trigger {
    /// This long after the start.
    After(Duration),
    /// As soon as `n` files of the kind exist that the repository did not have before the run.
    Appeared(Kind, usize),
    /// As soon as `n` of the files of the kind that the repository had before the run are gone.
    Removed(Kind, usize),
}

impl Trigger {
    fn describe(&self) -> String {
        match self {
            Trigger::After(d) => format!("after {} ms", d.as_millis()),
            Trigger::Appeared(k, n) => format!("when {k:?} #{n} appears"),
            Trigger::Removed(k, n) => format!("when {k:?} #{n} is removed"),
        }
    }

    fn fired(&self, repo: &Path, base: &RepoFiles, elapsed: Duration) -> bool {
        match self {
            Trigger::After(d) => elapsed >= *d,
            Trigger::Appeared(kind, n) => {
                list_kind(repo, *kind).0.difference(base.get(*kind)).count() >= *n
            }
            Trigger::Removed(kind, n) => {
                base.get(*kind)
                    .difference(&list_kind(repo, *kind).0)
                    .count()
                    >= *n
            }
        }
    }
}

struct Outcome {
    /// Whether SIGKILL ended the process (false: it had exited on its own first).
    killed: bool,
    status: ExitStatus,
    elapsed: Duration,
    log: String,
}

/// Spawn `cmd` (stdout and stderr to files in `logs`) and SIGKILL it when `trigger` fires.
fn run_and_kill(
    mut cmd: Command,
    logs: &Path,
    repo: &Path,
    base: &RepoFiles,
    trigger: &Trigger,
) -> Outcome {
    fs::create_dir_all(logs).expect("log folder");
    let (out_path, err_path) = (logs.join("stdout"), logs.join("stderr"));
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"));
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn arca");
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        let elapsed = start.elapsed();
        if elapsed > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            // Not `{cmd:?}`: that would print the environment, password included.
            let args: Vec<_> = cmd.get_args().collect();
            panic!("arca {args:?} ran for more than {RUN_LIMIT:?}");
        }
        if trigger.fired(repo, base, elapsed) {
            // SIGKILL on Unix. If the process exited in between, it is a zombie until the
            // wait below, so the signal goes nowhere and the status says how it ended.
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        match trigger {
            Trigger::After(d) => {
                thread::sleep(d.saturating_sub(elapsed).min(Duration::from_millis(1)))
            }
            _ => thread::sleep(Duration::from_micros(200)),
        }
    };
    let elapsed = start.elapsed();
    let log = format!(
        "--- stderr ---\n{}\n--- stdout ---\n{}",
        fs::read_to_string(&err_path).unwrap_or_default(),
        fs::read_to_string(&out_path).unwrap_or_default()
    );
    Outcome {
        killed: status.signal() == Some(libc::SIGKILL),
        status,
        elapsed,
        log,
    }
}

// --- checks ------------------------------------------------------------------------------------

/// What `restic check` reported besides "no errors".
#[derive(Default, Debug)]
struct CheckNotes {
    /// Packs no index names ("not referenced in any index").
    unreferenced_packs: usize,
    /// Packs named by more than one index file (left by a prune killed while it swapped them).
    duplicate_packs: usize,
}

/// Run `restic <args>` (a check) and require success with no error reported.
fn restic_check(restic: &Restic, args: &[&str], context: &str) -> CheckNotes {
    let out = restic.output(args);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{context}: `restic {}` failed ({}):\n{text}",
        args.join(" "),
        out.status
    );
    assert!(
        text.contains("no errors were found"),
        "{context}: `restic {}` did not say \"no errors were found\":\n{text}",
        args.join(" ")
    );
    let mut notes = CheckNotes::default();
    for line in text.lines() {
        let lower = line.to_ascii_lowercase();
        if lower.contains("not referenced in any index") {
            notes.unreferenced_packs += 1;
        } else if lower.contains("contained in several indexes") {
            notes.duplicate_packs += 1;
        }
        assert!(
            !(lower.contains("error") || lower.contains("fatal"))
                || lower == "no errors were found",
            "{context}: `restic {}` reported a problem: {line}\n{text}",
            args.join(" ")
        );
    }
    notes
}

/// `restic unlock` (stale locks only) must leave no lock: every lock a killed process left is
/// stale by restic's own rule, and no live process holds one.
fn restic_unlock_all_stale(restic: &Restic, repo: &Path, context: &str) -> usize {
    let before = list_kind(repo, Kind::Lock).0.len();
    restic.run(["unlock"]);
    let left = list_kind(repo, Kind::Lock).0;
    assert!(
        left.is_empty(),
        "{context}: `restic unlock` kept {} lock(s) it does not consider stale: {left:?}",
        left.len()
    );
    before
}

fn arca_check(arca: &Arca, context: &str) {
    let out = arca.output(["check"]);
    assert!(
        out.status.success(),
        "{context}: `arca check` failed ({}):\n--- stderr ---\n{}\n--- stdout ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

fn arca_command(arca: &Arca, args: &[&str], dir: &Path) -> Command {
    // The runner creates its HOME on `output()`; a spawned command needs it too.
    fs::create_dir_all(arca.scratch().join("home")).expect("home folder");
    arca.cmd(args).current_dir(dir).command()
}

/// A copy of a repository whose stored files are hard links to the original's: neither arca
/// nor restic ever changes a stored file in place (they write a temporary file and rename it,
/// and remove by unlinking), so runs on the copy cannot touch the original, and copying is quick.
fn copy_repo(from: &Path, to: &Path) {
    let out = Command::new("cp")
        .arg("-al")
        .arg(from)
        .arg(to)
        .output()
        .expect("run cp");
    assert!(
        out.status.success(),
        "cp -al {} {}: {}",
        from.display(),
        to.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write_random(path: &Path, rng: &mut DetRng, size: usize) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let mut file = File::create(path).expect("create");
    let mut buf = vec![0u8; MIB];
    let mut left = size;
    while left > 0 {
        let n = left.min(MIB);
        rng.fill(&mut buf[..n]);
        file.write_all(&buf[..n]).expect("write");
        left -= n;
    }
}

/// Restore `snapshot` with restic and compare it with `source` (the backed-up folder `data`).
fn restore_and_compare(restic: &Restic, snapshot: &str, source: &Path, target: &Path, ctx: &str) {
    let _ = fs::remove_dir_all(target);
    restic
        .cmd(["restore", snapshot, "--target"])
        .arg(target)
        .run();
    if let Err(diff) = compare_trees(source, &target.join("data")) {
        panic!("{ctx}: snapshot {snapshot} does not restore its source:\n{diff}");
    }
    fs::remove_dir_all(target).expect("remove restore");
}

fn tally_line(tally: &BTreeMap<&'static str, Vec<String>>) -> String {
    tally
        .iter()
        .map(|(state, hits)| format!("  {state:<34} {:>2}  ({})", hits.len(), hits.join("; ")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A phase the kills must reach: the states that count as in it, and the kills to try again if
/// none landed there (on a busy machine the test's polling can miss a phase of milliseconds).
struct Phase {
    name: &'static str,
    states: &'static [&'static str],
    retry: Vec<Trigger>,
}

/// How many times the kills of missed phases are tried again before the test fails.
const PHASE_RETRIES: usize = 3;

fn missed<'p>(phases: &'p [Phase], tally: &BTreeMap<&'static str, Vec<String>>) -> Vec<&'p Phase> {
    phases
        .iter()
        .filter(|p| !p.states.iter().any(|s| tally.contains_key(s)))
        .collect()
}

/// The next kill to make: the next of `triggers`, or once they are done, the retries of the
/// phases no kill reached yet (appended to `triggers`), or None when all are reached or the
/// retries are spent.
fn next_trigger(
    i: usize,
    triggers: &mut Vec<Trigger>,
    phases: &[Phase],
    tally: &BTreeMap<&'static str, Vec<String>>,
    retries: &mut usize,
) -> Option<Trigger> {
    if i == triggers.len() {
        let missed = missed(phases, tally);
        if missed.is_empty() || *retries == PHASE_RETRIES {
            return None;
        }
        *retries += 1;
        for phase in missed {
            println!("no kill landed in phase {:?} yet: trying again", phase.name);
            triggers.extend(phase.retry.iter().cloned());
        }
    }
    Some(triggers[i].clone())
}

fn assert_phases(phases: &[Phase], tally: &BTreeMap<&'static str, Vec<String>>, what: &str) {
    let missed: Vec<&str> = missed(phases, tally).iter().map(|p| p.name).collect();
    assert!(
        missed.is_empty(),
        "no {what} kill landed in phase(s) {missed:?}, even after {PHASE_RETRIES} retries:\n{}",
        tally_line(tally)
    );
}

// --- backup ------------------------------------------------------------------------------------

/// The source folder `<root>/data` (~90 MiB): the interop dataset (Small) plus 60 MiB of random
/// bulk files and 40 small ones.
fn make_backup_source(root: &Path) -> PathBuf {
    let data = root.join("data");
    make_dataset(&data.join("interop"), DatasetScale::Small);
    let mut rng = DetRng::new(0xC0A5_45AF);
    for (i, size) in [
        15 * MIB + 5,
        13 * MIB,
        11 * MIB + 77,
        9 * MIB,
        7 * MIB,
        5 * MIB + 1,
    ]
    .into_iter()
    .enumerate()
    {
        write_random(&data.join(format!("bulk/file-{i}.bin")), &mut rng, size);
    }
    for i in 0..40 {
        let size = 20_000 + rng.below(200_000) as usize;
        write_random(&data.join(format!("bulk/small/{i:03}.bin")), &mut rng, size);
    }
    data
}

fn backup_state(base: &RepoFiles, after: &RepoFiles, out: &Outcome) -> &'static str {
    let (packs, index, snaps) = (
        after.added(base, Kind::Pack),
        after.added(base, Kind::Index),
        after.added(base, Kind::Snapshot),
    );
    match (packs, index, snaps) {
        (_, _, 1..) if !out.killed => "finished before the kill",
        (_, _, 1..) => "snapshot written, not exited",
        (_, 1.., 0) => "index written, no snapshot",
        (1.., 0, 0) => "packs, no index",
        (0, 0, 0) if after.added(base, Kind::Lock) > 0 => "nothing new but the lock",
        (0, 0, 0) => "nothing new",
    }
}

#[test]
fn backup_killed_at_any_moment() {
    let restic_bin = restic_or_return!();
    let _serial = serial();
    let work = workdir("backup");
    let root = work.path.as_path();
    let t0 = Instant::now();
    let source = make_backup_source(&root.join("src"));
    let src_dir = root.join("src");

    // An empty repository to copy for every run.
    let template = root.join("template");
    Arca::new(&template, PASSWORD).run(["init"]);
    let base = RepoFiles::scan(&template);
    let backup_args = ["backup", "--pack-size", "4", "data"];

    // One unkilled run: how long a backup takes and how many packs it writes.
    let calib = root.join("calibration");
    copy_repo(&template, &calib);
    let arca = Arca::new(&calib, PASSWORD);
    let out = run_and_kill(
        arca_command(&arca, &backup_args, &src_dir),
        &root.join("logs/calibration"),
        &calib,
        &base,
        &Trigger::After(RUN_LIMIT),
    );
    assert!(
        out.status.success(),
        "calibration backup failed:\n{}",
        out.log
    );
    let full = out.elapsed;
    let packs = RepoFiles::scan(&calib).added(&base, Kind::Pack);
    println!(
        "backup source ready in {:.1?}; an unkilled backup takes {full:.2?} and writes {packs} packs",
        t0.elapsed()
    );
    assert!(
        packs >= 8,
        "the backup should write many packs, wrote {packs}"
    );
    fs::remove_dir_all(&calib).expect("remove calibration repo");

    let ms = Duration::from_millis;
    let frac = |f: f64| full.mul_f64(f);
    let mut triggers = vec![
        Trigger::After(ms(2)),
        Trigger::After(ms(120)),
        Trigger::Appeared(Kind::Lock, 1),
        Trigger::Appeared(Kind::Pack, 1),
        Trigger::After(frac(0.45)),
        Trigger::Appeared(Kind::Pack, 3),
        Trigger::After(frac(0.6)),
        Trigger::After(frac(0.75)),
        Trigger::After(frac(0.9)),
        Trigger::Appeared(Kind::Index, 1),
        Trigger::Appeared(Kind::Snapshot, 1),
        Trigger::After(frac(1.5)),
    ];

    let phases = [
        Phase {
            name: "before the first pack",
            states: &["nothing new", "nothing new but the lock"],
            retry: vec![Trigger::After(ms(2))],
        },
        Phase {
            name: "packs stored, no index",
            states: &["packs, no index"],
            retry: vec![Trigger::Appeared(Kind::Pack, 1)],
        },
        Phase {
            name: "index written",
            states: &["index written, no snapshot", "snapshot written, not exited"],
            retry: vec![
                Trigger::Appeared(Kind::Index, 1),
                Trigger::Appeared(Kind::Snapshot, 1),
            ],
        },
    ];
    let mut tally: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let (mut unreferenced, mut tmp_left, mut stale_locks) = (0, 0, 0);
    let mut retries = 0;
    for i in 0.. {
        let Some(trigger) = next_trigger(i, &mut triggers, &phases, &tally, &mut retries) else {
            break;
        };
        let trigger = &trigger;
        let ctx = format!("backup kill #{i} ({})", trigger.describe());
        let repo = root.join(format!("repo-{i:02}"));
        copy_repo(&template, &repo);
        let arca = Arca::new(&repo, PASSWORD);
        let restic = Restic::with_bin(&restic_bin, &repo, PASSWORD);

        let out = run_and_kill(
            arca_command(&arca, &backup_args, &src_dir),
            &root.join(format!("logs/backup-{i:02}")),
            &repo,
            &base,
            trigger,
        );
        if !out.killed {
            assert!(
                out.status.success(),
                "{ctx}: the backup failed:\n{}",
                out.log
            );
        }
        let after = RepoFiles::scan(&repo);
        let state = backup_state(&base, &after, &out);
        tally
            .entry(state)
            .or_default()
            .push(format!("#{i} {}", trigger.describe()));
        tmp_left += after.tmp;

        // The state the kill left, as restic sees it (the dead process's lock is still there).
        let notes = restic_check(&restic, &["--no-lock", "check"], &ctx);
        unreferenced += notes.unreferenced_packs;
        // arca ignores the stale lock, as restic's rule says (a dead PID on this host).
        arca_check(&arca, &ctx);

        // The next backup completes despite the stale lock, and adds one snapshot.
        let next = arca.cmd(backup_args).current_dir(&src_dir).output();
        assert!(
            next.status.success(),
            "{ctx}: the next backup failed ({}):\n{}",
            next.status,
            String::from_utf8_lossy(&next.stderr)
        );
        let final_files = RepoFiles::scan(&repo);
        assert_eq!(
            final_files.get(Kind::Snapshot).len(),
            after.get(Kind::Snapshot).len() + 1,
            "{ctx}: the next backup did not add one snapshot"
        );
        stale_locks += restic_unlock_all_stale(&restic, &repo, &ctx);

        // Every snapshot restores: `check --read-data` reads back every blob the index names
        // and checks that every snapshot's trees and blobs are there. Where the killed run's
        // index (and snapshot) became part of the repository, and in the last round, restore
        // too: the source did not change, so every snapshot (the killed run's, if it wrote one,
        // and the next run's) has the same tree, and restoring the latest restores them all.
        // (Restoring every time would double the test's time: compare_trees is unoptimised.)
        if after.added(&base, Kind::Index) > 0 || i + 1 == triggers.len() {
            let snapshots = restic.run_json(["snapshots", "--json"]);
            let trees: BTreeSet<&str> = snapshots
                .as_array()
                .expect("snapshot list")
                .iter()
                .map(|s| s["tree"].as_str().expect("tree"))
                .collect();
            assert_eq!(
                trees.len(),
                1,
                "{ctx}: snapshots of one source differ: {snapshots}"
            );
            restore_and_compare(&restic, "latest", &source, &root.join("restore"), &ctx);
        }
        restic_check(&restic, &["check", "--read-data"], &ctx);
        println!(
            "{ctx}: {state} after {:.0?} ({} packs, {} index, {} snapshots, {} locks new, {} tmp)",
            out.elapsed,
            after.added(&base, Kind::Pack),
            after.added(&base, Kind::Index),
            after.added(&base, Kind::Snapshot),
            after.added(&base, Kind::Lock),
            after.tmp,
        );
        fs::remove_dir_all(&repo).expect("remove repo");
    }

    println!(
        "backup kills by state ({} kills, {:.1?} in all):\n{}",
        triggers.len(),
        t0.elapsed(),
        tally_line(&tally)
    );
    println!(
        "restic check saw {unreferenced} unreferenced packs in all (non-critical); {tmp_left} \
         temporary files of interrupted writes were left; restic unlock removed {stale_locks} \
         stale locks"
    );
    assert_phases(&phases, &tally, "backup");
}

// --- prune -------------------------------------------------------------------------------------

/// Five states of a folder, each in `<root>/gen-N/data`: 240 random files of 64–320 KiB (one
/// blob each, so every pack mixes many files) in 12 subfolders, ~45 MiB in all. From one state to
/// the next a quarter of the files change, a few are removed and a few added, and a text log
/// grows. Once the first three states are forgotten, most packs hold both used and unused blobs.
fn make_prune_generations(root: &Path) -> Vec<PathBuf> {
    const FILES: usize = 240;
    let mut gens = Vec::new();
    let mut version = vec![0u64; FILES];
    let mut present: Vec<bool> = (0..FILES).map(|i| i % 24 != 23).collect();
    let mut log = Vec::new();
    let mut change = DetRng::new(0x9A7E_C4A9);
    for g in 0..5u64 {
        if g > 0 {
            for i in 0..FILES {
                match change.below(40) {
                    0..=9 => version[i] = g,
                    10 => present[i] = !present[i],
                    _ => {}
                }
            }
        }
        let data = root.join(format!("gen-{g}")).join("data");
        for i in (0..FILES).filter(|&i| present[i]) {
            let mut rng = DetRng::new(0x9A7E_0000 + (i as u64) * 1000 + version[i]);
            let size = 64 * 1024 + rng.below(256 * 1024) as usize;
            let path = data.join(format!("dir-{:02}/f{i:03}.bin", i % 12));
            write_random(&path, &mut rng, size);
        }
        let mut rng = DetRng::new(0x106 + g);
        for line in 0..20_000 {
            log.extend_from_slice(
                format!("{g} {line} {:016x} event happened\n", rng.next_u64()).as_bytes(),
            );
        }
        fs::write(data.join("log.txt"), &log).expect("write log");
        gens.push(data);
    }
    gens
}

/// The phase a prune was killed in; `expected_gone` is how many packs an unkilled prune deletes.
fn prune_state(
    base: &RepoFiles,
    after: &RepoFiles,
    out: &Outcome,
    expected_gone: usize,
) -> &'static str {
    let new_packs = after.added(base, Kind::Pack);
    let new_index = after.added(base, Kind::Index);
    let old_index_gone = after.removed(base, Kind::Index);
    let packs_gone = after.removed(base, Kind::Pack);
    let old_index_left = base.get(Kind::Index).len() - old_index_gone;
    if !out.killed {
        "finished before the kill"
    } else if packs_gone > 0 && packs_gone < expected_gone {
        "deleting packs"
    } else if packs_gone > 0 {
        "packs deleted, lock left"
    } else if old_index_gone > 0 && old_index_left > 0 {
        "removing old index files"
    } else if old_index_gone > 0 {
        "old index gone, no pack deleted"
    } else if new_index > 0 {
        "new index written, old kept"
    } else if new_packs > 0 {
        "repacking, no new index"
    } else if after.added(base, Kind::Lock) > 0 {
        "nothing new but the lock"
    } else {
        "nothing new"
    }
}

#[test]
fn prune_killed_at_any_moment() {
    let restic_bin = restic_or_return!();
    let _serial = serial();
    let work = workdir("prune");
    let root = work.path.as_path();
    let t0 = Instant::now();
    let gens = make_prune_generations(&root.join("src"));

    // Five snapshots, one per state; forget the first three.
    let template = root.join("template");
    let arca = Arca::new(&template, PASSWORD);
    arca.run(["init"]);
    let mut snapshot_ids = Vec::new();
    for data in &gens {
        let out = arca
            .cmd(["backup", "--pack-size", "4", "--json", "data"])
            .current_dir(data.parent().expect("gen folder"))
            .run_json_lines();
        let summary = out
            .iter()
            .find(|l| l["message_type"] == "summary")
            .expect("backup summary");
        snapshot_ids.push(summary["snapshot_id"].as_str().expect("id").to_owned());
    }
    let restic = Restic::with_bin(&restic_bin, &template, PASSWORD);
    restic.run([
        "forget",
        &snapshot_ids[0],
        &snapshot_ids[1],
        &snapshot_ids[2],
    ]);
    let kept: Vec<(String, PathBuf)> = snapshot_ids[3..]
        .iter()
        .cloned()
        .zip(gens[3..].iter().cloned())
        .collect();
    let base = RepoFiles::scan(&template);
    let prune_args = ["prune", "--max-unused", "0%", "--pack-size", "4"];

    // One unkilled run: how long it takes and what it changes.
    let calib = root.join("calibration");
    copy_repo(&template, &calib);
    let arca = Arca::new(&calib, PASSWORD);
    let out = run_and_kill(
        arca_command(&arca, &prune_args, root),
        &root.join("logs/calibration"),
        &calib,
        &base,
        &Trigger::After(RUN_LIMIT),
    );
    assert!(
        out.status.success(),
        "calibration prune failed:\n{}",
        out.log
    );
    let full = out.elapsed;
    let done = RepoFiles::scan(&calib);
    let (new_packs, gone_packs) = (
        done.added(&base, Kind::Pack),
        done.removed(&base, Kind::Pack),
    );
    println!(
        "prune repository ready in {:.1?}: {} packs, {} index files; an unkilled prune takes \
         {full:.2?}, writes {new_packs} packs and {} index files, deletes {gone_packs} packs",
        t0.elapsed(),
        base.get(Kind::Pack).len(),
        base.get(Kind::Index).len(),
        done.added(&base, Kind::Index),
    );
    assert!(
        new_packs >= 2 && gone_packs >= 4,
        "the prune should repack and delete: {new_packs} new packs, {gone_packs} deleted\n{}",
        out.log
    );
    fs::remove_dir_all(&calib).expect("remove calibration repo");

    let ms = Duration::from_millis;
    let frac = |f: f64| full.mul_f64(f);
    let mut triggers = vec![
        Trigger::After(ms(5)),
        Trigger::Appeared(Kind::Pack, 1),
        Trigger::After(frac(0.55)),
        Trigger::Appeared(Kind::Pack, new_packs.div_ceil(2)),
        Trigger::After(frac(0.7)),
        Trigger::Appeared(Kind::Index, 1),
        Trigger::Appeared(Kind::Index, 2),
        Trigger::Removed(Kind::Index, 1),
        Trigger::Removed(Kind::Pack, 1),
        Trigger::Removed(Kind::Pack, gone_packs.div_ceil(2)),
        Trigger::After(frac(1.6)),
    ];

    // The phases that matter. Index files are swapped and packs deleted within milliseconds, so
    // neighbouring states count together.
    let phases = [
        Phase {
            name: "repacking",
            states: &["repacking, no new index"],
            retry: vec![Trigger::Appeared(Kind::Pack, 1)],
        },
        Phase {
            name: "new index written, old not yet (all) removed",
            states: &["new index written, old kept", "removing old index files"],
            retry: vec![
                Trigger::Appeared(Kind::Index, 1),
                Trigger::Removed(Kind::Index, 1),
            ],
        },
        Phase {
            name: "deleting packs",
            states: &["deleting packs", "packs deleted, lock left"],
            retry: vec![Trigger::Removed(Kind::Pack, 1)],
        },
    ];
    let mut tally: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let (mut unreferenced, mut duplicates, mut tmp_left, mut stale_locks) = (0, 0, 0, 0);
    let mut retries = 0;
    for i in 0.. {
        let Some(trigger) = next_trigger(i, &mut triggers, &phases, &tally, &mut retries) else {
            break;
        };
        let trigger = &trigger;
        let ctx = format!("prune kill #{i} ({})", trigger.describe());
        let repo = root.join(format!("repo-{i:02}"));
        copy_repo(&template, &repo);
        let arca = Arca::new(&repo, PASSWORD);
        let restic = Restic::with_bin(&restic_bin, &repo, PASSWORD);

        let mut cmd = arca_command(&arca, &prune_args, root);
        if matches!(trigger, Trigger::Removed(Kind::Pack, _)) {
            // Pack deletion takes milliseconds: on a loaded machine the poller saw it only
            // after the prune had finished. Each storage request waits a little here, so
            // the deletion phase lasts long enough to be caught whatever the load.
            cmd.env("ARCA_FAULTS", "delay-ms=40");
        }
        let out = run_and_kill(
            cmd,
            &root.join(format!("logs/prune-{i:02}")),
            &repo,
            &base,
            trigger,
        );
        if !out.killed {
            assert!(
                out.status.success(),
                "{ctx}: the prune failed:\n{}",
                out.log
            );
        }
        let after = RepoFiles::scan(&repo);
        let state = prune_state(&base, &after, &out, gone_packs);
        tally
            .entry(state)
            .or_default()
            .push(format!("#{i} {}", trigger.describe()));
        tmp_left += after.tmp;

        // The state the kill left: restic accepts it, arca too (stale exclusive lock present),
        // and the remaining snapshots restore exactly what they were made from.
        let notes = restic_check(&restic, &["--no-lock", "check"], &ctx);
        unreferenced += notes.unreferenced_packs;
        duplicates += notes.duplicate_packs;
        arca_check(&arca, &ctx);
        let nolock = {
            let mut r = Restic::with_bin(&restic_bin, &repo, PASSWORD);
            r.global_arg("--no-lock");
            r
        };
        // The latest snapshot every time, the older one every other time (to save time).
        let last = i + 1 == triggers.len();
        for (k, (id, source)) in kept.iter().enumerate().rev() {
            if k + 1 == kept.len() || i % 2 == 1 || last {
                restore_and_compare(&nolock, id, source, &root.join("restore"), &ctx);
            }
        }

        // The next prune completes despite the stale lock and leaves a clean repository.
        let next = arca.cmd(prune_args).output();
        assert!(
            next.status.success(),
            "{ctx}: the next prune failed ({}):\n{}",
            next.status,
            String::from_utf8_lossy(&next.stderr)
        );
        stale_locks += restic_unlock_all_stale(&restic, &repo, &ctx);
        let clean = restic_check(&restic, &["check", "--read-data"], &ctx);
        assert_eq!(
            (clean.unreferenced_packs, clean.duplicate_packs),
            (0, 0),
            "{ctx}: a completed prune left unreferenced or duplicate packs"
        );
        if last {
            let (latest_id, latest_src) = kept.last().expect("kept snapshots");
            restore_and_compare(&restic, latest_id, latest_src, &root.join("restore"), &ctx);
        }
        println!(
            "{ctx}: {state} after {:.0?} ({} packs new, {} gone; {} index new, {} gone; {} tmp; \
             restic: {} unreferenced, {} duplicate)",
            out.elapsed,
            after.added(&base, Kind::Pack),
            after.removed(&base, Kind::Pack),
            after.added(&base, Kind::Index),
            after.removed(&base, Kind::Index),
            after.tmp,
            notes.unreferenced_packs,
            notes.duplicate_packs,
        );
        fs::remove_dir_all(&repo).expect("remove repo");
    }

    println!(
        "prune kills by state ({} kills, {:.1?} in all):\n{}",
        triggers.len(),
        t0.elapsed(),
        tally_line(&tally)
    );
    println!(
        "restic check saw {unreferenced} unreferenced and {duplicates} duplicate packs after \
         kills (non-critical); {tmp_left} temporary files were left; restic unlock removed \
         {stale_locks} stale locks"
    );
    assert_phases(&phases, &tally, "prune");
}
