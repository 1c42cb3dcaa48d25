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
    /// Serve with `cmd` at `at`; ready once `ready` shows below it.
    fn start(mut cmd: Command, at: &Path, ready: &str) -> Served {
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
        while !at.join(ready).exists() {
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

    fn path(&self) -> &Path {
        self.at.as_deref().expect("still mounted")
    }

    /// Unmount from outside, as a user would, and return how the server ended.
    fn unmount(mut self) -> std::process::ExitStatus {
        unmount(self.path());
        self.at = None;
        self.child.wait().unwrap()
    }

    /// Stop the server with Ctrl-C, and return how it ended (the mount point is released).
    fn interrupt(mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -INT failed");
        let status = self.child.wait().unwrap();
        let at = self.at.take().expect("still mounted");
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        assert!(
            !mounts.contains(&format!(" {} ", at.display())),
            "{} is still mounted",
            at.display()
        );
        status
    }
}

/// `arca args` fails, saying `words`.
fn refused<S: AsRef<std::ffi::OsStr>>(arca: &Arca, args: &[S], words: &str) {
    let out = arca.expect_failure(args);
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains(words), "{msg}");
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

/// Every path below `root` with what can be compared (of the mode, `mode_bits`). The folders
/// above the snapshots' items are dated by the mount itself (restic: when it started):
/// owner, time and extended attributes are given only for the paths `inside` says are
/// items.
fn describe(
    root: &Path,
    mode_bits: u32,
    inside: impl Fn(&str) -> bool,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let kind = if md.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&p).unwrap().display())
            } else if md.is_dir() {
                "dir".to_owned()
            } else {
                let data = std::fs::read(&p).unwrap();
                format!("file {} {}", data.len(), hex(&data))
            };
            let mut line = format!("{kind} mode {:o}", md.permissions().mode() & mode_bits);
            if inside(&rel) {
                line += &format!(" uid {} gid {} mtime {}", md.uid(), md.gid(), md.mtime());
                if !md.file_type().is_symlink() {
                    for name in xattr::list(&p).into_iter().flatten() {
                        let value = xattr::get(&p, &name).ok().flatten().unwrap_or_default();
                        line += &format!(" xattr {name:?}={value:?}");
                    }
                }
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
    // Where the filesystem keeps user attributes, the mount shows them.
    let with_xattr = xattr::set(src.join("deep/er/big"), "user.note", b"kept").is_ok();
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
        "snapshots",
    );
    let ours = Served::start(
        arca.cmd(["mount", dir.path().join("m-arca").to_str().unwrap()])
            .command(),
        &dir.path().join("m-arca"),
        "snapshots",
    );
    // restic 0.14 left setuid, setgid and sticky out; the current restic shows them, as arca.
    let bits = if dialect_of(&bin).is_0_14() {
        0o777
    } else {
        0o7777
    };
    // Below ids/<id>/, snapshots/<time>/, hosts/<h>/<time>/, tags/<t>/<time>/: the
    // snapshots' own items.
    let inside = |rel: &str| {
        let depth = rel.matches('/').count();
        match rel.split('/').next() {
            Some("ids") | Some("snapshots") => depth >= 2,
            _ => depth >= 3,
        }
    };
    let (a, r) = (
        describe(ours.path(), bits, inside),
        describe(theirs.path(), bits, inside),
    );
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
    let big = a.iter().find(|(k, _)| k.ends_with("deep/er/big")).unwrap();
    if with_xattr {
        assert!(
            big.1.contains(r#"xattr "user.note"=[107, 101, 112, 116]"#),
            "{big:?}"
        );
    }
    // Unmounted from outside, arca ends by itself, successfully.
    assert!(ours.unmount().success());
    let _ = theirs.unmount();

    // A mount point that does not exist is refused before the repository is opened.
    refused(
        &Arca::new(dir.path().join("no-repo-here"), PW),
        &["mount", "/nonexistent/mnt"],
        "Mountpoint /nonexistent/mnt doesn't exist",
    );
    // Nor is one inside the local repository: serving it would read through itself.
    let inside_repo = repo.join("data");
    refused(
        &arca,
        &["mount", inside_repo.to_str().unwrap()],
        "is inside the local repository directory",
    );
}

#[test]
fn path_and_time_templates_lay_out_as_restic() {
    let Some(bin) = restic_or_skip() else { return };
    if !fuse_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "templated").unwrap();
    let repo = dir.path().join("repo");
    let restic = Restic::with_bin(&bin, &repo, PW);
    restic.run(["init"]);
    let s = src.to_str().unwrap();
    // Fixed times, two in one minute: the time template drops the seconds, so the second
    // gets `-1`.
    for (host, tags, time) in [
        ("one", "a,b", "2025-03-04 05:06:07"),
        ("one", "a", "2025-03-04 05:06:59"),
        ("two", "", "2026-01-02 10:00:00"),
    ] {
        let mut args = vec!["backup", "--host", host, "--time", time, s];
        if !tags.is_empty() {
            args.extend(["--tag", tags]);
        }
        restic.run(args);
    }
    let templates = [
        "--path-template",
        "by/%h/%u/%T",
        "--path-template",
        "id-%i",
        "--path-template",
        "tag/%t/%T",
        "--time-template",
        "2006/Jan/02_15-04",
    ];
    let mount_args = |at: &Path| -> Vec<String> {
        let mut v = vec!["mount".to_owned()];
        v.extend(templates.iter().map(|s| s.to_string()));
        v.push(at.to_str().unwrap().to_owned());
        v
    };
    let arca = Arca::new(&repo, PW);
    let at = dir.path().join("m-arca");
    let ours = Served::start(arca.cmd(mount_args(&at)).command(), &at, "by");
    let a = describe(ours.path(), 0o7777, |_| false);
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    // A snapshot holds the backed-up folder at its absolute path.
    let f = format!("{}/f", s.trim_start_matches('/'));
    for path in [
        format!("by/one/{user}/2025/Mar/04_05-06/{f}"),
        format!("by/one/{user}/2025/Mar/04_05-06-1/{f}"),
        format!("by/two/{user}/latest"),
        "tag/a/latest".to_owned(),
        format!("tag/b/2025/Mar/04_05-06/{f}"),
    ] {
        assert!(a.contains_key(&path), "{path} missing: {:?}", a.keys());
    }
    assert!(a.keys().any(|k| k.starts_with("id-") && k.ends_with(&f)));
    if !dialect_of(&bin).is_0_14() {
        // restic 0.14 knows no templates; the current restic lays out the same.
        let rat = dir.path().join("m-restic");
        let theirs = Served::start(restic.cmd(mount_args(&rat)).command(), &rat, "by");
        let r = describe(theirs.path(), 0o7777, |_| false);
        assert_eq!(a, r);
        let _ = theirs.unmount();
    }
    // Ctrl-C ends the mount, successfully as restic, and gives the folder back.
    assert!(ours.interrupt().success());

    // A time template restic refuses, arca refuses in its words.
    let mut bad = mount_args(&at);
    bad[8] = "/2006".to_owned();
    refused(
        &arca,
        &bad,
        "time template string cannot start or end with '/'",
    );
}

/// A backup made while mounted shows up once the mount lists the snapshots again (as
/// restic's, at most a minute after its last look), its new data read through an index
/// loaded again; what was served before stays where it was.
#[test]
fn a_backup_made_while_mounted_shows_up() {
    if !fuse_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "first").unwrap();
    let arca = Arca::new(dir.path().join("repo"), PW).with_cache();
    arca.run(["init"]);
    let s = src.to_str().unwrap();
    arca.run(["backup", "--host", "one", s]);
    let at = dir.path().join("m");
    let served = Served::start(
        arca.cmd(["mount", at.to_str().unwrap()]).command(),
        &at,
        "hosts/one",
    );
    let inside = format!("latest/{}/f", s.trim_start_matches('/'));
    let one = at.join("hosts/one").join(&inside);
    assert_eq!(std::fs::read_to_string(&one).unwrap(), "first");

    // New contents: a pack the mount's index does not know yet.
    std::fs::write(src.join("f"), DetRng::new(7).bytes(3 << 20)).unwrap();
    arca.run(["backup", "--host", "two", s]);
    let deadline = Instant::now() + Duration::from_secs(180);
    while !at.join("hosts/two").exists() {
        assert!(
            Instant::now() < deadline,
            "the new snapshot did not show up in 3 minutes"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let two = std::fs::read(at.join("hosts/two").join(&inside)).unwrap();
    assert!(
        two == DetRng::new(7).bytes(3 << 20),
        "the new file reads differently"
    );
    assert_eq!(std::fs::read_to_string(&one).unwrap(), "first");
    let ids = std::fs::read_dir(at.join("ids")).unwrap().count();
    assert_eq!(ids, 2, "ids/ lists both snapshots");
    assert!(served.unmount().success());
}
