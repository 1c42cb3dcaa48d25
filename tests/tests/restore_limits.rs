//! Restore stays within the process's limits whatever the snapshot holds: thousands of tiny
//! files, whose blobs share one stretch of one pack, are restored under a descriptor limit
//! of 256 (many systems give 1,024), where a restore job used to keep every file of its
//! stretch open and failed on most of them with "Too many open files".

use std::os::unix::process::CommandExt;

use arca_tests::*;

const FILES: usize = 3_000;
const DESCRIPTORS: libc::rlim_t = 256;

#[test]
#[allow(
    unsafe_code,
    reason = "pre_exec, to lower the child's limit, is unsafe"
)]
fn thousands_of_tiny_files_are_restored_under_a_low_descriptor_limit() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    for i in 0..FILES {
        std::fs::write(src.join(format!("f{i:05}")), format!("tiny file {i}\n")).unwrap();
    }
    let arca = Arca::new(dir.path().join("repo"), "pw");
    arca.run(["init"]);
    arca.run(["backup", src.to_str().unwrap()]);

    let target = dir.path().join("target");
    let mut restore = arca
        .cmd(["restore", "latest", "--target", target.to_str().unwrap()])
        .command();
    let limit = libc::rlimit {
        rlim_cur: DESCRIPTORS,
        rlim_max: DESCRIPTORS,
    };
    // SAFETY: setrlimit is async-signal-safe and touches only the child about to exec.
    unsafe {
        restore.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let out = restore.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "restore under {DESCRIPTORS} descriptors: {}\n{}",
        out.status,
        stderr.lines().take(5).collect::<Vec<_>>().join("\n")
    );
    let restored = target.join(src.strip_prefix("/").unwrap());
    for i in 0..FILES {
        let name = format!("f{i:05}");
        assert_eq!(
            std::fs::read_to_string(restored.join(&name)).unwrap(),
            format!("tiny file {i}\n"),
            "{name}"
        );
    }
}
