//! The local cache: restic's layout and behaviour, shared with restic.
//!
//! - Over S3 (MinIO of scripts/servers.sh, behind a proxy that records every request), a
//!   second `snapshots` reads no snapshot file and a second incremental backup no index file
//!   and no pack from the store.
//! - One cache folder serves both programs: arca reads what restic cached and restic what
//!   arca cached (shown by damaging the store's copies, which only the cache can then
//!   replace), and a damaged cached file is dropped and read from the store again.
//! - `arca cache` lists and cleans up as restic's does.
//!
//! A missing server or restic skips loudly, and fails under CI=true.

use arca_tests::*;
use std::path::{Path, PathBuf};

const PW: &str = "cache-test-password";

/// MinIO's endpoint and keys, and the test bucket.
fn minio() -> Option<[String; 4]> {
    let mut out = Vec::new();
    for n in [
        "ARCA_TEST_MINIO_ENDPOINT",
        "ARCA_TEST_MINIO_ACCESS_KEY",
        "ARCA_TEST_MINIO_SECRET_KEY",
        "ARCA_TEST_BUCKET",
    ] {
        match std::env::var(n).ok().filter(|v| !v.is_empty()) {
            Some(v) => out.push(v),
            None => {
                let msg = format!("the S3 cache test needs {n} (start scripts/servers.sh)");
                assert!(!is_ci(), "{msg}");
                eprintln!("SKIPPED: {msg}");
                return None;
            }
        }
    }
    out.try_into().ok()
}

/// The GETs of files under `<prefix>/<dir>/` among `requests`.
fn gets_of(requests: &[String], prefix: &str, dir: &str) -> Vec<String> {
    let wanted = format!("GET {prefix}/{dir}/");
    requests
        .iter()
        .filter(|r| r.starts_with(&wanted))
        .cloned()
        .collect()
}

#[test]
fn over_s3_a_second_snapshots_and_incremental_backup_read_no_index_or_tree_from_the_store() {
    let Some([endpoint, access, secret, bucket]) = minio() else {
        return;
    };
    let upstream = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let proxy = RequestLog::start(&upstream);
    let unique = format!("cache-{:016x}", rand::random::<u64>());
    let prefix = format!("/{bucket}/{unique}");
    let repo = format!("s3:{}/{bucket}/{unique}", proxy.endpoint());
    let cache = tempfile::tempdir().unwrap();
    let mut arca = Arca::new(&repo, PW).with_cache();
    arca.env("AWS_ACCESS_KEY_ID", &access)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("RESTIC_CACHE_DIR", cache.path());
    let data = tempfile::tempdir().unwrap();
    make_dataset(data.path(), DatasetScale::Tiny);
    let src = data.path().to_str().unwrap();

    arca.run(["init"]);
    arca.run(["backup", src]);
    let cached = |dir: &str| -> usize {
        let base = cache.path();
        std::fs::read_dir(base)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| count_files(&e.path().join(dir)))
            .sum()
    };
    assert!(cached("index") > 0 && cached("snapshots") > 0 && cached("data") > 0);

    // With the cache emptied, the store is read: the measure can tell.
    empty(cache.path());
    proxy.clear();
    arca.run(["snapshots"]);
    assert!(!gets_of(&proxy.requests(), &prefix, "snapshots").is_empty());
    proxy.clear();
    std::fs::write(data.path().join("changed-1"), b"one").unwrap();
    arca.run(["backup", src]);
    let first = proxy.requests();
    assert!(!gets_of(&first, &prefix, "index").is_empty(), "{first:#?}");
    assert!(!gets_of(&first, &prefix, "data").is_empty(), "{first:#?}");

    // The second time: nothing but what must be fresh (config, keys, locks, listings).
    proxy.clear();
    arca.run(["snapshots"]);
    let second = proxy.requests();
    assert_eq!(gets_of(&second, &prefix, "snapshots"), Vec::<String>::new());
    assert_eq!(gets_of(&second, &prefix, "index"), Vec::<String>::new());
    proxy.clear();
    std::fs::write(data.path().join("changed-2"), b"two").unwrap();
    arca.run(["backup", src]);
    let second = proxy.requests();
    assert_eq!(gets_of(&second, &prefix, "index"), Vec::<String>::new());
    assert_eq!(
        gets_of(&second, &prefix, "data"),
        Vec::<String>::new(),
        "an incremental backup reads only its parent's trees, all cached"
    );
    // And it did back up the change.
    let ls = lossy(arca.run(["ls", "latest"]));
    assert!(ls.contains("changed-2"), "{ls}");
}

fn count_files(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            if e.path().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

fn empty(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            std::fs::remove_dir_all(e.path()).unwrap();
        }
    }
}

/// The files a cache folder holds for one repository: (kind folder, name).
fn cached_files(cache: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for repo in std::fs::read_dir(cache).unwrap().flatten() {
        if !repo.path().is_dir() {
            continue;
        }
        for kind in ["index", "snapshots", "data"] {
            for sub in std::fs::read_dir(repo.path().join(kind))
                .into_iter()
                .flatten()
                .flatten()
            {
                for f in std::fs::read_dir(sub.path()).unwrap().flatten() {
                    out.push((
                        kind.to_string(),
                        f.file_name().to_string_lossy().into_owned(),
                    ));
                }
            }
        }
    }
    out.sort();
    out
}

/// Damage the store's copy of every file `cache` holds: same name and size, other bytes.
fn damage_store_copies(repo: &Path, cache: &Path) -> usize {
    let files = cached_files(cache);
    for (kind, name) in &files {
        let path: PathBuf = match kind.as_str() {
            "data" => repo.join("data").join(&name[..2]).join(name),
            k => repo.join(k).join(name),
        };
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&path, perms).unwrap();
        std::fs::write(&path, vec![0x5a; len]).unwrap();
    }
    files.len()
}

/// One program writes through a cache, the store's copies are damaged, and the other program
/// still lists and reads the snapshot through the same cache folder (and fails without it).
fn shared_cache_case(writer_is_arca: bool) {
    let restic_bin = restic_or_return!();
    let repo = TempRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let cache_arg = format!("--cache-dir={}", cache.path().display());
    let mut restic = Restic::with_bin(&restic_bin, repo.path(), PW).with_cache();
    restic.global_arg(&cache_arg);
    let mut arca = Arca::new(repo.path(), PW).with_cache();
    arca.global_arg(&cache_arg);
    let data = tempfile::tempdir().unwrap();
    make_dataset(data.path(), DatasetScale::Tiny);
    let src = data.path().to_str().unwrap();
    if writer_is_arca {
        arca.run(["init"]);
        arca.run(["backup", src]);
    } else {
        restic.run(["init"]);
        restic.run(["backup", src]);
    }
    let files = cached_files(cache.path());
    for kind in ["index", "snapshots", "data"] {
        assert!(
            files.iter().any(|(k, _)| k == kind),
            "nothing cached in {kind}/: {files:?}"
        );
    }
    assert!(damage_store_copies(repo.path(), cache.path()) >= 3);

    // Without the cache the damage shows; with it, the reader gets everything it needs.
    let plain_restic = Restic::with_bin(&restic_bin, repo.path(), PW);
    let plain_arca = Arca::new(repo.path(), PW);
    let (reader_name, reader, uncached): (&str, &Runner, &Runner) = if writer_is_arca {
        ("restic", &restic, &plain_restic)
    } else {
        ("arca", &arca, &plain_arca)
    };
    uncached.expect_failure(["ls", "latest"]);
    let ls = lossy(reader.run(["ls", "latest"]));
    let top = std::fs::read_dir(data.path())
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .file_name();
    assert!(
        ls.contains(top.to_str().unwrap()),
        "{reader_name} through the shared cache:\n{ls}"
    );
}

#[test]
fn restic_reads_the_cache_arca_wrote() {
    shared_cache_case(true);
}

#[test]
fn arca_reads_the_cache_restic_wrote() {
    shared_cache_case(false);
}

#[test]
fn a_damaged_cached_file_is_dropped_and_read_from_the_store() {
    let repo = TempRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let mut arca = Arca::new(repo.path(), PW).with_cache();
    arca.env("RESTIC_CACHE_DIR", cache.path());
    let data = tempfile::tempdir().unwrap();
    make_dataset(data.path(), DatasetScale::Tiny);
    arca.run(["init"]);
    arca.run(["backup", data.path().to_str().unwrap()]);
    let before = lossy(arca.run(["ls", "latest"]));
    // Damage every cached file, keeping its size.
    let repo_cache = std::fs::read_dir(cache.path())
        .unwrap()
        .flatten()
        .find(|e| e.path().is_dir())
        .unwrap()
        .path();
    let mut damaged = Vec::new();
    for (kind, name) in cached_files(cache.path()) {
        let path = repo_cache.join(&kind).join(&name[..2]).join(&name);
        let good = std::fs::read(&path).unwrap();
        std::fs::write(&path, vec![0xa5; good.len()]).unwrap();
        damaged.push((path, good));
    }
    assert_eq!(lossy(arca.run(["ls", "latest"])), before);
    // Nothing damaged is left: index and snapshot files were checked, dropped and cached
    // again from the store; a tree pack whose blob did not decode was dropped (and, as in
    // restic, not fetched again in the same run).
    for (path, good) in &damaged {
        let now = std::fs::read(path).ok();
        assert!(
            now.is_none() || now.as_ref() == Some(good),
            "still damaged: {}",
            path.display()
        );
    }
    // The next run caches what was dropped.
    assert_eq!(lossy(arca.run(["ls", "latest"])), before);
    for (path, good) in &damaged {
        assert!(
            std::fs::read(path).ok().as_ref() == Some(good),
            "not cached again: {}",
            path.display()
        );
    }
}

#[test]
fn the_cache_command_lists_and_cleans_up_like_restics() {
    let restic_bin = restic_or_return!();
    let repo = TempRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let mut arca = Arca::new(repo.path(), PW).with_cache();
    arca.env("RESTIC_CACHE_DIR", cache.path());
    arca.run(["init"]);
    arca.run(["snapshots"]);
    let mut restic = Restic::with_bin(&restic_bin, repo.path(), PW).with_cache();
    restic.env("RESTIC_CACHE_DIR", cache.path());
    let id = std::fs::read_dir(cache.path())
        .unwrap()
        .flatten()
        .find(|e| e.path().is_dir())
        .unwrap()
        .file_name()
        .to_string_lossy()
        .into_owned();
    let summary = format!("1 cache dirs in {}", cache.path().display());
    for (who, out) in [
        ("arca", arca.run_string(["cache"])),
        ("restic", restic.run_string(["cache"])),
    ] {
        assert!(out.contains(&id[..10]), "{who}: {out}");
        assert!(out.contains("0 days ago"), "{who}: {out}");
        assert!(out.lines().any(|l| l == summary), "{who}: {out}");
    }
    // A repository folder last used long ago is old, and --cleanup removes only it.
    let old = cache.path().join("cd".repeat(32));
    std::fs::create_dir(&old).unwrap();
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(40 * 24 * 3600);
    std::fs::File::open(&old)
        .unwrap()
        .set_times(std::fs::FileTimes::new().set_modified(long_ago))
        .unwrap();
    let listing = arca.run_string(["cache", "--no-size"]);
    let old_line = listing
        .lines()
        .find(|l| l.starts_with("cdcdcdcdcd"))
        .unwrap();
    assert!(
        old_line.contains("40 days ago") && old_line.contains("yes"),
        "{listing}"
    );
    arca.run(["cache", "--cleanup"]);
    assert!(!old.exists());
    assert!(cache.path().join(&id).is_dir());
    // --no-cache refuses, as restic does.
    let mut none = Arca::new(repo.path(), PW);
    none.env("RESTIC_CACHE_DIR", cache.path());
    let err = String::from_utf8_lossy(&none.expect_failure(["cache"]).stderr).into_owned();
    assert!(err.contains("the cache is disabled"), "{err}");
}

/// Output as text: the dataset's names include some that are not UTF-8.
fn lossy(out: Vec<u8>) -> String {
    String::from_utf8_lossy(&out).into_owned()
}
