//! Which restic the interop tests run, and how its output differs from the current restic's.
//!
//! arca follows the current restic (0.17 on; the bench builds 0.19.1). Debian's 0.14.0 prints
//! some things differently; each difference the suite meets is written down here once, as a
//! function that turns arca's (current) output into 0.14's, so that every interop test compares
//! exactly against either version. The differences:
//! - `ls --json`: 0.14 has no `message_type` and prints no `inode` for nodes;
//! - `find --json`: 0.14 hides `inode`;
//! - `cat index`: 0.14 prints the index file (which ends in a newline) and another newline;
//! - `stats --json`: 0.14 always prints `total_file_count` (0 in raw-data mode);
//! - `restore`: 0.14 says `restoring <Snapshot ...> to ...`, and `--verify` counts every name of
//!   a hard-linked file (current restic counts the files whose content it wrote);
//! - `snapshots` and `forget` tables: 0.14 has no `Timestamps shown in ...` footer line (nor a
//!   Size column, which needs snapshot summaries that 0.14 does not write);
//! - `forget`: 0.14 does not keep the oldest snapshot when a rule still has room (`oldest ...`);
//! - `backup`: 0.14 says `all target directories/files do not exist` and exits 0 when some
//!   targets are missing (current restic: `all source ...`, exit code 3).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The output dialect of a restic binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// restic 0.14 (Debian bookworm's 0.14.0).
    V0_14,
    /// restic 0.17 and later: what arca prints.
    Current,
}

impl Dialect {
    pub fn is_0_14(self) -> bool {
        self == Dialect::V0_14
    }
}

/// (major, minor, patch).
pub type Version = (u32, u32, u32);

/// The version `restic version` reports, e.g. (0, 19, 1).
pub fn restic_version(bin: &Path) -> Version {
    static SEEN: Mutex<Option<HashMap<PathBuf, Version>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(v) = seen.get_or_insert_with(HashMap::new).get(bin) {
        return *v;
    }
    let out = Command::new(bin)
        .arg("version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} version: {e}", bin.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    // "restic 0.19.1 compiled with go1.26.0 on linux/amd64"
    let version = text
        .split_whitespace()
        .nth(1)
        .and_then(|v| {
            let mut parts = v.split('.').map(|p| {
                p.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse::<u32>()
                    .ok()
            });
            Some((
                parts.next()??,
                parts.next()??,
                parts.next().flatten().unwrap_or(0),
            ))
        })
        .unwrap_or_else(|| panic!("unexpected `{} version` output: {text:?}", bin.display()));
    seen.get_or_insert_with(HashMap::new)
        .insert(bin.to_owned(), version);
    version
}

/// The dialect of a restic binary. Versions between 0.14 and 0.17 changed piecemeal and are
/// refused rather than half-supported.
pub fn dialect_of(bin: &Path) -> Dialect {
    match restic_version(bin) {
        (0, 14, _) => Dialect::V0_14,
        (0, minor, _) if minor >= 17 => Dialect::Current,
        (1.., _, _) => Dialect::Current,
        v => panic!(
            "the interop tests know restic 0.14 and 0.17 on; {} is {}.{}.{}",
            bin.display(),
            v.0,
            v.1,
            v.2
        ),
    }
}

/// arca's output of the command line `args` as restic 0.14 prints it (see the module notes).
/// Command lines without a known difference are returned unchanged.
pub fn as_restic_0_14(args: &[&str], arca_out: &[u8]) -> Vec<u8> {
    let mut out = arca_out.to_vec();
    match args.first().copied() {
        Some("ls") if args.contains(&"--json") => {
            let text = String::from_utf8(out).expect("ls --json prints UTF-8");
            let mut fixed = String::with_capacity(text.len());
            for line in text.split_inclusive('\n') {
                fixed.push_str(&drop_inode(
                    &line
                        .replace("\"message_type\":\"node\",", "")
                        .replace("\"message_type\":\"snapshot\",", ""),
                ));
            }
            out = fixed.into_bytes();
        }
        Some("ls") => {
            // Only the first line is rewritten: names below need not be UTF-8.
            if let Some(end) = out.iter().position(|&b| b == b'\n') {
                let first = ls_header_as_0_14(&String::from_utf8_lossy(&out[..end]));
                out = [first.as_bytes(), &out[end..]].concat();
            }
        }
        Some("cat") if args.get(1) == Some(&"index") => out.push(b'\n'),
        Some("snapshots") | Some("forget") if !args.contains(&"--json") => {
            out = without_zone_footer(&String::from_utf8_lossy(&out)).into_bytes();
        }
        _ => {}
    }
    out
}

/// `ls`'s first line: current restic prints the snapshot as its String() does,
/// `snapshot ID of [P] at TIME by U@H filtered by [D]:`; 0.14 printed
/// `snapshot ID of [P] filtered by [D] at TIME):`.
fn ls_header_as_0_14(line: &str) -> String {
    let parsed = line.strip_prefix("snapshot ").and_then(|rest| {
        let (head, dirs) = rest.rsplit_once(" filtered by [")?;
        let dirs = dirs.strip_suffix(':')?;
        let (head, _user_host) = head.rsplit_once(" by ")?;
        let (id_paths, time) = head.rsplit_once(" at ")?;
        Some(format!(
            "snapshot {id_paths} filtered by [{dirs} at {time}):"
        ))
    });
    parsed.unwrap_or_else(|| line.to_owned())
}

/// One `ls --json` line without its `,"inode":N` member.
fn drop_inode(line: &str) -> String {
    let Some(start) = line.find(",\"inode\":") else {
        return line.to_owned();
    };
    let digits = line[start + 9..]
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(line.len() - start - 9);
    format!("{}{}", &line[..start], &line[start + 9 + digits..])
}

/// A snapshot table without current restic's `Timestamps shown in ...` lines.
pub fn without_zone_footer(table: &str) -> String {
    table
        .split_inclusive('\n')
        .filter(|l| !l.starts_with("Timestamps shown in "))
        .collect()
}

/// `find --json` matches as 0.14 prints them: without `inode`.
pub fn find_json_as_0_14(mut v: serde_json::Value) -> serde_json::Value {
    for group in v.as_array_mut().into_iter().flatten() {
        for m in group["matches"].as_array_mut().into_iter().flatten() {
            if let Some(o) = m.as_object_mut() {
                o.remove("inode");
            }
        }
    }
    v
}

/// `stats --json` as 0.14 prints it: `total_file_count` always present.
pub fn stats_json_as_0_14(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(o) = v.as_object_mut() {
        o.entry("total_file_count").or_insert(0.into());
    }
    v
}

/// restore's first line as 0.14 prints it: `restoring <Snapshot ID of [...] at ... by u@h> to T`.
pub fn restore_first_line_as_0_14(line: &str) -> String {
    match line
        .strip_prefix("restoring snapshot ")
        .and_then(|rest| rest.rsplit_once(" to "))
    {
        Some((what, target)) => format!("restoring <Snapshot {what}> to {target}"),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_json_lines_lose_the_newer_members() {
        let a = br#"{"id":"x","short_id":"x","message_type":"snapshot","struct_type":"snapshot"}
{"name":"f","ctime":"t","inode":1234,"message_type":"node","struct_type":"node"}
{"name":"g","ctime":"t","message_type":"node","struct_type":"node"}
"#;
        let want = br#"{"id":"x","short_id":"x","struct_type":"snapshot"}
{"name":"f","ctime":"t","struct_type":"node"}
{"name":"g","ctime":"t","struct_type":"node"}
"#;
        assert_eq!(
            String::from_utf8(as_restic_0_14(&["ls", "--json", "latest"], a)).unwrap(),
            String::from_utf8(want.to_vec()).unwrap()
        );
        assert_eq!(
            String::from_utf8(as_restic_0_14(
                &["ls", "latest"],
                b"snapshot ab of [/a] at T U by r@h filtered by [/a /b]:\n/a\n"
            ))
            .unwrap(),
            "snapshot ab of [/a] filtered by [/a /b] at T U):\n/a\n"
        );
        assert_eq!(as_restic_0_14(&["cat", "index", "id"], b"{}\n"), b"{}\n\n");
    }

    #[test]
    fn restore_line() {
        assert_eq!(
            restore_first_line_as_0_14("restoring snapshot ab of [/a b] at T by u@h to /t o"),
            "restoring <Snapshot ab of [/a b] at T by u@h> to /t o"
        );
    }

    #[test]
    fn zone_footer() {
        assert_eq!(
            without_zone_footer("---\nTimestamps shown in UTC\n2 snapshots\n"),
            "---\n2 snapshots\n"
        );
    }
}
