//! Flags of restic 0.15–0.18 that scripts use, outside `backup`: `snapshots --compact` and
//! `--group-by`, `restore --include-file/--exclude-file` (and their `i` forms), run by arca and
//! by restic on one repository (or on copies of one) and compared.
//!
//! Run against Debian's restic 0.14.0 in the workspace run and the current restic from
//! scripts/test.sh; where 0.14 lacks a flag or printed differently, the test says so.

use arca_tests::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

const PW: &str = "command-flags";

/// A repository restic wrote: four snapshots over two hosts, two paths and some tags.
struct Repo {
    restic: Restic,
    arca: Arca,
    current: bool,
    src: std::path::PathBuf,
    _dirs: (TempRepo, tempfile::TempDir),
}

fn repo() -> Option<Repo> {
    let bin = restic_or_skip()?;
    let current = !dialect_of(&bin).is_0_14();
    let r = TempRepo::new();
    let data = tempfile::tempdir().unwrap();
    let src = data.path().join("src");
    for (path, body) in [
        ("docs/a.txt", "alpha"),
        ("docs/B.TXT", "beta"),
        ("docs/keep.md", "keep"),
        ("img/c.png", "png"),
        ("img/deep/d.png", "deep"),
        ("notes.txt", "notes"),
    ] {
        let p = src.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    let restic = Restic::with_bin(&bin, r.path(), PW);
    restic.run(["init"]);
    let s = src.to_str().unwrap();
    let docs = src.join("docs");
    let d = docs.to_str().unwrap();
    restic.run(["backup", "--host", "one", s]);
    restic.run(["backup", "--host", "one", "--tag", "x,y", d]);
    restic.run(["backup", "--host", "two", "--tag", "x", s]);
    restic.run(["backup", "--host", "two", s]);
    let arca = Arca::new(r.path(), PW);
    Some(Repo {
        restic,
        arca,
        current,
        src,
        _dirs: (r, data),
    })
}

/// restic prints groups in Go's map order, which changes from run to run: compare the set
/// of groups, each its header (none for the empty key) and table, which ends in its
/// "N snapshots" line.
fn groups(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut cur = String::new();
    for line in text.split_inclusive('\n') {
        cur.push_str(line);
        let count = line.trim_end().strip_suffix(" snapshots");
        if count.is_some_and(|n| n.parse::<usize>().is_ok()) {
            out.insert(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.insert(cur);
    }
    out
}

fn text(tool: &Runner, args: &[&str], current: bool) -> String {
    let out = tool.run_string(args);
    // 0.14 printed no "Timestamps shown in ..." footer.
    if current {
        out
    } else {
        arca_tests::dialect::without_zone_footer(&out)
    }
}

#[test]
fn snapshots_compact_and_grouped_read_as_restics() {
    let Some(r) = repo() else { return };
    for args in [
        vec!["snapshots", "--compact"],
        vec!["snapshots", "-c", "--host", "two"],
        vec!["snapshots", "--group-by", "host"],
        vec!["snapshots", "--group-by", "host,paths", "--compact"],
        vec!["snapshots", "--group-by", "tags"],
        vec!["snapshots", "--latest", "1"],
        vec!["snapshots", "-g", "paths,tags", "--latest", "1"],
    ] {
        // 0.14 took --latest per host and paths inside each group; 0.17 on per group, as arca.
        if !r.current && args.contains(&"-g") {
            continue;
        }
        let (a, x) = (
            text(&r.arca, &args, r.current),
            text(&r.restic, &args, r.current),
        );
        assert_eq!(groups(&a), groups(&x), "{args:?}\narca:\n{a}\nrestic:\n{x}");
    }
    // JSON: an array of {group_key, snapshots} when grouped, in any order.
    for by in ["host", "host,paths,tags"] {
        let args = ["snapshots", "--json", "--group-by", by];
        let set = |v: Value| -> BTreeSet<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|g| g.to_string())
                .collect()
        };
        let (a, x) = (r.arca.run_json(args), r.restic.run_json(args));
        assert_eq!(set(a), set(x), "{by}");
    }
    // An ungrouped --json stays a flat list.
    let flat = r.arca.run_json(["snapshots", "--json", "--compact"]);
    assert_eq!(flat.as_array().unwrap().len(), 4);
    assert!(flat[0]["id"].is_string());
}

/// `restore latest --target T ARGS` of the snapshot of `src` by `tool`; the restored files
/// (relative to the target) as a sorted list. Pattern files may name $ARCA_TEST_PATTERN_DIR.
fn restored(tool: &Runner, src: &Path, args: &[&str]) -> Vec<String> {
    let target = tempfile::tempdir().unwrap();
    tool.cmd(["restore", "latest", "--host", "one", "--path"])
        .arg(src)
        .args(["--target", target.path().to_str().unwrap()])
        .args(args)
        .env("ARCA_TEST_PATTERN_DIR", "img")
        .run();
    let mut files = Vec::new();
    walk(target.path(), target.path(), &mut files);
    files.sort();
    files
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            out.push(rel);
        }
    }
}

#[test]
fn restore_reads_patterns_from_files_as_restic() {
    let Some(r) = repo() else { return };
    let files = tempfile::tempdir().unwrap();
    let file = |name: &str, body: &str| -> String {
        let p = files.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    };
    let include = file("include", "# what to take\n\n*.txt\n");
    let exclude = file("exclude", "$ARCA_TEST_PATTERN_DIR\n*.md\n");
    let iinclude = file("iinclude", "*.TXT\n");
    let iexclude = file("iexclude", "*.PNG\n");
    // arca's flags, and the same patterns given one by one for restic 0.14 (its restore had
    // no pattern files; 0.17 added them).
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["--exclude-file", &exclude],
            vec!["--exclude", "img", "--exclude", "*.md"],
        ),
        (
            vec!["--exclude-file", &exclude, "--exclude", "notes.txt"],
            vec![
                "--exclude",
                "img",
                "--exclude",
                "*.md",
                "--exclude",
                "notes.txt",
            ],
        ),
        (vec!["--include-file", &include], vec!["--include", "*.txt"]),
        (
            vec!["--iinclude-file", &iinclude],
            vec!["--iinclude", "*.TXT"],
        ),
        (
            vec!["--iexclude-file", &iexclude],
            vec!["--iexclude", "*.PNG"],
        ),
        (
            vec!["--include-file", &include, "--include", "*.md"],
            vec!["--include", "*.txt", "--include", "*.md"],
        ),
    ];
    for (args, inline) in cases {
        let a = restored(&r.arca, &r.src, &args);
        let x = restored(&r.restic, &r.src, if r.current { &args } else { &inline });
        assert_eq!(a, x, "{args:?}");
        assert!(!a.is_empty(), "{args:?} restored something");
    }
    // On arca alone against 0.14: the include file selects the .txt files, any case.
    let a = restored(&r.arca, &r.src, &["--iinclude-file", iinclude.as_str()]);
    assert_eq!(a.len(), 3, "{a:?}");
    // Includes and excludes together are refused, as restic refuses them.
    let out = r
        .arca
        .cmd(["restore", "latest", "--target", "/nonexistent-target"])
        .args(["--include-file", include.as_str(), "--exclude", "x"])
        .expect_failure();
    assert!(String::from_utf8_lossy(&out.stderr).contains("mutually exclusive"));
    // A missing pattern file is one clear line.
    let out = r
        .arca
        .cmd(["restore", "latest", "--target", "/nonexistent-target"])
        .args(["--exclude-file", "/nonexistent/patterns"])
        .expect_failure();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/patterns"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// The repository of [`repo`] and a copy of it for arca, for commands that change it.
fn copies() -> Option<(Repo, Arca, TempRepo)> {
    let r = repo()?;
    let copy = TempRepo::new();
    if copy.path().exists() {
        std::fs::remove_dir_all(copy.path()).unwrap();
    }
    cp_a(r._dirs.0.path(), copy.path());
    let arca = Arca::new(copy.path(), PW);
    Some((r, arca, copy))
}

/// Snapshots as restic lists them, without their own IDs (a rewritten snapshot's ID hashes
/// its ciphertext), in time order.
fn snapshot_list(bin: &Path, repo: &Path) -> Vec<Value> {
    let mut list: Vec<Value> = Restic::with_bin(bin, repo, PW)
        .run_json(["snapshots", "--json"])
        .as_array()
        .unwrap()
        .clone();
    for s in &mut list {
        let o = s.as_object_mut().unwrap();
        o.remove("id");
        o.remove("short_id");
        // The snapshot a rewrite replaced: one written by each tool after the first step.
        if let Some(original) = o.get_mut("original") {
            *original = Value::from("<id>");
        }
    }
    // A rewritten snapshot keeps its original's time: the rest of it orders the two.
    list.sort_by_key(|s| (s["time"].as_str().unwrap().to_string(), s.to_string()));
    list
}

#[test]
fn rewrite_changes_host_time_and_summary_as_restic() {
    let Some((r, arca, arca_repo)) = copies() else {
        return;
    };
    let steps: Vec<Vec<&str>> = vec![
        vec!["rewrite", "--new-host", "moved", "--host", "one"],
        vec![
            "rewrite",
            "--new-time",
            "2020-01-02 03:04:05",
            "--tag",
            "x",
            "--forget",
        ],
        vec!["rewrite", "--snapshot-summary", "--host", "two"],
        vec![
            "rewrite",
            "-s",
            "--new-host",
            "both",
            "--exclude",
            "*.png",
            "--host",
            "moved",
        ],
    ];
    for step in &steps {
        let a = arca.output(step);
        assert!(
            a.status.success(),
            "{step:?}: {}",
            String::from_utf8_lossy(&a.stderr)
        );
        // restic 0.18 added these flags; against 0.14 arca's results are checked below.
        if r.current {
            let x = r.restic.output(step);
            assert!(x.status.success(), "{step:?}");
            assert_eq!(
                snapshot_list(r.restic.program(), arca_repo.path()),
                snapshot_list(r.restic.program(), r._dirs.0.path()),
                "after {step:?}"
            );
        }
    }
    // Read by arca: restic 0.14 does not know the summary field.
    let list: Vec<Value> = arca
        .run_json(["snapshots", "--json"])
        .as_array()
        .unwrap()
        .clone();
    let moved: Vec<&Value> = list.iter().filter(|s| s["hostname"] == "both").collect();
    assert_eq!(moved.len(), 2, "{list:?}");
    for s in &moved {
        assert!(
            s["summary"]["total_files_processed"].as_u64().unwrap() > 0,
            "{s}"
        );
    }
    assert!(
        list.iter().any(|s| s["time"] == "2020-01-02T03:04:05Z"),
        "{list:?}"
    );
    // Nothing to do is refused, as restic refuses it.
    let out = arca.expect_failure(["rewrite"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to do"));
}

/// The files and folders of a snapshot, relative to its first path, as arca lists them.
fn listed(arca: &Arca, snapshot: &str, src: &Path) -> Vec<String> {
    arca.run_json_lines(["ls", "--json", snapshot])
        .iter()
        .filter_map(|v| v["path"].as_str())
        .filter_map(|p| Path::new(p).strip_prefix(src).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

#[test]
fn rewrite_include_keeps_what_restic_keeps() {
    let Some((r, arca, arca_repo)) = copies() else {
        return;
    };
    let patterns = arca_repo.path().with_extension("patterns");
    std::fs::write(&patterns, "# folders\nimg\n").unwrap();
    let steps: Vec<Vec<&str>> = vec![
        vec!["rewrite", "--include", "*.txt", "--host", "one"],
        vec![
            "rewrite",
            "--iinclude",
            "*.txt",
            "--host",
            "two",
            "--forget",
        ],
        // Nothing matches: the snapshots are left as they are.
        vec!["rewrite", "--include", "/nothing/here", "--tag", "x"],
        vec![
            "rewrite",
            "--include-file",
            patterns.to_str().unwrap(),
            "--host",
            "one",
        ],
    ];
    for step in &steps {
        arca.run(step);
        // restic 0.18 added --include to rewrite; against 0.14 arca's results are checked
        // below on their own.
        if r.current {
            r.restic.run(step);
            assert_eq!(
                snapshot_list(r.restic.program(), arca_repo.path()),
                snapshot_list(r.restic.program(), r._dirs.0.path()),
                "after {step:?}"
            );
        }
    }
    let list = arca.run_json(["snapshots", "--json"]);
    let of = |host: &str, tag: &str| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .filter(|s| s["hostname"] == host && s["paths"][0] == r.src.to_str().unwrap())
            .filter(|s| s["tags"].as_array().into_iter().flatten().any(|t| t == tag))
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    // Case counts with --include, not with --iinclude; folders on the way stay, those
    // left empty go; a matching folder is kept whole (the last step, whose pattern
    // matched nothing in the snapshot the first step wrote).
    let one: BTreeSet<Vec<String>> = of("one", "rewrite")
        .iter()
        .map(|id| listed(&arca, id, &r.src))
        .collect();
    let want: BTreeSet<Vec<String>> = [
        vec!["docs", "docs/a.txt", "notes.txt"],
        vec!["img", "img/c.png", "img/deep", "img/deep/d.png"],
    ]
    .iter()
    .map(|v| v.iter().map(|s| s.to_string()).collect())
    .collect();
    assert_eq!(one, want, "{list}");
    let two_txt: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["hostname"] == "two" && s["original"].is_string())
        .filter(|s| {
            !s["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| t == "rewrite")
        })
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(two_txt.len(), 2, "{list}");
    for id in &two_txt {
        assert_eq!(
            listed(&arca, id, &r.src),
            ["docs", "docs/B.TXT", "docs/a.txt", "notes.txt"]
        );
    }
    assert!(of("two", "rewrite").is_empty(), "{list}");
    let out = arca.expect_failure(["rewrite", "--include", "a", "--exclude", "b"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("mutually exclusive"));
}

#[test]
fn key_add_and_passwd_record_user_and_host_as_restic() {
    let Some((r, arca, arca_repo)) = copies() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pw_file = dir.path().join("pw");
    std::fs::write(&pw_file, "second password\n").unwrap();
    let pw = pw_file.to_str().unwrap();
    let add = [
        "key",
        "add",
        "--new-password-file",
        pw,
        "--user",
        "alice",
        "--host",
        "laptop",
    ];
    let a = arca.run_string(add);
    let x = r.restic.run_string(add);
    if r.current {
        let shape = |s: &str| {
            let id = s
                .trim()
                .strip_prefix("saved new key with ID ")
                .unwrap_or_default();
            (id.len(), id.chars().all(|c| c.is_ascii_hexdigit()))
        };
        assert_eq!(shape(&a), (64, true), "{a}");
        assert_eq!(shape(&x), (64, true), "{x}");
    }
    let owners = |bin: &Path, repo: &Path| -> BTreeSet<(String, String)> {
        Restic::with_bin(bin, repo, PW)
            .run_json(["key", "list", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["userName"].as_str().unwrap().to_string(),
                    k["hostName"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let bin = r.restic.program().to_path_buf();
    assert_eq!(
        owners(&bin, arca_repo.path()),
        owners(&bin, r._dirs.0.path())
    );
    assert!(owners(&bin, arca_repo.path()).contains(&("alice".into(), "laptop".into())));

    // passwd with a new owner: the new key replaces the one in use, restic opens with it.
    let new_pw = dir.path().join("new");
    std::fs::write(&new_pw, "third password\n").unwrap();
    let passwd = [
        "key",
        "passwd",
        "--new-password-file",
        new_pw.to_str().unwrap(),
        "--host",
        "desk",
    ];
    let a = arca.run_string(passwd);
    let x = r.restic.run_string(passwd);
    let prefix = |s: &str| {
        s.split(", created on")
            .next()
            .unwrap_or_default()
            .to_string()
    };
    // restic 0.14's passwd ignored --host and --user; arca follows the current restic.
    if r.current {
        assert_eq!(prefix(&a), prefix(&x));
    }
    assert!(a.contains("@desk, created on"), "{a}");
    let reopened = Restic::with_bin(&bin, arca_repo.path(), "third password");
    let keys = reopened.run_json(["key", "list", "--json"]);
    let current: Vec<&Value> = keys
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["current"] == true)
        .collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["hostName"], "desk");
}

#[test]
fn generate_writes_completions_and_man_pages_as_restic() {
    let Some(bin) = restic_or_skip() else { return };
    let current = !dialect_of(&bin).is_0_14();
    let dir = tempfile::tempdir().unwrap();
    let arca = Arca::plain();
    let restic = Restic::plain_with_bin(&bin);
    for (tool, name) in [(&*arca, "arca"), (&*restic, "restic")] {
        let out = dir.path().join(name);
        let man = out.join("man");
        // restic writes into an existing folder only.
        std::fs::create_dir_all(&man).unwrap();
        tool.run([
            "generate",
            "--man",
            man.to_str().unwrap(),
            "--bash-completion",
            out.join("bash").to_str().unwrap(),
            "--zsh-completion",
            out.join("zsh").to_str().unwrap(),
            "--fish-completion",
            out.join("fish").to_str().unwrap(),
        ]);
        // The bash completion loads and registers a completion for the program.
        let script = format!(
            "source {} && complete -p {name}",
            out.join("bash").display()
        );
        let loaded = std::process::Command::new("bash")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(loaded.status.success(), "{name}: {loaded:?}");
        assert!(String::from_utf8_lossy(&loaded.stdout).contains(name));
        for shell in ["zsh", "fish"] {
            let text = std::fs::read_to_string(out.join(shell)).unwrap();
            assert!(text.contains(name), "{name} {shell}");
        }
    }
    // A page for the program and for every command both have, named as restic names them.
    let pages = |name: &str| -> BTreeSet<String> {
        std::fs::read_dir(dir.path().join(name).join("man"))
            .unwrap()
            .map(|e| {
                let f = e.unwrap().file_name().to_string_lossy().into_owned();
                f.strip_prefix(name).unwrap().to_string()
            })
            .collect()
    };
    let (a, x) = (pages("arca"), pages("restic"));
    for page in [
        ".1",
        "-backup.1",
        "-restore.1",
        "-snapshots.1",
        "-forget.1",
        "-key.1",
    ] {
        assert!(
            a.contains(page) && x.contains(page),
            "{page}: {a:?} / {x:?}"
        );
    }
    let key_add = std::fs::read_to_string(dir.path().join("arca/man/arca-key-add.1")).unwrap();
    assert!(key_add.contains("new\\-password\\-file"), "{key_add}");
    // Standard output for `-` (restic 0.17 on), and nothing asked for is an error in both.
    if current {
        let a = arca.run_string(["generate", "--bash-completion", "-"]);
        let x = restic.run_string(["generate", "--bash-completion", "-"]);
        assert!(a.contains("complete") && x.contains("complete"));
    }
    let (a, x) = (arca.output(["generate"]), restic.output(["generate"]));
    assert_eq!(a.status.code(), x.status.code());
    let last = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stderr)
            .trim()
            .lines()
            .last()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(last(&a), last(&x));
}

#[test]
fn find_by_blob_tree_and_pack_id_prints_what_restic_prints() {
    let Some(r) = repo() else { return };
    let blobs = r.restic.run_string(["list", "blobs"]);
    let of = |kind: &str| -> Vec<String> {
        let mut v: Vec<String> = blobs
            .lines()
            .filter_map(|l| l.strip_prefix(kind).map(|id| id.trim().to_string()))
            .collect();
        v.sort();
        v
    };
    let (data, trees) = (of("data "), of("tree "));
    let mut packs: Vec<String> = r
        .restic
        .run_string(["list", "packs"])
        .lines()
        .map(String::from)
        .collect();
    packs.sort();
    let cases: Vec<Vec<String>> = vec![
        vec!["--blob".into(), data[0].clone(), "--show-pack-id".into()],
        vec!["--blob".into(), data[1][..8].to_string()],
        vec!["--blob".into(), data[0].clone(), data[2].clone()],
        vec!["--tree".into(), trees[0].clone(), "--show-pack-id".into()],
        vec!["--tree".into(), trees[1][..8].to_string(), trees[2].clone()],
        vec!["--pack".into(), packs[0].clone()],
        vec!["--pack".into(), packs[packs.len() - 1][..8].to_string()],
        vec!["--json".into(), "--blob".into(), data[0].clone()],
        vec!["--json".into(), "--tree".into(), trees[0].clone()],
        vec!["--blob".into(), "0123456789abcdef".into()],
    ];
    for case in &cases {
        let args: Vec<&str> = std::iter::once("find")
            .chain(case.iter().map(String::as_str))
            .collect();
        let (a, x) = (r.arca.output(&args), r.restic.output(&args));
        assert_eq!(a.status.code(), x.status.code(), "{args:?}");
        let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
        if r.current {
            assert_eq!(text(&a), text(&x), "{args:?}");
        } else if args.contains(&"--blob") {
            // 0.14 went through the snapshots in the order of their IDs, 0.17 on (and arca)
            // newest first: the same reports, in another order.
            // The --show-pack-id lines after the last report are a block of their own.
            let blocks = |t: String| -> Vec<String> {
                let t = t.replace("Object belongs", "Found Object belongs");
                let mut v: Vec<String> = t.split("Found ").map(String::from).collect();
                v.sort();
                v
            };
            if args.contains(&"--json") {
                let set = |t: String| -> BTreeSet<String> {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    v.as_array()
                        .unwrap()
                        .iter()
                        .map(|o| o.to_string())
                        .collect()
                };
                assert_eq!(set(text(&a)), set(text(&x)), "{args:?}");
            } else {
                assert_eq!(blocks(text(&a)), blocks(text(&x)), "{args:?}");
            }
        }
        // Trees and packs against 0.14 are not compared: it stopped after as many finds as
        // trees wanted and skipped root trees; arca reports every place, as 0.17 on.
        if !args.contains(&"0123456789abcdef") {
            assert!(!text(&a).is_empty(), "{args:?}");
        }
    }
    // --reverse: oldest first (restic 0.17 on).
    let args = ["find", "--reverse", "--blob", data[1].as_str()];
    let a = r.arca.run_string(args);
    if r.current {
        assert_eq!(a, r.restic.run_string(args));
    }
    let newest_first = r.arca.run_string(["find", "--blob", data[1].as_str()]);
    assert_ne!(a, newest_first);
    // Refusals as restic's.
    for args in [
        vec!["find", "--blob", "--tree", "abcdef12"],
        vec!["find", "--pack", "abcdef12"],
    ] {
        let (a, x) = (r.arca.output(&args), r.restic.output(&args));
        assert_eq!(a.status.code(), x.status.code(), "{args:?}");
        let last = |o: &std::process::Output| {
            String::from_utf8_lossy(&o.stderr)
                .trim()
                .lines()
                .last()
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(last(&a), last(&x), "{args:?}");
    }
}

#[test]
fn ls_sorts_and_reverses_as_restic() {
    let Some(r) = repo() else { return };
    // restic 0.18 added --sort and --reverse.
    let docs = r.src.join("docs");
    let cases: Vec<Vec<String>> = vec![
        vec!["--sort".into(), "size".into()],
        vec!["--sort".into(), "size".into(), "--reverse".into()],
        vec!["--sort".into(), "extension".into(), "-l".into()],
        vec!["--sort".into(), "time".into()],
        vec!["--sort".into(), "ctime".into(), "--json".into()],
        vec!["--reverse".into()],
        vec!["--sort".into(), "name".into(), docs.display().to_string()],
    ];
    for case in &cases {
        let mut args = vec![
            "ls",
            "latest",
            "--host",
            "one",
            "--path",
            r.src.to_str().unwrap(),
        ];
        args.extend(case.iter().map(String::as_str));
        let a = r.arca.run_string(&args);
        if r.current {
            assert_eq!(a, r.restic.run_string(&args), "{args:?}");
        }
        assert!(a.lines().count() > 2, "{args:?}: {a}");
    }
    // On arca alone: sizes ascending, the path breaking ties.
    let a = r
        .arca
        .run_string(["ls", "latest", "--host", "two", "--sort", "size", "-l"]);
    let sizes: Vec<u64> = a
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(3).unwrap().parse().unwrap())
        .collect();
    assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{a}");
    let out = r.arca.expect_failure(["ls", "latest", "--sort", "colour"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid sort mode"));
}

#[test]
fn ls_ncdu_writes_restics_export() {
    let Some(r) = repo() else { return };
    // restic 0.15 added --ncdu: against 0.14 arca's export is checked on its own.
    let src = r.src.display().to_string();
    let docs = r.src.join("docs").display().to_string();
    let deep = r.src.join("img/deep").display().to_string();
    for dirs in [
        vec![],
        vec![docs.as_str()],
        vec![deep.as_str(), docs.as_str()],
    ] {
        for recursive in [false, true] {
            let mut args = vec!["ls", "latest", "--host", "one", "--path", &src, "--ncdu"];
            if recursive {
                args.push("--recursive");
            }
            args.extend(&dirs);
            let a = r.arca.run_string(&args);
            if r.current {
                assert_eq!(a, r.restic.run_string(&args), "{args:?}");
            }
            // ncdu's format: [major, minor, metadata, [root, entries…]], entries nested.
            let v: Value = serde_json::from_str(&a).unwrap_or_else(|e| panic!("{e}: {a}"));
            assert_eq!((v[0].as_u64(), v[1].as_u64()), (Some(1), Some(2)), "{a}");
            assert_eq!(v[3][0]["name"], "/");
        }
    }
    let all = r
        .arca
        .run_string(["ls", "latest", "--host", "two", "--ncdu"]);
    for name in ["\"a.txt\"", "\"deep\"", "\"d.png\""] {
        assert!(all.contains(name), "{name} in {all}");
    }
    let out = r.arca.expect_failure(["ls", "latest", "--ncdu", "--json"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("only either '--json' or '--ncdu'"));
    let out = r
        .arca
        .expect_failure(["ls", "latest", "--ncdu", "--sort", "size"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--sort and --ncdu are mutually exclusive")
    );
}

/// Each entry of a zip archive: name, Unix mode, time, compression and contents.
fn zip_entries(archive: Vec<u8>) -> Vec<String> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(archive)).unwrap();
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut body).unwrap();
            format!(
                "{} {:o} {:?} {:?} {:?}",
                f.name().unwrap(),
                f.unix_mode().unwrap_or(0),
                f.last_modified(),
                f.compression(),
                String::from_utf8_lossy(&body)
            )
        })
        .collect()
}

#[test]
fn dump_zip_holds_what_restics_holds() {
    let Some(r) = repo() else { return };
    let src = r.src.display().to_string();
    let docs = r.src.join("docs").display().to_string();
    for folder in ["/", src.as_str(), docs.as_str()] {
        let args = [
            "dump",
            "latest",
            "--host",
            "one",
            "--path",
            &src,
            folder,
            "--archive",
            "zip",
        ];
        let a = zip_entries(r.arca.run(args));
        assert!(a.iter().any(|e| e.contains("Deflated")), "{a:#?}");
        // restic 0.14 stored files uncompressed; the current one deflates them, as arca.
        let a: Vec<String> = if r.current {
            a
        } else {
            a.iter()
                .map(|e| e.replace(" Deflated ", " Stored "))
                .collect()
        };
        assert_eq!(a, zip_entries(r.restic.run(args)), "{folder}");
    }
    let out = r
        .arca
        .expect_failure(["dump", "latest", "/", "--archive", "rar"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown archive format \"rar\""));
}

#[test]
fn migrate_upgrade_repo_v2_upgrades_as_restic_does() {
    let Some(bin) = restic_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "some data ".repeat(1000)).unwrap();
    let repo_at = |name: &str| {
        let path = dir.path().join(name);
        let restic = Restic::with_bin(&bin, &path, PW);
        restic.run(["init", "--repository-version", "1"]);
        restic.run(["backup", src.to_str().unwrap()]);
        (restic, Arca::new(&path, PW), path)
    };
    let version = |r: &Restic| r.run_json(["cat", "config"])["version"].as_u64();
    let (restic, arca, _) = repo_at("ok");
    // The listing: the same words as restic's, before and after (0.14 ended its last line
    // without a newline).
    let listing = |tool: &Runner| tool.run_string(["migrate"]).trim_end().to_owned();
    assert_eq!(listing(&arca), listing(&restic));
    assert!(arca.run_string(["migrate"]).contains("upgrade_repo_v2"));
    arca.run(["migrate", "upgrade_repo_v2"]);
    assert_eq!(version(&restic), Some(2));
    assert_eq!(listing(&arca), listing(&restic));
    assert!(listing(&arca).ends_with("no migrations found"));
    assert!(restic
        .run_string(["check"])
        .contains("no errors were found"));
    // restic writes compressed data into it now, and arca reads it.
    std::fs::write(src.join("g"), "more data ".repeat(1000)).unwrap();
    restic.run(["backup", src.to_str().unwrap()]);
    arca.run(["check", "--read-data"]);
    // A second time: said, not done, and not an error (as restic), unless --force.
    let again = arca.output(["migrate", "upgrade_repo_v2"]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already upgraded to version 2"));
    arca.run(["migrate", "upgrade_repo_v2", "--force"]);
    assert_eq!(version(&restic), Some(2));
    let unknown = arca.expect_failure(["migrate", "upgrade_repo_v3"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown migration upgrade_repo_v3"));

    // A damaged repository is not upgraded: the check comes first.
    let (restic, arca, path) = repo_at("damaged");
    let pack = std::fs::read_dir(path.join("data"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_file(pack).unwrap();
    let refused = arca.expect_failure(["migrate", "upgrade_repo_v2"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not upgraded"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(version(&restic), Some(1));
}

#[test]
fn stats_counts_files_by_contents_and_blobs_per_file_as_restic() {
    let Some(r) = repo() else { return };
    // A copy under another name (one content, two paths) and a file that changes between two
    // snapshots of the same path. (A content under two paths, one of which later changes,
    // counts one path or two depending on which snapshot restic reads first: its order is
    // the store's listing order, so such a case cannot be compared.)
    std::fs::write(r.src.join("copy-of-notes.txt"), "notes").unwrap();
    std::fs::write(r.src.join("changing.txt"), "first").unwrap();
    r.restic
        .run(["backup", "--host", "one", r.src.to_str().unwrap()]);
    std::fs::write(r.src.join("changing.txt"), "second text").unwrap();
    r.restic
        .run(["backup", "--host", "one", r.src.to_str().unwrap()]);
    for mode in ["files-by-contents", "blobs-per-file"] {
        for extra in [&[][..], &["--json"], &["--host", "two"], &["latest"]] {
            let mut args = vec!["stats", "--mode", mode];
            args.extend_from_slice(extra);
            let a = r.arca.run_string(&args);
            let x = r.restic.run_string(&args);
            if extra == ["--json"] {
                let (a, x): (Value, Value) = (
                    serde_json::from_str(&a).unwrap(),
                    serde_json::from_str(&x).unwrap(),
                );
                assert_eq!(a, x, "{args:?}");
                assert!(a["total_file_count"].as_u64().unwrap() > 0);
            } else {
                // restic prints a scanning line and a progress bar before the table.
                let table = |t: &str| -> String {
                    t.lines()
                        .skip_while(|l| !l.starts_with("Stats in"))
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                // 0.14 aligned the table another way: compare the words.
                let words = |t: String| t.split_whitespace().map(String::from).collect::<Vec<_>>();
                if r.current {
                    assert_eq!(table(&a), table(&x), "{args:?}");
                } else {
                    assert_eq!(words(table(&a)), words(table(&x)), "{args:?}");
                }
            }
        }
    }
}

/// The names, modes and subtrees of the nodes of the tree a `recover` snapshot holds.
fn recovered_nodes(tool: &Runner) -> Vec<(String, u64, String)> {
    let snapshots = tool.run_json(["snapshots", "--json", "--tag", "recovered"]);
    let tree = snapshots[0]["tree"].as_str().unwrap().to_owned();
    let tree = tool.run_json(["cat", "blob", &tree]);
    tree["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_owned(),
                n["mode"].as_u64().unwrap(),
                n["subtree"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn recover_saves_the_forgotten_trees_as_restic() {
    let Some(bin) = restic_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    for (name, data) in [("kept/a", "a"), ("lost/b", "b"), ("lost/deeper/c", "c")] {
        let p = src.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    let made = dir.path().join("made");
    let restic = Restic::with_bin(&bin, &made, PW);
    restic.run(["init"]);
    restic.run(["backup", src.join("kept").to_str().unwrap()]);
    restic.run(["backup", src.join("lost").to_str().unwrap()]);
    restic.run(["forget", "latest"]);
    // The same repository twice: restic recovers one, arca the other.
    let copy = |name: &str| {
        let to = dir.path().join(name);
        cp_a(&made, &to);
        to
    };
    let restic = Restic::with_bin(&bin, copy("by-restic"), PW);
    let arca_repo = copy("by-arca");
    let arca = Arca::new(&arca_repo, PW);
    let said = |tool: &Runner| -> Vec<String> {
        let out = tool.run_string(["recover", "-v"]);
        out.lines()
            .filter(|l| l.starts_with("found") || l.starts_with("saved new snapshot"))
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .collect()
    };
    let by_restic = said(&restic);
    assert_eq!(said(&arca), by_restic);
    assert_eq!(
        by_restic[..2],
        [
            "found root tree".to_owned(),
            "found 1 unreferenced".to_owned()
        ]
    );
    // One directory per lost tree, named and moded as restic's, holding the same tree.
    let (ours, theirs) = (recovered_nodes(&arca), recovered_nodes(&restic));
    assert_eq!(ours.len(), 1);
    assert_eq!(ours, theirs);
    let sn = &arca.run_json(["snapshots", "--json", "--tag", "recovered"])[0];
    let theirs = &restic.run_json(["snapshots", "--json", "--tag", "recovered"])[0];
    for key in ["paths", "hostname", "username", "tags"] {
        assert_eq!(sn[key], theirs[key], "{key}");
    }
    // restic checks arca's work and restores the lost files from it.
    let restic_on_arca = Restic::with_bin(&bin, &arca_repo, PW);
    assert!(restic_on_arca
        .run_string(["check"])
        .contains("no errors were found"));
    let target = dir.path().join("target");
    restic_on_arca.run([
        "restore",
        "--tag",
        "recovered",
        "latest",
        "--target",
        target.to_str().unwrap(),
    ]);
    let lost = target
        .join(&ours[0].0)
        .join(src.strip_prefix("/").unwrap())
        .join("lost");
    assert_eq!(std::fs::read_to_string(lost.join("deeper/c")).unwrap(), "c");
    assert_eq!(std::fs::read_to_string(lost.join("b")).unwrap(), "b");
    // Nothing is left to recover now, and nothing more is written.
    let again = arca.run_string(["recover"]);
    assert!(again.contains("found 0 unreferenced roots"), "{again}");
    assert_eq!(
        arca.run_json(["snapshots", "--json"])
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Trees in packs no index names are found too (restic 0.17+ completes the index first).
    let bare = copy("no-index");
    for f in std::fs::read_dir(bare.join("index")).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let arca = Arca::new(&bare, PW);
    let out = arca.run_string(["recover"]);
    assert!(out.contains("found 1 unreferenced roots"), "{out}");
    assert_eq!(recovered_nodes(&arca), recovered_nodes(&restic));
    assert!(Restic::with_bin(&bin, &bare, PW)
        .run_string(["check", "--read-data"])
        .contains("no errors were found"));
}
