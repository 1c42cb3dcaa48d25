//! Restore works batch by batch (memory follows the batch, not the snapshot). With a batch
//! of one item, every boundary falls somewhere: a folder's files and its metadata, a hard
//! link and its first name, a selected file and the unselected folders above it land in
//! different batches. The result must be what one batch gives, and what was backed up.

mod support;

use arca_engine::filter::Patterns;
use arca_engine::progress::NoProgress;
use arca_engine::restore::{restore, Overwrite, RestoreOptions, BATCH_BYTES};
use arca_engine::Repository;
use arca_format::Id;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use support::repository_with_backup_of;

/// What a restore is compared on, per path below the root.
#[derive(Debug, PartialEq)]
struct Seen {
    kind: &'static str,
    mode: u32,
    mtime: (i64, i64),
    /// The contents' SHA-256, or a link's target.
    bytes: String,
    /// For hard links: the first path seen with the same inode.
    same_as: Option<PathBuf>,
}

fn look(root: &Path) -> BTreeMap<PathBuf, Seen> {
    let mut all = BTreeMap::new();
    let mut inodes: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let ft = md.file_type();
            let (kind, bytes) = if ft.is_dir() {
                todo.push(p.clone());
                ("dir", String::new())
            } else if ft.is_symlink() {
                let to = std::fs::read_link(&p).unwrap();
                ("symlink", to.display().to_string())
            } else if ft.is_file() {
                ("file", Id::hash(&std::fs::read(&p).unwrap()).to_hex())
            } else {
                ("other", String::new())
            };
            let same_as = (ft.is_file() && md.nlink() > 1)
                .then(|| inodes.entry(md.ino()).or_insert(rel.clone()).clone());
            let mode = if ft.is_symlink() { 0 } else { md.mode() };
            all.insert(
                rel,
                Seen {
                    kind,
                    mode,
                    mtime: (md.mtime(), md.mtime_nsec()),
                    bytes,
                    same_as,
                },
            );
        }
    }
    all
}

fn set_mtime(p: &Path, secs: i64) {
    let t = std::fs::FileTimes::new()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64));
    std::fs::File::open(p).unwrap().set_times(t).unwrap();
}

/// Folders several levels deep with their own modes and times (one read-only, with files
/// in it), hard links across folders, a symbolic link and a FIFO.
fn make_source(src: &Path) {
    for d in ["a/b", "a/c/d/e", "f", "g/h"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    for (i, f) in [
        "a/one",
        "a/b/two",
        "a/c/three",
        "a/c/d/e/four",
        "f/five",
        "g/h/six",
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(src.join(f), format!("file {i}\n").repeat(i * 100 + 1)).unwrap();
    }
    std::fs::hard_link(src.join("a/one"), src.join("g/one-again")).unwrap();
    std::fs::hard_link(src.join("a/one"), src.join("f/one-more")).unwrap();
    std::os::unix::fs::symlink("../a/one", src.join("f/link")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        src.join("g/pipe"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    for (d, mode) in [
        ("a/b", 0o500),
        ("a/c", 0o750),
        ("a/c/d/e", 0o700),
        ("g", 0o711),
    ] {
        std::fs::set_permissions(src.join(d), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    // Times last, deepest first, as a restore must set them.
    let dirs = ["a/c/d/e", "a/c/d", "a/c", "a/b", "a", "f", "g/h", "g"];
    for (i, d) in dirs.iter().enumerate() {
        set_mtime(&src.join(d), 1_000_000_000 + i as i64 * 1000);
    }
}

async fn restore_with(
    repo: &Arc<Repository>,
    tree: Id,
    target: &Path,
    include: &[&str],
    batch_bytes: usize,
) -> arca_engine::restore::RestoreReport {
    let include: Vec<String> = include.iter().map(|s| s.to_string()).collect();
    let opts = RestoreOptions {
        target: target.to_path_buf(),
        include: Patterns::new(&include, false).unwrap(),
        exclude: Patterns::new(&[], false).unwrap(),
        sparse: false,
        overwrite: Overwrite::Always,
        verify: true,
        dry_run: false,
        delete: false,
        concurrency: Some(2),
        batch_bytes,
        privileged_files: true,
    };
    restore(repo.clone(), tree, &opts, &NoProgress)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_item_per_batch_restores_what_one_batch_does() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_source(&src);
    let (repo, done) = repository_with_backup_of(&dir.path().join("repo"), &src).await;
    assert!(done.errors.is_empty(), "{:?}", done.errors);
    let tree = done.snapshot.unwrap().tree;
    let source = look(&src);

    for include in [&[][..], &["/a/c/d/e/four", "/g/one-again", "/f/link"][..]] {
        let mut restored = Vec::new();
        for batch_bytes in [BATCH_BYTES, 1] {
            let target = dir.path().join(format!("{}-{batch_bytes}", include.len()));
            let report = restore_with(&repo, tree, &target, include, batch_bytes).await;
            assert!(report.errors.is_empty(), "{:?}", report.errors);
            assert_eq!(
                report.verified_files,
                report.files - 2 * include.is_empty() as u64
            );
            restored.push(look(&target));
        }
        assert_eq!(restored[0], restored[1], "include {include:?}");
        if include.is_empty() {
            assert_eq!(restored[0], source, "everything, as it was backed up");
        } else {
            // The selected items and the folders above them, with the folders' metadata.
            let want: Vec<PathBuf> = [
                "a",
                "a/c",
                "a/c/d",
                "a/c/d/e",
                "a/c/d/e/four",
                "f",
                "f/link",
                "g",
                "g/one-again",
            ]
            .iter()
            .map(PathBuf::from)
            .collect();
            assert_eq!(restored[1].keys().cloned().collect::<Vec<_>>(), want);
            for p in &want {
                let (got, had) = (&restored[1][p], &source[p]);
                assert_eq!(
                    (got.kind, got.mode, got.mtime),
                    (had.kind, had.mode, had.mtime)
                );
                assert_eq!(got.bytes, had.bytes, "{}", p.display());
            }
        }
    }
}
