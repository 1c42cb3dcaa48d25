//! External tools (restic, rclone, object-storage servers) and the CI rule.
//!
//! The rule: under `CI=true` every tool the suite needs must be there (scripts/test.sh installs
//! them), so a missing one is a failure. On a developer's machine a test that needs a missing tool
//! may skip, and says so loudly on stderr (`SKIPPED: <tool> not installed`).

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// True when the `CI` environment variable is `true` (also accepted: `1`, `yes`; any case).
pub fn is_ci() -> bool {
    std::env::var("CI")
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
        .unwrap_or(false)
}

/// Locate an executable: `$ARCA_TEST_<NAME>` if set (e.g. `ARCA_TEST_RESTIC=/opt/restic-0.17`,
/// name upper-cased, `-` as `_`), else `name` itself if it contains a `/`, else the first match
/// on `PATH`.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(override_var(name)).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return is_executable(&path).then_some(path);
    }
    if name.contains('/') {
        let path = PathBuf::from(name);
        return is_executable(&path).then_some(path);
    }
    let path_var = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin"));
    std::env::split_paths(&path_var)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn override_var(name: &str) -> String {
    format!("ARCA_TEST_{}", name.to_ascii_uppercase().replace('-', "_"))
}

fn where_looked(name: &str) -> String {
    let var = override_var(name);
    match std::env::var_os(&var).filter(|v| !v.is_empty()) {
        Some(path) => format!("${var} = {path:?} is not an executable file"),
        None => "not on PATH".to_owned(),
    }
}

fn install_hint(name: &str) -> String {
    match name {
        "restic" | "rclone" => {
            "`apt-get install -y restic rclone` (bash scripts/test.sh does it)".into()
        }
        _ => "bash scripts/test.sh, which installs what the suite needs".into(),
    }
}

/// The path of `name`, or a panic explaining how to install it (and that CI requires it).
pub fn require_tool(name: &str) -> PathBuf {
    match find_tool(name) {
        Some(path) => path,
        None if is_ci() => panic!(
            "`{name}` is required in CI (CI=true) but was not found ({}); install it with {}",
            where_looked(name),
            install_hint(name)
        ),
        None => panic!(
            "`{name}` was not found ({}); install it with {}",
            where_looked(name),
            install_hint(name)
        ),
    }
}

/// The path of `name`; if missing: under `CI=true` a panic, elsewhere a loud
/// `SKIPPED: <name> not installed` line on the real stderr (not captured by the test harness)
/// and `None`, so the caller can return early. See [`crate::tool_or_return!`].
pub fn tool_or_skip(name: &str) -> Option<PathBuf> {
    if let Some(path) = find_tool(name) {
        return Some(path);
    }
    if is_ci() {
        require_tool(name);
    }
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("<unnamed test>");
    // Written to the stderr handle directly: libtest captures only print!/eprint!, so this line
    // shows up even when the (passing) test's output is captured.
    let _ = writeln!(
        std::io::stderr().lock(),
        "\n*** SKIPPED: {name} not installed — test `{test}` did not run its {name} part. \
         Install it with {} (CI=true turns this into a failure). ***\n",
        install_hint(name)
    );
    None
}

/// The restic binary; panics if it is missing (see [`require_tool`]).
pub fn require_restic() -> PathBuf {
    require_tool("restic")
}

/// The restic binary, or `None` after a loud `SKIPPED: restic not installed` line when it is
/// missing outside CI. Under `CI=true` a missing restic panics. See [`crate::restic_or_return!`].
pub fn restic_or_skip() -> Option<PathBuf> {
    tool_or_skip("restic")
}
