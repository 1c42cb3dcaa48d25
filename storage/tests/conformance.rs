//! One conformance suite for every backend: local, S3 (SeaweedFS), Azure (Azurite), GCS
//! (fake-gcs-server), REST (`rclone serve restic`), SFTP (OpenSSH's sshd, through the system's
//! ssh) and rclone (`rclone serve restic --stdio` over a local folder), against real servers on
//! loopback started by `scripts/test.sh` (scripts/servers.sh). Without a server's variables the
//! test skips loudly, and fails under CI=true.

use arca_storage::{DynBackend, FileType, Options, StorageError};
use bytes::Bytes;
use futures::StreamExt;
use rand::{Rng, RngCore};
use std::collections::BTreeMap;

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The server variables for a kind, or None (after a loud line) when they are missing.
fn server(kind: &str, names: &[&str]) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for n in names {
        match var(n) {
            Some(v) => {
                out.insert(n.to_string(), v);
            }
            None => {
                let msg = format!(
                    "{kind} conformance needs {n} (start the servers with scripts/servers.sh)"
                );
                assert!(!ci(), "{msg}");
                eprintln!("SKIPPED: {msg}");
                return None;
            }
        }
    }
    Some(out)
}

fn random_name(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::thread_rng().next_u64())
}

/// A fresh, empty repository location for `kind`, with its options.
pub fn fresh(kind: &str) -> Option<(String, Options, Option<tempfile::TempDir>)> {
    let mut opts = Options::default();
    match kind {
        "local" => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("repo").display().to_string();
            Some((path, opts, Some(dir)))
        }
        // SeaweedFS and MinIO, both started by scripts/servers.sh.
        "s3" | "minio" => {
            let p = if kind == "s3" { "S3" } else { "MINIO" };
            let names = [
                format!("ARCA_TEST_{p}_ENDPOINT"),
                format!("ARCA_TEST_{p}_ACCESS_KEY"),
                format!("ARCA_TEST_{p}_SECRET_KEY"),
                "ARCA_TEST_BUCKET".to_string(),
            ];
            let v = server(kind, &names.each_ref().map(String::as_str))?;
            opts.env
                .insert("AWS_ACCESS_KEY_ID".into(), v[names[1].as_str()].clone());
            opts.env
                .insert("AWS_SECRET_ACCESS_KEY".into(), v[names[2].as_str()].clone());
            opts.env.insert("AWS_REGION".into(), "us-east-1".into());
            let repo = format!(
                "s3:{}/{}/{}",
                v[names[0].as_str()],
                v["ARCA_TEST_BUCKET"],
                random_name("conf")
            );
            Some((repo, opts, None))
        }
        "azure" => {
            let v = server(
                kind,
                &[
                    "ARCA_TEST_AZURE_ENDPOINT",
                    "ARCA_TEST_AZURE_ACCOUNT",
                    "ARCA_TEST_AZURE_KEY",
                    "ARCA_TEST_BUCKET",
                ],
            )?;
            opts.env.insert(
                "AZURE_ACCOUNT_NAME".into(),
                v["ARCA_TEST_AZURE_ACCOUNT"].clone(),
            );
            opts.env
                .insert("AZURE_ACCOUNT_KEY".into(), v["ARCA_TEST_AZURE_KEY"].clone());
            opts.env.insert(
                "AZURE_ENDPOINT_URL".into(),
                v["ARCA_TEST_AZURE_ENDPOINT"].clone(),
            );
            let repo = format!("azure:{}:/{}", v["ARCA_TEST_BUCKET"], random_name("conf"));
            Some((repo, opts, None))
        }
        "gs" => {
            let v = server(kind, &["ARCA_TEST_GCS_ENDPOINT", "ARCA_TEST_BUCKET"])?;
            opts.env.insert(
                "STORAGE_EMULATOR_HOST".into(),
                v["ARCA_TEST_GCS_ENDPOINT"].clone(),
            );
            let repo = format!("gs:{}:/{}", v["ARCA_TEST_BUCKET"], random_name("conf"));
            Some((repo, opts, None))
        }
        "rest" => {
            let v = server(kind, &["ARCA_TEST_REST_URL"])?;
            let base = v["ARCA_TEST_REST_URL"].trim_end_matches('/').to_string();
            Some((format!("rest:{base}/{}/", random_name("conf")), opts, None))
        }
        "sftp" => {
            let v = server(
                kind,
                &[
                    "ARCA_TEST_SFTP_HOST",
                    "ARCA_TEST_SFTP_CONFIG",
                    "ARCA_TEST_SFTP_DIR",
                ],
            )?;
            let args = format!("sftp.args=-F {}", v["ARCA_TEST_SFTP_CONFIG"]);
            let opts = Options::parse([args.as_str()]).unwrap();
            let repo = format!(
                "sftp:{}:{}/{}",
                v["ARCA_TEST_SFTP_HOST"],
                v["ARCA_TEST_SFTP_DIR"],
                random_name("conf")
            );
            Some((repo, opts, None))
        }
        "rclone" => {
            if !rclone_installed(kind) {
                return None;
            }
            let dir = tempfile::tempdir().unwrap();
            let repo = format!("rclone:{}", dir.path().join("repo").display());
            Some((repo, opts, Some(dir)))
        }
        other => panic!("unknown backend kind {other}"),
    }
}

/// rclone on PATH (scripts/test.sh installs Debian's), or a loud skip outside CI.
fn rclone_installed(kind: &str) -> bool {
    let found = std::process::Command::new("rclone")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let msg = format!("{kind} conformance needs rclone on PATH (scripts/test.sh installs it)");
        assert!(!ci(), "{msg}");
        eprintln!("SKIPPED: {msg}");
    }
    found
}

fn hex_name(rng: &mut impl Rng) -> String {
    let mut b = [0u8; 32];
    rng.fill_bytes(&mut b);
    hex::encode(b)
}

fn payload(rng: &mut impl Rng, len: usize) -> Bytes {
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    Bytes::from(v)
}

/// How many objects one listing page holds at most, where the store pages.
fn page_size(kind: &str) -> usize {
    match kind {
        "s3" | "minio" | "gs" => 1000,
        "azure" => 5000,
        _ => 0,
    }
}

/// Whether the store itself refuses a second create of the same object (the REST protocol
/// and fake-gcs-server's simple upload have no such condition; Arca checks first there).
fn atomic_create(kind: &str) -> bool {
    // SFTP: a plain rename refuses to replace a file.
    matches!(kind, "local" | "s3" | "minio" | "azure" | "sftp")
}

async fn run_suite(kind: &str) {
    let Some((repo, opts, _dir)) = fresh(kind) else {
        return;
    };
    let b: DynBackend = arca_storage::open_with(&repo, &opts)
        .unwrap_or_else(|e| panic!("{kind}: open {repo}: {e}"));
    let mut rng = rand::thread_rng();

    // create: an empty location becomes a repository once `config` is written.
    b.create()
        .await
        .unwrap_or_else(|e| panic!("{kind}: create: {e}"));
    let config = payload(&mut rng, 155);
    b.write(FileType::Config, "config", config.clone(), true)
        .await
        .unwrap();
    match b.create().await {
        Err(StorageError::RepositoryExists(_)) => {}
        other => panic!("{kind}: create over an existing repository: {other:?}"),
    }
    assert_eq!(b.read(FileType::Config, "config").await.unwrap(), config);

    // Every file type round-trips, with sizes in list and stat.
    for ty in [
        FileType::Key,
        FileType::Snapshot,
        FileType::Index,
        FileType::Lock,
        FileType::Pack,
    ] {
        assert!(
            b.list(ty).await.unwrap().is_empty(),
            "{kind}: {ty} list starts empty"
        );
        let name = hex_name(&mut rng);
        let len = 1000 + rng.gen_range(0..5000);
        let data = payload(&mut rng, len);
        b.write(ty, &name, data.clone(), false).await.unwrap();
        assert_eq!(
            b.read(ty, &name).await.unwrap(),
            data,
            "{kind}: {ty} read back"
        );
        assert_eq!(b.stat(ty, &name).await.unwrap().size, data.len() as u64);
        let listed = b.list(ty).await.unwrap();
        assert_eq!(listed.len(), 1, "{kind}: {ty} list");
        assert_eq!(
            (listed[0].name.as_str(), listed[0].size),
            (name.as_str(), data.len() as u64)
        );
        b.remove(ty, &name).await.unwrap();
        assert!(b.list(ty).await.unwrap().is_empty(), "{kind}: {ty} removed");
    }

    // Missing objects are NotFound, never an empty body.
    let missing = hex_name(&mut rng);
    for r in [
        b.read(FileType::Pack, &missing).await.map(|_| ()),
        b.read_range(FileType::Pack, &missing, 0, 10)
            .await
            .map(|_| ()),
        b.stat(FileType::Snapshot, &missing).await.map(|_| ()),
    ] {
        assert!(
            matches!(r, Err(StorageError::NotFound { .. })),
            "{kind}: missing object: {r:?}"
        );
    }
    match b.remove(FileType::Snapshot, &missing).await {
        Ok(()) | Err(StorageError::NotFound { .. }) => {}
        other => panic!("{kind}: removing a missing object: {other:?}"),
    }

    // Ranged reads: start, middle, end, the whole; past the end is an error.
    let name = hex_name(&mut rng);
    let data = payload(&mut rng, 100_000);
    b.write(FileType::Pack, &name, data.clone(), false)
        .await
        .unwrap();
    for (off, len) in [
        (0u64, 1u64),
        (0, 4),
        (12_345, 50_000),
        (99_990, 10),
        (0, 100_000),
    ] {
        let got = b.read_range(FileType::Pack, &name, off, len).await.unwrap();
        assert_eq!(
            &got[..],
            &data[off as usize..(off + len) as usize],
            "{kind}: range {off}+{len}"
        );
    }
    for (off, len) in [(99_990u64, 20u64), (100_000, 1), (200_000, 5)] {
        match b.read_range(FileType::Pack, &name, off, len).await {
            Err(e @ StorageError::PastEnd { .. }) => {
                assert!(!e.is_transient(), "{kind}: {e} is not worth retrying")
            }
            other => panic!(
                "{kind}: range {off}+{len} past the end: {:?}",
                other.map(|d| d.len())
            ),
        }
    }

    // Overwrite replaces; exclusive create refuses an existing file and leaves it alone.
    let replacement = payload(&mut rng, 777);
    b.write(FileType::Pack, &name, replacement.clone(), false)
        .await
        .unwrap();
    assert_eq!(b.read(FileType::Pack, &name).await.unwrap(), replacement);
    let lock = hex_name(&mut rng);
    let first = payload(&mut rng, 200);
    b.write(FileType::Lock, &lock, first.clone(), true)
        .await
        .unwrap();
    match b
        .write(FileType::Lock, &lock, payload(&mut rng, 200), true)
        .await
    {
        Err(StorageError::AlreadyExists { .. }) => {}
        other => panic!("{kind}: second exclusive create: {other:?}"),
    }
    assert_eq!(b.read(FileType::Lock, &lock).await.unwrap(), first);

    // A large object goes up in parts and comes back whole and in ranges.
    let big_name = hex_name(&mut rng);
    let big = payload(
        &mut rng,
        arca_storage::MULTIPART_THRESHOLD + 5 * 1024 * 1024 + 17,
    );
    b.write(FileType::Pack, &big_name, big.clone(), false)
        .await
        .unwrap();
    assert_eq!(
        b.stat(FileType::Pack, &big_name).await.unwrap().size,
        big.len() as u64
    );
    let got = b.read(FileType::Pack, &big_name).await.unwrap();
    assert!(got == big, "{kind}: large object differs");
    let mid = b
        .read_range(FileType::Pack, &big_name, 20 << 20, 1 << 20)
        .await
        .unwrap();
    assert_eq!(&mid[..], &big[20 << 20..21 << 20]);

    // Listing pages through more files than one page holds.
    let n = page_size(kind) + 100;
    let n = if n == 100 { 300 } else { n };
    let names: Vec<String> = (0..n).map(|_| hex_name(&mut rng)).collect();
    futures::stream::iter(names.iter().enumerate().map(|(i, name)| {
        let b = b.clone();
        async move {
            b.write(
                FileType::Index,
                name,
                Bytes::from(vec![b'x'; i % 7 + 1]),
                false,
            )
            .await
        }
    }))
    .buffer_unordered(32)
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .unwrap_or_else(|e| panic!("{kind}: writing {n} index files: {e}"));
    let listed = b.list(FileType::Index).await.unwrap();
    assert_eq!(listed.len(), n, "{kind}: list of {n} files");
    let sizes: BTreeMap<&str, u64> = listed.iter().map(|f| (f.name.as_str(), f.size)).collect();
    for (i, name) in names.iter().enumerate() {
        assert_eq!(
            sizes.get(name.as_str()),
            Some(&((i % 7 + 1) as u64)),
            "{kind}: listed size"
        );
    }

    // Concurrent writers: different files all land; racing exclusive creates of one name
    // leave exactly one winner's content.
    let packs: Vec<(String, Bytes)> = (0..16)
        .map(|_| (hex_name(&mut rng), payload(&mut rng, 300_000)))
        .collect();
    let results = futures::future::join_all(
        packs
            .iter()
            .map(|(n, d)| b.write(FileType::Pack, n, d.clone(), false)),
    )
    .await;
    assert!(
        results.iter().all(Result::is_ok),
        "{kind}: concurrent writes: {results:?}"
    );
    for (n, d) in &packs {
        assert!(
            b.read(FileType::Pack, n).await.unwrap() == *d,
            "{kind}: concurrent write of {n}"
        );
    }
    let contested = hex_name(&mut rng);
    let candidates: Vec<Bytes> = (0..6).map(|_| payload(&mut rng, 256)).collect();
    let results = futures::future::join_all(
        candidates
            .iter()
            .map(|d| b.write(FileType::Lock, &contested, d.clone(), true)),
    )
    .await;
    let winners = results.iter().filter(|r| r.is_ok()).count();
    for r in &results {
        assert!(
            matches!(r, Ok(()) | Err(StorageError::AlreadyExists { .. })),
            "{kind}: {r:?}"
        );
    }
    assert!(winners >= 1, "{kind}: no exclusive create won");
    if atomic_create(kind) {
        assert_eq!(winners, 1, "{kind}: exactly one exclusive create wins");
    }
    let stored = b.read(FileType::Lock, &contested).await.unwrap();
    assert!(
        candidates.contains(&stored),
        "{kind}: contested file holds one writer's content"
    );

    // Clean up what this run stored.
    for ty in FileType::ALL {
        if ty == FileType::Config {
            continue;
        }
        let files = b.list(ty).await.unwrap();
        futures::stream::iter(files.into_iter().map(|f| {
            let b = b.clone();
            async move { b.remove(ty, &f.name).await }
        }))
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    }
    b.remove(FileType::Config, "config").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_local() {
    run_suite("local").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_s3() {
    run_suite("s3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_minio() {
    run_suite("minio").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_azure() {
    run_suite("azure").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_gcs() {
    run_suite("gs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_rest() {
    run_suite("rest").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_sftp() {
    run_suite("sftp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_rclone() {
    run_suite("rclone").await;
}
