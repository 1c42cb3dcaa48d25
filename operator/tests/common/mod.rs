//! Helpers shared by the operator's integration tests.

use std::collections::BTreeSet;
use std::path::Path;

/// Every file under `dir` (a local store standing for a bucket): (relative path, size).
pub fn listing(dir: &Path) -> BTreeSet<(String, u64)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<(String, u64)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                walk(root, &e.path(), out);
            } else {
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                out.insert((rel, m.len()));
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}
