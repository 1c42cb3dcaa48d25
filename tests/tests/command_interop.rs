//! Commands restic 0.17/0.18 scripts use, each run by arca and by restic on copies of one
//! repository and compared: what they print, their exit codes, and the repository they leave.
//!
//! Run against Debian's restic 0.14.0 in the workspace run and against the current restic
//! (scripts/test.sh); where 0.14 behaved differently, arca follows the current restic and
//! the test says so.

use arca_tests::*;
use serde_json::Value;
use std::path::Path;

const PW: &str = "command-interop";

/// A repository made by restic with two snapshots of a small folder, and a copy of it.
struct Twins {
    restic: Restic,
    arca: Arca,
    dialect: Dialect,
    /// Where restic and arca work: copies of one repository.
    restic_repo: std::path::PathBuf,
    arca_repo: std::path::PathBuf,
    _dirs: (TempRepo, TempRepo, tempfile::TempDir),
}

fn twins() -> Option<Twins> {
    let bin = restic_or_skip()?;
    let dialect = dialect_of(&bin);
    let (a, b) = (TempRepo::new(), TempRepo::new());
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("f"), b"tagged").unwrap();
    let restic = Restic::with_bin(&bin, a.path(), PW);
    restic.run(["init"]);
    let src = data.path().to_str().unwrap();
    restic.run(["backup", "--host", "one", "--tag", "x,y,z", src]);
    restic.run(["backup", "--host", "two", src]);
    if b.path().exists() {
        std::fs::remove_dir_all(b.path()).unwrap();
    }
    cp_a(a.path(), b.path());
    let arca = Arca::new(b.path(), PW);
    Some(Twins {
        restic,
        arca,
        dialect,
        restic_repo: a.path().to_path_buf(),
        arca_repo: b.path().to_path_buf(),
        _dirs: (a, b, data),
    })
}

/// The snapshots of a repository as restic lists them, in time order, without their own IDs
/// (a snapshot file's ID is the hash of its ciphertext, which a random IV makes new at every
/// write; `original`, the ID of the snapshot a change replaced, is compared).
fn snapshot_list(restic_bin: &Path, repo: &Path) -> Vec<Value> {
    let r = Restic::with_bin(restic_bin, repo, PW);
    let mut list: Vec<Value> = r
        .run_json(["snapshots", "--json"])
        .as_array()
        .unwrap()
        .clone();
    for s in &mut list {
        let o = s.as_object_mut().unwrap();
        o.remove("id");
        o.remove("short_id");
    }
    list.sort_by_key(|s| s["time"].as_str().unwrap().to_string());
    list
}

#[test]
fn tag_changes_snapshots_as_restic_does() {
    let Some(t) = twins() else { return };
    let steps: Vec<Vec<&str>> = vec![
        vec!["tag", "--add", "a,b", "--add", "c", "--host", "one"],
        vec!["tag", "--remove", "x", "--host", "one"],
        vec!["tag", "--add", "y", "--remove", "q"],
        vec!["tag", "--set", "s1,s2", "--set", "s3", "--tag", "a"],
        vec!["tag", "--add", "only-two", "--host", "two"],
        vec!["tag", "--remove", "y,z", "--add", "w"],
    ];
    for step in &steps {
        let (r, a) = (t.restic.output(step), t.arca.output(step));
        assert_eq!(a.status.code(), r.status.code(), "{step:?}");
        // 0.14 said "modified tags on N snapshots"; 0.17 and later "modified N snapshots".
        let restic_said =
            String::from_utf8_lossy(&r.stdout).replace("modified tags on ", "modified ");
        assert_eq!(String::from_utf8_lossy(&a.stdout), restic_said, "{step:?}");
        // The same snapshots, fields, order of tags and `original` included.
        assert_eq!(
            snapshot_list(t.restic.program(), &t.arca_repo),
            snapshot_list(t.restic.program(), &t.restic_repo),
            "after {step:?}"
        );
    }
    // Every changed snapshot remembers the first one it came from.
    for s in snapshot_list(t.restic.program(), &t.arca_repo) {
        assert!(s["original"].is_string(), "{s}");
    }
    // JSON: one message per changed snapshot, then a summary (0.14 printed text only).
    if !t.dialect.is_0_14() {
        let step = ["tag", "--json", "--add", "j"];
        let (r, a) = (t.restic.output(step), t.arca.output(step));
        assert_eq!(a.status.code(), r.status.code());
        // The same lines in the same shape. The IDs differ: each tool wrote its own snapshot
        // files in the steps before, and a file's ID hashes its ciphertext.
        let lines = |out: &[u8]| {
            let mut v: Vec<String> = String::from_utf8_lossy(out)
                .lines()
                .map(|l| {
                    let mut m: Value = serde_json::from_str(l).unwrap();
                    for key in ["old_snapshot_id", "new_snapshot_id"] {
                        if let Some(id) = m.get_mut(key) {
                            assert_eq!(id.as_str().unwrap().len(), 64, "{l}");
                            *id = Value::from("<id>");
                        }
                    }
                    // Keys in the order printed, as restic prints them.
                    let keys: Vec<&str> = l.split('"').skip(1).step_by(4).collect();
                    format!("{keys:?} {m}")
                })
                .collect();
            v.sort();
            v
        };
        assert_eq!(lines(&a.stdout), lines(&r.stdout));
        let last: Value =
            serde_json::from_slice(a.stdout.split(|b| *b == b'\n').nth(2).unwrap()).unwrap();
        assert_eq!(last["changed_snapshots"], 2, "{last}");
    }
}

#[test]
fn tag_refuses_what_restic_refuses() {
    let Some(t) = twins() else { return };
    for step in [
        vec!["tag"],
        vec!["tag", "--set", "a", "--add", "b"],
        vec!["tag", "--set", "a", "--remove", "b"],
    ] {
        let (r, a) = (t.restic.output(&step), t.arca.output(&step));
        assert_eq!(a.status.code(), r.status.code(), "{step:?}");
        assert_eq!(a.status.code(), Some(1), "{step:?}");
        let last = |o: &std::process::Output| {
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(last(&a), last(&r), "{step:?}");
    }
    // `--set ""`: restic 0.14 cleared the tags, 0.17 and later change nothing; arca follows
    // the current restic.
    let step = ["tag", "--set", ""];
    let a = t.arca.output(step);
    assert!(a.status.success());
    assert_eq!(
        String::from_utf8_lossy(&a.stdout),
        "create exclusive lock for repository\nno snapshots were modified\n"
    );
    if !t.dialect.is_0_14() {
        let r = t.restic.output(step);
        assert_eq!(a.stdout, r.stdout);
    }
}

#[test]
fn version_reads_like_restics() {
    let Some(bin) = restic_or_skip() else { return };
    let arca = Arca::plain();
    let text = arca.run_string(["version"]);
    let restic_text = Restic::plain_with_bin(&bin).run_string(["version"]);
    // "<name> <version> compiled with <compiler> on <os>/<arch>"
    let (n, compiled, with, platform) = shape(&text);
    assert_eq!(
        (n, compiled, with),
        (7, Some("compiled"), Some("with")),
        "{text}"
    );
    assert_eq!(platform, shape(&restic_text).3, "{text} / {restic_text}");
    assert!(
        text.starts_with(&format!("arca {} ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    // JSON (restic 0.17+): the same keys scripts read, the same platform.
    let v = arca.run_json(["version", "--json"]);
    assert_eq!(v["message_type"], "version");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    if !dialect_of(&bin).is_0_14() {
        let r = Restic::plain_with_bin(&bin).run_json(["version", "--json"]);
        assert_eq!((&v["go_os"], &v["go_arch"]), (&r["go_os"], &r["go_arch"]));
    }
}

/// Word count, third and fourth words and the last word of a `version` line.
fn shape(s: &str) -> (usize, Option<&str>, Option<&str>, Option<&str>) {
    let w: Vec<&str> = s.split_whitespace().collect();
    (
        w.len(),
        w.get(2).copied(),
        w.get(3).copied(),
        w.last().copied(),
    )
}

/// Wait until `path`'s text contains `what` (a minute at most).
fn until_written(path: &Path, what: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(what) || std::time::Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// An exclusive command meets the lock of a running backup: without `--retry-lock` it fails at
/// once (exit 11), with it it waits and runs once the backup is done, for arca as for restic
/// (0.16 and later; 0.14 has no `--retry-lock`).
#[test]
fn retry_lock_waits_for_the_lock_of_a_running_backup() {
    let Some(t) = twins() else { return };
    let mut tools: Vec<(&str, &Runner, &Path)> = vec![("arca", &t.arca, &t.arca_repo)];
    if !t.dialect.is_0_14() {
        tools.push(("restic", &t.restic, &t.restic_repo));
    }
    for (name, runner, repo) in tools {
        // A backup from standard input holds its lock until its input ends.
        let mut holder = runner
            .cmd(["backup", "--stdin", "--stdin-filename", "held"])
            .command();
        holder
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut holder = holder.spawn().unwrap();
        let locks = repo.join("locks");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::fs::read_dir(&locks).map_or(0, |d| d.count()) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "{name}: no lock appeared"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let refused = runner.output(["prune"]);
        assert_eq!(refused.status.code(), Some(11), "{name}: {refused:?}");

        let dir = tempfile::tempdir().unwrap();
        let (out, err) = (dir.path().join("out"), dir.path().join("err"));
        let mut waiting = runner.cmd(["--retry-lock", "2m", "prune"]).command();
        waiting
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        let mut waiting = waiting.spawn().unwrap();
        let said = until_written(&out, "repo already locked, waiting up to 2m0s for the lock");
        let said_err = std::fs::read_to_string(&err).unwrap_or_default();
        assert!(
            said.contains("repo already locked, waiting up to 2m0s for the lock")
                || said_err.contains("repo already locked, waiting up to 2m0s for the lock"),
            "{name}: {said}{said_err}"
        );
        // The backup ends; the waiting prune gets the lock and runs.
        {
            use std::io::Write;
            let mut input = holder.stdin.take().unwrap();
            input.write_all(b"held data").unwrap();
        }
        assert!(
            holder.wait().unwrap().success(),
            "{name}: the holding backup"
        );
        let status = waiting.wait().unwrap();
        assert!(
            status.success(),
            "{name}: {status:?}\n{}\n{}",
            std::fs::read_to_string(&out).unwrap_or_default(),
            std::fs::read_to_string(&err).unwrap_or_default()
        );
    }
}

/// A backup meets an exclusive lock (maintenance's, written here as arca's operator writes
/// it): without `--retry-lock` it fails at once (exit 11), with `--retry-lock 1m` it waits,
/// says so, and succeeds once the lock is gone, for arca as for restic (0.16 and later).
#[test]
fn backup_with_retry_lock_waits_for_an_exclusive_lock_and_succeeds() {
    let Some(t) = twins() else { return };
    let mut tools: Vec<(&str, &Runner, &Path)> = vec![("arca", &t.arca, &t.arca_repo)];
    if !t.dialect.is_0_14() {
        tools.push(("restic", &t.restic, &t.restic_repo));
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("new"), b"written while locked").unwrap();
    let src = data.path().to_str().unwrap();
    for (name, runner, repo) in tools {
        let maintenance = rt.block_on(async {
            let backend = arca_storage::open(repo.to_str().unwrap()).unwrap();
            let opened = arca_engine::Repository::open(backend, PW).await.unwrap();
            arca_engine::lock::LockGuard::acquire(&opened, true)
                .await
                .unwrap()
        });
        let refused = runner.output(["backup", src]);
        assert_eq!(refused.status.code(), Some(11), "{name}: {refused:?}");
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(said.contains("exclusive"), "{name}: {said}");

        let dir = tempfile::tempdir().unwrap();
        let (out, err) = (dir.path().join("out"), dir.path().join("err"));
        let mut waiting = runner.cmd(["--retry-lock", "1m", "backup", src]).command();
        waiting
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        let mut waiting = waiting.spawn().unwrap();
        let wait_line = "repo already locked, waiting up to 1m0s for the lock";
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let said = loop {
            let said = std::fs::read_to_string(&out).unwrap_or_default()
                + &std::fs::read_to_string(&err).unwrap_or_default();
            if said.contains(wait_line) || std::time::Instant::now() > deadline {
                break said;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        assert!(said.contains(wait_line), "{name}: {said}");
        assert!(
            waiting.try_wait().unwrap().is_none(),
            "{name}: must wait while the lock is held"
        );
        rt.block_on(maintenance.release()).unwrap();
        let status = waiting.wait().unwrap();
        assert!(
            status.success(),
            "{name}: {status:?}\n{}\n{}",
            std::fs::read_to_string(&out).unwrap_or_default(),
            std::fs::read_to_string(&err).unwrap_or_default()
        );
        // The snapshot is there: three now.
        assert_eq!(
            snapshot_list(t.restic.program(), repo).len(),
            3,
            "{name}: the new snapshot"
        );
    }
}
