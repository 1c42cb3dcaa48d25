//! Writes the seed corpora, `seeds/<target>/*`, from Arca's own encoders.
//!
//! Run from `fuzz/`: `cargo run --example make_seeds`. Deterministic: rerunning rewrites the
//! same files.

use arca_format::compression::{self, Mode};
use arca_format::config::Config;
use arca_format::gotime::GoTime;
use arca_format::index::{IndexBlob, IndexFile, IndexPack};
use arca_format::keyfile;
use arca_format::lock::Lock;
use arca_format::pack::{self, BlobType, PackedBlob};
use arca_format::snapshot::{Snapshot, Summary};
use arca_format::tree::{ExtendedAttribute, Node, NodeType, Tree};
use arca_format::Id;
use arca_fuzz::seg;
use std::path::{Path, PathBuf};

fn time(s: &str) -> GoTime {
    GoTime::parse(s).expect("valid time")
}

fn sample_blobs() -> Vec<PackedBlob> {
    let mut v = Vec::new();
    let mut offset = 0;
    for i in 0..4u8 {
        let length = 45 + 10 * i as u32;
        v.push(PackedBlob {
            blob_type: if i == 0 {
                BlobType::Tree
            } else {
                BlobType::Data
            },
            id: Id::hash(&[i]),
            offset,
            length,
            uncompressed_length: if i % 2 == 1 { 200 + i as u32 } else { 0 },
        });
        offset += length;
    }
    v
}

fn snapshot(tree: Id, full: bool) -> Snapshot {
    Snapshot {
        time: time("2026-01-02T18:10:50.895208559+02:00"),
        parent: full.then(|| Id::hash(b"parent")),
        tree,
        paths: vec!["/home/user/work".into()],
        hostname: "fuzz".into(),
        username: "root".into(),
        uid: if full { 1000 } else { 0 },
        gid: if full { 100 } else { 0 },
        excludes: if full { vec!["*.tmp".into()] } else { vec![] },
        tags: if full {
            vec!["a".into(), "b".into()]
        } else {
            vec![]
        },
        original: None,
        program_version: "arca 0.1.0".into(),
        summary: full.then(|| Summary {
            backup_start: Some(time("2026-01-02T16:10:50Z")),
            backup_end: Some(time("2026-01-02T16:10:51.5Z")),
            files_new: 3,
            data_blobs: 2,
            total_bytes_processed: 11,
            ..Summary::default()
        }),
        id: Id::default(),
    }
}

fn lock(exclusive: bool) -> Lock {
    Lock {
        time: time("2026-01-02T18:10:50.5+02:00"),
        exclusive,
        hostname: "fuzz".into(),
        username: "root".into(),
        pid: 4242,
        uid: 0,
        gid: 0,
    }
}

/// One `open_repository` input under construction; blob IDs in bodies become `$b<n>`.
struct RepoSeed {
    out: Vec<u8>,
    blobs: Vec<Id>,
}

impl RepoSeed {
    fn new() -> RepoSeed {
        RepoSeed {
            out: Vec::new(),
            blobs: Vec::new(),
        }
    }

    fn placeholders(&self, body: &[u8]) -> Vec<u8> {
        let mut s = body.to_vec();
        for (n, id) in self.blobs.iter().enumerate() {
            let hex = id.to_hex().into_bytes();
            let ph = [b'$', b'b', b'0' + n as u8];
            let mut out = Vec::with_capacity(s.len());
            let mut i = 0;
            while i < s.len() {
                if s[i..].starts_with(&hex) {
                    out.extend_from_slice(&ph);
                    i += hex.len();
                } else {
                    out.push(s[i]);
                    i += 1;
                }
            }
            s = out;
        }
        s
    }

    fn seg(&mut self, kind: u8, flags: u8, body: &[u8]) -> &mut Self {
        let body = self.placeholders(body);
        seg::push(&mut self.out, kind, flags, &body);
        self
    }

    fn data(&mut self, flags: u8, plain: &[u8]) -> Id {
        self.seg(seg::DATA_BLOB, flags, plain);
        let id = Id::hash(plain);
        self.blobs.push(id);
        id
    }

    fn tree(&mut self, flags: u8, t: &Tree) -> Id {
        let json = t.encode().expect("seed tree encodes");
        self.seg(seg::TREE_BLOB, flags, &json);
        let id = Id::hash(&json);
        self.blobs.push(id);
        id
    }
}

fn file(name: &str, content: Vec<Id>, size: u64) -> Node {
    let mut n = Node::new(name, NodeType::File);
    n.mode = 0o644;
    n.size = size;
    n.content = Some(content);
    n.mtime = time("2026-01-02T18:10:50.123+02:00");
    n.atime = n.mtime;
    n.ctime = n.mtime;
    n.uid = 1000;
    n.gid = 100;
    n.user = "user".into();
    n.inode = 1;
    n.links = 1;
    n
}

fn dir(name: &str, subtree: Id) -> Node {
    let mut n = Node::new(name, NodeType::Dir);
    n.mode = arca_format::tree::MODE_DIR | 0o755;
    n.subtree = Some(subtree);
    n.mtime = time("2026-01-02T18:10:51Z");
    n
}

fn sorted(mut nodes: Vec<Node>) -> Tree {
    let mut t = Tree::new(std::mem::take(&mut nodes));
    t.sort();
    t
}

/// A complete, valid v2 repository: compressed and plain blobs, two packs, an index, two
/// snapshots and a lock.
fn repo_full() -> Vec<u8> {
    let mut r = RepoSeed::new();
    let hello = r.data(1, b"hello, fuzzer\n");
    let world = r.data(0, b"world\n");
    let zeros = r.data(1, &[0u8; 3000]);
    let mut inner = vec![
        file("a.txt", vec![hello], 14),
        file("b.txt", vec![world, hello], 20),
        file("empty", vec![], 0),
        file("zeros", vec![zeros], 3000),
    ];
    let mut link = Node::new("link", NodeType::Symlink);
    link.set_link_target(b"a.txt");
    link.mode = arca_format::tree::MODE_SYMLINK | 0o777;
    inner.push(link);
    let sub = r.tree(1, &sorted(inner));
    r.seg(seg::FINISH_PACK, 0, b"");
    let root = r.tree(
        0,
        &sorted(vec![dir("sub", sub), file("top", vec![world], 6)]),
    );
    r.seg(seg::FINISH_PACK, 0, b"");
    r.seg(seg::AUTO_INDEX, 0, b"");
    let s1 = snapshot(root, true).to_json();
    r.seg(seg::SNAPSHOT, 0, &s1);
    let s2 = snapshot(sub, false).to_json();
    r.seg(seg::SNAPSHOT, 2, &s2);
    r.seg(seg::LOCK, 0, &lock(false).to_json());
    r.out
}

/// A v1 repository with uncompressed JSON and an index written by hand.
fn repo_v1() -> Vec<u8> {
    let mut r = RepoSeed::new();
    let cfg = Config {
        version: 1,
        id: "cd".repeat(32),
        chunker_polynomial: 0x3DA3358B4DC173,
    };
    r.seg(seg::CONFIG, 0, &cfg.to_json());
    let d = r.data(0, b"version one data");
    let root = r.tree(0, &sorted(vec![file("f", vec![d], 16)]));
    r.seg(seg::FINISH_PACK, 0, b"");
    r.seg(seg::AUTO_INDEX, 2, b"");
    r.seg(seg::SNAPSHOT, 2, &snapshot(root, false).to_json());
    r.out
}

/// Node types and metadata restore has to handle: hard links, fifo, device, xattrs, special
/// modes, a read-only directory, a non-UTF-8 name, and a second index naming the same pack.
fn repo_special() -> Vec<u8> {
    let mut r = RepoSeed::new();
    let d = r.data(0, b"shared");
    let mut h1 = file("h1", vec![d], 6);
    h1.links = 2;
    h1.inode = 77;
    h1.device_id = 5;
    let mut h2 = h1.clone();
    h2.name = b"h2".to_vec();
    let mut x = file("xattr", vec![d], 6);
    x.extended_attributes = vec![ExtendedAttribute {
        name: "user.fuzz".into(),
        value: b"v".to_vec(),
    }];
    x.mode = arca_format::tree::MODE_SETUID | 0o4755;
    let mut fifo = Node::new("fifo", NodeType::Fifo);
    fifo.mode = arca_format::tree::MODE_NAMED_PIPE | 0o600;
    let mut dev = Node::new("null", NodeType::Chardev);
    dev.mode = arca_format::tree::MODE_DEVICE | arca_format::tree::MODE_CHAR_DEVICE | 0o666;
    dev.device = 0x0103;
    let mut odd = file("", vec![d], 6);
    odd.name = b"bad\xffname\n".to_vec();
    let ro_inner = r.tree(0, &sorted(vec![file("inside", vec![d], 6)]));
    let mut ro = dir("ro", ro_inner);
    ro.mode = arca_format::tree::MODE_DIR | 0o500;
    // Pointing next to the restore target (at the harness's tripwire): harmless as a link.
    let mut out = Node::new("out", NodeType::Symlink);
    out.set_link_target(b"../../outside");
    let root = r.tree(0, &sorted(vec![h1, h2, x, fifo, dev, odd, ro, out]));
    r.seg(seg::FINISH_PACK, 0, b"");
    r.seg(seg::AUTO_INDEX, 0, b"");
    r.seg(seg::AUTO_INDEX, 2, b"");
    r.seg(seg::SNAPSHOT, 0, &snapshot(root, true).to_json());
    r.out
}

/// Damage of several kinds: a corrupted blob, a blob with a wrong ID, a pack with extra header
/// bytes, a missing pack, a raw (unsealed) index and a snapshot under the wrong name.
fn repo_damaged() -> Vec<u8> {
    let mut r = RepoSeed::new();
    let good = r.data(0, b"good");
    let bad = r.data(2, b"corrupted");
    let wrong = r.data(4, b"wrong id");
    let root = r.tree(0, &sorted(vec![file("f", vec![good, bad, wrong], 21)]));
    r.seg(seg::FINISH_PACK, 1, &[3, 0, 0, 0, 0]);
    let lost = r.data(0, b"lost");
    r.seg(seg::FINISH_PACK, 8, b"");
    r.seg(seg::AUTO_INDEX, 0, b"");
    let idx = IndexFile {
        supersedes: None,
        packs: vec![IndexPack {
            id: Id::hash(b"nope"),
            blobs: vec![IndexBlob {
                id: lost,
                blob_type: BlobType::Data,
                offset: 0,
                length: 36,
                uncompressed_length: None,
            }],
        }],
    };
    r.seg(seg::INDEX, 1, &idx.to_json());
    r.seg(seg::SNAPSHOT, 0, &snapshot(root, false).to_json());
    r.seg(seg::SNAPSHOT, 4, &snapshot(root, true).to_json());
    r.seg(seg::RAW_FILE, 0, b"\x02{\"time\":\"2026-01-01T00:00:00Z\"}");
    r.out
}

/// An extra key file that opens with a different password, tried alongside the real one.
fn repo_two_keys() -> Vec<u8> {
    let mut r = RepoSeed::new();
    let other = keyfile::KeyFile::create(
        arca_fuzz::master(),
        b"other",
        arca_fuzz::TINY,
        "x",
        "y",
        None,
    )
    .expect("tiny params");
    let mut body = vec![1u8];
    body.extend_from_slice(&other.to_json());
    r.seg(seg::RAW_FILE, 0, &body);
    let root = r.tree(0, &Tree::default());
    r.seg(seg::FINISH_PACK, 0, b"");
    r.seg(seg::AUTO_INDEX, 0, b"");
    r.seg(seg::SNAPSHOT, 0, &snapshot(root, false).to_json());
    r.out
}

/// A tree naming `a` twice, as a directory holding `victim` and as a symlink to the harness's
/// tripwire directory next to the restore target (`link_first` swaps the order). Restoring the
/// directory's contents and then the symlink over it made the metadata pass (chmod, chown,
/// times) follow the symlink out of the target.
fn dup_name_escape(link_first: bool) -> Vec<u8> {
    let mut r = RepoSeed::new();
    let d = r.data(0, b"pwned");
    let mut victim = file("victim", vec![d], 5);
    victim.mode = 0o777;
    let inner = r.tree(0, &sorted(vec![victim]));
    let mut a_dir = dir("a", inner);
    a_dir.mode = arca_format::tree::MODE_DIR | 0o777;
    let mut a_link = Node::new("a", NodeType::Symlink);
    a_link.set_link_target(b"../../outside");
    let nodes = if link_first {
        [a_link, a_dir]
    } else {
        [a_dir, a_link]
    };
    let mut json = b"{\"nodes\":[".to_vec();
    for (i, n) in nodes.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        n.encode_json(&mut json);
    }
    json.extend_from_slice(b"]}\n");
    r.seg(seg::TREE_BLOB, 0, &json);
    let root = Id::hash(&json);
    r.blobs.push(root);
    r.seg(seg::FINISH_PACK, 0, b"");
    r.seg(seg::AUTO_INDEX, 0, b"");
    r.seg(seg::SNAPSHOT, 0, &snapshot(root, false).to_json());
    r.out
}

fn trees() -> Vec<Vec<u8>> {
    let mut n = file("f\"\\<&>\u{2028}", vec![Id::hash(b"a"), Id::hash(b"b")], 99);
    n.generic_attributes.insert(
        "windows.security_descriptor".into(),
        serde_json_value(r#"{"a":[1,2.5,null,"x<y"],"b":true}"#),
    );
    n.extended_attributes = vec![ExtendedAttribute {
        name: "user.x".into(),
        value: vec![0, 1, 255],
    }];
    let mut l = Node::new(b"l\xff".to_vec(), NodeType::Symlink);
    l.set_link_target(b"../t\xe4rget");
    let mut far = Node::new("far", NodeType::Socket);
    far.mtime = time("0000-01-01T00:00:00+14:00");
    far.ctime = time("9999-12-31T23:59:59.999999999-12:00");
    let t = sorted(vec![n, l, far, dir("d", Id::hash(b"d"))]);
    vec![
        t.encode().unwrap(),
        Tree::default().encode().unwrap(),
        br#"{"nodes":[{"name":"x","type":"file","mode":420,"mtime":"2015-01-02T18:10:50Z","atime":null,"content":null,"future":[1,{}]}]}"#.to_vec(),
    ]
}

fn serde_json_value(s: &str) -> serde_json::Value {
    serde_json::from_str(s).expect("valid JSON")
}

fn write(dir: &Path, name: &str, data: &[u8]) {
    std::fs::create_dir_all(dir).expect("create seed directory");
    std::fs::write(dir.join(name), data).expect("write seed");
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/keys");

    let d = root.join("keyfile");
    write(&d, "fuzz-key", arca_fuzz::key_file_json());
    write(
        &d,
        "master-key-json",
        &keyfile::master_key_json(arca_fuzz::master()),
    );
    for f in ["key1", "key-failing"] {
        if let Ok(b) = std::fs::read(fixtures.join(f)) {
            write(&d, &format!("rustic-{f}"), &b);
        }
    }

    let d = root.join("config");
    write(&d, "v2", &arca_fuzz::default_config().to_json());
    write(
        &d,
        "v1-restic",
        br#"{"version":1,"id":"434201af1f9fa185aba2ca00659fd8e6f88021b6929e12551ee3adce6df4f89c","chunker_polynomial":"32967ee8d59753"}"#,
    );

    let d = root.join("pack_header");
    let blobs = sample_blobs();
    let mut v = vec![0u8];
    v.extend_from_slice(&pack::encode_header(&blobs));
    write(&d, "v2-header", &v);
    let plain: Vec<PackedBlob> = blobs
        .iter()
        .filter(|b| !b.is_compressed())
        .copied()
        .collect();
    let mut v = vec![1u8];
    v.extend_from_slice(&pack::encode_header(&plain));
    write(&d, "v1-header", &v);
    // A whole pack tail (blob bytes, sealed header, length) as the raw input.
    let mut v = vec![0u8];
    let total: u32 = blobs.iter().map(|b| b.length).sum();
    v.extend(std::iter::repeat_n(0u8, total as usize));
    v.extend_from_slice(&pack::header_trailer(arca_fuzz::master(), &blobs));
    write(&d, "pack-tail", &v);

    let d = root.join("index");
    let idx = IndexFile {
        supersedes: Some(vec![Id::hash(b"old")]),
        packs: vec![
            IndexPack {
                id: Id::hash(b"pack1"),
                blobs: blobs.iter().map(IndexBlob::from_packed).collect(),
            },
            IndexPack {
                id: Id::hash(b"pack2"),
                blobs: plain.iter().map(IndexBlob::from_packed).collect(),
            },
        ],
    };
    write(&d, "v2", &idx.to_json());
    write(
        &d,
        "v1",
        &IndexFile {
            supersedes: None,
            packs: idx.packs[1..].to_vec(),
        }
        .to_json(),
    );

    let d = root.join("snapshot");
    write(&d, "full", &snapshot(Id::hash(b"tree"), true).to_json());
    write(&d, "minimal", &snapshot(Id::hash(b"tree"), false).to_json());
    write(
        &d,
        "restic",
        br#"{"time":"2015-01-02T18:10:50.895208559+02:00","tree":"2da81727b6585232894cfbb8f8bdab8d1eccd3d8f7c92bc934d62e62e618ffdf","paths":["/home/user/work"],"hostname":"kasimir","username":"fd0","uid":1000,"gid":100,"tags":null}"#,
    );

    let d = root.join("tree");
    for (i, t) in trees().iter().enumerate() {
        write(&d, &format!("tree-{i}"), t);
    }

    let d = root.join("lock");
    write(&d, "shared", &lock(false).to_json());
    write(&d, "exclusive", &lock(true).to_json());

    let d = root.join("unpacked");
    let json = IndexFile::default().to_json();
    let mut v = vec![0, 0, 0, 1];
    v.extend_from_slice(&compression::encode_unpacked(&json, 2));
    write(&d, "v2-index", &v);
    let text = b"hello hello hello hello hello".repeat(40);
    let want = (text.len() / 4) as u16;
    let mut v = want.to_le_bytes().to_vec();
    v.extend_from_slice(&[0xff, 0x00]);
    v.extend_from_slice(&compression::compress(&text, Mode::Auto));
    write(&d, "zstd-exact", &v);
    let mut v = vec![0, 0, 0x10, 0];
    v.extend_from_slice(&json);
    write(&d, "plain-json", &v);

    let d = root.join("open_repository");
    write(&d, "full-v2", &repo_full());
    write(&d, "v1", &repo_v1());
    write(&d, "special-nodes", &repo_special());
    write(&d, "damaged", &repo_damaged());
    write(&d, "two-keys", &repo_two_keys());

    // Regression inputs that are built rather than found by the fuzzer.
    let d = root.join("../regressions/open_repository");
    write(
        &d,
        "dup-name-dir-then-symlink-escape",
        &dup_name_escape(false),
    );
    write(
        &d,
        "dup-name-symlink-then-dir-escape",
        &dup_name_escape(true),
    );

    println!("seeds written to {}", root.display());
}
