//! An interrupted arca (Ctrl-C, SIGTERM from a supervisor) removes its lock files on the way
//! out and exits 130, as restic does, so other hosts do not wait 30 minutes for them to go
//! stale.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use arca_tests::*;

fn lock_files(repo: &std::path::Path) -> usize {
    std::fs::read_dir(repo.join("locks"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn an_interrupted_backup_removes_its_lock() {
    use rustix::process::{kill_process, Pid, Signal};
    for (signal, name) in [(Signal::INT, "SIGINT"), (Signal::TERM, "SIGTERM")] {
        let repo = TempRepo::new();
        let arca = Arca::new(repo.path(), "pw");
        arca.run(["init"]);
        // A backup from a pipe that stays open: it holds its lock and waits for data.
        let mut child = arca
            .cmd(["backup", "--stdin", "--stdin-filename", "stream"])
            .command()
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"some data, and more to come").unwrap();
        // Waiting for an event (the lock file), not for a time: the deadline only bounds a
        // broken run.
        let deadline = Instant::now() + Duration::from_secs(60);
        while lock_files(repo.path()) == 0 {
            assert!(Instant::now() < deadline, "{name}: no lock appeared");
            assert!(
                child.try_wait().unwrap().is_none(),
                "{name}: backup ended early"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid = Pid::from_raw(child.id() as i32).expect("a child's PID");
        kill_process(pid, signal).expect("signal the child");
        let out = child.wait_with_output().unwrap();
        drop(stdin);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert_eq!(
            lock_files(repo.path()),
            0,
            "{name}: the lock was left: {err}"
        );
        // No snapshot was written from the cut-off stream.
        let snapshots = arca.run_json(["snapshots", "--json"]);
        assert_eq!(snapshots.as_array().map(Vec::len), Some(0), "{name}");
    }
}
