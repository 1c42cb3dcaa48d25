use super::*;
use crate::LocalBackend;

/// A sealed-looking file (any bytes over the smallest sealed size) and its name.
fn file(seed: u8, len: usize) -> (String, Bytes) {
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect();
    (hex::encode(Sha256::digest(&data)), Bytes::from(data))
}

fn repo_id() -> String {
    "ab".repeat(32)
}

#[test]
fn the_layout_is_restics() {
    let base = tempfile::tempdir().unwrap();
    let dir = CacheDir::new(base.path().join("restic"));
    let c = dir.open(&repo_id()).unwrap();
    assert!(c.created());
    let root = base.path().join("restic");
    assert_eq!(
        std::fs::read_to_string(root.join("CACHEDIR.TAG")).unwrap(),
        CACHEDIR_TAG
    );
    let repo = root.join(repo_id());
    assert_eq!(std::fs::read_to_string(repo.join("version")).unwrap(), "1");
    for sub in ["index", "snapshots", "data"] {
        assert!(repo.join(sub).is_dir(), "{sub}");
    }
    let (name, data) = file(1, 100);
    c.save(FileType::Index, &name, &data);
    assert_eq!(
        std::fs::read(repo.join("index").join(&name[..2]).join(&name)).unwrap(),
        data
    );
    // Opened again: not new, and the same files.
    let again = dir.open(&repo_id()).unwrap();
    assert!(!again.created());
    assert_eq!(again.load(FileType::Index, &name).unwrap(), data);
    assert_eq!(dir.entries().unwrap().len(), 1);
    assert!(dir.older_than(MAX_AGE).unwrap().is_empty());
    assert_eq!(dir.older_than(Duration::ZERO).unwrap().len(), 1);
    // Not a repository ID: refused, nothing written outside the base folder.
    assert!(dir.open("../x").is_err());
}

#[test]
fn damaged_small_and_foreign_files_are_never_served() {
    let base = tempfile::tempdir().unwrap();
    let c = CacheDir::new(base.path()).open(&repo_id()).unwrap();
    let (name, data) = file(2, 200);
    c.save(FileType::Snapshot, &name, &data);
    let path = c.dir().join("snapshots").join(&name[..2]).join(&name);
    let mut bad = data.to_vec();
    bad[7] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    assert!(c.load(FileType::Snapshot, &name).is_none());
    assert!(!path.exists(), "a damaged file is dropped");
    // Contents that do not hash to the name are not kept, nor are files too small to be
    // sealed, nor kinds the cache does not keep.
    c.save(FileType::Index, &"cd".repeat(32), &data);
    assert!(!c.has(FileType::Index, &"cd".repeat(32)));
    let (small, tiny) = file(3, 32);
    c.save(FileType::Index, &small, &tiny);
    assert!(!c.has(FileType::Index, &small));
    c.save(FileType::Key, &name, &data);
    assert!(c.names(FileType::Key).is_empty());
}

struct Store {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    backend: DynBackend,
    cache: Arc<RepoCache>,
    cached: CachedBackend,
}

async fn store() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let backend: DynBackend = Arc::new(LocalBackend::new(&root));
    backend.create().await.unwrap();
    let cache = Arc::new(
        CacheDir::new(dir.path().join("cache"))
            .open(&repo_id())
            .unwrap(),
    );
    let cached = CachedBackend::new(backend.clone(), cache.clone());
    Store {
        _dir: dir,
        root,
        backend,
        cache,
        cached,
    }
}

fn remove_from_store(s: &Store, ty: FileType, name: &str) {
    let path = match ty {
        FileType::Pack => s.root.join("data").join(&name[..2]).join(name),
        _ => s.root.join(ty.dir()).join(name),
    };
    std::fs::remove_file(path).unwrap();
}

#[tokio::test]
async fn index_and_snapshot_files_are_read_once_then_from_the_cache() {
    let s = store().await;
    let (index, idata) = file(4, 500);
    let (snap, sdata) = file(5, 300);
    s.backend
        .write(FileType::Index, &index, idata.clone(), false)
        .await
        .unwrap();
    // Written through the cache: kept at once.
    s.cached
        .write(FileType::Snapshot, &snap, sdata.clone(), false)
        .await
        .unwrap();
    assert!(s.cache.has(FileType::Snapshot, &snap));
    assert_eq!(s.cached.read(FileType::Index, &index).await.unwrap(), idata);
    assert!(s.cache.has(FileType::Index, &index));
    // Gone from the store, still read: from the cache.
    remove_from_store(&s, FileType::Index, &index);
    assert_eq!(s.cached.read(FileType::Index, &index).await.unwrap(), idata);
    // The store's listing no longer has it: dropped from the cache too.
    s.cached.list(FileType::Index).await.unwrap();
    assert!(!s.cache.has(FileType::Index, &index));
    assert!(s.cached.read(FileType::Index, &index).await.is_err());
    // Removed through the cache: gone from both.
    s.cached.remove(FileType::Snapshot, &snap).await.unwrap();
    assert!(!s.cache.has(FileType::Snapshot, &snap));
}

#[tokio::test]
async fn tree_packs_are_kept_whole_and_data_packs_never() {
    let s = store().await;
    let (tree, tdata) = file(6, 4096);
    let (data, ddata) = file(7, 4096);
    s.backend
        .write(FileType::Pack, &tree, tdata.clone(), false)
        .await
        .unwrap();
    s.cached
        .write_pack(&data, ddata.clone(), PackKind::Data)
        .await
        .unwrap();
    let part = s
        .cached
        .read_pack_range(&tree, 100, 50, PackKind::Tree)
        .await
        .unwrap();
    assert_eq!(part, tdata.slice(100..150));
    assert!(
        s.cache.has(FileType::Pack, &tree),
        "the whole tree pack is cached"
    );
    let part = s
        .cached
        .read_pack_range(&data, 10, 20, PackKind::Data)
        .await
        .unwrap();
    assert_eq!(part, ddata.slice(10..30));
    assert!(s.cache.names(FileType::Pack) == vec![tree.clone()]);
    remove_from_store(&s, FileType::Pack, &tree);
    let part = s
        .cached
        .read_pack_range(&tree, 4000, 96, PackKind::Tree)
        .await
        .unwrap();
    assert_eq!(part, tdata.slice(4000..4096));
    // A cached copy the engine found damaged is dropped, and the store is read again (here:
    // gone, so the read fails instead of serving the cache).
    s.cached.forget_cached(FileType::Pack, &tree);
    assert!(!s.cache.has(FileType::Pack, &tree));
    assert!(s
        .cached
        .read_pack_range(&tree, 0, 10, PackKind::Tree)
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_readers_of_one_tree_pack_fetch_it_once() {
    let s = store().await;
    let (tree, tdata) = file(8, 64 * 1024);
    s.backend
        .write(FileType::Pack, &tree, tdata.clone(), false)
        .await
        .unwrap();
    // The store behind a wrapper that counts what reaches it.
    let counted = Arc::new(crate::faults::FaultyBackend::new(
        s.backend.clone(),
        Default::default(),
    ));
    let cached = Arc::new(CachedBackend::new(counted.clone(), s.cache.clone()));
    let reads: Vec<_> = (0..16u64)
        .map(|i| {
            let (cached, tree) = (cached.clone(), tree.clone());
            tokio::spawn(async move {
                cached
                    .read_pack_range(&tree, i * 1024, 1024, PackKind::Tree)
                    .await
                    .unwrap()
            })
        })
        .collect();
    for (i, r) in reads.into_iter().enumerate() {
        assert_eq!(r.await.unwrap(), tdata.slice(i * 1024..(i + 1) * 1024));
    }
    assert_eq!(counted.requests(), 1, "sixteen readers, one download");
    let leftovers: Vec<_> = std::fs::read_dir(s.cache.dir().join("data").join(&tree[..2]))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");
}
