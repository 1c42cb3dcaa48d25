//! The restore-wait helper as the init container runs it: the real binary against real
//! volume folders.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn helper(restores: &Path, uid: &str, timeout: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_arca-agent"))
        .args([
            "restore-wait",
            uid,
            "--interval",
            "50ms",
            "--timeout",
            timeout,
        ])
        .arg("--restores-dir")
        .arg(restores)
        .output()
        .unwrap()
}

fn volumes(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for n in names {
        std::fs::create_dir(dir.path().join(n)).unwrap();
        std::fs::write(dir.path().join(n).join("data.txt"), n).unwrap();
    }
    dir
}

fn mark(dir: &Path, volume: &str, name: &str, content: &str) {
    let m = dir.join(volume).join(".arca");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(m.join(name), content).unwrap();
}

#[test]
fn exits_zero_once_every_volume_is_marked_and_cleans_up() {
    let dir = volumes(&["data", "logs"]);
    mark(dir.path(), "data", "uid-1", "");
    let path = dir.path().to_path_buf();
    // The second marker arrives while the helper waits.
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        mark(&path, "logs", "uid-1", "");
    });
    let out = helper(dir.path(), "uid-1", "30s");
    late.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "all 2 volume(s) restored"
    );
    for v in ["data", "logs"] {
        assert!(
            !dir.path().join(v).join(".arca").exists(),
            "{v}/.arca left behind"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join(v).join("data.txt")).unwrap(),
            v
        );
    }
}

#[test]
fn a_marker_of_another_restore_does_not_count() {
    let dir = volumes(&["data"]);
    mark(dir.path(), "data", "old-restore", "");
    let out = helper(dir.path(), "uid-2", "300ms");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("timed out after 300ms waiting for volume(s) data"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn a_failure_marker_fails_at_once_with_the_reason() {
    let dir = volumes(&["data", "logs"]);
    mark(dir.path(), "data", "uid-3", "");
    mark(
        dir.path(),
        "logs",
        "uid-3.failed",
        "snapshot 1234abcd: pack 99ff not found\n",
    );
    let started = std::time::Instant::now();
    let out = helper(dir.path(), "uid-3", "1h");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim(),
        "Fatal: restore of volume logs failed: snapshot 1234abcd: pack 99ff not found"
    );
    // The markers stay for whoever investigates.
    assert!(dir.path().join("logs/.arca/uid-3.failed").exists());
}

#[test]
fn no_volumes_is_an_error_not_a_success() {
    let dir = volumes(&[]);
    let out = helper(dir.path(), "uid-4", "1s");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no volumes mounted under"));
    let out = helper(&dir.path().join("missing"), "uid-4", "1s");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing"));
}

#[test]
fn a_bad_timeout_is_refused() {
    let dir = volumes(&["data"]);
    let out = helper(dir.path(), "uid-5", "soon");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--timeout"));
}
