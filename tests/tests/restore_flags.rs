//! restic 0.17+'s `restore --delete` and `--dry-run`, and the summary restore prints, run by
//! arca and by the current restic on one repository, into twin targets that hold the same
//! leftovers, and compared: the `-vv` item lines, the summary (text and JSON) and the
//! targets afterwards.
//!
//! restic 0.14 has neither flag (nor a summary): against it, arca's results are checked on
//! their own (the target ends up as the snapshot, a dry run changes nothing).

use arca_tests::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

const PW: &str = "restore-flags";

struct Setup {
    restic: Option<Restic>,
    arca: Arca,
    src: PathBuf,
    dir: tempfile::TempDir,
    _repo: TempRepo,
}

/// A snapshot with nested folders, a symbolic link and files of several sizes.
fn setup() -> Option<Setup> {
    let bin = restic_or_skip()?;
    let repo = TempRepo::new();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    for (path, body) in [
        ("a.txt", "alpha"),
        ("docs/b.txt", "beta beta"),
        ("docs/deep/c.txt", "gamma"),
        ("docs/deep/d.keep", "delta"),
        ("img/e.png", "png!"),
    ] {
        let p = src.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, body).unwrap();
    }
    std::os::unix::fs::symlink("a.txt", src.join("link")).unwrap();
    let restic = Restic::with_bin(&bin, repo.path(), PW);
    restic.run(["init"]);
    restic.run(["backup", src.to_str().unwrap()]);
    let current = !dialect_of(&bin).is_0_14();
    Some(Setup {
        restic: current.then_some(restic),
        arca: Arca::new(repo.path(), PW),
        src,
        dir,
        _repo: repo,
    })
}

impl Setup {
    /// A target restored from the snapshot, then given leftovers: files and a folder with
    /// contents that the snapshot lacks, a changed file, a folder where the snapshot has a
    /// file, and a leftover that an exclude pattern matches.
    fn populated_target(&self, name: &str) -> PathBuf {
        let t = self.dir.path().join(name);
        self.arca
            .run(["restore", "latest", "--target", t.to_str().unwrap()]);
        let root = t.join(self.src.strip_prefix("/").unwrap());
        fs::write(root.join("extra.txt"), "left over").unwrap();
        fs::create_dir_all(root.join("docs/old/older")).unwrap();
        fs::write(root.join("docs/old/older/x"), "x").unwrap();
        fs::write(root.join("docs/old/y"), "y").unwrap();
        fs::write(root.join("docs/deep/z.keep"), "kept by --exclude").unwrap();
        fs::write(root.join("docs/b.txt"), "changed, and longer").unwrap();
        fs::remove_file(root.join("img/e.png")).unwrap();
        fs::create_dir_all(root.join("img/e.png/inside")).unwrap();
        fs::write(root.join("img/e.png/inside/q"), "q").unwrap();
        t
    }

    /// Runs restore by `tool` into `target` with `args`; gives the item lines (target path
    /// replaced by `T`, sorted: items finish in any order) and the summary, as text or JSON.
    fn restore(
        &self,
        tool: &Runner,
        target: &Path,
        args: &[&str],
        json: bool,
    ) -> (Vec<String>, String) {
        let mut all = vec![
            "restore",
            "latest",
            "--target",
            target.to_str().unwrap(),
            "-vv",
        ];
        all.extend_from_slice(args);
        if json {
            all.push("--json");
        }
        let out = tool.run_string(all);
        let shown = target.to_str().unwrap();
        let mut items = Vec::new();
        let mut summary = String::new();
        for line in out.lines() {
            if json {
                let mut v: Value = serde_json::from_str(line).unwrap();
                match v["message_type"].as_str() {
                    Some("summary") => {
                        v.as_object_mut().unwrap().remove("seconds_elapsed");
                        summary = v.to_string();
                    }
                    Some("verbose_status") => items.push(v.to_string().replace(shown, "T")),
                    _ => {}
                }
            } else if let Some(rest) = line.strip_prefix("Summary: ") {
                // The time taken is not compared: "… (6 B) in 0:00, skipped …".
                let (head, tail) = rest.split_once(" in ").unwrap();
                let after = tail
                    .split_once(',')
                    .map_or(String::new(), |(_, r)| format!(",{r}"));
                summary = format!("{head}{after}");
            } else if !line.starts_with("restoring snapshot") {
                items.push(line.replace(shown, "T"));
            }
        }
        items.sort();
        (items, summary)
    }
}

/// Every path under `root` with its type and contents, to see that nothing changed.
fn listing(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in fs::read_dir(&p).unwrap() {
            let e = e.unwrap();
            let ty = e.file_type().unwrap();
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            if ty.is_dir() {
                stack.push(e.path());
                out.insert(format!("{rel}/"));
            } else if ty.is_symlink() {
                out.insert(format!(
                    "{rel} -> {}",
                    fs::read_link(e.path()).unwrap().display()
                ));
            } else {
                out.insert(format!("{rel} = {}", fs::read_to_string(e.path()).unwrap()));
            }
        }
    }
    out
}

#[test]
fn delete_dry_run_reports_what_would_go_and_changes_nothing() {
    let Some(s) = setup() else { return };
    let (ta, tr) = (s.populated_target("arca"), s.populated_target("restic"));
    let before = listing(&ta);
    assert_eq!(before, listing(&tr));
    for json in [false, true] {
        let (items, summary) = s.restore(&s.arca, &ta, &["--delete", "--dry-run"], json);
        assert_eq!(listing(&ta), before, "a dry run changes nothing");
        let deleted: Vec<&String> = items.iter().filter(|l| l.contains("deleted")).collect();
        // extra.txt, docs/old with its three items, docs/deep/z.keep.
        assert_eq!(deleted.len(), 6, "{items:#?}");
        if let Some(restic) = &s.restic {
            let (r_items, r_summary) = s.restore(restic, &tr, &["--delete", "--dry-run"], json);
            assert_eq!(items, r_items, "item lines (json: {json})");
            assert_eq!(summary, r_summary, "summary (json: {json})");
        } else {
            assert!(
                summary.contains("deleted 6 files/dirs") || summary.contains("\"files_deleted\":6"),
                "{summary}"
            );
        }
    }
    assert_eq!(listing(&tr), before);
}

#[test]
fn delete_leaves_the_target_as_the_snapshot_except_what_filters_keep() {
    let Some(s) = setup() else { return };
    let (ta, tr) = (s.populated_target("arca"), s.populated_target("restic"));
    let args = ["--delete", "--exclude", "*.keep"];
    let (items, summary) = s.restore(&s.arca, &ta, &args, true);
    if let Some(restic) = &s.restic {
        let (r_items, r_summary) = s.restore(restic, &tr, &args, true);
        assert_eq!(items, r_items);
        assert_eq!(summary, r_summary);
        assert_eq!(listing(&ta), listing(&tr));
    }
    // What the snapshot holds (the excluded file it has was there before), plus the
    // excluded leftover (not the restore's to delete); the folder in the way of img/e.png
    // is gone.
    let root = ta.join(s.src.strip_prefix("/").unwrap());
    let mut expected = listing(&s.src);
    expected.insert("docs/deep/z.keep = kept by --exclude".into());
    assert_eq!(listing(&root), expected);
    assert!(summary.contains("\"files_deleted\":5"), "{summary}");
}

#[test]
fn delete_with_include_removes_only_what_the_patterns_select() {
    let Some(s) = setup() else { return };
    let (ta, tr) = (s.populated_target("arca"), s.populated_target("restic"));
    let include = format!("{}/docs", s.src.display());
    let args = ["--delete", "--include", &include];
    let (items, summary) = s.restore(&s.arca, &ta, &args, false);
    if let Some(restic) = &s.restic {
        let (r_items, r_summary) = s.restore(restic, &tr, &args, false);
        assert_eq!(items, r_items);
        assert_eq!(summary, r_summary);
        assert_eq!(listing(&ta), listing(&tr));
    }
    let root = ta.join(s.src.strip_prefix("/").unwrap());
    assert!(
        root.join("extra.txt").exists(),
        "outside the included folder"
    );
    assert!(root.join("img/e.png/inside/q").exists(), "not included");
    assert!(!root.join("docs/old").exists());
    assert!(!root.join("docs/deep/z.keep").exists());
}

#[test]
fn a_dry_run_into_a_missing_target_creates_nothing() {
    let Some(s) = setup() else { return };
    for (name, tool) in [("arca", Some(&*s.arca)), ("restic", s.restic.as_deref())] {
        let Some(tool) = tool else { continue };
        let t = s.dir.path().join(format!("missing-{name}"));
        let (items, summary) = s.restore(tool, &t, &["--dry-run"], true);
        assert!(!t.exists(), "{name} created the target");
        // 5 files, the link, and src's folders: tmp…/src, docs, docs/deep, img.
        assert!(
            items.iter().any(|l| l.contains("\"restored\"")),
            "{items:?}"
        );
        assert!(summary.contains("\"total_bytes\":28"), "{name}: {summary}");
    }
}

#[test]
fn restore_prints_restics_summary_and_skips_unchanged_files_by_default() {
    let Some(s) = setup() else { return };
    let t = s.dir.path().join("again");
    s.arca
        .run(["restore", "latest", "--target", t.to_str().unwrap()]);
    // The second restore finds every file as it was (restic 0.17+'s default `if-changed`).
    let (_, summary) = s.restore(&s.arca, &t, &[], true);
    let v: Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(v["files_skipped"], 5, "{summary}");
    assert_eq!(v["bytes_skipped"], 28, "{summary}");
    assert!(
        v.get("total_bytes").is_none(),
        "zero counts are left out: {summary}"
    );
    if let Some(restic) = &s.restic {
        let (_, r_summary) = s.restore(restic, &t, &[], true);
        assert_eq!(summary, r_summary);
        let (_, text) = s.restore(&s.arca, &t, &[], false);
        let (_, r_text) = s.restore(restic, &t, &[], false);
        assert_eq!(text, r_text);
    }
}
