//! Backing up a directory's contents as the snapshot root: the tree does not depend on
//! where the directory sits, so a volume that reappears under another pod UID still matches
//! its parent and nothing is read or stored again.

mod support;

use arca_engine::backup::{self, BackupOptions, SelectAll};
use arca_engine::progress::NoProgress;
use arca_engine::Repository;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use support::TINY;

fn options(dir: &Path, parent: Option<arca_format::snapshot::Snapshot>) -> BackupOptions {
    BackupOptions {
        tags: vec!["pvc-uid=1234".into()],
        parent,
        ..support::backup_options(vec![dir.to_path_buf()], true, Arc::new(SelectAll))
    }
}

fn volume(root: &Path) -> PathBuf {
    let v = root.join("pods/uid-one/volumes/kubernetes.io~empty-dir/data");
    std::fs::create_dir_all(v.join("sub")).unwrap();
    std::fs::write(v.join("a.txt"), b"hello").unwrap();
    std::fs::write(v.join("sub/b.bin"), vec![7u8; 3 << 20]).unwrap();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contents_backup_keeps_its_parent_when_the_directory_moves() {
    let dir = tempfile::tempdir().unwrap();
    let backend = || -> arca_storage::DynBackend {
        Arc::new(arca_storage::LocalBackend::new(dir.path().join("repo")))
    };
    Repository::init(backend(), "pw", 2, None, TINY)
        .await
        .unwrap();
    // A fresh handle with the current index, as each backup run opens one.
    let open = || async {
        let mut r = Repository::open(backend(), "pw").await.unwrap();
        r.load_index(&NoProgress).await.unwrap();
        Arc::new(r)
    };
    let repo = open().await;
    let first_dir = volume(dir.path());

    let first = backup::backup(
        repo.clone(),
        options(&first_dir, None),
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    let first_sn = first.snapshot.unwrap();
    assert_eq!(first_sn.paths, [first_dir.to_string_lossy()]);
    // The root holds the volume's entries, not the path down to it.
    let root = open().await.load_tree(&first_sn.tree).await.unwrap();
    let names: Vec<String> = root
        .nodes
        .iter()
        .map(|n| String::from_utf8_lossy(&n.name).into_owned())
        .collect();
    assert_eq!(names, ["a.txt", "sub"]);

    // The pod is recreated: same volume (same files), another pod UID in the path.
    let moved = dir
        .path()
        .join("pods/uid-two/volumes/kubernetes.io~empty-dir");
    std::fs::create_dir_all(&moved).unwrap();
    let second_dir = moved.join("data");
    std::fs::rename(&first_dir, &second_dir).unwrap();
    let repo = open().await;
    let second = backup::backup(
        repo.clone(),
        options(&second_dir, Some(first_sn.clone())),
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    let s = &second.summary;
    assert_eq!(
        (s.files_new, s.files_changed, s.files_unmodified),
        (0, 0, 2)
    );
    assert_eq!(s.data_added, 0, "nothing new to store");
    assert_eq!(second.snapshot.unwrap().tree, first_sn.tree);

    // A contents backup names exactly one directory.
    let mut two = options(&second_dir, None);
    two.paths.push(second_dir.clone());
    let err = backup::backup(repo, two, Arc::new(NoProgress))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("one directory"), "{err}");
}
