//! `arca mount` against `restic mount` on the same repository: both are mounted side by
//! side and every path below the mount points is compared (type, permissions, owner, size,
//! modification time of what the snapshots hold, link targets, file contents). Needs
//! `/dev/fuse` and the right to mount: skipped with a message where `/dev/fuse` is missing,
//! outside CI only.

use arca_tests::*;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PW: &str = "mount-test";

fn fuse_or_skip() -> bool {
    if Path::new("/dev/fuse").exists() {
        return true;
    }
    assert!(
        !is_ci(),
        "/dev/fuse is missing: the mount test needs FUSE in CI"
    );
    eprintln!("SKIPPED: /dev/fuse is missing, so nothing can be mounted here");
    false
}

/// A mount served by a child process, unmounted (and the process waited for) when dropped.
struct Served {
    child: Child,
    /// `None` once unmounted.
    at: Option<PathBuf>,
}

impl Served {
    fn start(mut cmd: Command, at: &Path) -> Served {
        std::fs::create_dir_all(at).unwrap();
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut served = Served {
            child,
            at: Some(at.to_owned()),
        };
        // Ready once the layout shows; a process that ended instead says why.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !at.join("snapshots").exists() {
            if let Some(status) = served.child.try_wait().unwrap() {
                panic!(
                    "the mount ended with {status}: {}",
                    stderr_of(&mut served.child)
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} was not mounted in 60 s",
                at.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        served
    }

    /// Unmount from outside, as a user would, and return how the server ended.
    fn path(&self) -> &Path {
        self.at.as_deref().expect("still mounted")
    }

    fn unmount(mut self) -> std::process::ExitStatus {
        unmount(self.path());
        self.at = None;
        self.child.wait().unwrap()
    }
}

/// What an ended child wrote to its standard error.
fn stderr_of(child: &mut Child) -> String {
    use std::io::Read;
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

fn unmount(at: &Path) {
    let fusermount = find_tool("fusermount3").or_else(|| find_tool("fusermount"));
    let ok = match fusermount {
        Some(f) => Command::new(f).arg("-u").arg(at).status(),
        None => Command::new("umount").arg(at).status(),
    };
    assert!(ok.unwrap().success(), "unmounting {}", at.display());
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(at) = &self.at {
            let _ = Command::new("umount").arg("-l").arg(at).status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Every path below `root` with what can be compared (of the mode, `mode_bits`): top-level folders and the snapshot
/// folders are dated by the mount itself (restic: when it started) and are left undated.
fn describe(root: &Path, mode_bits: u32) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let depth = rel.matches('/').count();
            // Below ids/<id>/, snapshots/<time>/, hosts/<h>/<time>/, tags/<t>/<time>/: the
            // snapshots' own items.
            let inside = match rel.split('/').next() {
                Some("ids") | Some("snapshots") => depth >= 2,
                _ => depth >= 3,
            };
            let kind = if md.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&p).unwrap().display())
            } else if md.is_dir() {
                "dir".to_owned()
            } else {
                let data = std::fs::read(&p).unwrap();
                format!("file {} {}", data.len(), hex(&data))
            };
            let mut line = format!("{kind} mode {:o}", md.permissions().mode() & mode_bits);
            if inside {
                line += &format!(" uid {} gid {} mtime {}", md.uid(), md.gid(), md.mtime());
            }
            if md.is_dir() && !md.file_type().is_symlink() {
                stack.push(p);
            }
            out.insert(rel, line);
        }
    }
    out
}

fn hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn mount_serves_what_restic_mount_serves() {
    let Some(bin) = restic_or_skip() else { return };
    if !fuse_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("deep/er")).unwrap();
    std::fs::write(src.join("small"), "small").unwrap();
    std::fs::write(src.join("empty"), "").unwrap();
    // Several blobs, so reads cross their boundaries.
    std::fs::write(src.join("deep/er/big"), DetRng::new(3).bytes(9 << 20)).unwrap();
    std::os::unix::fs::symlink("../small", src.join("deep/link")).unwrap();
    std::fs::set_permissions(src.join("small"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let repo = dir.path().join("repo");
    let restic = Restic::with_bin(&bin, &repo, PW);
    restic.run(["init"]);
    let s = src.to_str().unwrap();
    restic.run(["backup", "--host", "one", "--tag", "a,b/c", s]);
    std::fs::write(src.join("small"), "changed").unwrap();
    restic.run(["backup", "--host", "two", "--tag", "a", s]);
    restic.run(["backup", "--host", "two", s]);

    let arca = Arca::new(&repo, PW);
    let theirs = Served::start(
        restic
            .cmd(["mount", dir.path().join("m-restic").to_str().unwrap()])
            .command(),
        &dir.path().join("m-restic"),
    );
    let ours = Served::start(
        arca.cmd(["mount", dir.path().join("m-arca").to_str().unwrap()])
            .command(),
        &dir.path().join("m-arca"),
    );
    // restic 0.14 left setuid, setgid and sticky out; the current restic shows them, as arca.
    let bits = if dialect_of(&bin).is_0_14() {
        0o777
    } else {
        0o7777
    };
    let (a, r) = (describe(ours.path(), bits), describe(theirs.path(), bits));
    // Every path and what it holds, the same.
    let differ: Vec<String> = a
        .keys()
        .chain(r.keys())
        .filter(|k| a.get(*k) != r.get(*k))
        .map(|k| format!("{k}: arca {:?}, restic {:?}", a.get(k), r.get(k)))
        .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    assert!(
        a.keys().any(|k| k.starts_with("tags/b_c/")),
        "{:?}",
        a.keys()
    );
    assert!(a.keys().any(|k| k.ends_with("deep/er/big")));
    // Unmounted from outside, arca ends by itself, successfully.
    assert!(ours.unmount().success());
    let _ = theirs.unmount();

    // A mount point that does not exist is refused before the repository is opened.
    let out = Arca::new(dir.path().join("no-repo-here"), PW)
        .expect_failure(["mount", "/nonexistent/mnt"]);
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(
        msg.contains("Mountpoint /nonexistent/mnt doesn't exist"),
        "{msg}"
    );
}
