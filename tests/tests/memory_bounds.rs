//! Memory is bounded by the work in flight, not by the shape or size of what the repository
//! holds: a 9 MB repository whose tree is 30,000 folders deep, and a single 2 GiB pack, are
//! listed, dumped, restored and checked (`--read-data`) by the real `arca` binary within
//! 200 MB of resident memory each (measured with `wait4`, the child's own peak).
//!
//! A tree reached by many paths (a DAG: every folder of a level is the same tree) is
//! restored batch by batch: 262,144 files from a repository of a few kilobytes, within the
//! same bound, where planning every path first took gigabytes.
//!
//! The repositories are written here through the format API, streamed to disk (the test
//! does not hold the 2 GiB either).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arca_engine::Repository;
use arca_format::crypto::Key;
use arca_format::index::{IndexBlob, IndexFile, IndexPack};
use arca_format::keyfile::KdfParams;
use arca_format::pack::{self, BlobType, PackedBlob};
use arca_format::tree::{go_mode_from_unix, Node, NodeType, Tree};
use arca_format::Id;
use arca_storage::{DynBackend, FileType, LocalBackend};
use arca_tests::*;

const PASSWORD: &str = "memory";
/// Folders in the chain.
const DEPTH: usize = 30_000;
/// The big file: this many blobs of `BLOB` bytes, all in one pack of just over 2 GiB.
const BLOBS: usize = 512;
const BLOB: usize = 4 << 20;
/// The bound each command must stay within.
const LIMIT_KIB: u64 = 200 * 1024;

fn tree_json(nodes: &[Node]) -> Vec<u8> {
    Tree::new(nodes.to_vec()).encode().expect("a valid tree")
}

fn dir_node(name: &[u8], subtree: Id) -> Node {
    let mut n = Node::new(name, NodeType::Dir);
    n.mode = go_mode_from_unix(0o040755);
    n.subtree = Some(subtree);
    n
}

fn file_node(name: &[u8], content: Vec<Id>, size: u64) -> Node {
    let mut n = Node::new(name, NodeType::File);
    n.mode = go_mode_from_unix(0o100644);
    n.size = size;
    n.content = Some(content);
    n
}

/// The DAG: each tree holds `WIDTH` entries with names of `NAME` bytes; `LEVELS` levels of
/// folders over a tree of `WIDTH` empty files, so `WIDTH^(LEVELS+1)` files in all.
const WIDTH: usize = 64;
const LEVELS: usize = 2;
const NAME: usize = 250;

/// Writes one pack file blob by blob, hashing as it goes, and gives its index entry.
struct PackFile {
    file: std::io::BufWriter<std::fs::File>,
    tmp: std::path::PathBuf,
    hasher: sha2::Sha256,
    blobs: Vec<PackedBlob>,
    len: u64,
}

impl PackFile {
    fn new(dir: &Path) -> PackFile {
        let tmp = dir.join("pack.tmp");
        PackFile {
            file: std::io::BufWriter::new(std::fs::File::create(&tmp).unwrap()),
            tmp,
            hasher: <sha2::Sha256 as sha2::Digest>::new(),
            blobs: Vec::new(),
            len: 0,
        }
    }

    fn put(&mut self, key: &Key, blob_type: BlobType, plain: &[u8]) -> Id {
        let sealed = key.seal(plain);
        let id = Id::hash(plain);
        self.blobs.push(PackedBlob {
            blob_type,
            id,
            offset: u32::try_from(self.len).expect("below 4 GiB"),
            length: sealed.len() as u32,
            uncompressed_length: 0,
        });
        self.write(&sealed);
        id
    }

    fn write(&mut self, bytes: &[u8]) {
        sha2::Digest::update(&mut self.hasher, bytes);
        self.file.write_all(bytes).unwrap();
        self.len += bytes.len() as u64;
    }

    /// Close it under its ID in the repository at `repo`.
    fn finish(mut self, key: &Key, repo: &Path) -> IndexPack {
        let trailer = pack::header_trailer(key, &self.blobs);
        self.write(&trailer);
        self.file.flush().unwrap();
        let id = Id(sha2::Digest::finalize(self.hasher).into());
        let hex = id.to_hex();
        let dest = repo.join("data").join(&hex[..2]).join(&hex);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::rename(&self.tmp, dest).unwrap();
        IndexPack {
            id,
            blobs: self.blobs.iter().map(IndexBlob::from_packed).collect(),
        }
    }
}

/// The repository at `dir/repo`: one snapshot whose root holds `big` (the 2 GiB file, in a
/// pack of its own) and `deep` (30,000 nested folders `d`, a small file at the bottom).
/// Returns the big file's SHA-256.
async fn make_repository(dir: &Path) -> [u8; 32] {
    let path = dir.join("repo");
    let repo = init(&path).await;
    let key = repo.key().clone();

    let mut big = PackFile::new(dir);
    let mut whole = <sha2::Sha256 as sha2::Digest>::new();
    let mut rng = DetRng::new(7);
    let mut chunk = vec![0u8; BLOB];
    let mut content = Vec::with_capacity(BLOBS);
    for _ in 0..BLOBS {
        rng.fill(&mut chunk);
        sha2::Digest::update(&mut whole, &chunk);
        content.push(big.put(&key, BlobType::Data, &chunk));
    }
    let big = big.finish(&key, &path);

    let mut small = PackFile::new(dir);
    let payload = b"at the bottom\n";
    let payload_id = small.put(&key, BlobType::Data, payload);
    let mut sub = small.put(
        &key,
        BlobType::Tree,
        &tree_json(&[file_node(b"f", vec![payload_id], payload.len() as u64)]),
    );
    for _ in 0..DEPTH {
        sub = small.put(&key, BlobType::Tree, &tree_json(&[dir_node(b"d", sub)]));
    }
    let size = (BLOBS * BLOB) as u64;
    let root = small.put(
        &key,
        BlobType::Tree,
        &tree_json(&[file_node(b"big", content, size), dir_node(b"deep", sub)]),
    );
    let small = small.finish(&key, &path);
    save_snapshot(&repo, vec![big, small], root).await;
    sha2::Digest::finalize(whole).into()
}

async fn init(path: &Path) -> Repository {
    let backend: DynBackend = Arc::new(LocalBackend::new(path));
    Repository::init(
        backend,
        PASSWORD,
        2,
        None,
        KdfParams {
            n: 1024,
            r: 8,
            p: 1,
        },
    )
    .await
    .unwrap()
}

/// Stores the index of `packs` and a snapshot of the tree `root`.
async fn save_snapshot(repo: &Repository, packs: Vec<IndexPack>, root: Id) {
    let index = IndexFile {
        supersedes: None,
        packs,
    };
    repo.save_unpacked(FileType::Index, &index.to_json())
        .await
        .unwrap();
    let snapshot = serde_json::json!({
        "time": "2026-12-05T12:00:00Z",
        "tree": root.to_hex(),
        "paths": ["/memory"],
        "hostname": "arca",
        "username": "test",
    });
    repo.save_unpacked(FileType::Snapshot, &serde_json::to_vec(&snapshot).unwrap())
        .await
        .unwrap();
}

/// A name of `NAME` bytes ending in the number `i`.
fn long_name(prefix: u8, i: usize) -> Vec<u8> {
    let mut name = vec![prefix; NAME];
    let digits = format!("{i:03}");
    name[NAME - 3..].copy_from_slice(digits.as_bytes());
    name
}

/// The repository at `dir/dag`: the DAG described at [`WIDTH`], in a pack of a few KiB.
async fn make_dag_repository(dir: &Path) {
    let path = dir.join("dag");
    let repo = init(&path).await;
    let key = repo.key().clone();
    let mut pack = PackFile::new(dir);
    let files: Vec<Node> = (0..WIDTH)
        .map(|i| file_node(&long_name(b'f', i), Vec::new(), 0))
        .collect();
    let mut sub = pack.put(&key, BlobType::Tree, &tree_json(&files));
    for _ in 0..LEVELS {
        let dirs: Vec<Node> = (0..WIDTH)
            .map(|i| dir_node(&long_name(b'd', i), sub))
            .collect();
        sub = pack.put(&key, BlobType::Tree, &tree_json(&dirs));
    }
    let pack = pack.finish(&key, &path);
    save_snapshot(&repo, vec![pack], sub).await;
}

/// Files and folders below `dir`, counted without following links.
fn count_below(dir: &Path) -> (u64, u64) {
    let (mut files, mut dirs) = (0, 0);
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                dirs += 1;
                todo.push(e.path());
            } else {
                files += 1;
            }
        }
    }
    (files, dirs)
}

fn measured(arca: &Arca, args: &[&str]) -> Measured {
    let m = run_measured(arca.cmd(args).command());
    eprintln!(
        "arca {}: exit {}, peak RSS {} KiB, {} lines out",
        args.join(" "),
        m.code,
        m.peak_rss_kib,
        m.stdout_lines
    );
    assert!(
        m.peak_rss_kib < LIMIT_KIB,
        "arca {} took {} KiB of resident memory (limit {LIMIT_KIB} KiB)\n{}",
        args.join(" "),
        m.peak_rss_kib,
        m.stderr
    );
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_tree_and_a_huge_pack_are_handled_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let big_sha = make_repository(dir.path()).await;
    let arca = Arca::new(dir.path().join("repo"), PASSWORD);

    // ls: every item, printed as it is found.
    let ls = measured(&arca, &["ls", "latest"]);
    assert_eq!(ls.code, 0, "{}", ls.stderr);
    // The snapshot line, big, deep, each folder of the chain and the file at the bottom.
    assert_eq!(ls.stdout_lines, 1 + 2 + DEPTH as u64 + 1);

    // dump: the 2 GiB file, and the whole tree as a tar archive, written as they are read.
    let dump = measured(&arca, &["dump", "latest", "/big"]);
    assert_eq!(dump.code, 0, "{}", dump.stderr);
    assert_eq!(dump.stdout_bytes, (BLOBS * BLOB) as u64);
    let tar = measured(&arca, &["dump", "latest", "/"]);
    assert_eq!(tar.code, 0, "{}", tar.stderr);
    assert!(tar.stdout_bytes > (BLOBS * BLOB) as u64);

    // check --read-data: the 2 GiB pack is streamed.
    let check = measured(&arca, &["check", "--read-data"]);
    assert_eq!(check.code, 0, "{}", check.stderr);

    // restore: the big file whole; the chain as deep as a path may be, and one line for
    // what lies deeper.
    let target = dir.path().join("target");
    let restore = measured(
        &arca,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    );
    assert_ne!(restore.code, 0, "the part too deep for a path is an error");
    let too_deep: Vec<&str> = restore
        .stderr
        .lines()
        .filter(|l| l.contains("path longer than"))
        .collect();
    assert_eq!(too_deep.len(), 1, "{}", restore.stderr);
    let mut file = std::fs::File::open(target.join("big")).unwrap();
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    std::io::copy(&mut file, &mut hasher).unwrap();
    let restored: [u8; 32] = sha2::Digest::finalize(hasher).into();
    assert_eq!(restored, big_sha, "the 2 GiB file restored exactly");
    let mut depth = 0;
    let mut at = target.join("deep");
    while at.join("d").is_dir() {
        at.push("d");
        depth += 1;
    }
    assert!(
        depth > 1000 && depth < DEPTH,
        "restored {depth} levels of the chain"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_reached_by_many_paths_is_restored_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    make_dag_repository(dir.path()).await;
    let repo_size: u64 = std::fs::read_dir(dir.path().join("dag/data"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().metadata().unwrap().len())
        .sum();
    eprintln!("the DAG's trees: {repo_size} bytes of packs");
    let arca = Arca::new(dir.path().join("dag"), PASSWORD);
    let target = dir.path().join("target");
    let restore = measured(
        &arca,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    );
    assert_eq!(restore.code, 0, "{}", restore.stderr);
    let (files, dirs) = count_below(&target);
    let expected_dirs: u64 = (1..=LEVELS as u32).map(|l| WIDTH.pow(l) as u64).sum();
    assert_eq!(
        files,
        WIDTH.pow(LEVELS as u32 + 1) as u64,
        "every path restored"
    );
    assert_eq!(dirs, expected_dirs);
    // The folders' metadata came after their contents: the deepest ones have the tree's
    // mode, not the private mode they were made with.
    let mut deepest = target.clone();
    for _ in 0..LEVELS {
        deepest.push(std::ffi::OsStr::from_bytes(&long_name(b'd', WIDTH - 1)));
    }
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&deepest).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o755, "{}", deepest.display());
}
