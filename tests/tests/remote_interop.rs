//! Repositories reached through a helper program, as restic reaches them: `sftp:` through the
//! system's ssh to OpenSSH's sshd (started on loopback by scripts/servers.sh with throwaway
//! keys), and `rclone:` through `rclone serve restic --stdio` over a local folder. arca backs
//! up, checks and restores on each; restic (0.14.0 in the workspace run, 0.19.1 again from
//! scripts/test.sh) reads what arca wrote and arca what restic wrote; failures of the helper
//! are one clear line. Without the server or rclone the tests skip loudly, and fail under CI.

use arca_tests::*;
use std::path::Path;

const PW: &str = "remote-interop";

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The loopback sshd of scripts/servers.sh: (host alias, ssh_config, base folder).
fn sshd() -> Option<(String, String, String)> {
    let names = [
        "ARCA_TEST_SFTP_HOST",
        "ARCA_TEST_SFTP_CONFIG",
        "ARCA_TEST_SFTP_DIR",
    ];
    let vals: Vec<String> = names.iter().filter_map(|n| var(n)).collect();
    if vals.len() == names.len() {
        return Some((vals[0].clone(), vals[1].clone(), vals[2].clone()));
    }
    let msg = "sftp tests need ARCA_TEST_SFTP_* (start the servers with scripts/servers.sh)";
    assert!(!is_ci(), "{msg}");
    eprintln!("SKIPPED: {msg}");
    None
}

/// A fresh repository and the global flags arca and restic need to reach it.
struct Remote {
    repo: String,
    arca_args: Vec<String>,
    restic_args: Vec<String>,
    _dir: Option<tempfile::TempDir>,
}

fn unique() -> String {
    format!("interop-{:016x}", rand::random::<u64>())
}

fn sftp_remote() -> Option<Remote> {
    let (host, config, base) = sshd()?;
    let repo = format!("sftp:{host}:{base}/{}", unique());
    Some(Remote {
        repo,
        // arca by restic 0.15+'s sftp.args; restic 0.14 has only sftp.command.
        arca_args: vec!["-o".into(), format!("sftp.args=-F {config}")],
        restic_args: vec![
            "-o".into(),
            format!("sftp.command=ssh -F {config} {host} -s sftp"),
        ],
        _dir: None,
    })
}

fn rclone_remote() -> Option<Remote> {
    tool_or_skip("rclone")?;
    let dir = tempfile::tempdir().unwrap();
    Some(Remote {
        repo: format!("rclone:{}", dir.path().join("repo").display()),
        arca_args: Vec::new(),
        restic_args: Vec::new(),
        _dir: Some(dir),
    })
}

fn remote(kind: &str) -> Option<Remote> {
    match kind {
        "sftp" => sftp_remote(),
        "rclone" => rclone_remote(),
        other => panic!("unknown kind {other}"),
    }
}

fn arca(r: &Remote) -> Arca {
    let mut a = Arca::new(&r.repo, PW);
    for arg in &r.arca_args {
        a.global_arg(arg);
    }
    a
}

fn restic(bin: &Path, r: &Remote) -> Restic {
    let mut x = Restic::with_bin(bin, &r.repo, PW);
    for arg in &r.restic_args {
        x.global_arg(arg);
    }
    x
}

/// The summary line of `backup --json`.
fn summary_of(json_lines: &str) -> serde_json::Value {
    json_lines
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|m| m["message_type"] == "summary")
        .unwrap_or_else(|| panic!("no summary in {json_lines}"))
}

fn restored(out: &Path, src: &Path) -> std::path::PathBuf {
    out.join(src.strip_prefix("/").unwrap())
}

/// init, backup (with files above the largest chunk), check --read-data, restore, a second
/// backup that deduplicates, forget --prune, check again.
fn end_to_end(kind: &str) {
    let Some(r) = remote(kind) else { return };
    let src = tempfile::tempdir().unwrap();
    make_dataset(src.path(), DatasetScale::Small);
    let a = arca(&r);
    a.run(["init"]);
    a.run(["backup", "-q", src.path().to_str().unwrap()]);
    a.run(["check", "--read-data"]);
    let out = tempfile::tempdir().unwrap();
    a.run([
        "restore",
        "latest",
        "--target",
        out.path().to_str().unwrap(),
    ]);
    compare_trees(src.path(), &restored(out.path(), src.path()))
        .unwrap_or_else(|e| panic!("{kind}: restored tree differs: {e}"));

    std::fs::write(src.path().join("added.txt"), b"second snapshot\n").unwrap();
    let summary = summary_of(&a.run_string(["backup", "--json", src.path().to_str().unwrap()]));
    assert_eq!(summary["files_new"], 1, "{kind}: {summary}");
    assert!(
        summary["data_added"].as_u64().unwrap() < 10_000,
        "{kind}: the second backup deduplicates: {summary}"
    );
    a.run(["forget", "--keep-last", "1", "--prune"]);
    let snaps = a.run_json(["snapshots", "--json"]);
    assert_eq!(
        snaps.as_array().unwrap().len(),
        1,
        "{kind}: one snapshot left"
    );
    a.run(["check", "--read-data"]);
}

#[test]
fn end_to_end_sftp() {
    end_to_end("sftp");
}

#[test]
fn end_to_end_rclone() {
    end_to_end("rclone");
}

/// restic checks and restores what arca wrote, and arca what restic wrote.
fn restic_interop(kind: &str) {
    let bin = restic_or_return!();
    let src = tempfile::tempdir().unwrap();
    make_dataset(src.path(), DatasetScale::Small);
    let src_arg = src.path().to_str().unwrap();

    let Some(r) = remote(kind) else { return };
    arca(&r).run(["init"]);
    arca(&r).run(["backup", "-q", src_arg]);
    let x = restic(&bin, &r);
    x.run(["check", "--read-data"]);
    let out = tempfile::tempdir().unwrap();
    x.run([
        "restore",
        "latest",
        "--target",
        out.path().to_str().unwrap(),
    ]);
    compare_trees(src.path(), &restored(out.path(), src.path()))
        .unwrap_or_else(|e| panic!("{kind}: restic's restore of arca's backup differs: {e}"));
    // restic deduplicates against arca's packs: a second backup of the same data adds nothing.
    let summary = summary_of(&x.run_string(["backup", "--json", src_arg]));
    assert_eq!(summary["data_blobs"], 0, "{kind}: {summary}");

    let Some(r2) = remote(kind) else { return };
    let x2 = restic(&bin, &r2);
    x2.run(["init"]);
    x2.run(["backup", "-q", src_arg]);
    let a2 = arca(&r2);
    a2.run(["check", "--read-data"]);
    let out2 = tempfile::tempdir().unwrap();
    a2.run([
        "restore",
        "latest",
        "--target",
        out2.path().to_str().unwrap(),
    ]);
    compare_trees(src.path(), &restored(out2.path(), src.path()))
        .unwrap_or_else(|e| panic!("{kind}: arca's restore of restic's backup differs: {e}"));
}

#[test]
fn restic_interop_sftp() {
    restic_interop("sftp");
}

#[test]
fn restic_interop_rclone() {
    restic_interop("rclone");
}

/// The last line of a failed run: the error (a helper's own messages, prefixed with its
/// name as restic does, may come before it).
fn fatal_line(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "the command failed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn sftp_command_option_and_failures_are_one_clear_line() {
    let Some((host, config, base)) = sshd() else {
        return;
    };
    // sftp.command instead of sftp.args: the whole command as restic 0.14 takes it.
    let repo = format!("sftp:{host}:{base}/{}", unique());
    let mut a = Arca::new(&repo, PW);
    a.global_arg("-o")
        .global_arg(format!("sftp.command=ssh -F {config} {host} -s sftp"));
    a.run(["init"]);
    assert_eq!(a.run_json(["snapshots", "--json"]), serde_json::json!([]));

    // A host ssh cannot log in to: ssh's message, then arca's one line naming ssh's end.
    let mut refused = Arca::new(format!("sftp:{host}:{base}/x"), PW);
    refused
        .global_arg("-o")
        .global_arg(format!("sftp.command=ssh -F {config} -p 1 {host} -s sftp"));
    let out = refused.expect_failure(["snapshots"]);
    let line = fatal_line(&out);
    assert!(line.contains("ssh exited with exit status: 255"), "{line}");

    // No repository there.
    let missing = Arca::new(format!("sftp:{host}:{base}/{}", unique()), PW);
    let mut missing = missing;
    missing
        .global_arg("-o")
        .global_arg(format!("sftp.args=-F {config}"));
    let line = fatal_line(&missing.expect_failure(["snapshots"]));
    assert!(line.contains("does not exist"), "{line}");

    // Both options at once, as restic refuses it.
    let mut both = Arca::new(&repo, PW);
    both.global_arg("-o")
        .global_arg("sftp.command=ssh x")
        .global_arg("-o")
        .global_arg("sftp.args=-v");
    let line = fatal_line(&both.expect_failure(["snapshots"]));
    assert!(
        line.contains("sftp.command or sftp.args, not both"),
        "{line}"
    );
}

#[test]
fn rclone_failures_are_one_clear_line_and_hide_connection_secrets() {
    if tool_or_skip("rclone").is_none() {
        return;
    }
    // A remote rclone has no configuration for: rclone's message, then arca's line.
    let mut a = Arca::new("rclone:no-such-remote-arca:path", PW);
    a.env("RCLONE_CONFIG", "/dev/null");
    let out = a.expect_failure(["snapshots"]);
    let line = fatal_line(&out);
    assert!(line.contains("rclone exited with exit status: 1"), "{line}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rclone: "),
        "rclone's own messages are passed on: {stderr}"
    );

    // A connection string's parameters are credentials: never shown.
    let mut b = Arca::new(
        "rclone::nosuchbackend,user=AKIDSECRET,pass=VERYSECRET:dir",
        PW,
    );
    b.env("RCLONE_CONFIG", "/dev/null");
    let out = b.expect_failure(["init"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(fatal_line(&out).contains("rclone:"), "{stderr}");
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("rclone: "))
        .collect();
    for line in &ours {
        assert!(
            !line.contains("VERYSECRET") && !line.contains("AKIDSECRET"),
            "{stderr}"
        );
    }

    // A program that is not there.
    let mut c = Arca::new("rclone:remote:path", PW);
    c.global_arg("-o")
        .global_arg("rclone.program=/nonexistent/rclone");
    let line = fatal_line(&c.expect_failure(["snapshots"]));
    assert!(line.contains("cannot start /nonexistent/rclone"), "{line}");
}
