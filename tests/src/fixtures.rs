//! The committed fixtures under `tests/fixtures/`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Password of every repository in `tests/fixtures/restic/`.
pub const FIXTURE_PASSWORD: &str = "geheim";

/// Root of the Cargo workspace (the parent of this crate's folder).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent folder")
        .to_path_buf()
}

/// `tests/fixtures/`: `restic/*.tar.gz` (restic's test repositories, BSD-2-Clause, see
/// `restic/LICENSE`) and `keys/` (rustic_core's key files, MIT, see `keys/LICENSE-MIT`).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Names of the tarballs in `tests/fixtures/restic/`, without `.tar.gz`, sorted.
pub fn fixture_names() -> Vec<String> {
    let dir = fixtures_dir().join("restic");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".tar.gz").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

/// Path of `tests/fixtures/restic/<name>.tar.gz` (`name` may carry the `.tar.gz` already).
/// Panics, listing the available names, if there is no such fixture.
pub fn fixture_tarball(name: &str) -> PathBuf {
    let file = if name.ends_with(".tar.gz") {
        name.to_owned()
    } else {
        format!("{name}.tar.gz")
    };
    let path = fixtures_dir().join("restic").join(file);
    assert!(
        path.is_file(),
        "no fixture {name:?} ({} does not exist); available: {}",
        path.display(),
        fixture_names().join(", ")
    );
    path
}

/// Extract `tests/fixtures/restic/<name>.tar.gz` into `into` (created if missing) with the system
/// `tar`, and return the extracted `repo` folder (`into/repo`). For the two tarballs that hold a
/// source tree rather than a repository (`backup-data`, `test.hl`) it returns `into` itself.
pub fn unpack_fixture(name: &str, into: &Path) -> PathBuf {
    let tarball = fixture_tarball(name);
    fs::create_dir_all(into).unwrap_or_else(|e| panic!("cannot create {}: {e}", into.display()));
    let out = Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(into)
        .arg("--no-same-owner")
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `tar` to unpack {}: {e}", tarball.display()));
    assert!(
        out.status.success(),
        "`tar -xzf {} -C {}` failed ({}):\n{}",
        tarball.display(),
        into.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let repo = into.join("repo");
    if repo.is_dir() {
        repo
    } else {
        into.to_path_buf()
    }
}

/// A repository location in its own temporary folder, removed on drop.
///
/// - [`TempRepo::fixture`]: an unpacked committed fixture (password [`FIXTURE_PASSWORD`]).
/// - [`TempRepo::new`]: a path `<tmp>/repo` that does not exist yet, for `init`.
///
/// [`TempRepo::scratch`] is the temporary folder around the repository, free for other files.
pub struct TempRepo {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl TempRepo {
    /// A fresh temporary folder and the (not yet existing) repository path `<tmp>/repo` in it.
    pub fn new() -> Self {
        let dir = tempdir("arca-repo-");
        let path = dir.path().join("repo");
        TempRepo { dir, path }
    }

    /// The committed fixture `name` unpacked into a fresh temporary folder.
    pub fn fixture(name: &str) -> Self {
        let dir = tempdir("arca-fixture-");
        let path = unpack_fixture(name, dir.path());
        TempRepo { dir, path }
    }

    /// The repository folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary folder that holds the repository (and may hold anything else).
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for TempRepo {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temporary folder: {e}"))
}

/// Replace a repository's only key file (restic calibrates about half a second of scrypt per
/// command) by one for the same master key and password with a cheap scrypt (N=1024, r=8, p=1),
/// so that tests running many commands stay fast. Returns the replaced key file's name and bytes.
pub fn swap_in_cheap_key(repo: &Path, password: &str) -> (String, Vec<u8>) {
    use arca_format::keyfile::{KdfParams, KeyFile};
    let keys = repo.join("keys");
    let entries: Vec<PathBuf> = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "one key file expected: {entries:?}");
    let bytes = std::fs::read(&entries[0]).unwrap();
    let name = entries[0].file_name().unwrap().to_str().unwrap().to_owned();
    let old = KeyFile::parse(&bytes).expect("the key file parses");
    let master = old.open(password.as_bytes()).expect("the key opens");
    let cheap = KdfParams {
        n: 1024,
        r: 8,
        p: 1,
    };
    let kf = KeyFile::create(
        &master,
        password.as_bytes(),
        cheap,
        &old.username,
        &old.hostname,
        old.created.clone(),
    )
    .unwrap();
    let json = kf.to_json();
    std::fs::write(keys.join(arca_format::Id::hash(&json).to_hex()), &json).unwrap();
    std::fs::remove_file(&entries[0]).unwrap();
    (name, bytes)
}

/// Folders to remove when the test process exits (see [`keep_until_exit`]).
static REMOVE_AT_EXIT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

extern "C" fn remove_at_exit() {
    if let Ok(dirs) = REMOVE_AT_EXIT.lock() {
        for d in dirs.iter() {
            let _ = fs::remove_dir_all(d);
        }
    }
}

/// A test binary's shared fixture lives in a static, which is never dropped: take `tmp` out
/// of its guard and remove its folder when the process exits instead (a fixture of several
/// hundred MB would otherwise stay behind after every run). Returns the folder.
#[allow(unsafe_code, reason = "atexit has no safe wrapper")]
pub fn keep_until_exit(tmp: tempfile::TempDir) -> PathBuf {
    let dir = tmp.keep();
    let mut dirs = REMOVE_AT_EXIT.lock().expect("exit list");
    if dirs.is_empty() {
        // SAFETY: registers a plain extern "C" function with no preconditions.
        unsafe { libc::atexit(remove_at_exit) };
    }
    dirs.push(dir.clone());
    dir
}
