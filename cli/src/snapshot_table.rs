//! The snapshot table restic prints for `snapshots` and `forget`.

use crate::output::format_bytes;
use crate::output::local_time;
use arca_engine::forget::{GroupKey, KeepReason};
use arca_format::snapshot::Snapshot;
use arca_format::Id;
use std::collections::HashMap;
use std::path::Path;

/// Where Go looks for a zone named by `TZ`.
const ZONE_SOURCES: &[&str] = &[
    "/usr/share/zoneinfo/",
    "/usr/share/lib/zoneinfo/",
    "/usr/lib/locale/TZ/",
    "/etc/zoneinfo/",
];

/// The name Go gives the local zone (`time.Local.String()`), as restic's footer shows it:
/// "local time" for /etc/localtime, the value of `TZ` for a zone it names, else "UTC" (also
/// Go's fallback when the zone cannot be loaded).
pub fn local_zone_name() -> String {
    let Some(tz) = std::env::var_os("TZ") else {
        return if Path::new("/etc/localtime").is_file() {
            "local time".into()
        } else {
            "UTC".into()
        };
    };
    let tz = tz.to_string_lossy();
    let tz = tz.strip_prefix(':').unwrap_or(&tz);
    if tz.starts_with('/') {
        return match Path::new(tz).is_file() {
            true if tz == "/etc/localtime" => "local time".into(),
            true => tz.to_owned(),
            false => "UTC".into(),
        };
    }
    let named = !tz.is_empty()
        && tz != "UTC"
        && ZONE_SOURCES
            .iter()
            .any(|dir| Path::new(&format!("{dir}{tz}")).is_file());
    if named {
        tz.to_owned()
    } else {
        "UTC".into()
    }
}

/// restic's `PrintSnapshots`: oldest first, a Reasons column for kept snapshots, multi-line
/// cells, a Size column when any snapshot has a summary (restic 0.17 on), a blank line between
/// snapshots when any has several paths, and a footer naming the zone of the times.
pub fn snapshot_table(list: &[Snapshot], reasons: Option<&[KeepReason]>, compact: bool) -> String {
    let why: HashMap<Id, &Vec<String>> = reasons
        .unwrap_or(&[])
        .iter()
        .map(|r| (r.id, &r.matches))
        .collect();
    let mut list: Vec<&Snapshot> = list.iter().collect();
    list.sort_by_key(|s| s.time);

    let with_reasons = reasons.is_some_and(|r| !r.is_empty()) && !compact;
    let header: Vec<&str> = if compact {
        vec!["ID", "Time", "Host", "Tags  "]
    } else if with_reasons {
        vec!["ID", "Time", "Host      ", "Tags      ", "Reasons", "Paths"]
    } else {
        vec!["ID", "Time", "Host      ", "Tags      ", "Paths"]
    };
    let with_size = list.iter().any(|s| s.summary.is_some());
    let mut header = header;
    if with_size {
        header.push("Size");
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut multiline = false;
    for s in &list {
        let mut row = vec![s.id.short(), local_time(&s.time), s.hostname.clone()];
        if compact {
            row.push(s.tags.join("\n"));
        } else {
            row.push(s.tags.join(","));
            if with_reasons {
                row.push(why.get(&s.id).map(|m| m.join("\n")).unwrap_or_default());
            }
            row.push(s.paths.join("\n"));
            if s.paths.len() > 1 {
                multiline = true;
            }
        }
        if with_size {
            let bytes = s.summary.as_ref().map(|m| m.total_bytes_processed);
            row.push(bytes.map(format_bytes).unwrap_or_default());
        }
        rows.push(row);
    }

    let n = header.len();
    let mut widths = vec![0usize; n];
    let cells = std::iter::once(header.iter().map(|h| h.to_string()).collect::<Vec<_>>())
        .chain(rows.iter().cloned());
    for r in cells {
        for (i, c) in r.iter().enumerate() {
            for l in c.split('\n') {
                widths[i] = widths[i].max(l.chars().count());
            }
        }
    }
    let render = |r: &[String], out: &mut String| {
        let split: Vec<Vec<&str>> = r.iter().map(|c| c.split('\n').collect()).collect();
        let lines = split.iter().map(Vec::len).max().unwrap_or(1);
        for i in 0..lines {
            let mut s = String::new();
            for (f, parts) in split.iter().enumerate() {
                if f > 0 {
                    s.push_str("  ");
                }
                let v = parts.get(i).copied().unwrap_or("");
                s.push_str(v);
                let pad = widths[f].saturating_sub(v.chars().count());
                s.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(s.trim_end_matches(' '));
            out.push('\n');
        }
    };
    let rule = "-".repeat(widths.iter().sum::<usize>() + 2 * (n - 1));
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    render(&header, &mut out);
    out.push_str(&rule);
    out.push('\n');
    for (i, r) in rows.iter().enumerate() {
        if multiline && i > 0 {
            out.push('\n');
        }
        render(r, &mut out);
    }
    out.push_str(&rule);
    out.push('\n');
    out.push_str(&format!("Timestamps shown in {}\n", local_zone_name()));
    out.push_str(&format!("{} snapshots\n", list.len()));
    out
}

/// A snapshot for the CLI's unit tests.
/// restic's `PrintSnapshotGroupHeader`: nothing for the empty key.
pub fn group_header(k: &GroupKey) -> String {
    let mut info = Vec::new();
    if !k.hostname.is_empty() {
        info.push(format!("host [{}]", k.hostname));
    }
    if !k.tags.is_empty() {
        info.push(format!("tags [{}]", k.tags.join(", ")));
    }
    if !k.paths.is_empty() {
        info.push(format!("paths [{}]", k.paths.join(", ")));
    }
    if info.is_empty() {
        return String::new();
    }
    format!("snapshots for ({}):\n", info.join(", "))
}

#[cfg(test)]
pub(crate) fn test_snapshot(
    id: u8,
    time: &str,
    host: &str,
    paths: &[&str],
    tags: &[&str],
) -> Snapshot {
    let json = serde_json::json!({
        "time": time,
        "tree": Id::hash(b"t").to_hex(),
        "paths": paths,
        "hostname": host,
        "tags": tags,
    });
    let mut s = Snapshot::parse(json.to_string().as_bytes(), Id([id; 32])).unwrap();
    s.id = Id([id; 32]);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_snapshot as snap;

    #[test]
    fn table_shapes() {
        // The table shows machine-local time; only check the layout around it.
        let a = snap(0x11, "2024-01-01T10:00:00Z", "h1", &["/tmp/fx/data"], &[]);
        let b = snap(
            0x22,
            "2024-02-01T10:00:00Z",
            "h1",
            &["/tmp/fx/data"],
            &["foo"],
        );
        let reasons = vec![
            KeepReason {
                id: b.id,
                matches: vec!["has tags [foo]".into(), "daily snapshot".into()],
                counters: Default::default(),
            },
            KeepReason {
                id: a.id,
                matches: vec!["daily snapshot".into()],
                counters: Default::default(),
            },
        ];
        let t = snapshot_table(&[b.clone(), a.clone()], Some(&reasons), false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "ID        Time                 Host        Tags        Reasons         Paths"
        );
        assert_eq!(lines[1], "-".repeat(83), "as restic prints it");
        assert!(lines[1].chars().all(|c| c == '-'));
        assert!(lines[2].starts_with("11111111  "));
        assert!(lines[2].ends_with("  h1                      daily snapshot  /tmp/fx/data"));
        assert!(lines[3].ends_with("  h1          foo         has tags [foo]  /tmp/fx/data"));
        assert_eq!(lines[4].trim(), "daily snapshot");
        assert!(lines[6].starts_with("Timestamps shown in "));
        assert_eq!(lines[7], "2 snapshots");

        let t = snapshot_table(&[b.clone(), a.clone()], None, true);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "ID        Time                 Host  Tags");
        assert!(lines[3].ends_with("  h1    foo"));

        // Several paths: one per line, blank lines between snapshots.
        let c = snap(0x33, "2024-03-01T10:00:00Z", "h2", &["/b", "/a"], &[]);
        let t = snapshot_table(&[c, a], None, false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "ID        Time                 Host        Tags        Paths"
        );
        assert!(lines[2].starts_with("11111111"));
        assert_eq!(lines[3], "");
        assert!(lines[4].ends_with("/b"));
        assert_eq!(lines[5].trim(), "/a");
        assert_eq!(lines[8], "2 snapshots");
    }

    #[test]
    fn size_column_when_a_snapshot_has_a_summary() {
        let a = snap(0x11, "2024-01-01T10:00:00Z", "h1", &["/d"], &[]);
        let mut b = snap(0x22, "2024-01-02T10:00:00Z", "h1", &["/d"], &[]);
        b.summary = Some(arca_format::snapshot::Summary {
            total_bytes_processed: 1536,
            ..Default::default()
        });
        let t = snapshot_table(&[a, b], None, false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "ID        Time                 Host        Tags        Paths  Size"
        );
        assert!(lines[2].ends_with("  /d"), "{t}");
        assert!(lines[3].ends_with("  /d     1.500 KiB"), "{t}");
        assert!(lines[5].starts_with("Timestamps shown in "), "{t}");
    }
}
