//! `backup`'s flags from restic 0.15–0.18, run by arca and by restic on copies of one
//! repository and compared: `--read-concurrency`, `--no-scan`, `--skip-if-unchanged`,
//! `--ignore-ctime`, `--ignore-inode`, `--stdin-from-command`, `--group-by` for the parent,
//! `--files-from -`. Both tools back up `.` inside the source folder, so the snapshot's tree is
//! the folder's contents alone and its ID can be compared: the copies share one chunker
//! polynomial, and arca writes tree JSON byte for byte as restic does.
//!
//! Run against Debian's restic 0.14.0 in the workspace run and the current restic from
//! scripts/test.sh; flags 0.14 does not have are compared with the current restic only and
//! checked on arca alone against 0.14.

use arca_tests::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

const PW: &str = "backup-flags";

struct Twins {
    restic: Restic,
    arca: Arca,
    current: bool,
    src: PathBuf,
    _dirs: (TempRepo, TempRepo, tempfile::TempDir),
}

/// A repository restic made, a copy of it, and a source folder with a few files.
fn twins() -> Option<Twins> {
    let bin = restic_or_skip()?;
    let current = !dialect_of(&bin).is_0_14();
    let (a, b) = (TempRepo::new(), TempRepo::new());
    let data = tempfile::tempdir().unwrap();
    let src = data.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.txt"), b"alpha\n").unwrap();
    std::fs::write(src.join("sub/b.bin"), vec![7u8; 300_000]).unwrap();
    std::fs::write(src.join("c.txt"), b"gamma\n").unwrap();
    let restic = Restic::with_bin(&bin, a.path(), PW);
    restic.run(["init"]);
    if b.path().exists() {
        std::fs::remove_dir_all(b.path()).unwrap();
    }
    cp_a(a.path(), b.path());
    let arca = Arca::new(b.path(), PW);
    Some(Twins {
        restic,
        arca,
        current,
        src,
        _dirs: (a, b, data),
    })
}

/// `backup --json ARGS .` inside the source folder: (exit code, summary line).
fn backup(tool: &Runner, src: &Path, args: &[&str]) -> (Option<i32>, Value) {
    let out = tool
        .cmd(["backup", "--json"])
        .args(args)
        .arg(".")
        .current_dir(src)
        .output();
    let summary = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|m| m["message_type"] == "summary")
        .unwrap_or(Value::Null);
    (out.status.code(), summary)
}

fn snapshots(tool: &Runner) -> Vec<Value> {
    tool.run_json(["snapshots", "--json"])
        .as_array()
        .unwrap()
        .clone()
}

/// The counters that say what a backup found, without sizes of what it stored.
fn counts(summary: &Value) -> Vec<Value> {
    [
        "files_new",
        "files_changed",
        "files_unmodified",
        "dirs_new",
        "dirs_changed",
        "dirs_unmodified",
        "total_files_processed",
    ]
    .iter()
    .map(|k| summary[*k].clone())
    .collect()
}

#[test]
fn read_concurrency_and_no_scan_store_the_tree_restic_stores() {
    let Some(t) = twins() else { return };
    let flags = ["--read-concurrency", "1", "--no-scan"];
    let (code, _) = backup(&t.arca, &t.src, &flags);
    assert_eq!(code, Some(0));
    // 0.14 has neither flag (0.15 added --no-scan, 0.16 --read-concurrency).
    let restic_flags: &[&str] = if t.current { &flags } else { &[] };
    let (code, _) = backup(&t.restic, &t.src, restic_flags);
    assert_eq!(code, Some(0));
    let (a, r) = (snapshots(&t.arca), snapshots(&t.restic));
    assert_eq!(a[0]["tree"], r[0]["tree"], "arca {a:?}\nrestic {r:?}");
    assert_eq!(a[0]["paths"], r[0]["paths"]);
    // A concurrency of nothing is refused.
    let out = t
        .arca
        .expect_failure(["backup", "--read-concurrency", "0", "."]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--read-concurrency"));
}

#[test]
fn skip_if_unchanged_writes_no_snapshot_when_nothing_changed() {
    let Some(t) = twins() else { return };
    let mut tools: Vec<&Runner> = vec![&*t.arca];
    if t.current {
        tools.push(&*t.restic); // restic 0.17 added the flag
    }
    for tool in tools {
        let name = tool.program().display().to_string();
        assert_eq!(backup(tool, &t.src, &[]).0, Some(0));
        let (code, summary) = backup(tool, &t.src, &["--skip-if-unchanged"]);
        assert_eq!(code, Some(0), "{name}");
        assert!(summary.get("snapshot_id").is_none(), "{name}: {summary}");
        assert_eq!(summary["files_unmodified"], 3, "{name}: {summary}");
        assert_eq!(snapshots(tool).len(), 1, "{name}: no second snapshot");
        let text = tool
            .cmd(["backup", "--skip-if-unchanged", "."])
            .current_dir(&t.src)
            .run_string();
        assert_eq!(
            text.lines().last(),
            Some("skipped creating snapshot"),
            "{name}: {text}"
        );
        // Something changed: the snapshot is written.
        std::fs::write(t.src.join(format!("new-{}", snapshots(tool).len())), b"x").unwrap();
        let (_, summary) = backup(tool, &t.src, &["--skip-if-unchanged"]);
        assert!(summary["snapshot_id"].is_string(), "{name}: {summary}");
        assert_eq!(snapshots(tool).len(), 2, "{name}");
        std::fs::remove_file(t.src.join("new-1")).unwrap();
    }
}

#[test]
fn ignore_ctime_and_ignore_inode_count_files_as_restic_does() {
    let Some(t) = twins() else { return };
    assert_eq!(backup(&t.arca, &t.src, &[]).0, Some(0));
    assert_eq!(backup(&t.restic, &t.src, &[]).0, Some(0));
    // A ctime-only change (the mode set to what it was), and a file replaced by a copy with
    // the same contents and mtime (a new inode).
    let a = t.src.join("a.txt");
    let status = std::process::Command::new("chmod")
        .arg("u+w")
        .arg(&a)
        .status()
        .unwrap();
    assert!(status.success());
    let c = t.src.join("c.txt");
    let copy = t.src.join("c.txt.copy");
    let ok = std::process::Command::new("cp")
        .args(["-p"])
        .arg(&c)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::rename(&copy, &c).unwrap();
    for flags in [&["--ignore-inode"][..], &["--ignore-ctime"], &[]] {
        let (ca, sa) = backup(&t.arca, &t.src, flags);
        let (cr, sr) = backup(&t.restic, &t.src, flags);
        assert_eq!((ca, cr), (Some(0), Some(0)), "{flags:?}");
        assert_eq!(
            counts(&sa),
            counts(&sr),
            "{flags:?}: arca {sa}\nrestic {sr}"
        );
        // Each run's parent is the one before, whose nodes carry the new ctime and inode:
        // only the first run sees the change.
        if flags == ["--ignore-inode"] {
            assert_eq!(sa["files_unmodified"], 3, "{sa}");
        }
    }
}

#[test]
fn ignore_ctime_alone_still_sees_a_new_inode() {
    let Some(t) = twins() else { return };
    assert_eq!(backup(&t.arca, &t.src, &[]).0, Some(0));
    assert_eq!(backup(&t.restic, &t.src, &[]).0, Some(0));
    let c = t.src.join("c.txt");
    let copy = t.src.join("c.txt.copy");
    std::fs::copy(&c, &copy).unwrap();
    let mtime = filetime::FileTime::from_last_modification_time(&std::fs::metadata(&c).unwrap());
    filetime::set_file_mtime(&copy, mtime).unwrap();
    std::fs::rename(&copy, &c).unwrap();
    let (_, sa) = backup(&t.arca, &t.src, &["--ignore-ctime"]);
    let (_, sr) = backup(&t.restic, &t.src, &["--ignore-ctime"]);
    assert_eq!(counts(&sa), counts(&sr), "arca {sa}\nrestic {sr}");
    assert_eq!(sa["files_changed"], 1, "{sa}");
}

#[test]
fn stdin_from_command_stores_the_output_and_fails_with_the_command() {
    let Some(t) = twins() else { return };
    let cmd = [
        "backup",
        "--stdin-from-command",
        "--stdin-filename",
        "dump.sql",
        "--",
        "sh",
        "-c",
        "printf 'CREATE TABLE t;\\n'; head -c 100000 /dev/zero",
    ];
    let mut tools: Vec<&Runner> = vec![&*t.arca];
    if t.current {
        tools.push(&*t.restic); // restic 0.17 added the flag
    }
    for tool in &tools {
        tool.run(cmd);
        let list = snapshots(tool);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["paths"], serde_json::json!(["/dump.sql"]));
        // A failing command: an error and no snapshot.
        let out = tool.expect_failure([
            "backup",
            "--stdin-from-command",
            "--",
            "sh",
            "-c",
            "printf partial; exit 3",
        ]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(snapshots(tool).len(), 1, "no snapshot of a failed command");
    }
    // restic reads arca's dump back.
    let arca_repo = t._dirs.1.path();
    let dumped =
        Restic::with_bin(t.restic.program(), arca_repo, PW).run(["dump", "latest", "/dump.sql"]);
    assert_eq!(&dumped[..16], b"CREATE TABLE t;\n");
    assert_eq!(dumped.len(), 16 + 100_000);
}

#[test]
fn group_by_picks_the_parent_restic_picks() {
    let Some(t) = twins() else { return };
    // Two snapshots of the same folder with different tags, made by restic in its repository
    // and copied to arca's (the same IDs in both).
    for tag in ["a", "b"] {
        t.restic
            .cmd(["backup", "--tag", tag, "."])
            .current_dir(&t.src)
            .run();
    }
    let arca_repo = t._dirs.1.path();
    std::fs::remove_dir_all(arca_repo).unwrap();
    cp_a(t._dirs.0.path(), arca_repo);
    let tagged = |tool: &Runner, tag: &str| -> String {
        snapshots(tool)
            .iter()
            .find(|s| s["tags"] == serde_json::json!([tag]))
            .map(|s| s["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    let parent_of_latest = |tool: &Runner| -> String {
        let list = snapshots(tool);
        let newest = list
            .iter()
            .max_by_key(|s| s["time"].as_str().unwrap().to_string())
            .unwrap();
        newest["parent"].as_str().unwrap_or_default().to_string()
    };
    let args = ["--group-by", "host,paths,tags", "--tag", "a"];
    backup(&t.arca, &t.src, &args);
    assert_eq!(parent_of_latest(&t.arca), tagged(&t.arca, "a"));
    if t.current {
        backup(&t.restic, &t.src, &args);
        assert_eq!(parent_of_latest(&t.restic), parent_of_latest(&t.arca));
    }
    // The default grouping (host, paths) takes the newest, whatever its tags.
    let newest_before = snapshots(&t.arca)
        .iter()
        .max_by_key(|s| s["time"].as_str().unwrap().to_string())
        .map(|s| s["id"].as_str().unwrap().to_string())
        .unwrap();
    backup(&t.arca, &t.src, &["--tag", "b"]);
    assert_eq!(parent_of_latest(&t.arca), newest_before);
    // An unknown grouping is refused as restic refuses it.
    let out = t
        .arca
        .expect_failure(["backup", "--group-by", "colour", "."]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown grouping option"));
}

#[test]
fn files_from_standard_input_as_restic() {
    let Some(t) = twins() else { return };
    let list = format!(
        "# a comment\n{}\n{}\n",
        t.src.join("a.txt").display(),
        t.src.join("sub").display()
    );
    for tool in [&*t.arca, &*t.restic] {
        tool.cmd(["backup", "--files-from", "-"])
            .stdin(list.clone())
            .run();
    }
    let (a, r) = (snapshots(&t.arca), snapshots(&t.restic));
    assert_eq!(a[0]["paths"], r[0]["paths"]);
    assert_eq!(a[0]["paths"].as_array().unwrap().len(), 2);
    // NUL-separated names from standard input.
    let raw = format!("{}\0", t.src.join("c.txt").display());
    for tool in [&*t.arca, &*t.restic] {
        tool.cmd(["backup", "--files-from-raw", "-"])
            .stdin(raw.clone())
            .run();
    }
    let (a, r) = (snapshots(&t.arca), snapshots(&t.restic));
    assert_eq!(a[1]["paths"], r[1]["paths"]);
    // A list without its final NUL is refused, as restic refuses it.
    let bad = format!("{}", t.src.join("c.txt").display());
    let out = t
        .arca
        .cmd(["backup", "--files-from-raw", "-"])
        .stdin(bad)
        .expect_failure();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("trailing zero byte missing"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
