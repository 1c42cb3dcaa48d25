//! Replays the fuzz corpus kept in the repository (`fuzz/regressions/<target>/*`: inputs
//! that once crashed, kept after their fix; `fuzz/seeds/<target>/*`) through the same
//! harness code the cargo-fuzz targets run, so every CI run re-checks them on stable Rust
//! without building libFuzzer.

#[allow(dead_code)]
#[path = "../../fuzz/src/lib.rs"]
mod arca_fuzz;

use std::path::PathBuf;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn replay(kind: &str) -> usize {
    let mut n = 0;
    for target in arca_fuzz::TARGETS {
        for file in arca_fuzz::files_in(&fuzz_dir().join(kind).join(target)) {
            let data = std::fs::read(&file).expect("read stored input");
            arca_fuzz::run(target, &data);
            n += 1;
        }
    }
    n
}

#[test]
fn fuzz_regressions_do_not_crash() {
    assert!(replay("regressions") > 0, "the regression corpus is empty");
}

#[test]
fn fuzz_seeds_do_not_crash() {
    assert!(replay("seeds") > 0, "the seed corpus is empty");
}
