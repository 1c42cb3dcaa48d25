//! The global flags that shape how the store is reached, each against the real restic on
//! the same repository: `--insecure-tls`, `--cacert` and `--tls-client-cert` on an HTTPS
//! REST server (`rclone serve restic` with a throwaway CA made by `openssl`, and with
//! client certificates required), `--limit-upload`/`--limit-download`, and
//! `--stuck-request-timeout` against a server that never answers.

use arca_tests::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PW: &str = "transfer-flags";

/// A CA, a server certificate for 127.0.0.1 and a client certificate (with its key in the
/// same file, as restic's `--tls-client-cert` wants it), all made for this test.
struct Certs {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client: PathBuf,
    client_cert_only: PathBuf,
}

fn openssl(openssl: &Path, dir: &Path, args: &[&str]) {
    let out = Command::new(openssl)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn make_certs(dir: &Path) -> Option<Certs> {
    let bin = tool_or_skip("openssl")?;
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let req = |key: &str, out: &str, subject: &str, x509: bool| {
        let mut args = vec!["req"];
        if x509 {
            args.extend(["-x509", "-days", "2"]);
        }
        args.extend(ec);
        args.extend(["-keyout", key, "-out", out, "-subj", subject]);
        openssl(&bin, dir, &args);
    };
    let sign = |csr: &str, ext: &str, out: &str| {
        openssl(
            &bin,
            dir,
            &[
                "x509",
                "-req",
                "-in",
                csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                ext,
                "-out",
                out,
            ],
        );
    };
    req("ca.key", "ca.crt", "/CN=arca-test-ca", true);
    req("server.key", "server.csr", "/CN=127.0.0.1", false);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    sign("server.csr", "server.ext", "server.crt");
    req("client.key", "client.csr", "/CN=arca-client", false);
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    sign("client.csr", "client.ext", "client.crt");
    let mut pem = std::fs::read(dir.join("client.crt")).unwrap();
    pem.extend(std::fs::read(dir.join("client.key")).unwrap());
    std::fs::write(dir.join("client.pem"), pem).unwrap();
    Some(Certs {
        ca: dir.join("ca.crt"),
        server_cert: dir.join("server.crt"),
        server_key: dir.join("server.key"),
        client: dir.join("client.pem"),
        client_cert_only: dir.join("client.crt"),
    })
}

/// `rclone serve restic` over HTTPS on a free port, stopped when dropped.
struct HttpsServer {
    child: Child,
    url: String,
}

impl HttpsServer {
    fn start(rclone: &Path, certs: &Certs, root: &Path, client_ca: bool) -> HttpsServer {
        let mut cmd = Command::new(rclone);
        cmd.args(["serve", "restic", "--addr", "127.0.0.1:0", "--cert"])
            .arg(&certs.server_cert)
            .arg("--key")
            .arg(&certs.server_key)
            .env("RCLONE_CONFIG", "/dev/null");
        if client_ca {
            cmd.arg("--client-ca").arg(&certs.ca);
        }
        let mut child = cmd
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // rclone names the address it listens on once it does; its log goes on being read
        // (and dropped) so that it never blocks on a full pipe.
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        let url = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!("rclone serve restic ended before serving: {seen:?}");
            };
            if let Some(at) = line.find("https://") {
                break line[at..].trim().to_owned();
            }
            seen.push(line);
        };
        std::thread::spawn(move || lines.for_each(drop));
        HttpsServer { child, url }
    }

    fn repo(&self) -> String {
        format!("rest:{}repo", self.url)
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn tls_flags_reach_https_servers_as_restic_does() {
    let Some(bin) = restic_or_skip() else { return };
    let Some(rclone) = tool_or_skip("rclone") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(certs) = make_certs(dir.path()) else {
        return;
    };
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "over TLS ".repeat(100)).unwrap();
    let ca = certs.ca.to_str().unwrap();

    // A server whose certificate no system root vouches for.
    let server = HttpsServer::start(&rclone, &certs, &dir.path().join("tls"), false);
    let arca = Arca::new(server.repo(), PW);
    let restic = Restic::with_bin(&bin, server.repo(), PW);
    // Refused at once: restic 0.17+ retries a certificate it cannot verify for minutes.
    let refused = arca.expect_failure(["init"]);
    let msg = stderr(&refused);
    assert!(
        msg.contains("TLS connection to") && msg.contains("UnknownIssuer"),
        "{msg}"
    );
    assert_eq!(msg.trim_end().lines().count(), 1, "{msg}");
    arca.run(["--insecure-tls", "init"]);
    arca.run(["--cacert", ca, "backup", src.to_str().unwrap()]);
    // restic reads what arca wrote, each way of trusting the server.
    let listed = restic.run_json(["--insecure-tls", "snapshots", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(restic
        .run_string(["--cacert", ca, "check", "--read-data"])
        .contains("no errors were found"));

    // A server that also wants a client certificate signed by its CA.
    let server = HttpsServer::start(&rclone, &certs, &dir.path().join("mtls"), true);
    let arca = Arca::new(server.repo(), PW);
    let restic = Restic::with_bin(&bin, server.repo(), PW);
    let client = certs.client.to_str().unwrap();
    let refused = arca.expect_failure(["--cacert", ca, "init"]);
    let msg = stderr(&refused);
    // TLS 1.3 checks the client's certificate after the handshake: the server's alert
    // usually arrives, but it may close the connection before the client reads it.
    assert!(
        msg.contains("TLS connection to") || msg.contains("connection closed"),
        "{msg}"
    );
    assert_eq!(msg.trim_end().lines().count(), 1, "{msg}");
    // The CA and the client certificate in front of a command's arguments.
    let trusted = |args: &[&str]| -> Vec<String> {
        ["--cacert", ca, "--tls-client-cert", client]
            .iter()
            .chain(args)
            .map(|a| a.to_string())
            .collect()
    };
    let s = src.to_str().unwrap();
    arca.run(trusted(&["init"]));
    arca.run(trusted(&["backup", s]));
    let listed = restic.run_json(trusted(&["snapshots", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    // restic backs up into it too, and arca reads both snapshots, the certificate given
    // through the environment this time.
    restic.run(trusted(&["backup", s]));
    let listed = arca
        .cmd(["--cacert", ca, "snapshots", "--json"])
        .env("RESTIC_TLS_CLIENT_CERT", client)
        .run();
    let listed: serde_json::Value = serde_json::from_slice(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    // A file without the key is refused in one line that shows nothing of the file.
    let only = certs.client_cert_only.to_str().unwrap();
    let refused = arca.expect_failure(["--cacert", ca, "--tls-client-cert", only, "snapshots"]);
    let msg = stderr(&refused);
    assert!(msg.contains("invalid TLS client certificate"), "{msg}");
    assert!(!msg.contains("BEGIN"), "{msg}");
    assert!(!restic
        .output(["--cacert", ca, "--tls-client-cert", only, "snapshots"])
        .status
        .success());
}

/// Runs `tool` with `args` and says how long it took.
fn timed(tool: &Runner, args: &[&str]) -> Duration {
    let start = Instant::now();
    tool.run(args);
    start.elapsed()
}

#[test]
fn limits_hold_transfers_to_the_rate_and_restic_reads_the_result() {
    let Some(bin) = restic_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    // Incompressible, so that the packs carry at least this much.
    let data = DetRng::new(7).bytes(1 << 20);
    std::fs::write(src.join("random"), &data).unwrap();
    let repo = dir.path().join("repo");
    let arca = Arca::new(&repo, PW);
    arca.run(["init"]);
    // At 512 KiB/s a MiB cannot take less than two seconds, however fast the machine: the
    // limit only ever adds waiting, so the bound cannot fail by the machine being slow.
    let rate = Duration::from_secs(2);
    let up = timed(
        &arca,
        &["--limit-upload", "512", "backup", src.to_str().unwrap()],
    );
    assert!(up >= rate, "backup of 1 MiB at 512 KiB/s took {up:?}");
    let target = dir.path().join("target");
    let down = timed(
        &arca,
        &[
            "--limit-download",
            "512",
            "restore",
            "latest",
            "--target",
            target.to_str().unwrap(),
        ],
    );
    assert!(down >= rate, "restore of 1 MiB at 512 KiB/s took {down:?}");
    let restored = target.join(src.strip_prefix("/").unwrap()).join("random");
    assert_eq!(std::fs::read(restored).unwrap(), data);
    // 0 is no limit, as in restic; restic takes the same flags on the same repository.
    arca.run([
        "--limit-upload",
        "0",
        "--limit-download",
        "0",
        "check",
        "--read-data",
    ]);
    let restic = Restic::with_bin(&bin, &repo, PW);
    assert!(restic
        .run_string(["--limit-download", "512", "check", "--read-data"])
        .contains("no errors were found"));
}

#[test]
fn a_server_that_never_answers_is_given_up_after_the_stuck_request_timeout() {
    // Accepts connections and holds them, reading and writing nothing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn);
        }
    });
    let arca = Arca::new(format!("rest:http://127.0.0.1:{port}/"), PW);
    // Without the flag each try would wait five minutes; the retries then give up.
    let mut arca = arca;
    arca.timeout(Duration::from_secs(240));
    let out = arca
        .cmd(["--stuck-request-timeout", "1s", "snapshots"])
        .output();
    assert!(!out.status.success());
    let msg = stderr(&out);
    assert!(msg.contains("timed out"), "{msg}");
    assert_eq!(msg.trim_end().lines().count(), 1, "{msg}");
}
