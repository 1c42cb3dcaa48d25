//! The fuzz harnesses, as plain functions: each `fuzz_targets/<name>.rs` calls the function of the
//! same name, `tests/regressions.rs` replays `regressions/<name>/*` and `seeds/<name>/*` through
//! them, and `examples/make_seeds.rs` writes the seed corpora.
//!
//! A harness may return early on an error; it must never panic (except on a real bug), hang, or
//! touch anything outside its own temporary directory.

use arca_engine::check::{self, ReadData};
use arca_engine::filter::Patterns;
use arca_engine::index::Index;
use arca_engine::progress::NoProgress;
use arca_engine::restore::{self, Overwrite, RestoreOptions};
use arca_engine::snapshots::{self, SnapshotFilter};
use arca_engine::walk;
use arca_engine::Repository;
use arca_format::compression::{self, Mode};
use arca_format::config::Config;
use arca_format::crypto::Key;
use arca_format::index::{IndexBlob, IndexFile, IndexPack};
use arca_format::keyfile::{self, KdfParams, KeyFile};
use arca_format::lock::Lock;
use arca_format::pack::{self, BlobType, PackedBlob};
use arca_format::snapshot::Snapshot;
use arca_format::tree::{NodeType, Tree};
use arca_format::Id;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Every target, in the order `run.sh` runs them.
pub const TARGETS: &[&str] = &[
    "keyfile",
    "config",
    "pack_header",
    "index",
    "snapshot",
    "tree",
    "lock",
    "unpacked",
    "open_repository",
];

/// Runs the harness called `name` on `data`.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "keyfile" => keyfile(data),
        "config" => config(data),
        "pack_header" => pack_header(data),
        "index" => index(data),
        "snapshot" => snapshot(data),
        "tree" => tree(data),
        "lock" => lock(data),
        "unpacked" => unpacked(data),
        "open_repository" => open_repository(data),
        _ => panic!("unknown fuzz target {name:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed keys

/// The master key every fuzz repository uses.
pub fn master() -> &'static Key {
    static K: OnceLock<Key> = OnceLock::new();
    K.get_or_init(|| Key {
        encrypt: *b"arca-fuzz-master-key-encrypt-32b",
        mac_k: *b"arca-fuzz-mac-k!",
        mac_r: *b"arca-fuzz-mac-r!",
    })
}

/// The repository password of the fuzz key file.
pub const PASSWORD: &str = "fuzz";
/// scrypt parameters small enough to derive in microseconds.
pub const TINY: KdfParams = KdfParams { n: 16, r: 1, p: 1 };
const SALT: [u8; keyfile::SALT_LEN] = [0x5a; keyfile::SALT_LEN];

/// The user key derived from [`PASSWORD`] with [`TINY`] and the fixed salt.
pub fn user_key() -> &'static Key {
    static K: OnceLock<Key> = OnceLock::new();
    K.get_or_init(|| {
        TINY.derive(PASSWORD.as_bytes(), &SALT)
            .expect("tiny params")
    })
}

/// A deterministic IV (never zero) so that a crashing input replays identically.
fn iv_for(data: &[u8]) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&Id::hash(data).0[..16]);
    if iv == [0; 16] {
        iv[0] = 1;
    }
    iv
}

/// Seal under the master key with a deterministic IV.
pub fn seal(plain: &[u8]) -> Vec<u8> {
    master().seal_with_iv(&iv_for(plain), plain)
}

/// A key file for `PASSWORD` around `sealed_master` (normally the sealed master key JSON).
fn key_file_with_data(sealed: Vec<u8>) -> KeyFile {
    use base64::Engine;
    let encode = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    KeyFile {
        created: Some("2026-01-01T00:00:00Z".into()),
        username: "fuzz".into(),
        hostname: "fuzz".into(),
        kdf: "scrypt".into(),
        n: TINY.n,
        r: TINY.r,
        p: TINY.p,
        salt: encode(&SALT[..]),
        data: encode(&sealed),
    }
}

/// The key file JSON of every fuzz repository: `PASSWORD` opens it to [`master`].
pub fn key_file_json() -> &'static [u8] {
    static J: OnceLock<Vec<u8>> = OnceLock::new();
    J.get_or_init(|| {
        let json = keyfile::master_key_json(master());
        let sealed = user_key().seal_with_iv(&iv_for(&json), &json);
        key_file_with_data(sealed).to_json()
    })
}

/// scrypt work (N·r·p) above which a harness does not derive a key from a fuzzed key file.
const MAX_KDF_WORK: u64 = 1024;

fn cheap_kdf(kf: &KeyFile) -> bool {
    kf.n.checked_mul(kf.r as u64)
        .and_then(|w| w.checked_mul(kf.p as u64))
        .is_some_and(|w| w <= MAX_KDF_WORK)
}

// ---------------------------------------------------------------------------------------------
// Decoder targets

/// Key file JSON: parse, validate, open (when the KDF is cheap); the input also as the master
/// key JSON, directly and sealed inside a valid key file (so `open` reaches the JSON parser).
pub fn keyfile(data: &[u8]) {
    if let Ok(kf) = KeyFile::parse(data) {
        let _ = kf.to_json();
        let _ = kf.validate();
        if cheap_kdf(&kf) {
            let _ = kf.open(PASSWORD.as_bytes());
        }
    }
    if let Ok(k) = keyfile::parse_master_key_json(data) {
        let _ = keyfile::master_key_json(&k);
    }
    let sealed = user_key().seal_with_iv(&iv_for(data), data);
    if let Ok(k) = key_file_with_data(sealed).open(PASSWORD.as_bytes()) {
        assert!(k.is_valid(), "open returned a key with an all-zero part");
    }
}

/// The config JSON, and the chunker polynomial check `Repository::open` does after it.
pub fn config(data: &[u8]) {
    if let Ok(c) = Config::parse(data) {
        let again = Config::parse(&c.to_json()).expect("own config encoding parses");
        assert_eq!(again, c);
        let _ = arca_chunker::Pol(c.chunker_polynomial).irreducible();
    }
    let _ = master().open(data);
}

/// Pack headers: the first byte picks options, the rest is the header plaintext (decoded
/// directly and sealed into a pack tail so the parser is reached past the MAC) and, as is, a
/// pack tail.
pub fn pack_header(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let allow = flags & 1 == 0;
    if let Ok(blobs) = pack::decode_header(rest, allow) {
        let again = pack::decode_header(&pack::encode_header(&blobs), allow)
            .expect("own header encoding parses");
        assert_eq!(again, blobs);
        let _ = pack::pack_size(&blobs);
    }
    // Raw tail, as read from storage.
    let _ = pack::header_length(rest, rest.len() as u64);
    let _ = pack::parse_trailer(master(), rest, rest.len() as u64, allow);
    // Sealed header behind `prefix` bytes of blob data, in a pack of `size` bytes.
    let prefix = ((flags >> 1) as usize & 0x3f) * 37;
    let sealed = seal(rest);
    let mut tail = vec![0u8; prefix];
    tail.extend_from_slice(&sealed);
    tail.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
    for size in [
        tail.len() as u64,
        tail.len() as u64 + 1000,
        sealed.len() as u64 + 4,
    ] {
        if let Ok(blobs) = pack::parse_trailer(master(), &tail, size, allow) {
            let total: u64 = blobs.iter().map(|b| b.length as u64).sum();
            assert!(total + sealed.len() as u64 + 4 <= size, "blobs past header");
            for b in &blobs {
                let _ = b.data_length();
                assert!(b.offset as u64 + b.length as u64 <= size);
            }
        }
    }
}

/// Index JSON (v1 and v2 rules), then into the engine's in-memory index.
pub fn index(data: &[u8]) {
    for version in [1, 2] {
        let Ok(file) = IndexFile::parse(data, version) else {
            continue;
        };
        let again = IndexFile::parse(&file.to_json(), version).expect("own index encoding parses");
        assert_eq!(again.packs, file.packs);
        let mut idx = Index::default();
        idx.add_file(Id::hash(data), &file);
        idx.finish();
        for (pack_id, blobs) in idx.blobs_by_pack() {
            assert!(idx.has_pack(&pack_id));
            let _ = pack::pack_size(&blobs);
        }
        for p in &file.packs {
            for b in &p.blobs {
                assert!(idx.has(b.blob_type, &b.id));
                let _ = b.to_packed().data_length();
            }
        }
    }
}

/// Snapshot JSON, re-encoding and the filters.
pub fn snapshot(data: &[u8]) {
    let Ok(s) = Snapshot::parse(data, Id::hash(data)) else {
        return;
    };
    let json = s.to_json();
    let again = Snapshot::parse(&json, s.id).expect("own snapshot encoding parses");
    assert_eq!(again.tree, s.tree);
    let _ = s.time.format();
    let _ = s.time.unix_secs();
    let filter = SnapshotFilter {
        hosts: vec![s.hostname.clone()],
        tags: vec![s.tags.clone()],
        paths: s.paths.clone(),
    };
    let _ = filter.matches(&s);
}

/// Tree JSON; decoded trees re-encode (after sorting) and read back to the same nodes.
pub fn tree(data: &[u8]) {
    let Ok(mut t) = Tree::decode(data) else {
        return;
    };
    for n in &t.nodes {
        let _ = n.mtime.clamp_year();
        let _ = n.atime.format();
        let _ = n.ctime.unix_nanos_part();
        let _ = NodeType::from_go_mode(n.mode);
        let _ = arca_format::tree::unix_mode_from_go(n.mode);
        let _ = walk::join(b"/", &n.name);
        let _ = n.link_target_bytes();
    }
    let _ = t.encode();
    t.sort();
    t.nodes.dedup_by(|a, b| a.name == b.name);
    let enc = t.encode().expect("sorted tree with unique names encodes");
    let back = Tree::decode(&enc).expect("own tree encoding decodes");
    assert_eq!(back.nodes.len(), t.nodes.len());
    for (a, b) in back.nodes.iter().zip(&t.nodes) {
        assert_eq!(a.name, b.name);
        assert_eq!(a.content, b.content);
        assert_eq!(a.subtree, b.subtree);
    }
    // Encoding is a fixed point after one round (restic's tree IDs depend on it).
    assert_eq!(back.encode().expect("re-encodes"), enc);
}

/// Lock JSON and the staleness rule.
pub fn lock(data: &[u8]) {
    let Ok(l) = Lock::parse(data) else {
        return;
    };
    let _ = Lock::parse(&l.to_json()).expect("own lock encoding parses");
    let _ = l.is_stale(1_800_000_000, "fuzz", |_| true);
    let _ = l.is_stale(i64::MAX / 4, &l.hostname, |_| false);
}

/// Unpacked files (v1, v2) and zstd: the first bytes pick a length limit and the expected size.
pub fn unpacked(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let (head, rest) = data.split_at(4);
    let want = u16::from_le_bytes([head[0], head[1]]) as usize * 4;
    let limit = u16::from_le_bytes([head[2], head[3]]) as usize * 16;
    for version in [1, 2] {
        if let Ok(out) = compression::decode_unpacked(rest.to_vec(), version) {
            if version == 1 {
                assert_eq!(out, rest);
            }
        }
    }
    let _ = compression::decompress_limited(rest, limit);
    if let Ok(out) = compression::decompress_exact(rest, want) {
        assert_eq!(out.len(), want);
    }
    // As a blob: sealed, then through the engine's decrypt + decompress + hash check.
    let sealed = seal(rest);
    let blob = PackedBlob {
        blob_type: BlobType::Data,
        id: Id::hash(rest),
        offset: 0,
        length: sealed.len() as u32,
        uncompressed_length: want as u32,
    };
    let _ = arca_engine::repo::decode_blob(master(), &blob, &sealed);
    let mut plain = blob;
    plain.uncompressed_length = 0;
    arca_engine::repo::decode_blob(master(), &plain, &sealed).expect("uncompressed blob decodes");
}

// ---------------------------------------------------------------------------------------------
// Whole repositories

/// Segment kinds of an `open_repository` input (`kind % 10`).
pub mod seg {
    /// The config file. Flag 1: written raw (not sealed).
    pub const CONFIG: u8 = 0;
    /// Index, snapshot and lock files. Flag 1: raw; flag 2: not compressed (plain JSON);
    /// flag 4: stored under a name that is not its hash.
    pub const INDEX: u8 = 1;
    pub const SNAPSHOT: u8 = 2;
    pub const LOCK: u8 = 3;
    /// A blob in the current pack. Flag 1: compressed; flag 2: ciphertext damaged; flag 4: ID
    /// is not the hash of the plaintext; flag 8: stored as plaintext, not sealed.
    pub const DATA_BLOB: u8 = 4;
    pub const TREE_BLOB: u8 = 5;
    /// Ends the current pack and writes it. Flag 1: body appended to the header plaintext;
    /// flag 2: header plaintext is the body; flag 4: the body is the whole (raw) trailer;
    /// flag 8: the pack file is not written; flag 16: stored under a name that is not its hash.
    pub const FINISH_PACK: u8 = 6;
    /// An index of every finished pack. Flag 1: raw; flag 2: not compressed; flag 4: leaves
    /// out the last pack.
    pub const AUTO_INDEX: u8 = 7;
    /// A raw file: body[0] % 6 picks config, key, snapshot, index, lock or pack; the rest is
    /// the content, named by its hash (flag 1: by another name).
    pub const RAW_FILE: u8 = 8;
    /// Raw bytes in the current pack between blobs.
    pub const PACK_BYTES: u8 = 9;

    /// Appends one segment: kind, flags, little-endian u16 length, body.
    pub fn push(out: &mut Vec<u8>, kind: u8, flags: u8, body: &[u8]) {
        let len = u16::try_from(body.len()).expect("segment body fits in u16");
        out.push(kind);
        out.push(flags);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(body);
    }
}

/// At most this many segments are used from one input.
const MAX_SEGMENTS: usize = 96;
/// Walks stop after this many nodes; a snapshot whose walk stops is not restored (a DAG of
/// trees can name exponentially many paths, legitimately).
const MAX_WALK_NODES: usize = 4000;
/// At most this many snapshots are restored per input.
const MAX_RESTORES: usize = 3;

/// A valid v2 config (written when the input has no config segment).
pub fn default_config() -> Config {
    Config {
        version: 2,
        id: "ab".repeat(32),
        chunker_polynomial: 0x3DA3358B4DC173,
    }
}

fn segments(data: &[u8]) -> Vec<(u8, u8, &[u8])> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 4 <= data.len() && out.len() < MAX_SEGMENTS {
        let kind = data[pos] % 10;
        let flags = data[pos + 1];
        let len = u16::from_le_bytes([data[pos + 2], data[pos + 3]]) as usize;
        let start = pos + 4;
        let end = start.saturating_add(len).min(data.len());
        out.push((kind, flags, &data[start..end]));
        pos = end;
    }
    out
}

/// Replaces `$b<c>` with the hex ID of blob number `c - '0'` and `$p<c>` with that of pack
/// number `c - '0'` (when it exists), so inputs can refer to content hashes.
pub fn substitute(body: &[u8], blobs: &[Id], packs: &[Id]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 64);
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'$' && i + 2 < body.len() {
            let n = body[i + 2].wrapping_sub(b'0') as usize;
            let list = match body[i + 1] {
                b'b' => Some(blobs),
                b'p' => Some(packs),
                _ => None,
            };
            if let Some(id) = list.and_then(|l| l.get(n)) {
                out.extend_from_slice(id.to_hex().as_bytes());
                i += 3;
                continue;
            }
        }
        out.push(body[i]);
        i += 1;
    }
    out
}

fn other_name(content: &[u8]) -> Id {
    let mut v = content.to_vec();
    v.extend_from_slice(b"!other");
    Id::hash(&v)
}

struct RepoBuilder {
    root: PathBuf,
    blobs: Vec<Id>,
    packs: Vec<Id>,
    /// Finished packs with their blobs, for AUTO_INDEX.
    finished: Vec<(Id, Vec<PackedBlob>)>,
    cur_data: Vec<u8>,
    cur_blobs: Vec<PackedBlob>,
    config_written: bool,
}

impl RepoBuilder {
    fn new(root: &Path) -> std::io::Result<RepoBuilder> {
        for d in ["keys", "snapshots", "index", "locks", "data"] {
            std::fs::create_dir_all(root.join(d))?;
        }
        let kf = key_file_json();
        std::fs::write(root.join("keys").join(Id::hash(kf).to_hex()), kf)?;
        Ok(RepoBuilder {
            root: root.to_path_buf(),
            blobs: Vec::new(),
            packs: Vec::new(),
            finished: Vec::new(),
            cur_data: Vec::new(),
            cur_blobs: Vec::new(),
            config_written: false,
        })
    }

    fn path(&self, ty: u8, name: &Id) -> PathBuf {
        let hex = name.to_hex();
        match ty {
            0 => self.root.join("config"),
            1 => self.root.join("keys").join(hex),
            2 => self.root.join("snapshots").join(hex),
            3 => self.root.join("index").join(hex),
            4 => self.root.join("locks").join(hex),
            _ => self.root.join("data").join(&hex[..2]).join(hex),
        }
    }

    fn write(&self, ty: u8, name: &Id, content: &[u8]) -> std::io::Result<()> {
        let p = self.path(ty, name);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(p, content)
    }

    /// Index, snapshot or lock file: JSON -> (v2 compression) -> seal -> name by hash.
    fn unpacked_file(&self, ty: u8, flags: u8, json: &[u8]) -> std::io::Result<()> {
        let plain = if flags & 2 == 0 {
            compression::encode_unpacked(json, 2)
        } else {
            json.to_vec()
        };
        let content = if flags & 1 == 0 { seal(&plain) } else { plain };
        let name = if flags & 4 == 0 {
            Id::hash(&content)
        } else {
            other_name(&content)
        };
        self.write(ty, &name, &content)
    }

    fn blob(&mut self, blob_type: BlobType, flags: u8, plain: &[u8]) {
        let id = if flags & 4 == 0 {
            Id::hash(plain)
        } else {
            other_name(plain)
        };
        let (stored_plain, uncompressed_length) = if flags & 1 != 0 {
            (
                compression::compress(plain, Mode::Fastest),
                plain.len() as u32,
            )
        } else {
            (plain.to_vec(), 0)
        };
        let mut stored = if flags & 8 == 0 {
            seal(&stored_plain)
        } else {
            stored_plain
        };
        if flags & 2 != 0 {
            if let Some(last) = stored.last_mut() {
                *last ^= 0x55;
            }
        }
        let offset = self.cur_data.len() as u32;
        self.cur_data.extend_from_slice(&stored);
        self.cur_blobs.push(PackedBlob {
            blob_type,
            id,
            offset,
            length: stored.len() as u32,
            uncompressed_length,
        });
        self.blobs.push(id);
    }

    fn finish_pack(&mut self, flags: u8, body: &[u8]) -> std::io::Result<()> {
        let mut data = std::mem::take(&mut self.cur_data);
        let blobs = std::mem::take(&mut self.cur_blobs);
        if flags & 4 != 0 {
            data.extend_from_slice(body);
        } else {
            let mut header = if flags & 2 != 0 {
                Vec::new()
            } else {
                pack::encode_header(&blobs)
            };
            if flags & 3 != 0 {
                header.extend_from_slice(body);
            }
            let sealed = seal(&header);
            data.extend_from_slice(&sealed);
            data.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        }
        let id = Id::hash(&data);
        let name = if flags & 16 == 0 {
            id
        } else {
            other_name(&data)
        };
        if flags & 8 == 0 {
            self.write(5, &name, &data)?;
        }
        self.packs.push(name);
        self.finished.push((name, blobs));
        Ok(())
    }

    fn auto_index(&self, flags: u8) -> std::io::Result<()> {
        let mut packs: &[(Id, Vec<PackedBlob>)] = &self.finished;
        if flags & 4 != 0 && !packs.is_empty() {
            packs = &packs[..packs.len() - 1];
        }
        let file = IndexFile {
            supersedes: None,
            packs: packs
                .iter()
                .map(|(id, blobs)| IndexPack {
                    id: *id,
                    blobs: blobs.iter().map(IndexBlob::from_packed).collect(),
                })
                .collect(),
        };
        self.unpacked_file(3, flags & 3, &file.to_json())
    }

    fn raw_file(&self, flags: u8, body: &[u8]) -> std::io::Result<()> {
        let Some((&ty, content)) = body.split_first() else {
            return Ok(());
        };
        let ty = ty % 6;
        if ty == 1 {
            // Extra key files are tried before or after ours; never let one cost real scrypt
            // work (the KDF parameters are the key file's own, legitimately).
            if let Ok(kf) = KeyFile::parse(content) {
                if !cheap_kdf(&kf) {
                    return Ok(());
                }
            }
        }
        let name = if flags & 1 == 0 {
            Id::hash(content)
        } else {
            other_name(content)
        };
        self.write(ty, &name, content)
    }

    fn build(&mut self, data: &[u8]) -> std::io::Result<()> {
        for (kind, flags, body) in segments(data) {
            let body = substitute(body, &self.blobs, &self.packs);
            match kind {
                seg::CONFIG => {
                    let content = if flags & 1 == 0 { seal(&body) } else { body };
                    std::fs::write(self.root.join("config"), content)?;
                    self.config_written = true;
                }
                seg::INDEX => self.unpacked_file(3, flags, &body)?,
                seg::SNAPSHOT => self.unpacked_file(2, flags, &body)?,
                seg::LOCK => self.unpacked_file(4, flags, &body)?,
                seg::DATA_BLOB => self.blob(BlobType::Data, flags, &body),
                seg::TREE_BLOB => self.blob(BlobType::Tree, flags, &body),
                seg::FINISH_PACK => self.finish_pack(flags, &body)?,
                seg::AUTO_INDEX => self.auto_index(flags)?,
                seg::RAW_FILE => self.raw_file(flags, &body)?,
                _ => self.cur_data.extend_from_slice(&body),
            }
        }
        if !self.config_written {
            std::fs::write(self.root.join("config"), seal(&default_config().to_json()))?;
        }
        Ok(())
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("tokio runtime")
    })
}

/// Walks a snapshot's tree; `None` after [`MAX_WALK_NODES`] nodes or on an error, else the
/// number of nodes and the sum of the file sizes the tree claims.
async fn bounded_walk(repo: &Repository, root: &Id) -> Option<(usize, u64)> {
    let mut n = 0usize;
    let mut bytes = 0u64;
    let mut walker = walk::Walker::start(repo, root, b"/").await.ok()?;
    while let Some(step) = walker.next().await.ok()? {
        if step != walk::Step::Node {
            continue;
        }
        n += 1;
        if n > MAX_WALK_NODES {
            return None;
        }
        let node = walker.node();
        if node.node_type == NodeType::File {
            bytes = bytes.saturating_add(node.size);
        }
    }
    Some((n, bytes))
}

/// Restores verify only when the tree claims at most this many file bytes: verifying reads
/// back every byte a (sparse) file is said to hold, which for a tree claiming terabytes is
/// legitimately slow, not a bug.
const MAX_VERIFY_BYTES: u64 = 64 << 20;

/// What one `open_repository` run got through, for the seed sanity tests.
#[derive(Debug, Default)]
pub struct Outcome {
    pub opened: bool,
    pub index_loaded: bool,
    pub snapshots: usize,
    pub walked_nodes: usize,
    pub check_ok: bool,
    pub check_errors: Vec<String>,
    pub restored_files: u64,
    pub restore_errors: Vec<String>,
}

async fn exercise(repo_dir: PathBuf, restore_dir: PathBuf) -> Outcome {
    let mut out = Outcome::default();
    let backend: arca_storage::DynBackend = Arc::new(arca_storage::LocalBackend::new(&repo_dir));
    let Ok(mut repo) = Repository::open(backend, PASSWORD).await else {
        return out;
    };
    out.opened = true;
    out.index_loaded = repo.load_index(&NoProgress).await.is_ok();
    let snaps = snapshots::load_all(&repo).await.unwrap_or_default();
    out.snapshots = snaps.len();
    if out.index_loaded {
        for s in &snaps {
            let _ = bounded_walk(&repo, &s.tree).await;
        }
    }
    // check builds its own index, tolerating damaged index files, and leaves it in the repo.
    if let Ok(report) = check::check(&mut repo, ReadData::All, &NoProgress).await {
        out.check_ok = report.ok();
        out.check_errors = report.errors;
    }
    let mut restorable = Vec::new();
    for s in &snaps {
        if let Some((n, bytes)) = bounded_walk(&repo, &s.tree).await {
            out.walked_nodes += n;
            if restorable.len() < MAX_RESTORES {
                restorable.push((s.tree, bytes <= MAX_VERIFY_BYTES));
            }
        }
    }
    let repo = Arc::new(repo);
    for (i, (tree, verify)) in restorable.into_iter().enumerate() {
        let opts = RestoreOptions {
            target: restore_dir.join(i.to_string()),
            include: Patterns::new(&[], false).expect("no patterns"),
            exclude: Patterns::new(&[], false).expect("no patterns"),
            sparse: i % 2 == 1,
            overwrite: Overwrite::Always,
            verify,
            dry_run: false,
            delete: false,
            concurrency: Some(2),
            batch_bytes: arca_engine::restore::BATCH_BYTES,
            privileged_files: true,
        };
        match restore::restore(repo.clone(), tree, &opts, &NoProgress).await {
            Ok(r) => {
                out.restored_files += r.files;
                out.restore_errors.extend(r.errors);
            }
            Err(e) => out.restore_errors.push(e.to_string()),
        }
    }
    out
}

/// Restored directories can have mode 000: make everything removable (without following
/// symlinks) so the temporary directory is cleaned up even when not running as root.
fn make_removable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(md) = dir.symlink_metadata() else {
        return;
    };
    if !md.is_dir() {
        return;
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            make_removable(&e.path());
        }
    }
}

/// Builds a repository from the input's segments in a fresh temporary directory, then opens,
/// indexes, lists, walks, checks (reading all data) and restores it.
pub fn open_repository(data: &[u8]) {
    open_repository_with(data, |_, _| ());
}

/// [`open_repository`], handing the outcome and the restore directory (before it is removed)
/// to `inspect`.
pub fn open_repository_with(data: &[u8], inspect: impl FnOnce(&Outcome, &Path)) {
    let tmp = tempfile::Builder::new()
        .prefix("arca-fuzz-")
        .tempdir()
        .expect("temporary directory");
    let repo_dir = tmp.path().join("repo");
    let restore_dir = tmp.path().join("restore");
    let outside = tmp.path().join("outside");
    let tripwire = Tripwire::set(&outside);
    let built = RepoBuilder::new(&repo_dir).and_then(|mut b| b.build(data));
    let outcome = match built {
        Ok(()) => runtime().block_on(exercise(repo_dir, restore_dir.clone())),
        Err(_) => Outcome::default(),
    };
    tripwire.check(&outside);
    inspect(&outcome, &restore_dir);
    make_removable(&restore_dir);
}

/// Files next to the restore targets (`restore/<n>/../../outside`, reachable through relative
/// symlinks a hostile tree can hold): restore must leave them exactly as they were.
struct Tripwire {
    state: Vec<(String, u32, u32, i64, Vec<u8>)>,
}

impl Tripwire {
    const MTIME: i64 = 1_000_000_000;

    fn set(outside: &Path) -> Tripwire {
        use std::os::unix::fs::PermissionsExt;
        let dir = outside.join("dir");
        std::fs::create_dir_all(&dir).expect("tripwire directory");
        let victim = outside.join("victim");
        std::fs::write(&victim, b"victim").expect("tripwire file");
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(Self::MTIME as u64);
        for p in [&victim, &dir] {
            std::fs::File::open(p)
                .and_then(|f| f.set_times(std::fs::FileTimes::new().set_modified(t)))
                .expect("tripwire times");
        }
        Tripwire {
            state: Self::snapshot(outside),
        }
    }

    /// (relative path, mode, uid, mtime, content or listing) of everything under `outside`
    /// and of `outside` itself.
    fn snapshot(outside: &Path) -> Vec<(String, u32, u32, i64, Vec<u8>)> {
        use std::os::unix::fs::MetadataExt;
        let mut out = Vec::new();
        let mut todo = vec![outside.to_path_buf()];
        while let Some(p) = todo.pop() {
            let Ok(md) = p.symlink_metadata() else {
                continue;
            };
            let body = if md.is_dir() {
                let mut names: Vec<PathBuf> = std::fs::read_dir(&p)
                    .map(|rd| rd.flatten().map(|e| e.path()).collect())
                    .unwrap_or_default();
                names.sort();
                let listing = names
                    .iter()
                    .map(|n| n.display().to_string())
                    .collect::<Vec<_>>()
                    .join("\n");
                todo.extend(names);
                listing.into_bytes()
            } else {
                std::fs::read(&p).unwrap_or_default()
            };
            let rel = p.strip_prefix(outside).unwrap_or(&p).display().to_string();
            out.push((rel, md.mode(), md.uid(), md.mtime(), body));
        }
        out.sort();
        out
    }

    fn check(&self, outside: &Path) {
        let now = Self::snapshot(outside);
        assert!(
            now == self.state,
            "restore changed files outside its target directory:\nbefore: {:?}\nafter:  {:?}",
            self.state,
            now
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Replaying stored inputs

/// Every file in `dir` (not recursive), sorted; empty if the directory does not exist.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
