//! Bad input gives a non-zero exit and one clear `Fatal:` line naming the problem, never a panic:
//! wrong or missing passwords, missing or unsupported repositories, damaged packs, index,
//! snapshot, key and config files, bad IDs. And a snapshot with hostile node names cannot make
//! `restore` write outside its target.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use arca_engine::Repository;
use arca_format::crypto::Key;
use arca_format::index::{IndexBlob, IndexFile, IndexPack};
use arca_format::keyfile::{KdfParams, KeyFile};
use arca_format::pack::{self, BlobType, PackedBlob};
use arca_format::tree::{go_mode_from_unix, Node, NodeType, Tree};
use arca_format::Id;
use arca_storage::{DynBackend, FileType, LocalBackend};
use arca_tests::*;

/// A v1 fixture with a cheap KDF (N=128): 3 snapshots, 2 indexes, 3 packs.
const FIXTURE: &str = "repo-layout-default";
const BIG_PACK: &str = "aa464e9fd598fe4202492ee317ffa728e82fa83a1de1a61996e5bd2d6651646c";
const INDEX: &str = "e8dfdff29272fd069199b13836ce009a76afd56d3855440385f9fa2d736b577b";
const SNAPSHOT: &str = "bf126587a52e6ac30b09be7a98b5a305894ea625dd496b6791c4024a52354652";
const KEY: &str = "584fd5182a9dc4dee93819078aed63db174dfe7c46ce2ea30d77dcda8c470cc4";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Non-zero exit, no panic, exactly one `Fatal:` line, containing every one of `words`
/// (case-insensitive). With `only_line`, stderr holds nothing but that line. Returns the line.
fn fatal_line(what: &str, out: &Output, only_line: bool, words: &[&str]) -> String {
    let err = stderr(out);
    assert!(!out.status.success(), "{what}: succeeded\n{err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{what}: panicked\n{err}"
    );
    let fatal: Vec<&str> = err.lines().filter(|l| l.starts_with("Fatal: ")).collect();
    assert_eq!(fatal.len(), 1, "{what}: one Fatal line wanted\n{err}");
    if only_line {
        assert_eq!(
            err.lines().count(),
            1,
            "{what}: one line of stderr wanted\n{err}"
        );
    }
    let line = fatal[0].to_owned();
    for word in words {
        assert!(
            line.to_lowercase().contains(&word.to_lowercase()),
            "{what}: the Fatal line does not say {word:?}\n{err}"
        );
    }
    line
}

/// The fixture, writable (the tarball's files are read-only).
fn fixture() -> TempRepo {
    let repo = TempRepo::fixture(FIXTURE);
    make_writable(repo.path());
    repo
}

fn make_writable(dir: &Path) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        let mut perms = meta.permissions();
        perms.set_mode(perms.mode() | 0o200);
        fs::set_permissions(&path, perms).unwrap();
        if meta.is_dir() {
            make_writable(&path);
        }
    }
}

fn arca(repo: &TempRepo) -> Arca {
    Arca::new(repo.path(), FIXTURE_PASSWORD)
}

fn truncate(path: &Path, len: u64) {
    let file = fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(len).unwrap();
}

fn flip_byte(path: &Path, at: usize) {
    let mut data = fs::read(path).unwrap();
    data[at] ^= 0x55;
    fs::write(path, data).unwrap();
}

/// Flip a byte and store the file under the hash of its new content, so the damage is found by
/// decrypting rather than by the name check. Returns the new name.
fn flip_and_rename(path: &Path, at: usize) -> String {
    let mut data = fs::read(path).unwrap();
    data[at] ^= 0x55;
    let name = Id::hash(&data).to_hex();
    fs::remove_file(path).unwrap();
    fs::write(path.with_file_name(&name), data).unwrap();
    name
}

fn pack_path(repo: &Path, id: &str) -> PathBuf {
    repo.join("data").join(&id[..2]).join(id)
}

#[test]
fn wrong_password_exits_12() {
    let repo = fixture();
    let out = arca(&repo)
        .cmd(["snapshots"])
        .env("RESTIC_PASSWORD", "not the password")
        .output();
    fatal_line("wrong password", &out, true, &["wrong password"]);
    assert_eq!(out.status.code(), Some(12));
}

#[test]
fn missing_repository_exits_10() {
    let repo = TempRepo::new();
    let out = Arca::new(repo.path(), "pw").output(["snapshots"]);
    fatal_line("missing repository", &out, true, &["does not exist"]);
    assert_eq!(out.status.code(), Some(10));
    assert!(!repo.path().exists(), "nothing was created");
}

#[test]
fn no_password_and_no_terminal() {
    let repo = fixture();
    // The runner's stdin is /dev/null, not a terminal: no prompt, a clear error.
    let out = arca(&repo)
        .cmd(["snapshots"])
        .env_remove("RESTIC_PASSWORD")
        .output();
    fatal_line("no password", &out, true, &["password"]);
    assert_ne!(out.status.code(), Some(12), "not a wrong password");
}

#[test]
fn unsupported_repository_scheme() {
    // sftp: and rclone: are supported (tests/tests/remote_interop.rs); B2 and Swift are not.
    let out = Arca::new("b2:bucket:/srv/repo", "pw").output(["snapshots"]);
    fatal_line("b2 repository", &out, true, &["unsupported", "b2"]);
}

#[test]
fn truncated_pack_is_named_by_check() {
    let repo = fixture();
    truncate(&pack_path(repo.path(), BIG_PACK), 20_000);
    let out = arca(&repo).output(["check", "--read-data"]);
    fatal_line("truncated pack", &out, false, &["error"]);
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains(BIG_PACK) && l.contains("size")),
        "the pack and its wrong size are named:\n{err}"
    );
}

#[test]
fn corrupted_pack_byte_is_named_by_check_and_fails_reads() {
    let repo = fixture();
    let arca = arca(&repo);
    // The first blob of the pack: find its ID through the index listing.
    let blobs = arca.run_string(["list", "blobs"]);
    let path = pack_path(repo.path(), BIG_PACK);
    flip_byte(&path, 100);

    let out = arca.output(["check", "--read-data"]);
    fatal_line("corrupted pack", &out, false, &["error"]);
    let err = stderr(&out);
    let damaged: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("error: ") && l.contains(BIG_PACK))
        .collect();
    assert!(!damaged.is_empty(), "the pack is named:\n{err}");
    assert!(
        damaged.iter().any(|l| l.contains("blob")),
        "the damaged blob is named:\n{err}"
    );
    // The damaged blob, read on its own, fails with one line naming it and its pack.
    let blob = damaged
        .iter()
        .find_map(|l| {
            l.split_whitespace()
                .map(|w| w.trim_end_matches(':'))
                .find(|w| w.len() == 64 && *w != BIG_PACK && blobs.contains(*w))
        })
        .unwrap_or_else(|| panic!("no blob ID in\n{err}"));
    let out = arca.output(["cat", "blob", blob]);
    fatal_line("cat damaged blob", &out, true, &[blob, BIG_PACK]);
}

#[test]
fn truncated_index_file() {
    let repo = fixture();
    truncate(&repo.path().join("index").join(INDEX), 100);
    let out = arca(&repo).output(["ls", "latest"]);
    fatal_line("truncated index", &out, true, &["index", INDEX]);
}

#[test]
fn corrupted_index_file() {
    let repo = fixture();
    let path = repo.path().join("index").join(INDEX);
    flip_byte(&path, 50);
    let out = arca(&repo).output(["ls", "latest"]);
    fatal_line("corrupted index", &out, true, &["index", INDEX]);

    let repo = fixture();
    let name = flip_and_rename(&repo.path().join("index").join(INDEX), 50);
    let out = arca(&repo).output(["ls", "latest"]);
    fatal_line("corrupted, renamed index", &out, true, &["index", &name]);
}

#[test]
fn truncated_snapshot_file() {
    let repo = fixture();
    truncate(&repo.path().join("snapshots").join(SNAPSHOT), 100);
    let out = arca(&repo).output(["snapshots"]);
    fatal_line("truncated snapshot", &out, true, &["snapshot", SNAPSHOT]);
    let out = arca(&repo).output(["ls", SNAPSHOT]);
    fatal_line("ls truncated snapshot", &out, true, &["snapshot", SNAPSHOT]);
}

#[test]
fn corrupted_snapshot_file() {
    let repo = fixture();
    flip_byte(&repo.path().join("snapshots").join(SNAPSHOT), 50);
    let out = arca(&repo).output(["snapshots"]);
    fatal_line("corrupted snapshot", &out, true, &["snapshot", SNAPSHOT]);

    let repo = fixture();
    let name = flip_and_rename(&repo.path().join("snapshots").join(SNAPSHOT), 50);
    let out = arca(&repo).output(["snapshots"]);
    fatal_line(
        "corrupted, renamed snapshot",
        &out,
        true,
        &["snapshot", &name],
    );
}

#[test]
fn truncated_key_file() {
    let repo = fixture();
    truncate(&repo.path().join("keys").join(KEY), 100);
    let out = arca(&repo).output(["snapshots"]);
    let line = fatal_line("truncated key", &out, true, &["key", KEY]);
    assert!(!line.contains("wrong password"), "{line}");
}

#[test]
fn corrupted_key_file() {
    let repo = fixture();
    flip_byte(&repo.path().join("keys").join(KEY), 200);
    let out = arca(&repo).output(["snapshots"]);
    let line = fatal_line("corrupted key", &out, true, &["key", KEY]);
    assert!(!line.contains("wrong password"), "{line}");

    // Damaged JSON under a name that matches its content: the key file's parser reports it.
    let repo = fixture();
    let name = flip_and_rename(&repo.path().join("keys").join(KEY), 0);
    let out = arca(&repo).output(["snapshots"]);
    let line = fatal_line(
        "corrupted, renamed key",
        &out,
        true,
        &["key", &name, "JSON"],
    );
    assert!(!line.contains("wrong password"), "{line}");
}

/// A key file asking for scrypt work no restic ever wrote (N=2^16, r=1, p=2^20: minutes on
/// every open, for restic too) is not tried: the other key opens the repository at once, and
/// alone it is named in one line.
#[test]
fn a_key_file_made_to_stall_every_open_is_not_tried() {
    let repo = fixture();
    let keys = repo.path().join("keys");
    let mut json: serde_json::Value =
        serde_json::from_slice(&fs::read(keys.join(KEY)).unwrap()).unwrap();
    json["N"] = 65536.into();
    json["r"] = 1.into();
    json["p"] = 1_048_576.into();
    let hostile = serde_json::to_vec(&json).unwrap();
    let name = Id::hash(&hostile).to_hex();
    fs::write(keys.join(&name), &hostile).unwrap();

    arca(&repo).run(["snapshots"]);

    fs::remove_file(keys.join(KEY)).unwrap();
    let out = arca(&repo).output(["snapshots"]);
    let line = fatal_line(
        "hostile key alone",
        &out,
        true,
        &["key", &name, "N=65536, r=1, p=1048576"],
    );
    assert!(!line.contains("wrong password"), "{line}");
}

#[test]
fn truncated_and_corrupted_config_file() {
    for (what, damage) in [
        (
            "truncated config",
            &(|p: &Path| truncate(p, 60)) as &dyn Fn(&Path),
        ),
        ("empty config", &|p: &Path| truncate(p, 0)),
        ("corrupted config", &|p: &Path| flip_byte(p, 50)),
    ] {
        let repo = fixture();
        damage(&repo.path().join("config"));
        let out = arca(&repo).output(["snapshots"]);
        let line = fatal_line(what, &out, true, &["config"]);
        assert!(!line.contains("wrong password"), "{what}: {line}");
    }
}

/// The master key of the fixture, through arca-format's keyfile API.
fn fixture_master_key(repo: &Path) -> Key {
    let kf = KeyFile::parse(&fs::read(repo.join("keys").join(KEY)).unwrap()).unwrap();
    kf.open(FIXTURE_PASSWORD.as_bytes()).unwrap()
}

#[test]
fn config_with_an_unknown_version() {
    let repo = fixture();
    let key = fixture_master_key(repo.path());
    let config = repo.path().join("config");
    let plain = key.open(&fs::read(&config).unwrap()).unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(json["version"], 1);
    json["version"] = 3.into();
    fs::write(&config, key.seal(&serde_json::to_vec(&json).unwrap())).unwrap();

    let out = arca(&repo).output(["snapshots"]);
    fatal_line("config version 3", &out, true, &["config", "version", "3"]);
}

#[test]
fn malformed_id_to_cat() {
    let repo = fixture();
    for object in ["blob", "index", "pack", "key", "lock", "snapshot"] {
        let out = arca(&repo).output(["cat", object, "zz-not-hex"]);
        fatal_line(&format!("cat {object}"), &out, true, &["zz-not-hex"]);
    }
}

#[test]
fn nonexistent_snapshot_id() {
    let repo = fixture();
    let missing = Id::hash(b"no such snapshot").to_hex();
    for args in [
        vec!["ls", missing.as_str()],
        vec!["cat", "snapshot", missing.as_str()],
        vec!["dump", missing.as_str(), "/x"],
    ] {
        let out = arca(&repo).output(&args);
        fatal_line(&args.join(" "), &out, true, &[&missing]);
    }
    let target = repo.scratch().join("target");
    let out = arca(&repo)
        .cmd(["restore", &missing[..8], "--target"])
        .arg(&target)
        .output();
    fatal_line("restore by prefix", &out, true, &[&missing[..8]]);
    assert!(!target.exists(), "nothing restored");
}

// ---------------------------------------------------------------- restore safety

const EVIL_PASSWORD: &str = "evil";

fn file_node(name: &[u8], content: Id, size: u64) -> Node {
    let mut node = Node::new(name, NodeType::File);
    node.mode = go_mode_from_unix(0o100644);
    node.size = size;
    node.content = Some(vec![content]);
    node
}

fn dir_node(name: &[u8], subtree: Id) -> Node {
    let mut node = Node::new(name, NodeType::Dir);
    node.mode = go_mode_from_unix(0o040755);
    node.subtree = Some(subtree);
    node
}

const PAYLOAD: &[u8] = b"written by a hostile snapshot\n";

fn payload_file(name: &[u8]) -> Node {
    file_node(name, Id::hash(PAYLOAD), PAYLOAD.len() as u64)
}

/// A v2 repository (password [`EVIL_PASSWORD`]) whose only snapshot has `trees.last()` as its
/// root tree, with [`PAYLOAD`] and every tree properly encrypted, packed (one pack) and indexed,
/// built through the engine and format APIs. Returns the snapshot ID.
async fn make_repository(path: &Path, trees: &[Tree]) -> Id {
    let backend: DynBackend = Arc::new(LocalBackend::new(path));
    let params = KdfParams {
        n: 1024,
        r: 8,
        p: 1,
    };
    let repo = Repository::init(backend, EVIL_PASSWORD, 2, None, params)
        .await
        .unwrap();
    let key = repo.key().clone();

    let mut plain_blobs = vec![(BlobType::Data, PAYLOAD.to_vec())];
    for tree in trees {
        // Not Tree::encode: that refuses unsorted names, and hostile trees need not be sorted.
        let mut json = b"{\"nodes\":[".to_vec();
        for (i, node) in tree.nodes.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            node.encode_json(&mut json);
        }
        json.extend_from_slice(b"]}\n");
        plain_blobs.push((BlobType::Tree, json));
    }
    let root_id = Id::hash(&plain_blobs.last().unwrap().1);

    let mut pack_bytes = Vec::new();
    let mut blobs = Vec::new();
    for (blob_type, plain) in &plain_blobs {
        let sealed = key.seal(plain);
        blobs.push(PackedBlob {
            blob_type: *blob_type,
            id: Id::hash(plain),
            offset: pack_bytes.len() as u32,
            length: sealed.len() as u32,
            uncompressed_length: 0,
        });
        pack_bytes.extend_from_slice(&sealed);
    }
    pack_bytes.extend_from_slice(&pack::header_trailer(&key, &blobs));
    let pack_id = Id::hash(&pack_bytes);
    let pack_file = pack_path(path, &pack_id.to_hex());
    fs::create_dir_all(pack_file.parent().unwrap()).unwrap();
    fs::write(&pack_file, &pack_bytes).unwrap();

    let index = IndexFile {
        supersedes: None,
        packs: vec![IndexPack {
            id: pack_id,
            blobs: blobs.iter().map(IndexBlob::from_packed).collect(),
        }],
    };
    repo.save_unpacked(FileType::Index, &index.to_json())
        .await
        .unwrap();
    let snapshot = serde_json::json!({
        "time": "2024-05-01T12:00:00Z",
        "tree": root_id.to_hex(),
        "paths": ["/evil"],
        "hostname": "attacker",
        "username": "mallory",
    });
    repo.save_unpacked(FileType::Snapshot, &serde_json::to_vec(&snapshot).unwrap())
        .await
        .unwrap()
}

fn tree_id(tree: &Tree) -> Id {
    let mut json = b"{\"nodes\":[".to_vec();
    for (i, node) in tree.nodes.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        node.encode_json(&mut json);
    }
    json.extend_from_slice(b"]}\n");
    Id::hash(&json)
}

/// The root tree has the names `""`, `.`, `..` (a directory with its own `..` inside), `a/b` and
/// a harmless `ok.txt`.
async fn make_evil_repository(path: &Path) -> Id {
    let inner = Tree::new(vec![payload_file(b"escaped-2")]);
    let middle = Tree::new(vec![
        dir_node(b"..", tree_id(&inner)),
        payload_file(b"escaped-1"),
    ]);
    let root = Tree::new(vec![
        payload_file(b""),
        payload_file(b"."),
        dir_node(b"..", tree_id(&middle)),
        payload_file(b"a/b"),
        payload_file(b"ok.txt"),
    ]);
    make_repository(path, &[inner, middle, root]).await
}

/// Every path under `dir` with its file contents (None for directories), skipping `except`.
fn tree_listing(dir: &Path, except: &[&Path], out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if except.contains(&path.as_path()) {
            continue;
        }
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            out.insert(path.clone(), None);
            tree_listing(&path, except, out);
        } else {
            out.insert(path.clone(), Some(fs::read(&path).unwrap()));
        }
    }
}

#[tokio::test]
async fn restore_refuses_hostile_names_and_writes_nothing_outside_the_target() {
    let tmp = tempfile::Builder::new()
        .prefix("arca-evil-")
        .tempdir()
        .unwrap();
    let repo_path = tmp.path().join("repo");
    make_evil_repository(&repo_path).await;

    let arca = Arca::new(&repo_path, EVIL_PASSWORD);

    // The target two levels down, so `..` and `../..` both land in folders we watch.
    let watched = tmp.path().join("watched");
    let target = watched.join("outer").join("target");
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    fs::write(watched.join("sentinel"), b"before").unwrap();
    fs::write(watched.join("outer").join("sentinel"), b"before").unwrap();
    // Everything in the temp folder but the target and the repository (where restore's lock
    // comes and goes) must stay as it is.
    let mut before = BTreeMap::new();
    tree_listing(tmp.path(), &[&target, &repo_path], &mut before);

    let out = arca
        .cmd(["restore", "latest", "--target"])
        .arg(&target)
        .output();
    fatal_line("hostile restore", &out, false, &[]);
    let err = stderr(&out);
    for name in [r#""..""#, r#""a/b""#, r#"".""#, r#""""#] {
        assert!(
            err.lines()
                .any(|l| l.contains("invalid node name") && l.contains(name)),
            "the bad name {name} is named:\n{err}"
        );
    }

    let mut after = BTreeMap::new();
    tree_listing(tmp.path(), &[&target, &repo_path], &mut after);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "entries outside the target changed"
    );
    assert_eq!(after, before, "contents outside the target changed");

    // Inside the target: only the harmless file.
    let inside: Vec<String> = fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(inside, vec!["ok.txt".to_owned()]);
    assert_eq!(
        fs::read(target.join("ok.txt")).unwrap(),
        b"written by a hostile snapshot\n"
    );
}

/// restic's checker flags some malformed tree nodes (an empty name, an unknown type, a file
/// without a content list); arca's check reaches the same verdict and names the problem. Names
/// like `..` are not a check error for restic 0.14, and the same repository is otherwise sound.
#[tokio::test]
async fn check_flags_malformed_tree_nodes_as_restic_does() {
    let mut nil_content = payload_file(b"no-content");
    nil_content.content = None;
    let mut weird = payload_file(b"weird");
    weird.node_type = NodeType::Other("weird".into());
    weird.content = None;
    let cases: Vec<(&str, Vec<Node>, Option<&str>)> = vec![
        ("sound", vec![payload_file(b"ok.txt")], None),
        (
            "dot names",
            vec![
                payload_file(b"."),
                payload_file(b".."),
                payload_file(b"a/b"),
            ],
            None,
        ),
        (
            "empty name",
            vec![payload_file(b""), payload_file(b"ok")],
            Some("empty name"),
        ),
        ("unknown type", vec![weird], Some("weird")),
        (
            "file without content",
            vec![nil_content],
            Some("no-content"),
        ),
    ];
    let restic_bin = restic_or_skip();
    for (what, nodes, problem) in cases {
        let tmp = tempfile::Builder::new()
            .prefix("arca-tree-")
            .tempdir()
            .unwrap();
        let path = tmp.path().join("repo");
        make_repository(&path, &[Tree::new(nodes)]).await;
        let out = Arca::new(&path, EVIL_PASSWORD).output(["check", "--read-data"]);
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{what}: {err}");
        match problem {
            None => assert!(out.status.success(), "{what}: arca check failed:\n{err}"),
            Some(word) => {
                fatal_line(what, &out, false, &[]);
                assert!(
                    err.lines()
                        .any(|l| l.starts_with("error: ") && l.contains(word)),
                    "{what}: arca names {word:?}:\n{err}"
                );
            }
        }
        if let Some(bin) = &restic_bin {
            let restic =
                Restic::with_bin(bin, &path, EVIL_PASSWORD).output(["check", "--read-data"]);
            assert_eq!(
                restic.status.success(),
                out.status.success(),
                "{what}: restic and arca disagree\n--- restic\n{}\n--- arca\n{err}",
                stderr(&restic)
            );
        }
    }
}

/// Sizes in a tree are whatever its writer claimed: summed, they must neither wrap nor
/// panic (debug builds check overflow), and nothing allocates by them.
#[tokio::test]
async fn sizes_that_overflow_when_summed_are_no_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_path = tmp.path().join("repo");
    let huge = u64::MAX / 2 + 1;
    let root = Tree::new(vec![
        file_node(b"a", Id::hash(PAYLOAD), huge),
        file_node(b"b", Id::hash(PAYLOAD), huge),
    ]);
    make_repository(&repo_path, &[root]).await;
    let arca = Arca::new(&repo_path, EVIL_PASSWORD);

    let stats = arca.run_json(["stats", "--json"]);
    assert_eq!(stats["total_size"], serde_json::json!(u64::MAX), "{stats}");
    let listing = arca.run_string(["ls", "-l", "latest"]);
    assert!(listing.contains(&huge.to_string()), "{listing}");
    for args in [
        vec!["dump", "latest", "/a"],
        vec!["restore", "latest", "--target"],
    ] {
        let mut cmd = arca.cmd(&args);
        if args[0] == "restore" {
            cmd = cmd.arg(tmp.path().join("target"));
        }
        let out = cmd.output();
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
