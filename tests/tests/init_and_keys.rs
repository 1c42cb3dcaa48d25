//! Repositories and keys made by arca, used by the real restic 0.14: `init` (v1 and v2), `key
//! add/passwd/remove/list`, and `unlock` of locks restic left behind.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use arca_format::keyfile::{KdfParams, KeyFile};
use arca_format::Id;
use arca_tests::*;

const PASSWORD: &str = "arca init password";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

fn write_password(dir: &Path, name: &str, password: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, format!("{password}\n")).unwrap();
    path
}

/// `arca init` with `extra` arguments, then the full restic round trip on it: `check`, `cat
/// config` (version), `backup` of the Tiny dataset, `restore`, `check --read-data`, and arca reads
/// restic's snapshot back.
fn init_then_restic_round_trip(extra: &[&str], want_version: u64) {
    let bin = restic_or_return!();
    let repo = TempRepo::new();
    let root = fs::canonicalize(repo.scratch()).unwrap();
    let arca = Arca::new(repo.path(), PASSWORD);
    let restic = Restic::with_bin(bin, repo.path(), PASSWORD);

    let out = arca.run_string(["init"].iter().chain(extra));
    assert!(out.contains("created restic repository"), "{out}");
    assert!(repo.path().join("config").is_file());
    assert_eq!(file_names(&repo.path().join("keys")).len(), 1);

    restic.run(["check"]);
    let config = restic.run_json(["cat", "config"]);
    assert_eq!(config["version"], want_version, "{config}");
    let polynomial = config["chunker_polynomial"].as_str().unwrap();
    let polynomial = u64::from_str_radix(polynomial, 16).unwrap();
    assert!(arca_chunker::Pol(polynomial).irreducible());

    let src = root.join("src");
    make_dataset(&src, DatasetScale::Tiny);
    restic.cmd(["backup"]).arg(&src).run();
    let target = root.join("restored");
    restic
        .cmd(["restore", "latest", "--target"])
        .arg(&target)
        .run();
    compare_trees(&src, &target.join(src.strip_prefix("/").unwrap())).unwrap();
    restic.run(["check", "--read-data"]);

    let snapshots = arca.run_json(["snapshots", "--json"]);
    assert_eq!(snapshots.as_array().map(Vec::len), Some(1), "{snapshots}");
    arca.run(["check", "--read-data"]);
}

#[test]
fn init_makes_a_v2_repository_restic_uses() {
    init_then_restic_round_trip(&[], 2);
}

#[test]
fn init_repository_version_1_makes_a_v1_repository_restic_uses() {
    init_then_restic_round_trip(&["--repository-version", "1"], 1);
}

#[test]
fn init_refuses_an_existing_repository_and_an_unknown_version() {
    let repo = TempRepo::new();
    let arca = Arca::new(repo.path(), PASSWORD);
    arca.run(["init"]);
    let config = fs::read(repo.path().join("config")).unwrap();
    let out = arca.expect_failure(["init"]);
    assert!(stderr(&out).contains("already"), "{}", stderr(&out));
    assert_eq!(fs::read(repo.path().join("config")).unwrap(), config);
    assert_eq!(file_names(&repo.path().join("keys")).len(), 1);

    let other = TempRepo::new();
    let out =
        Arca::new(other.path(), PASSWORD).expect_failure(["init", "--repository-version", "3"]);
    assert!(stderr(&out).contains("version"), "{}", stderr(&out));
    assert!(!other.path().join("config").exists());
}

/// A repository made by arca, with restic's `--no-cache` runner and arca's runner on it.
struct Setup {
    repo: TempRepo,
    restic: Restic,
    arca: Arca,
}

fn setup() -> Option<Setup> {
    let bin = restic_or_skip()?;
    let repo = TempRepo::new();
    let arca = Arca::new(repo.path(), PASSWORD);
    arca.run(["init"]);
    let restic = Restic::with_bin(bin, repo.path(), PASSWORD);
    Some(Setup { repo, restic, arca })
}

fn key_ids(repo: &Path) -> Vec<String> {
    file_names(&repo.join("keys"))
}

/// `key list --json` short IDs, and the one marked current.
fn listed_keys(out: serde_json::Value) -> (Vec<String>, Vec<String>) {
    let list = out
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {out}"));
    let mut ids: Vec<String> = list
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let current = list
        .iter()
        .filter(|k| k["current"] == true)
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect();
    (ids, current)
}

#[test]
fn key_add_makes_a_key_restic_opens_and_key_list_shows_it() {
    let Some(s) = setup() else { return };
    let first = key_ids(s.repo.path());
    let new_pw = "the added password";
    let file = write_password(s.repo.scratch(), "new-pw", new_pw);
    s.arca
        .cmd(["key", "add", "--new-password-file"])
        .arg(&file)
        .run();
    let all = key_ids(s.repo.path());
    assert_eq!(all.len(), 2, "{all:?}");
    let added: Vec<&String> = all.iter().filter(|k| !first.contains(k)).collect();
    assert_eq!(added.len(), 1);

    // restic opens the repository with the new password, and that key is the one it used.
    let with_new = s
        .restic
        .cmd(["key", "list", "--json"])
        .env("RESTIC_PASSWORD", new_pw);
    let (ids, current) = listed_keys(with_new.run_json());
    let short: Vec<String> = all.iter().map(|k| k[..8].to_owned()).collect();
    assert_eq!(ids, short);
    assert_eq!(current, vec![added[0][..8].to_owned()]);
    s.restic.cmd(["check"]).env("RESTIC_PASSWORD", new_pw).run();

    // arca lists the same keys, marking the old one current under the old password.
    let (ids, current) = listed_keys(s.arca.run_json(["key", "list", "--json"]));
    assert_eq!(ids, short);
    assert_eq!(current, vec![first[0][..8].to_owned()]);
    let (_, current) = listed_keys(
        s.arca
            .cmd(["key", "list", "--json"])
            .env("RESTIC_PASSWORD", new_pw)
            .run_json(),
    );
    assert_eq!(current, vec![added[0][..8].to_owned()]);
}

#[test]
fn key_passwd_retires_the_old_password_for_arca_and_restic() {
    let Some(s) = setup() else { return };
    let old_key = key_ids(s.repo.path());
    let new_pw = "the changed password";
    let file = write_password(s.repo.scratch(), "new-pw", new_pw);
    s.arca
        .cmd(["key", "passwd", "--new-password-file"])
        .arg(&file)
        .run();
    let new_key = key_ids(s.repo.path());
    assert_eq!(new_key.len(), 1, "{new_key:?}");
    assert_ne!(new_key, old_key);

    let out = s.arca.expect_failure(["snapshots"]);
    assert_eq!(out.status.code(), Some(12), "{}", stderr(&out));
    assert!(stderr(&out).contains("wrong password"), "{}", stderr(&out));
    let out = s.restic.expect_failure(["snapshots"]);
    assert!(stderr(&out).contains("wrong password"), "{}", stderr(&out));

    s.arca
        .cmd(["snapshots"])
        .env("RESTIC_PASSWORD", new_pw)
        .run();
    s.restic.cmd(["check"]).env("RESTIC_PASSWORD", new_pw).run();
}

#[test]
fn key_remove_refuses_the_current_key_and_removes_another() {
    let Some(s) = setup() else { return };
    let current = key_ids(s.repo.path()).remove(0);
    let out = s.arca.expect_failure(["key", "remove", &current]);
    let err = stderr(&out);
    assert!(err.contains("refusing to remove"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(key_ids(s.repo.path()), vec![current.clone()]);

    let file = write_password(s.repo.scratch(), "pw2", "second");
    s.arca
        .cmd(["key", "add", "--new-password-file"])
        .arg(&file)
        .run();
    let second: String = key_ids(s.repo.path())
        .into_iter()
        .find(|k| *k != current)
        .unwrap();
    // By prefix, as restic allows.
    s.arca.run(["key", "remove", &second[..10]]);
    assert_eq!(key_ids(s.repo.path()), vec![current]);
    let (ids, _) = listed_keys(s.restic.run_json(["key", "list", "--json"]));
    assert_eq!(ids.len(), 1);
    s.restic
        .cmd(["snapshots"])
        .env("RESTIC_PASSWORD", "second")
        .expect_failure();
}

/// A key file with scrypt parameters Go accepts but RFC 7914 (and the scrypt crate) would refuse
/// (N = 2^16 with r = 1): restic opens it, so arca must too.
#[test]
fn key_with_large_n_and_r_1_opens_in_arca_and_restic() {
    let Some(s) = setup() else { return };
    let path = s.repo.path().join("keys").join(&key_ids(s.repo.path())[0]);
    let master = KeyFile::parse(&fs::read(path).unwrap())
        .unwrap()
        .open(PASSWORD.as_bytes())
        .unwrap();
    let params = KdfParams {
        n: 1 << 16,
        r: 1,
        p: 1,
    };
    let kf = KeyFile::create(&master, b"go scrypt", params, "u", "h", None).unwrap();
    let json = kf.to_json();
    fs::write(
        s.repo.path().join("keys").join(Id::hash(&json).to_hex()),
        &json,
    )
    .unwrap();
    s.restic
        .cmd(["cat", "config"])
        .env("RESTIC_PASSWORD", "go scrypt")
        .run();
    s.arca
        .cmd(["cat", "config"])
        .env("RESTIC_PASSWORD", "go scrypt")
        .run();
}

/// Lock files (restic's local backend writes `<id>-tmp-<n>` first, then renames: only IDs count).
fn locks(repo: &Path) -> Vec<String> {
    file_names(&repo.join("locks"))
        .into_iter()
        .filter(|name| name.parse::<Id>().is_ok())
        .collect()
}

/// Start `restic backup --stdin` and leave its stdin open, so it sits holding a lock; returns
/// once the lock file is there.
fn restic_holding_a_lock(restic: &Restic, repo: &Path) -> Child {
    let before = locks(repo);
    let mut cmd = restic.cmd(["backup", "--stdin"]).command();
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("start restic backup --stdin");
    let deadline = Instant::now() + Duration::from_secs(60);
    while locks(repo) == before {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("restic backup --stdin made no lock within 60 s");
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("restic backup --stdin exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn unlock_removes_the_stale_lock_of_a_killed_restic() {
    let Some(s) = setup() else { return };
    let mut child = restic_holding_a_lock(&s.restic, s.repo.path());
    child.kill().unwrap();
    child.wait().unwrap(); // reaped, so its PID no longer exists
    let stale = locks(s.repo.path());
    assert_eq!(stale.len(), 1, "restic left its lock: {stale:?}");
    // A lock arca did not write, and arca reads it as restic wrote it.
    let lock = s.arca.run_json(["cat", "lock", &stale[0]]);
    assert_eq!(lock["pid"], child.id(), "{lock}");

    s.arca.run(["unlock"]);
    assert_eq!(locks(s.repo.path()), Vec::<String>::new());
    s.restic.run(["check"]);
}

#[test]
fn unlock_keeps_a_live_lock_and_remove_all_removes_it() {
    let Some(s) = setup() else { return };
    let mut child = restic_holding_a_lock(&s.restic, s.repo.path());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let held = locks(s.repo.path());
        assert_eq!(held.len(), 1, "{held:?}");
        // restic's own check cannot take its exclusive lock now.
        s.restic.expect_failure(["check"]);
        s.arca.run(["unlock"]);
        assert_eq!(locks(s.repo.path()), held, "a live process's lock stays");
        s.arca.run(["unlock", "--remove-all"]);
        assert_eq!(locks(s.repo.path()), Vec::<String>::new());
        s.restic.run(["check"]);
    }));
    let _ = child.kill();
    let _ = child.wait();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
