//! Secrets stay secret in what the CLI prints: help text, errors about repositories with
//! credentials in their URL, failing password commands; and passwords and REST credentials
//! are read where and as restic reads them.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;

use arca_tests::*;

/// A v1 fixture with a cheap KDF; its password is [`FIXTURE_PASSWORD`].
const FIXTURE: &str = "repo-layout-default";

fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_hidden(what: &str, out: &Output, secrets: &[&str]) {
    let all = printed(out);
    for s in secrets {
        assert!(!all.contains(s), "{what} printed the secret {s:?}:\n{all}");
    }
    assert!(!all.contains("panicked"), "{what} panicked:\n{all}");
}

#[test]
fn help_shows_no_value_of_the_environment() {
    let mut arca = Arca::plain();
    arca.env("RESTIC_PASSWORD_COMMAND", "echo cmd-s3cret")
        .env("RESTIC_REPOSITORY", "rest:http://u:url-s3cret@127.0.0.1:1/")
        .env(
            "RESTIC_FROM_REPOSITORY",
            "rest:http://u:from-s3cret@127.0.0.1:1/",
        )
        .env("RESTIC_FROM_PASSWORD_COMMAND", "echo from-cmd-s3cret")
        .env("RESTIC_PASSWORD_FILE", "/secret/path-s3cret");
    let secrets = ["s3cret"];
    for args in [
        vec!["--help"],
        vec!["snapshots", "--help"],
        vec!["copy", "--help"],
        vec!["init", "--help"],
        vec!["backup", "--help"],
    ] {
        let out = arca.output(&args);
        assert!(out.status.success(), "{args:?}: {}", printed(&out));
        assert!(
            printed(&out).contains("RESTIC_PASSWORD_COMMAND"),
            "{args:?} still names the variable"
        );
        assert_hidden(&format!("arca {}", args.join(" ")), &out, &secrets);
    }
}

#[test]
fn a_password_in_a_rest_url_is_shown_as_stars() {
    // Nothing listens on the port: the command fails, and says where it could not go.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let repo = format!("rest:http://alice:url-s3cret@127.0.0.1:{port}/repo/");
    let arca = Arca::new(&repo, "pw");
    // (Each is tried for about 25 s: a store that does not answer may be restarting.)
    for args in [vec!["snapshots"], vec!["init"]] {
        let out = arca.output(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert_hidden(&format!("arca {args:?}"), &out, &["url-s3cret"]);
        assert!(
            printed(&out).contains("alice:***@127.0.0.1"),
            "{args:?}: restic shows the user and stars: {}",
            printed(&out)
        );
    }
}

#[test]
fn a_failing_password_command_is_not_repeated() {
    let repo = TempRepo::fixture(FIXTURE);
    let mut arca = Arca::plain();
    arca.env("RESTIC_REPOSITORY", repo.path());
    let out = arca.output([
        "--password-command",
        "echo cmd-s3cret >/dev/null; exit 3",
        "snapshots",
    ]);
    assert!(!out.status.success());
    assert_hidden("a failing password command", &out, &["cmd-s3cret"]);
    assert!(
        printed(&out).contains("password command"),
        "the error says what failed: {}",
        printed(&out)
    );
}

/// restic trims the whole password file (spaces too) and drops a byte-order mark.
#[test]
fn password_files_are_read_as_restic_reads_them() {
    let repo = TempRepo::fixture(FIXTURE);
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<u8>); 4] = [
        ("spaces", format!("  {FIXTURE_PASSWORD}  \n").into_bytes()),
        ("crlf", format!("{FIXTURE_PASSWORD}\r\n").into_bytes()),
        (
            "bom",
            [b"\xEF\xBB\xBF".as_slice(), FIXTURE_PASSWORD.as_bytes()].concat(),
        ),
        ("utf16", {
            let mut b = vec![0xFF, 0xFE];
            for u in FIXTURE_PASSWORD.encode_utf16() {
                b.extend_from_slice(&u.to_le_bytes());
            }
            b
        }),
    ];
    let restic = restic_or_skip();
    for (name, content) in &cases {
        let file = dir.path().join(name);
        std::fs::write(&file, content).unwrap();
        let mut arca = Arca::plain();
        arca.env("RESTIC_REPOSITORY", repo.path());
        let out = arca.output([
            Path::new("-p"),
            &file,
            Path::new("--no-lock"),
            Path::new("snapshots"),
        ]);
        assert!(
            out.status.success(),
            "{name}: arca refused the password file: {}",
            printed(&out)
        );
        if let Some(bin) = &restic {
            let mut r = Restic::with_bin(bin, repo.path(), "");
            r.env_remove("RESTIC_PASSWORD");
            let out = r.output([
                Path::new("-p"),
                &file,
                Path::new("--no-lock"),
                Path::new("snapshots"),
            ]);
            assert!(
                out.status.success(),
                "{name}: restic refused it too, the case is wrong: {}",
                printed(&out)
            );
        }
    }
}

/// `RESTIC_REST_USERNAME` and `RESTIC_REST_PASSWORD` log in to a REST server whose URL
/// names no user (restic 0.17+); the password is never printed.
#[test]
fn rest_credentials_come_from_the_environment() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // A server that records the Authorization header of each request and refuses it.
    let server = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for stream in listener.incoming().take(1) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 0 {
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line
                    .to_ascii_lowercase()
                    .strip_prefix("authorization: ")
                    .map(str::to_string)
                {
                    seen.push(line[line.len() - v.len()..].trim().to_string());
                }
                line.clear();
            }
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
        seen
    });
    let arca = Arca::new(format!("rest:http://127.0.0.1:{port}/"), "pw");
    let out = arca
        .cmd(["cat", "config"])
        .env("RESTIC_REST_USERNAME", "bob")
        .env("RESTIC_REST_PASSWORD", "rest-s3cret")
        .output();
    assert!(!out.status.success(), "the server refused every request");
    assert_hidden("a refused REST login", &out, &["rest-s3cret"]);
    let seen = server.join().unwrap();
    // base64("bob:rest-s3cret")
    assert_eq!(seen, vec!["Basic Ym9iOnJlc3QtczNjcmV0".to_string()]);
}
