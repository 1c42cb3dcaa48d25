//! Replays every stored input through the same harness code the fuzz targets run:
//! `regressions/<target>/*` (inputs that once crashed, kept after the fix) and
//! `seeds/<target>/*`. Run from `fuzz/` with `cargo test`.

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn replay(kind: &str) -> usize {
    let mut n = 0;
    for target in arca_fuzz::TARGETS {
        for file in arca_fuzz::files_in(&root().join(kind).join(target)) {
            let data = std::fs::read(&file).expect("read stored input");
            eprintln!("{target}: {}", file.display());
            arca_fuzz::run(target, &data);
            n += 1;
        }
    }
    n
}

#[test]
fn regressions_do_not_crash() {
    replay("regressions");
}

#[test]
fn seeds_do_not_crash() {
    assert!(
        replay("seeds") > 0,
        "no seeds: run `cargo run --example make_seeds`"
    );
}

/// The valid seed repositories must get all the way through: otherwise the fuzzer starts
/// from inputs that stop at the first error.
#[test]
fn valid_seed_repositories_restore() {
    for name in ["full-v2", "v1", "special-nodes", "two-keys"] {
        let data = std::fs::read(root().join("seeds/open_repository").join(name)).unwrap();
        arca_fuzz::open_repository_with(&data, |o, restore_dir| {
            assert!(o.opened, "{name}: {o:?}");
            assert!(o.index_loaded, "{name}: {o:?}");
            assert!(o.snapshots > 0, "{name}: {o:?}");
            assert!(o.check_ok, "{name}: {o:?}");
            if name != "two-keys" {
                assert!(o.restored_files > 0, "{name}: {o:?}");
            }
            // As non-root, device nodes and ownership are skipped without an error.
            assert!(o.restore_errors.is_empty(), "{name}: {o:?}");
            if name == "full-v2" {
                // Two snapshots with the same time: restored in ID order into 0/ and 1/.
                let got = ["0/sub/b.txt", "1/sub/b.txt"]
                    .iter()
                    .find_map(|p| std::fs::read(restore_dir.join(p)).ok())
                    .unwrap_or_else(|| panic!("sub/b.txt not restored: {o:?}"));
                assert_eq!(got, b"world\nhello, fuzzer\n");
            }
        });
    }
    let data = std::fs::read(root().join("seeds/open_repository/damaged")).unwrap();
    arca_fuzz::open_repository_with(&data, |o, _| {
        assert!(o.opened, "{o:?}");
        assert!(!o.check_ok, "{o:?}");
        assert!(!o.check_errors.is_empty(), "{o:?}");
    });
}
