//! `arca` end to end on every backend (local, S3, Azure, GCS, REST) against the real
//! servers that scripts/servers.sh starts on loopback; restic interop over S3 and REST;
//! injected faults; and the one-line errors for bad credentials, buckets, endpoints and
//! URLs. A missing server skips loudly, and fails under CI=true.

use arca_tests::*;
use rand::{Rng, RngCore, SeedableRng};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const PW: &str = "backend-test-password";

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Where a fresh repository of `kind` goes, with the environment that reaches it.
struct Target {
    repo: String,
    env: Vec<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

fn target(kind: &str) -> Option<Target> {
    let need = |names: &[&str]| -> Option<Vec<String>> {
        let mut vals = Vec::new();
        for n in names {
            match var(n) {
                Some(v) => vals.push(v),
                None => {
                    let msg = format!(
                        "{kind} tests need {n} (start the servers with scripts/servers.sh)"
                    );
                    assert!(!is_ci(), "{msg}");
                    eprintln!("SKIPPED: {msg}");
                    return None;
                }
            }
        }
        Some(vals)
    };
    let unique = format!("e2e-{:016x}", rand::thread_rng().next_u64());
    Some(match kind {
        "local" => {
            let dir = tempfile::tempdir().unwrap();
            Target {
                repo: dir.path().join("repo").display().to_string(),
                env: Vec::new(),
                _dir: Some(dir),
            }
        }
        // SeaweedFS and MinIO, both started by scripts/servers.sh.
        "s3" | "minio" => {
            let p = if kind == "s3" { "S3" } else { "MINIO" };
            let v = need(&[
                &format!("ARCA_TEST_{p}_ENDPOINT"),
                &format!("ARCA_TEST_{p}_ACCESS_KEY"),
                &format!("ARCA_TEST_{p}_SECRET_KEY"),
                "ARCA_TEST_BUCKET",
            ])?;
            Target {
                repo: format!("s3:{}/{}/{unique}", v[0], v[3]),
                env: vec![
                    ("AWS_ACCESS_KEY_ID".into(), v[1].clone()),
                    ("AWS_SECRET_ACCESS_KEY".into(), v[2].clone()),
                    ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
                ],
                _dir: None,
            }
        }
        "azure" => {
            let v = need(&[
                "ARCA_TEST_AZURE_ENDPOINT",
                "ARCA_TEST_AZURE_ACCOUNT",
                "ARCA_TEST_AZURE_KEY",
                "ARCA_TEST_BUCKET",
            ])?;
            Target {
                repo: format!("azure:{}:/{unique}", v[3]),
                env: vec![
                    ("AZURE_ACCOUNT_NAME".into(), v[1].clone()),
                    ("AZURE_ACCOUNT_KEY".into(), v[2].clone()),
                    ("AZURE_ENDPOINT_URL".into(), v[0].clone()),
                ],
                _dir: None,
            }
        }
        "gs" => {
            let v = need(&["ARCA_TEST_GCS_ENDPOINT", "ARCA_TEST_BUCKET"])?;
            Target {
                repo: format!("gs:{}:/{unique}", v[1]),
                env: vec![("STORAGE_EMULATOR_HOST".into(), v[0].clone())],
                _dir: None,
            }
        }
        "rest" => {
            let v = need(&["ARCA_TEST_REST_URL"])?;
            Target {
                repo: format!("rest:{}/{unique}/", v[0].trim_end_matches('/')),
                env: Vec::new(),
                _dir: None,
            }
        }
        other => panic!("unknown backend {other}"),
    })
}

fn arca(t: &Target) -> Arca {
    let mut a = Arca::new(&t.repo, PW);
    for (k, v) in &t.env {
        a.env(k, v);
    }
    a
}

fn restic(t: &Target) -> Restic {
    let mut r = Restic::new(&t.repo, PW);
    for (k, v) in &t.env {
        r.env(k, v);
    }
    r
}

/// At least 200 MiB: the interop dataset, large random files, and thousands of small ones.
fn big_dataset() -> &'static Path {
    static DATA: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DATA
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("data");
            make_dataset(&root.join("mixed"), DatasetScale::Small);
            let mut rng = rand::rngs::StdRng::seed_from_u64(200);
            std::fs::create_dir_all(root.join("bulk")).unwrap();
            let mut buf = vec![0u8; 30 << 20];
            for i in 0..6 {
                rng.fill_bytes(&mut buf);
                std::fs::write(root.join(format!("bulk/b{i}.bin")), &buf).unwrap();
            }
            for i in 0..3000 {
                let d = root.join(format!("many/d{:02}", i / 100));
                std::fs::create_dir_all(&d).unwrap();
                let len = rng.gen_range(0..12_000);
                let mut v = vec![0u8; len];
                rng.fill_bytes(&mut v);
                std::fs::write(d.join(format!("f{i:04}")), &v).unwrap();
            }
            (dir, root)
        })
        .1
}

fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        let md = e.metadata().unwrap();
        total += if md.is_dir() {
            dir_size(&e.path())
        } else {
            md.len()
        };
    }
    total
}

/// init, backup, check --read-data, restore, second backup, forget --prune, check again.
fn end_to_end(kind: &str) {
    let Some(t) = target(kind) else { return };
    let src = big_dataset();
    assert!(dir_size(src) >= 200 << 20, "dataset is at least 200 MiB");
    let a = arca(&t);
    a.run(["init"]);
    a.run(["backup", "-q", src.to_str().unwrap()]);
    a.run(["check", "--read-data"]);
    let out = tempfile::tempdir().unwrap();
    a.run([
        "restore",
        "latest",
        "--target",
        out.path().to_str().unwrap(),
    ]);
    compare_trees(src, &out.path().join(src.strip_prefix("/").unwrap()))
        .unwrap_or_else(|e| panic!("{kind}: restored tree differs: {e}"));

    // Change the data, back up again, keep only the newest snapshot and prune.
    let scratch = tempfile::tempdir().unwrap();
    let changed = scratch.path().join("data");
    cp_a(src, &changed);
    std::fs::remove_dir_all(changed.join("bulk")).unwrap();
    std::fs::write(changed.join("new.txt"), b"added in the second snapshot\n").unwrap();
    a.run(["backup", "-q", changed.to_str().unwrap()]);
    // The two snapshots have different paths: group by host so one policy covers both.
    a.run([
        "forget",
        "--keep-last",
        "1",
        "--group-by",
        "host",
        "--prune",
    ]);
    let snaps = a.run_json(["snapshots", "--json"]);
    assert_eq!(
        snaps.as_array().unwrap().len(),
        1,
        "{kind}: one snapshot left"
    );
    a.run(["check", "--read-data"]);
    let out2 = tempfile::tempdir().unwrap();
    a.run([
        "restore",
        "latest",
        "--target",
        out2.path().to_str().unwrap(),
    ]);
    compare_trees(
        &changed,
        &out2.path().join(changed.strip_prefix("/").unwrap()),
    )
    .unwrap_or_else(|e| panic!("{kind}: second restore differs: {e}"));
}

#[test]
fn end_to_end_local() {
    end_to_end("local");
}

#[test]
fn end_to_end_s3() {
    end_to_end("s3");
}

#[test]
fn end_to_end_azure() {
    end_to_end("azure");
}

#[test]
fn end_to_end_gcs() {
    end_to_end("gs");
}

#[test]
fn end_to_end_rest() {
    end_to_end("rest");
}

/// restic 0.14 checks what arca wrote over the network, and arca restores what restic wrote.
fn restic_interop(kind: &str) {
    let restic_bin = restic_or_return!();
    let _ = restic_bin;
    let src = tempfile::tempdir().unwrap();
    make_dataset(src.path(), DatasetScale::Small);

    let Some(t) = target(kind) else { return };
    let a = arca(&t);
    a.run(["init"]);
    a.run(["backup", "-q", src.path().to_str().unwrap()]);
    let r = restic(&t);
    r.run(["check", "--read-data"]);
    let out = tempfile::tempdir().unwrap();
    r.run([
        "restore",
        "latest",
        "--target",
        out.path().to_str().unwrap(),
    ]);
    compare_trees(
        src.path(),
        &out.path().join(src.path().strip_prefix("/").unwrap()),
    )
    .unwrap_or_else(|e| panic!("{kind}: restic restore of arca's backup differs: {e}"));

    let Some(t2) = target(kind) else { return };
    let r2 = restic(&t2);
    r2.run(["init"]);
    r2.run(["backup", "-q", src.path().to_str().unwrap()]);
    let a2 = arca(&t2);
    a2.run(["check", "--read-data"]);
    let out2 = tempfile::tempdir().unwrap();
    a2.run([
        "restore",
        "latest",
        "--target",
        out2.path().to_str().unwrap(),
    ]);
    compare_trees(
        src.path(),
        &out2.path().join(src.path().strip_prefix("/").unwrap()),
    )
    .unwrap_or_else(|e| panic!("{kind}: arca restore of restic's backup differs: {e}"));
}

#[test]
fn restic_interop_s3() {
    restic_interop("s3");
}

#[test]
fn end_to_end_minio() {
    end_to_end("minio");
}

#[test]
fn restic_interop_minio() {
    restic_interop("minio");
}

#[test]
fn restic_interop_rest() {
    restic_interop("rest");
}

/// With 5% of requests failing (plus truncated reads and lost write answers), backup,
/// check and restore still succeed through retries.
#[test]
fn random_faults_are_retried() {
    for kind in ["s3", "rest"] {
        let Some(t) = target(kind) else { return };
        let src = tempfile::tempdir().unwrap();
        make_dataset(src.path(), DatasetScale::Small);
        let mut a = arca(&t);
        a.run(["init"]);
        a.env(
            "ARCA_FAULTS",
            "fail=0.05,truncate=0.02,after-write=0.02,seed=11",
        );
        a.run(["backup", "-q", src.path().to_str().unwrap()]);
        a.run(["check", "--read-data"]);
        let out = tempfile::tempdir().unwrap();
        a.run([
            "restore",
            "latest",
            "--target",
            out.path().to_str().unwrap(),
        ]);
        compare_trees(
            src.path(),
            &out.path().join(src.path().strip_prefix("/").unwrap()),
        )
        .unwrap_or_else(|e| panic!("{kind}: restore under faults differs: {e}"));
        a.env_remove("ARCA_FAULTS");
        a.run(["check", "--read-data"]);
    }
}

/// The store goes away in the middle of a backup: arca stops with one clear line, and the
/// repository it leaves behind still passes check (restic's too, on S3).
#[test]
fn store_going_away_mid_backup() {
    let Some(t) = target("s3") else { return };
    let src = big_dataset();
    let mut a = arca(&t);
    a.run(["init"]);
    // Opening, locking and loading take about ten requests; the backup needs dozens.
    a.env("ARCA_FAULTS", "die-after=20");
    let out = a.expect_failure(["backup", "-q", src.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let fatal: Vec<&str> = stderr.lines().filter(|l| l.starts_with("Fatal:")).collect();
    assert_eq!(fatal.len(), 1, "one Fatal line: {stderr}");
    assert!(
        fatal[0].contains("cannot reach"),
        "names the problem: {stderr}"
    );
    a.env_remove("ARCA_FAULTS");
    a.run(["unlock"]);
    a.run(["check", "--read-data"]);
    if restic_or_skip().is_some() {
        restic(&t).run(["check", "--read-data"]);
    }
    // And the next backup completes.
    a.run(["backup", "-q", src.to_str().unwrap()]);
    a.run(["check"]);
}

fn one_fatal_line(out: &std::process::Output) -> String {
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one line: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    lines[0].to_string()
}

#[test]
fn network_errors_are_one_clear_line() {
    let Some(t) = target("s3") else { return };
    // Wrong credentials.
    let mut wrong = arca(&t);
    wrong.env("AWS_SECRET_ACCESS_KEY", "not-the-secret");
    let line = one_fatal_line(&wrong.expect_failure(["init"]));
    assert!(line.contains("access denied"), "{line}");

    // A bucket that does not exist.
    let endpoint = var("ARCA_TEST_S3_ENDPOINT").unwrap();
    let mut nob = Arca::new(
        format!(
            "s3:{endpoint}/no-such-bucket-{:x}/repo",
            rand::thread_rng().next_u32()
        ),
        PW,
    );
    for (k, v) in &t.env {
        nob.env(k, v);
    }
    let line = one_fatal_line(&nob.expect_failure(["snapshots"]));
    assert!(line.contains("does not exist"), "{line}");

    // Nothing listening.
    let mut gone = Arca::new("s3:http://127.0.0.1:9/bucket/repo", PW);
    for (k, v) in &t.env {
        gone.env(k, v);
    }
    let line = one_fatal_line(&gone.expect_failure(["snapshots"]));
    assert!(line.contains("cannot reach"), "{line}");

    // Malformed repository strings.
    for bad in ["s3:https://host-only", "azure::/x", "rest:ftp://host/"] {
        let line = one_fatal_line(&Arca::new(bad, PW).expect_failure(["snapshots"]));
        assert!(
            line.contains("invalid repository location"),
            "{bad}: {line}"
        );
    }
}
