//! Tests of the test helpers themselves: the dataset, the tree comparison, the fixtures, and the
//! dataset round-tripped through the real restic.

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use arca_tests::*;
use filetime::FileTime;

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("arca-harness-")
        .tempdir()
        .expect("temp dir")
}

/// A Tiny dataset and a `cp -a` copy of it, in one temp dir.
fn dataset_and_copy() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    let copy = tmp.path().join("copy");
    make_dataset(&src, DatasetScale::Tiny);
    cp_a(&src, &copy);
    (tmp, src, copy)
}

fn diffs(a: &Path, b: &Path) -> Vec<String> {
    tree_differences(a, b, &CompareOptions::default())
}

#[test]
fn dataset_has_the_promised_cases() {
    let tmp = tempdir();
    let root = tmp.path().join("data");
    let summary = make_dataset(&root, DatasetScale::Small);

    let big = root.join("random/size-10486093.bin");
    assert!(
        fs::metadata(&big).unwrap().len() > 8 << 20,
        "a file above 8 MiB"
    );
    assert!(
        (20 << 20..=30 << 20).contains(&summary.bytes),
        "Small is 20–30 MiB, got {summary:?}"
    );
    assert!(
        summary.files > 60 && summary.dirs > 30 && summary.symlinks >= 9,
        "{summary:?}"
    );

    // Deep chain.
    let mut deep = root.join("deep");
    for level in 1..=24 {
        deep.push(format!("level-{level:02}"));
    }
    assert!(deep.join("bottom.txt").is_file());

    // Odd names exist under their exact bytes.
    for name in [
        &b"latin1-\xe9\xff.bin"[..],
        b"new\nline.txt",
        b"tab\tinside.txt",
        b"del\x7f.txt",
        b"ctrl\x01.txt",
        "line\u{2028}separator.txt".as_bytes(),
        "nbsp\u{a0}space.txt".as_bytes(),
    ] {
        let path = root.join("names").join(OsStr::from_bytes(name));
        assert!(path.is_file(), "{path:?}");
    }

    // Links.
    let links = root.join("links");
    assert_eq!(
        fs::read_link(links.join("relative")).unwrap(),
        Path::new("../text/small.txt")
    );
    assert!(fs::read_link(links.join("absolute")).unwrap().is_absolute());
    assert!(!links.join("dangling").exists());
    let ino = |p: &str| fs::metadata(root.join(p)).unwrap().ino();
    assert_eq!(ino("hardlinks/original"), ino("hardlinks/sub/third-name"));
    assert_ne!(
        ino("hardlinks/original"),
        ino("hardlinks/same-content-own-inode")
    );

    // Modes and times.
    let mode = |p: &str| fs::symlink_metadata(root.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("perms/mode-0444"), 0o444);
    assert_eq!(mode("perms/private-0700"), 0o700);
    assert_eq!(mode("perms/sticky-1777"), 0o1777);
    if summary.setid_files {
        assert_eq!(mode("perms/setid-4755"), 0o4755);
    }
    let meta = fs::metadata(root.join("times/before-1970")).unwrap();
    assert_eq!(
        (meta.mtime(), meta.mtime_nsec()),
        (-315_619_200, 123_456_789)
    );
    let meta = fs::metadata(root.join("times/year-2200")).unwrap();
    assert_eq!(
        (meta.mtime(), meta.mtime_nsec()),
        (7_258_118_400, 999_999_999)
    );

    // Sparse: fewer blocks allocated than the apparent size.
    let sparse = fs::metadata(root.join("sparse/holes.bin")).unwrap();
    assert!(sparse.blocks() * 512 < sparse.len(), "holes.bin is sparse");
}

#[test]
fn dataset_is_deterministic() {
    let tmp = tempdir();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    make_dataset(&a, DatasetScale::Tiny);
    make_dataset(&b, DatasetScale::Tiny);
    // Absolute symlinks contain the root, and inodes differ: compare the rest.
    fs::remove_file(a.join("links/absolute")).unwrap();
    fs::remove_file(b.join("links/absolute")).unwrap();
    let opts = CompareOptions {
        dir_mtime: false, // removing the link touched links/
        ..CompareOptions::default()
    };
    compare_trees_with(&a, &b, &opts).unwrap();

    let c = tmp.path().join("c");
    make_dataset_seeded(&c, DatasetScale::Tiny, 42);
    assert!(
        compare_trees(&a, &c).is_err(),
        "another seed gives other data"
    );
}

#[test]
fn copy_made_with_cp_a_compares_equal() {
    let (_tmp, src, copy) = dataset_and_copy();
    compare_trees(&src, &copy).unwrap();
    compare_trees(&copy, &src).unwrap();
}

#[test]
fn one_changed_byte_is_the_only_difference() {
    let (_tmp, src, copy) = dataset_and_copy();
    let path = copy.join("random/size-00065536.bin");
    let before = fs::metadata(&path).unwrap();
    let old = fs::read(&path).unwrap()[1000];
    let mut file = OpenOptions::new().write(true).open(&path).unwrap();
    file.seek(SeekFrom::Start(1000)).unwrap();
    file.write_all(&[!old]).unwrap();
    drop(file);
    // Put the mtime back so that only the contents differ.
    let mtime = FileTime::from_last_modification_time(&before);
    filetime::set_file_mtime(&path, mtime).unwrap();

    let found = diffs(&src, &copy);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains("random/size-00065536.bin") && found[0].contains("contents differ"),
        "{found:#?}"
    );
    assert!(found[0].contains("byte 1000"), "{found:#?}");
}

#[test]
fn one_changed_mode_is_the_only_difference() {
    let (_tmp, src, copy) = dataset_and_copy();
    let path = copy.join("perms/mode-0600");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let found = diffs(&src, &copy);
    assert_eq!(
        found,
        vec!["\"perms/mode-0600\": mode 0600 in a, 0640 in b".to_owned()]
    );
}

#[test]
fn one_changed_mtime_is_the_only_difference() {
    let (_tmp, src, copy) = dataset_and_copy();
    let path = copy.join(OsStr::from_bytes(b"names/latin1-\xe9\xff.bin"));
    let meta = fs::metadata(&path).unwrap();
    // Only the nanoseconds change: they must be compared too.
    let changed =
        FileTime::from_unix_time(meta.mtime(), (meta.mtime_nsec() as u32 + 1) % 1_000_000_000);
    filetime::set_file_mtime(&path, changed).unwrap();
    let found = diffs(&src, &copy);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("\"names/latin1-\\xE9\\xFF.bin\": mtime "),
        "{found:#?}"
    );
}

#[test]
fn other_differences_are_reported() {
    let (_tmp, src, copy) = dataset_and_copy();
    // A directory's mtime (optional check).
    let dir = copy.join("deep/level-01");
    filetime::set_file_mtime(&dir, FileTime::from_unix_time(1_000_000_000, 0)).unwrap();
    let found = diffs(&src, &copy);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("\"deep/level-01\": mtime"),
        "{found:#?}"
    );
    let no_dir_times = CompareOptions {
        dir_mtime: false,
        ..CompareOptions::default()
    };
    assert!(tree_differences(&src, &copy, &no_dir_times).is_empty());

    // A symlink target, a missing entry, a broken hard link, a changed type.
    fs::remove_file(copy.join("links/dangling")).unwrap();
    std::os::unix::fs::symlink("elsewhere", copy.join("links/dangling")).unwrap();
    fs::remove_file(copy.join("empty/.hidden-empty")).unwrap();
    let pair_b = copy.join("hardlinks/pair-b");
    let meta = fs::metadata(&pair_b).unwrap();
    fs::remove_file(&pair_b).unwrap();
    fs::write(&pair_b, b"a pair of names\n").unwrap();
    fs::set_permissions(&pair_b, meta.permissions()).unwrap();
    filetime::set_file_mtime(&pair_b, FileTime::from_last_modification_time(&meta)).unwrap();
    fs::remove_dir(copy.join("empty/empty-dir")).unwrap();
    fs::write(copy.join("empty/empty-dir"), b"").unwrap();

    let found = tree_differences(&src, &copy, &no_dir_times);
    let text = found.join("\n");
    assert!(
        text.contains(
            "\"links/dangling\": symlink target \"does-not-exist\" in a, \"elsewhere\" in b"
        ),
        "{text}"
    );
    assert!(
        text.contains("\"empty/.hidden-empty\": only in a"),
        "{text}"
    );
    assert!(
        text.contains("\"empty/empty-dir\": type directory in a, file in b"),
        "{text}"
    );
    assert!(
        text.contains("hard links: [\"hardlinks/pair-a\", \"hardlinks/pair-b\"] share an inode in a, not in b"),
        "{text}"
    );
    assert_eq!(found.len(), 4, "{text}");
    assert!(compare_trees(&src, &copy)
        .unwrap_err()
        .contains("difference(s)"));
}

#[test]
fn unpack_small_repo_fixture() {
    let tmp = tempdir();
    let repo = unpack_fixture("small-repo", tmp.path());
    assert_eq!(repo, tmp.path().join("repo"));
    assert!(repo.join("config").is_file());
    assert!(repo.join("keys").is_dir());
    assert!(repo.join("data").is_dir());
    assert!(fs::read_dir(repo.join("keys")).unwrap().count() > 0);

    let source = unpack_fixture("backup-data", &tmp.path().join("src"));
    assert_eq!(source, tmp.path().join("src"));
    assert!(fixture_names().contains(&"repo-mixed".to_owned()));
    assert!(fixtures_dir().join("keys/key1").is_file());
}

#[test]
fn restic_reads_the_small_repo_fixture() {
    let bin = restic_or_return!();
    let repo = TempRepo::fixture("small-repo");
    let restic = Restic::with_bin(bin, repo.path(), FIXTURE_PASSWORD);
    let snapshots = restic.run_json(["snapshots", "--json"]);
    assert!(!snapshots.as_array().unwrap().is_empty(), "{snapshots}");

    let wrong = restic
        .cmd(["snapshots"])
        .env("RESTIC_PASSWORD", "wrong")
        .expect_failure();
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("wrong password"),
        "{wrong:?}"
    );
}

/// The dataset survives a round trip through the real restic (v2 repository, restic's default),
/// and compare_trees agrees: proves both against restic 0.14.
#[test]
fn restic_round_trip_of_the_dataset() {
    let bin = restic_or_return!();
    let tmp = tempdir();
    let root = fs::canonicalize(tmp.path()).unwrap();
    let src = root.join("src");
    make_dataset(&src, DatasetScale::Small);

    let repo = root.join("repo");
    let restic = Restic::with_bin(bin, &repo, "a password that is not on argv");
    restic.run(["init"]);
    let config_version = restic.run_json(["cat", "config"])["version"].clone();
    assert_eq!(config_version, 2, "restic 0.14 makes v2 repositories");

    restic.cmd(["backup", "--json"]).arg(&src).run_json_lines();
    let target = root.join("restored");
    restic
        .cmd(["restore", "latest", "--target"])
        .arg(&target)
        .run();
    let restored = target.join(src.strip_prefix("/").unwrap());
    compare_trees(&src, &restored).unwrap();

    restic.run(["check", "--read-data"]);
}

#[test]
fn runner_environment_is_clean() {
    let mut runner = Runner::new("/usr/bin/env");
    runner.env("ONLY_THIS", "1");
    let env = runner.run_string(Vec::<&str>::new());
    let keys: Vec<&str> = env.lines().filter_map(|l| l.split('=').next()).collect();
    for key in keys.iter() {
        assert!(
            [
                "PATH",
                "HOME",
                "XDG_CACHE_HOME",
                "XDG_CONFIG_HOME",
                "RESTIC_CACHE_DIR",
                "TMPDIR",
                "TZ",
                "LANG",
                "LC_ALL",
                "ONLY_THIS"
            ]
            .contains(key),
            "unexpected variable {key} in {env}"
        );
    }
    assert!(env.contains("ONLY_THIS=1"));
    let out = runner.cmd(["false-command-that-does-not-exist"]).output();
    assert!(!out.status.success());

    let echoed = Runner::new("/bin/cat")
        .cmd(Vec::<&str>::new())
        .stdin(&b"piped"[..])
        .run();
    assert_eq!(echoed, b"piped");
}

#[test]
#[should_panic(expected = "failed")]
fn runner_panics_with_stderr_on_failure() {
    Runner::new("/bin/sh").run(["-c", "echo oops >&2; exit 3"]);
}

#[test]
fn missing_tools_are_found_missing() {
    assert!(find_tool("sh").is_some());
    assert!(find_tool("arca-no-such-tool").is_none());
    if !is_ci() {
        assert!(tool_or_skip("arca-no-such-tool").is_none());
    }
}

#[test]
fn arca_bin_is_next_to_the_test_executable() {
    let result = std::panic::catch_unwind(arca_bin);
    let profile_dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    match result {
        Ok(path) => assert_eq!(path, profile_dir.join("arca")),
        Err(panic) => {
            let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(
                message.contains("run `cargo build -p arca` first")
                    && message.contains(&*profile_dir.join("arca").to_string_lossy()),
                "{message}"
            );
        }
    }
}

/// The Arca runner passes the repository and password through the environment, as for restic.
#[test]
fn arca_runner_lists_fixture_snapshots() {
    let repo = TempRepo::fixture("small-repo");
    let arca = Arca::new(repo.path(), FIXTURE_PASSWORD);
    let snapshots = arca.run_json(["snapshots", "--json"]);
    assert_eq!(snapshots.as_array().map(Vec::len), Some(4), "{snapshots}");
    arca.cmd(["snapshots"])
        .env("RESTIC_PASSWORD", "wrong")
        .expect_failure();
}
