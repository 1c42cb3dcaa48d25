//! The folders above the snapshots, made from restic's path templates (default `ids/%i`,
//! `snapshots/%T`, `hosts/%h/%T`, `tags/%t/%T`) and time template (a Go layout, default
//! RFC 3339): `%i` and `%I` are a snapshot's short and full ID, `%u` its user, `%h` its
//! host, `%t` each of its tags (a snapshot without tags is left out of that template), `%T`
//! its time, `%%` a percent sign. Names repeated are told apart by `-1`, `-2`…; a template
//! ending in `%T` gets a `latest` link to the newest snapshot in each folder it fills.

use crate::gotime_layout;
use arca_format::snapshot::Snapshot;
use std::collections::{BTreeMap, BTreeSet};

/// restic's default path templates.
pub const DEFAULT_PATH_TEMPLATES: [&str; 4] =
    ["ids/%i", "snapshots/%T", "hosts/%h/%T", "tags/%t/%T"];

/// restic's default time template: RFC 3339 in the offset the snapshot was written with.
pub const DEFAULT_TIME_TEMPLATE: &str = "2006-01-02T15:04:05Z07:00";

/// How the snapshots are laid out.
#[derive(Clone, Debug)]
pub struct Templates {
    pub paths: Vec<String>,
    pub time: String,
}

impl Default for Templates {
    fn default() -> Templates {
        Templates {
            paths: DEFAULT_PATH_TEMPLATES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            time: DEFAULT_TIME_TEMPLATE.to_owned(),
        }
    }
}

/// One path of the layout.
#[derive(Debug, Default, PartialEq)]
pub struct Entry {
    /// The snapshot (index into the list given) this path shows, or links to.
    pub snapshot: Option<usize>,
    /// Set for a `latest` link: where it points, relative to its folder.
    pub link: Option<String>,
    /// Names below a folder.
    pub names: BTreeSet<String>,
}

/// Every path of the layout, keyed `""` (the mount point) or `/a/b`.
#[derive(Debug, Default)]
pub struct Layout {
    pub entries: BTreeMap<String, Entry>,
}

/// A file name of a tag: `/` becomes `_`, and `.`, `..` and the empty name are never names.
fn safe(name: &str) -> String {
    match name {
        "" | "." => "_".to_owned(),
        ".." => "__".to_owned(),
        n => n.replace('/', "_"),
    }
}

/// `path` with empty parts and `.` dropped and `..` going up (never above the mount point),
/// as `/a/b`, or `""` for the mount point itself.
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.iter().map(|p| format!("/{p}")).collect()
}

/// The paths one template gives a snapshot, and the time to add at their end when the
/// template ends with `%T` (every other `%T` is written in place).
fn expand(template: &str, time: &str, sn: &Snapshot) -> (Vec<String>, Option<String>) {
    let mut out = vec![String::new()];
    let mut verb = false;
    let mut time_pending = false;
    for c in template.chars() {
        if time_pending {
            out.iter_mut().for_each(|o| o.push_str(time));
            time_pending = false;
        }
        if !verb {
            if c == '%' {
                verb = true;
            } else {
                out.iter_mut().for_each(|o| o.push(c));
            }
            continue;
        }
        verb = false;
        let value = match c {
            'T' => {
                time_pending = true;
                continue;
            }
            't' => {
                if sn.tags.is_empty() {
                    return (Vec::new(), None);
                }
                // One path per tag.
                out = sn
                    .tags
                    .iter()
                    .flat_map(|t| out.iter().map(move |o| format!("{o}{}", safe(t))))
                    .collect();
                continue;
            }
            'i' => sn.id.short(),
            'I' => sn.id.to_hex(),
            'u' => sn.username.clone(),
            'h' => safe(&sn.hostname),
            other => other.to_string(),
        };
        out.iter_mut().for_each(|o| o.push_str(&value));
    }
    (out, time_pending.then(|| time.to_owned()))
}

/// The part of a template before the folder its first variable is in: made even when no
/// snapshot fills it.
fn static_prefix(template: &str) -> Option<&str> {
    let mut verb = false;
    for (i, c) in template.char_indices() {
        if verb && "iIuhtT".contains(c) {
            let before = &template[..i - 1];
            return before.rfind('/').map(|slash| &template[..slash]);
        }
        verb = !verb && c == '%';
    }
    None
}

impl Layout {
    pub fn new(snapshots: &[Snapshot], templates: &Templates) -> Layout {
        let mut layout = Layout::default();
        layout.insert("", Entry::default());
        for t in &templates.paths {
            if let Some(prefix) = static_prefix(t).map(clean).filter(|p| !p.is_empty()) {
                layout.insert(&prefix, Entry::default());
            }
        }
        // Oldest first (the ID breaks ties), so that repeats get their numbers in time
        // order and the last one seen in a folder is its latest.
        let mut order: Vec<usize> = (0..snapshots.len()).collect();
        order.sort_by(|&a, &b| {
            let (x, y) = (&snapshots[a], &snapshots[b]);
            (
                x.time.unix_secs(),
                x.time.unix_nanos_part(),
                x.id.as_bytes(),
            )
                .cmp(&(
                    y.time.unix_secs(),
                    y.time.unix_nanos_part(),
                    y.id.as_bytes(),
                ))
        });
        for i in order {
            let sn = &snapshots[i];
            let time = gotime_layout::format(&sn.time.0, &templates.time);
            for t in &templates.paths {
                let (paths, suffix) = expand(t, &time, sn);
                for p in paths {
                    let p = if p.is_empty() { p } else { format!("/{p}") };
                    let name = layout.unique(&p, suffix.as_deref().unwrap_or(""));
                    layout.insert(
                        &clean(&format!("{p}{name}")),
                        Entry {
                            snapshot: Some(i),
                            ..Entry::default()
                        },
                    );
                    if suffix.is_some() {
                        // Each snapshot is as new as the last or newer: it is the latest.
                        layout.insert(
                            &clean(&format!("{p}/latest")),
                            Entry {
                                snapshot: Some(i),
                                link: Some(name),
                                ..Entry::default()
                            },
                        );
                    }
                }
            }
        }
        layout
    }

    /// `name`, or `name-1`, `name-2`… whichever `prefix` + it is not taken yet.
    fn unique(&self, prefix: &str, name: &str) -> String {
        let mut candidate = name.to_owned();
        let mut n = 1;
        while self.entries.contains_key(&format!("{prefix}{candidate}")) {
            candidate = format!("{name}-{n}");
            n += 1;
        }
        candidate
    }

    /// Put `entry` at `path` (a snapshot or link replaces what was there) and name it in
    /// every folder above.
    fn insert(&mut self, path: &str, entry: Entry) {
        let e = self.entries.entry(path.to_owned()).or_default();
        if entry.snapshot.is_some() {
            e.snapshot = entry.snapshot;
            e.link = entry.link;
        }
        let mut child = path;
        while let Some(slash) = child.rfind('/') {
            let (parent, name) = (&child[..slash], &child[slash + 1..]);
            let p = self.entries.entry(parent.to_owned()).or_default();
            if !p.names.insert(name.to_owned()) {
                break;
            }
            child = parent;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(time: &str, host: &str, tags: &[&str], n: u8) -> Snapshot {
        let json = format!(
            r#"{{"time":"{time}","tree":"{}","paths":["/p"],"hostname":"{host}","username":"u"}}"#,
            "00".repeat(32)
        );
        let mut sn = Snapshot::parse(json.as_bytes(), arca_format::Id([n; 32])).unwrap();
        sn.tags = tags.iter().map(|t| t.to_string()).collect();
        sn
    }

    fn names(l: &Layout, path: &str) -> Vec<String> {
        l.entries[path].names.iter().cloned().collect()
    }

    #[test]
    fn default_layout_as_restic() {
        let sns = vec![
            snapshot("2026-01-02T03:04:05Z", "a", &["x/y", "t"], 1),
            snapshot("2026-01-02T03:04:05.5Z", "b", &[], 2),
            snapshot("2025-01-01T00:00:00+02:00", "a", &["t"], 3),
        ];
        let l = Layout::new(&sns, &Templates::default());
        assert_eq!(names(&l, ""), ["hosts", "ids", "snapshots", "tags"]);
        assert_eq!(names(&l, "/ids"), ["01010101", "02020202", "03030303"]);
        // Same second: the later one is told apart, and is the latest.
        assert_eq!(
            names(&l, "/snapshots"),
            [
                "2025-01-01T00:00:00+02:00",
                "2026-01-02T03:04:05Z",
                "2026-01-02T03:04:05Z-1",
                "latest"
            ]
        );
        let latest = &l.entries["/snapshots/latest"];
        assert_eq!(latest.link.as_deref(), Some("2026-01-02T03:04:05Z-1"));
        assert_eq!(latest.snapshot, Some(1));
        assert_eq!(names(&l, "/tags"), ["t", "x_y"]);
        assert_eq!(names(&l, "/hosts/a").len(), 3);
        assert_eq!(l.entries["/ids/03030303"].snapshot, Some(2));
    }

    #[test]
    fn custom_templates_make_folders_of_times_and_users() {
        let sns = vec![snapshot("2026-12-24T17:08:09+01:00", "h", &[], 7)];
        let t = Templates {
            paths: vec![
                "by-user/%u/%T".into(),
                "%h-%i%%".into(),
                "tagged/%t/%T".into(),
            ],
            time: "2006/01/02 15:04".into(),
        };
        let l = Layout::new(&sns, &t);
        assert_eq!(names(&l, ""), ["by-user", "h-07070707%", "tagged"]);
        assert_eq!(names(&l, "/by-user/u/2026/12"), ["24 17:08"]);
        assert_eq!(
            l.entries["/by-user/u/latest"].link.as_deref(),
            Some("2026/12/24 17:08")
        );
        // Made for its static prefix though no snapshot has a tag.
        assert!(l.entries["/tagged"].names.is_empty());
        assert_eq!(l.entries["/h-07070707%"].snapshot, Some(0));
    }

    #[test]
    fn names_cannot_climb_out_of_the_mount() {
        assert_eq!(clean("/a/../../b/./c//d"), "/b/c/d");
        assert_eq!(clean("/"), "");
        assert_eq!(safe("a/b"), "a_b");
        assert_eq!(safe(".."), "__");
        assert_eq!(safe(""), "_");
        assert_eq!(static_prefix("tags/%t/%T"), Some("tags"));
        assert_eq!(static_prefix("a/b%%/%h"), Some("a/b%%"));
        assert_eq!(static_prefix("%h"), None);
        assert_eq!(static_prefix("plain"), None);
    }
}
