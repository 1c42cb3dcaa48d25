//! Running a program and measuring its peak resident memory: `wait4` reports the child's
//! own `ru_maxrss`, whatever else the test process runs beside it.

use std::io::Read;
use std::process::{Command, Stdio};

/// What a measured run gave.
pub struct Measured {
    /// The exit code, or `-signal` when a signal ended it.
    pub code: i32,
    /// How much it wrote on its standard output, and how many lines (the output itself is
    /// not kept: it can be larger than the memory being measured).
    pub stdout_bytes: u64,
    pub stdout_lines: u64,
    /// The end of its standard error (the last 64 KiB).
    pub stderr: String,
    /// Peak resident memory, in KiB.
    pub peak_rss_kib: u64,
}

/// Run `cmd` to its end (standard input empty) and measure it.
#[allow(
    unsafe_code,
    reason = "wait4, for the child's own peak memory, has no safe wrapper"
)]
pub fn run_measured(mut cmd: Command) -> Measured {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the program starts");
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let counting = std::thread::spawn(move || {
        let (mut bytes, mut lines) = (0u64, 0u64);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match out.read(&mut buf) {
                Ok(0) | Err(_) => return (bytes, lines),
                Ok(n) => {
                    bytes += n as u64;
                    lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
                }
            }
        }
    });
    let tail = std::thread::spawn(move || {
        const KEEP: usize = 64 << 10;
        let mut kept: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            kept.extend_from_slice(&buf[..n]);
            if kept.len() > KEEP {
                kept.drain(..kept.len() - KEEP);
            }
        }
        String::from_utf8_lossy(&kept).into_owned()
    });
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, with valid pointers to a status and a rusage.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid, "wait4: {}", std::io::Error::last_os_error());
    // Reaped here: `child` must not be waited for again, and dropping it does not wait.
    drop(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    let (stdout_bytes, stdout_lines) = counting.join().expect("counting thread");
    Measured {
        code,
        stdout_bytes,
        stdout_lines,
        stderr: tail.join().expect("stderr thread"),
        peak_rss_kib: usage.ru_maxrss as u64,
    }
}
