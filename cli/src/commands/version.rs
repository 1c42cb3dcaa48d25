//! `arca version`: the version, and the system it was built for, in restic's wording.

use crate::global::GlobalOptions;
use serde_json::json;

/// Go's names for the operating system and processor, which scripts written for restic
/// compare against.
fn go_names() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64",
        other => other,
    };
    (std::env::consts::OS, arch)
}

pub(super) fn run(g: &GlobalOptions) -> i32 {
    let version = env!("CARGO_PKG_VERSION");
    let (os, arch) = go_names();
    if g.json {
        println!(
            "{}",
            json!({"message_type": "version", "version": version, "go_os": os, "go_arch": arch})
        );
    } else {
        println!("arca {version} compiled with rustc on {os}/{arch}");
    }
    0
}
