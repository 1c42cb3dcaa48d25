//! arca against every committed fixture: the restic repositories in `tests/fixtures/restic/` (open,
//! list, check, read every blob, restore) compared with the real restic 0.14, and the rustic key
//! and config files in `tests/fixtures/keys/` through arca-format's keyfile API.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Output, Stdio};

use arca_format::compression;
use arca_format::config::Config;
use arca_format::gotime::GoTime;
use arca_format::index::IndexFile;
use arca_format::keyfile::{self, KeyError, KeyFile};
use arca_format::Id;
use arca_storage::FileType;
use arca_tests::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Every repository fixture and whether it is healthy (`restic check --read-data` passes).
/// §8.3 of the format reference lists which are damaged and how.
const REPOS: &[(&str, bool)] = &[
    ("copy-unstable-json", true),
    ("duplicate-packs-in-index-test-repo", true),
    ("repo-data-missing", false),
    ("repo-duplicates", true),
    ("repo-index-missing", false),
    ("repo-index-missing-blob", false),
    ("repo-layout-default", true),
    ("repo-mixed", true),
    ("repo-obsolete-index", true),
    ("repo-restore-permissions-test", true),
    ("repo-same-timestamps", true),
    ("repo-unreferenced-data", true),
    ("repo-unused-data-missing", false),
    ("small-repo", true),
];

/// The tarballs that hold a source tree, not a repository.
const SOURCE_TREES: &[&str] = &["backup-data", "test.hl"];

fn healthy() -> impl Iterator<Item = &'static str> {
    REPOS.iter().filter(|(_, ok)| *ok).map(|(name, _)| *name)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_no_panic(what: &str, out: &Output) {
    let err = stderr(out);
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{what} panicked:\n{err}"
    );
}

/// A new fixture must be classified here, or it would silently go untested.
#[test]
fn every_fixture_is_classified() {
    let mut known: Vec<String> = REPOS
        .iter()
        .map(|(n, _)| n.to_string())
        .chain(SOURCE_TREES.iter().map(|n| n.to_string()))
        .collect();
    known.sort();
    assert_eq!(fixture_names(), known);
}

fn sorted_by_id(v: Value) -> Vec<Value> {
    let mut list = v
        .as_array()
        .unwrap_or_else(|| panic!("not a JSON array: {v}"))
        .clone();
    list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    list
}

/// `arca snapshots --json` parses and is object for object what restic prints (IDs, trees,
/// times, paths, hosts, ...), for every repository fixture, damaged ones included.
#[test]
fn every_repository_fixture_opens_and_lists_restics_snapshots() {
    let bin = restic_or_return!();
    for (name, _) in REPOS {
        let repo = TempRepo::fixture(name);
        let restic = Restic::with_bin(&bin, repo.path(), FIXTURE_PASSWORD);
        let arca = Arca::new(repo.path(), FIXTURE_PASSWORD);
        let want = sorted_by_id(restic.run_json(["snapshots", "--json"]));
        let got = sorted_by_id(arca.run_json(["snapshots", "--json"]));
        let ids = |l: &[Value]| -> Vec<String> {
            l.iter()
                .map(|s| s["id"].as_str().expect("snapshot id").to_owned())
                .collect()
        };
        assert_eq!(ids(&got), ids(&want), "{name}: snapshot IDs");
        assert_eq!(got, want, "{name}: snapshot JSON");
        if *name != "duplicate-packs-in-index-test-repo" {
            assert!(!got.is_empty(), "{name}: has snapshots");
        }
    }
}

/// restic's `check --read-data` verdict and its stderr. restic 0.14 retries a missing pack for
/// about 45 s in the read-data phase, but a pack the "check all packs" phase reports as missing
/// already decides the verdict (cmd_check.go sets `errorsFound` for every pack error that is not
/// an orphan, and then exits non-zero), so once that line is out restic is stopped and the
/// verdict is "fails".
fn restic_check_verdict(restic: &Restic) -> (bool, String) {
    let mut cmd = restic.cmd(["check", "--read-data"]).command();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start restic check");
    let mut seen = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).split(b'\n') {
        let line = String::from_utf8_lossy(&line.unwrap_or_default()).into_owned();
        seen.push_str(&line);
        seen.push('\n');
        let missing = line
            .strip_prefix("pack ")
            .and_then(|rest| rest.strip_suffix(": does not exist"))
            .is_some_and(|id| id.parse::<Id>().is_ok());
        if missing {
            let _ = child.kill();
            let _ = child.wait();
            return (false, seen);
        }
    }
    (child.wait().unwrap().success(), seen)
}

/// Run `check --read-data` with arca, then (on the same unpacked copy) with restic.
fn check_both(restic_bin: &Path, name: &str) -> (Output, (bool, String)) {
    let repo = TempRepo::fixture(name);
    let arca = Arca::new(repo.path(), FIXTURE_PASSWORD);
    let arca_out = arca.output(["check", "--read-data"]);
    let restic = Restic::with_bin(restic_bin, repo.path(), FIXTURE_PASSWORD);
    (arca_out, restic_check_verdict(&restic))
}

/// arca's verdict (exit zero or not) equals restic 0.14's `check --read-data` verdict on every
/// repository fixture, and both match the table above. Every fixture runs on its own thread.
#[test]
fn check_verdicts_match_restic() {
    let bin = restic_or_return!();
    let handles: Vec<_> = REPOS
        .iter()
        .map(|&(name, ok)| {
            let bin = bin.clone();
            std::thread::spawn(move || (name, ok, check_both(&bin, name)))
        })
        .collect();
    let mut failures = Vec::new();
    for h in handles {
        let (name, ok, (arca, (r, restic_err))) = h.join().expect("check thread");
        assert_no_panic(name, &arca);
        let a = arca.status.success();
        if a != r || a != ok {
            failures.push(format!(
                "{name}: expected healthy={ok}, arca exit {}, restic passed={r}\n--- arca stderr\n{}--- restic stderr (tail)\n{}",
                arca.status,
                stderr(&arca),
                restic_err
                    .lines()
                    .rev()
                    .take(8)
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
        if ok {
            assert!(
                !stderr(&arca).contains("error"),
                "{name}: healthy but stderr has errors:\n{}",
                stderr(&arca)
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `arca check --read-data` on a damaged fixture: non-zero, exactly one `Fatal:` line, and stderr
/// contains every one of `names`.
fn check_names_damage(fixture: &str, names: &[&str]) -> String {
    let repo = TempRepo::fixture(fixture);
    let arca = Arca::new(repo.path(), FIXTURE_PASSWORD);
    let out = arca.expect_failure(["check", "--read-data"]);
    assert_no_panic(fixture, &out);
    let err = stderr(&out);
    assert_eq!(
        err.lines().filter(|l| l.starts_with("Fatal:")).count(),
        1,
        "{fixture}: one Fatal line:\n{err}"
    );
    for name in names {
        assert!(err.contains(name), "{fixture}: stderr lacks {name}:\n{err}");
    }
    err
}

#[test]
fn check_names_the_missing_pack() {
    let err = check_names_damage(
        "repo-data-missing",
        &["1959b7f2802f1d83c9eeda21f3d5c5f4ff6c4b122a59b5f5ca5e28a4970a37b4"],
    );
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn check_names_the_blob_missing_from_the_index() {
    let err = check_names_damage(
        "repo-index-missing-blob",
        &["f2ca1bb6c7e907d06dafe4687e579fce76b37e4e93b7605022da52e6ccc26fd2"],
    );
    assert!(err.contains("not found in index"), "{err}");
}

#[test]
fn check_names_the_tree_missing_from_the_index() {
    let err = check_names_damage(
        "repo-index-missing",
        &["c5897731f7e9b913e3d6b90feeaaab07a831a50614c10e9dd9e098ca761ae961"],
    );
    assert!(err.contains("not found in index"), "{err}");
}

#[test]
fn check_names_the_missing_and_empty_packs() {
    let err = check_names_damage(
        "repo-unused-data-missing",
        &[
            "d05c81069fdf4616aaf89ddf530dd312633176e6ca8f24fd4c878e453aa57b81",
            "b2a0e6762aeeb8205967f326929e7f07f4997eed540fc8a759604f4baba43027",
            "f6a0bdd2515a5fc8d4253a4ba50abe03649d710cd2f6142837c86c760b94a43a",
        ],
    );
    let empty_pack_line = err
        .lines()
        .find(|l| l.contains("f6a0bdd2515a5fc8d4253a4ba50abe03649d710cd2f6142837c86c760b94a43a"))
        .unwrap_or_default();
    assert!(
        empty_pack_line.contains("got 0"),
        "the 0-byte pack's size is named: {err}"
    );
}

/// Every blob entry of every index file of every healthy fixture, read at the offset that index
/// gives, decrypted and decompressed here (not through the engine's blob reader), hashes to its ID.
#[tokio::test]
async fn every_indexed_blob_of_the_healthy_fixtures_hashes_to_its_id() {
    for name in healthy() {
        let fixture = TempRepo::fixture(name);
        let backend = arca_storage::open(fixture.path().to_str().unwrap()).unwrap();
        let repo = arca_engine::Repository::open(backend.clone(), FIXTURE_PASSWORD)
            .await
            .unwrap_or_else(|e| panic!("{name}: open: {e}"));
        let mut packs: HashMap<Id, Vec<u8>> = HashMap::new();
        let mut checked = 0usize;
        let indexes = repo.list_ids(FileType::Index).await.unwrap();
        assert!(!indexes.is_empty(), "{name}: has index files");
        for (index_id, _) in indexes {
            let json = repo
                .load_unpacked(FileType::Index, &index_id)
                .await
                .unwrap_or_else(|e| panic!("{name}: index {index_id}: {e}"));
            let index = IndexFile::parse(&json, repo.version()).unwrap();
            for pack in &index.packs {
                if let Entry::Vacant(slot) = packs.entry(pack.id) {
                    let data = backend.read(FileType::Pack, &pack.id.to_hex()).await;
                    let data = data.unwrap_or_else(|e| panic!("{name}: pack {}: {e}", pack.id));
                    assert_eq!(Id::hash(&data), pack.id, "{name}: pack hash");
                    slot.insert(data.to_vec());
                }
                let data = &packs[&pack.id];
                for blob in &pack.blobs {
                    let raw = data
                        .get(blob.offset as usize..(blob.offset + blob.length) as usize)
                        .unwrap_or_else(|| panic!("{name}: blob {} past pack end", blob.id));
                    let plain = repo
                        .key()
                        .open(raw)
                        .unwrap_or_else(|e| panic!("{name}: blob {}: {e}", blob.id));
                    let plain = match blob.uncompressed_length {
                        Some(len) => compression::decompress_exact(&plain, len as usize).unwrap(),
                        None => plain,
                    };
                    assert_eq!(
                        hex::encode(Sha256::digest(&plain)),
                        blob.id.to_hex(),
                        "{name}: {} blob in pack {} of index {index_id}",
                        blob.blob_type,
                        pack.id
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 0, "{name}: no blobs checked");
    }
}

/// `arca cat blob <id>` prints bytes that hash to the ID, for a data and a tree blob (where the
/// fixture has one) of every healthy fixture; an unknown blob ID fails.
#[test]
fn cat_blob_prints_content_that_hashes_to_its_id() {
    for name in healthy() {
        let repo = TempRepo::fixture(name);
        let arca = Arca::new(repo.path(), FIXTURE_PASSWORD);
        let listing = arca.run_string(["list", "blobs"]);
        let mut picked: Vec<&str> = Vec::new();
        for kind in ["data ", "tree "] {
            if let Some(line) = listing.lines().find(|l| l.starts_with(kind)) {
                picked.push(&line[kind.len()..]);
            }
        }
        assert!(!picked.is_empty(), "{name}: `list blobs` lists blobs");
        for id in picked {
            let content = arca.run(["cat", "blob", id]);
            assert_eq!(
                hex::encode(Sha256::digest(&content)),
                id,
                "{name}: blob {id}"
            );
        }
        let unknown = Id::hash(b"no such blob in any fixture").to_hex();
        let out = arca.expect_failure(["cat", "blob", &unknown]);
        assert!(stderr(&out).contains(&unknown), "{}", stderr(&out));
    }
}

fn latest_snapshot(restic: &Restic, name: &str) -> Option<String> {
    let list = sorted_by_id(restic.run_json(["snapshots", "--json"]));
    let times: Vec<(GoTime, String)> = list
        .iter()
        .map(|s| {
            (
                GoTime::parse(s["time"].as_str().unwrap()).unwrap(),
                s["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let newest = times.iter().map(|(t, _)| t).max()?;
    let tied: Vec<&String> = times
        .iter()
        .filter(|(t, _)| t == newest)
        .map(|(_, id)| id)
        .collect();
    assert_eq!(tied.len(), 1, "{name}: `latest` is ambiguous: {tied:?}");
    Some(tied[0].clone())
}

/// `arca restore latest` of every healthy fixture gives the same tree as `restic restore latest`
/// (contents, modes, times, links, hard links). The target folder itself is not compared: restic
/// creates it with mode 0700 and the current time; it is not part of the snapshot.
#[test]
fn restore_of_each_healthy_fixture_matches_restic() {
    let bin = restic_or_return!();
    let options = CompareOptions {
        root_metadata: false,
        ..CompareOptions::default()
    };
    for name in healthy() {
        let repo = TempRepo::fixture(name);
        let restic = Restic::with_bin(&bin, repo.path(), FIXTURE_PASSWORD);
        let arca = Arca::new(repo.path(), FIXTURE_PASSWORD);
        if latest_snapshot(&restic, name).is_none() {
            // duplicate-packs-in-index-test-repo has no snapshot: both must say so.
            let out = arca
                .cmd(["restore", "latest", "--target"])
                .arg(repo.scratch().join("none"))
                .expect_failure();
            assert!(
                stderr(&out).contains("no snapshot"),
                "{name}: {}",
                stderr(&out)
            );
            continue;
        }
        let by_restic = repo.scratch().join("by-restic");
        let by_arca = repo.scratch().join("by-arca");
        restic
            .cmd(["restore", "latest", "--target"])
            .arg(&by_restic)
            .run();
        let out = arca
            .cmd(["restore", "latest", "--target"])
            .arg(&by_arca)
            .output();
        assert!(
            out.status.success(),
            "{name}: arca restore: {}",
            stderr(&out)
        );
        assert!(
            fs::read_dir(&by_restic).unwrap().next().is_some(),
            "{name}: restic restored something"
        );
        compare_trees_with(&by_restic, &by_arca, &options)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

// ---------------------------------------------------------------- key and config files

fn key_fixture(name: &str) -> KeyFile {
    let path = fixtures_dir().join("keys").join(name);
    KeyFile::parse(&fs::read(&path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The master key both rustic fixture keys wrap (§8.2).
const RUSTIC_MASTER_KEY: &str = r#"{"mac":{"k":"t0cusSHJr+8Xu8HovL+tgQ==","r":"UVVshsEqYnWO8B/3mV1zmA=="},"encrypt":"NHSQEePHBQlmkIRo11uNvXj/UrJ96R/IQd3xN4sOgEk="}"#;

#[test]
fn key1_opens_with_its_password_only() {
    let kf = key_fixture("key1");
    assert_eq!((kf.n, kf.r, kf.p), (32768, 8, 6));
    let master = kf.open(b"test").expect("key1 opens with `test`");
    assert_eq!(
        keyfile::master_key_json(&master),
        RUSTIC_MASTER_KEY.as_bytes()
    );
    assert!(matches!(kf.open(b"test2"), Err(KeyError::WrongPassword)));
}

#[test]
fn key2_opens_with_its_password_and_wraps_the_same_master_key() {
    let kf = key_fixture("key2");
    assert_eq!((kf.n, kf.r, kf.p), (131072, 8, 1));
    let master = kf.open(b"test2").expect("key2 opens with `test2`");
    assert_eq!(
        master,
        keyfile::parse_master_key_json(RUSTIC_MASTER_KEY.as_bytes()).unwrap()
    );
    assert!(matches!(kf.open(b"test"), Err(KeyError::WrongPassword)));
}

#[test]
fn failing_key_is_reported_as_damaged_not_as_a_wrong_password() {
    let kf = key_fixture("key-failing");
    let err = kf.open(b"test").expect_err("key-failing must not open");
    assert!(!matches!(err, KeyError::WrongPassword), "{err:?}");
    assert!(
        !err.to_string().to_lowercase().contains("wrong password"),
        "{err}"
    );
    assert!(
        err.to_string().contains("data"),
        "names the bad field: {err}"
    );
}

#[test]
fn rustic_config_decrypts_to_the_documented_json() {
    let master = keyfile::parse_master_key_json(RUSTIC_MASTER_KEY.as_bytes()).unwrap();
    let sealed = fs::read(fixtures_dir().join("keys/config")).unwrap();
    let plain = master.open(&sealed).expect("config decrypts");
    assert_eq!(
        plain,
        br#"{"version":2,"id":"7272fa991a4d1449369cd44645be9e7f4aa6572040a83b510cd455187bccc5a6","chunker_polynomial":"379e1f8576e839"}"#
    );
    let config = Config::parse(&plain).unwrap();
    assert_eq!(config.version, 2);
    assert_eq!(config.chunker_polynomial, 0x379e1f8576e839);
    assert_eq!(config.to_json(), plain, "re-encodes byte for byte");
    let mut damaged = sealed.clone();
    damaged[40] ^= 1;
    assert!(master.open(&damaged).is_err());
}
