//! Output in restic's shapes: Go-style JSON, tables, sizes, mode strings, progress.

use arca_engine::progress::Progress;
use arca_format::gojson::write_json_string;
use arca_format::snapshot::Snapshot;
use indicatif::{ProgressBar, ProgressStyle};

/// Go's encoding/json escapes `<`, `>`, `&`, U+2028 and U+2029 in strings; serde_json
/// does not. Those characters can only occur inside strings, so replace them anywhere.
pub fn go_escape(json: Vec<u8>) -> Vec<u8> {
    if !json
        .iter()
        .any(|&b| b == b'<' || b == b'>' || b == b'&' || b == 0xe2)
    {
        return json;
    }
    let s = String::from_utf8(json).expect("serde_json writes UTF-8");
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
        .into_bytes()
}

/// A JSON object written field by field in a fixed order, strings Go-encoded.
pub struct JsonObject {
    buf: Vec<u8>,
}

impl JsonObject {
    pub fn new() -> Self {
        JsonObject { buf: vec![b'{'] }
    }
    fn key(&mut self, k: &str) {
        if self.buf.len() > 1 {
            self.buf.push(b',');
        }
        write_json_string(&mut self.buf, k.as_bytes());
        self.buf.push(b':');
    }
    pub fn str(mut self, k: &str, v: &[u8]) -> Self {
        self.key(k);
        write_json_string(&mut self.buf, v);
        self
    }
    pub fn num(mut self, k: &str, v: impl std::fmt::Display) -> Self {
        self.key(k);
        self.buf.extend_from_slice(v.to_string().as_bytes());
        self
    }
    pub fn raw(mut self, k: &str, v: &[u8]) -> Self {
        self.key(k);
        self.buf.extend_from_slice(v);
        self
    }
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(b'}');
        self.buf
    }
}

/// Go's json.MarshalIndent(v, "", "  ") of a struct that serde serialises in Go's order.
pub fn indent_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut out = go_escape(serde_json::to_vec_pretty(v).expect("serialisable"));
    out.push(b'\n');
    out
}

/// Go's `Duration.Round(time.Millisecond).String()`: "0s", "10ms", "1.5s", "2m3.004s".
pub fn go_duration_ms(d: std::time::Duration) -> String {
    let ms = (d.as_micros() + 500) / 1000;
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (secs, frac) = (ms / 1000, ms % 1000);
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&s.to_string());
    if frac > 0 {
        out.push_str(format!(".{frac:03}").trim_end_matches('0'));
    }
    out.push('s');
    out
}

/// restic's ui.FormatBytes.
/// restic's `ui.FormatDuration`: whole seconds as "m:ss", or "h:mm:ss" from an hour on.
pub fn format_seconds(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

pub fn format_bytes(c: u64) -> String {
    let b = c as f64;
    if c >= 1 << 40 {
        format!("{:.3} TiB", b / (1u64 << 40) as f64)
    } else if c >= 1 << 30 {
        format!("{:.3} GiB", b / (1u64 << 30) as f64)
    } else if c >= 1 << 20 {
        format!("{:.3} MiB", b / (1u64 << 20) as f64)
    } else if c >= 1 << 10 {
        format!("{:.3} KiB", b / (1u64 << 10) as f64)
    } else {
        format!("{c} B")
    }
}

/// Go's fs.FileMode.String().
pub fn mode_string(mode: u32) -> String {
    const TYPES: &[u8] = b"dalTLDpSugct?";
    let mut s = String::new();
    for (i, c) in TYPES.iter().enumerate() {
        if mode & (1 << (31 - i)) != 0 {
            s.push(*c as char);
        }
    }
    if s.is_empty() {
        s.push('-');
    }
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        s.push(if mode & (1 << (8 - i)) != 0 { c } else { '-' });
    }
    s
}

/// A left-aligned text table with a dashed rule under the header, as restic prints.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }
    pub fn row(&mut self, r: Vec<String>) {
        self.rows.push(r);
    }
    pub fn render(&self) -> String {
        let n = self.header.len();
        let mut w = vec![0usize; n];
        for r in std::iter::once(&self.header).chain(&self.rows) {
            for (i, c) in r.iter().enumerate().take(n) {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let line = |r: &Vec<String>| {
            let mut s = String::new();
            for (i, c) in r.iter().enumerate().take(n) {
                if i + 1 == n {
                    s.push_str(c);
                } else {
                    s.push_str(&format!("{c:<width$}  ", width = w[i]));
                }
            }
            s.trim_end().to_string()
        };
        let total: usize = w.iter().sum::<usize>() + 2 * (n - 1);
        let rule = "-".repeat(total.max(10));
        let mut out = format!("{}\n{rule}\n", line(&self.header));
        for r in &self.rows {
            out.push_str(&line(r));
            out.push('\n');
        }
        out.push_str(&rule);
        out.push('\n');
        out
    }
}

/// A progress bar on the terminal, or nothing.
pub struct Bar(Option<ProgressBar>);

impl Bar {
    pub fn new(show: bool, bytes: bool, prefix: &str) -> Bar {
        if !show {
            return Bar(None);
        }
        let pb = ProgressBar::new(0);
        let tpl = if bytes {
            "{prefix} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}"
        } else {
            "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}"
        };
        pb.set_style(ProgressStyle::with_template(tpl).expect("valid template"));
        pb.set_prefix(prefix.to_string());
        Bar(Some(pb))
    }
    pub fn finish(&self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn set_total(&self, total: u64) {
        if let Some(pb) = &self.0 {
            pb.set_length(total);
        }
    }
    fn add(&self, n: u64) {
        if let Some(pb) = &self.0 {
            pb.inc(n);
        }
    }
    fn message(&self, msg: &str) {
        if let Some(pb) = &self.0 {
            pb.set_message(msg.to_string());
        }
    }
}

/// A snapshot's JSON as restic prints it in lists: the stored fields plus id and short_id.
pub fn snapshot_json(s: &Snapshot, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut j = serde_json::to_vec(s).expect("serialisable");
    j.pop();
    let mut tail = JsonObject::new()
        .str("id", s.id.to_hex().as_bytes())
        .str("short_id", s.id.short().as_bytes());
    for (k, v) in extra {
        tail = tail.str(k, v.as_bytes());
    }
    let tail = tail.finish();
    j.push(b',');
    j.extend_from_slice(&tail[1..]);
    go_escape(j)
}

/// Go's time.Time.String() of a time parsed from JSON: "2006-01-02 15:04:05.999999999 -0700 MST".
/// A zero offset is UTC; another offset gets a fabricated zone named by the offset
/// ("+0100 +0100"), unless it is the local zone's (then Go prints its abbreviation, e.g. "CET",
/// which chrono cannot name: the offset is printed again there too).
pub fn go_time_string(t: &arca_format::gotime::GoTime) -> String {
    let offset = t.0.format("%z").to_string();
    let zone = if t.offset_secs() == 0 {
        "UTC".to_string()
    } else {
        offset.clone()
    };
    // ".999999999": trailing zeros trimmed, no dot for whole seconds.
    let frac = format!(".{:09}", t.unix_nanos_part());
    let frac = frac.trim_end_matches('0').trim_end_matches('.');
    format!("{}{frac} {offset} {zone}", t.0.format("%Y-%m-%d %H:%M:%S"))
}

/// A time in the local zone, as restic prints it in tables and listings.
pub fn local_time(t: &arca_format::gotime::GoTime) -> String {
    let dt = t.0.with_timezone(&chrono::Local);
    dt.format("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_mode_strings() {
        assert_eq!(mode_string(2147484141), "drwxr-xr-x");
        assert_eq!(mode_string(134218239), "Lrwxrwxrwx");
        assert_eq!(mode_string(420), "-rw-r--r--");
        assert_eq!(mode_string(8389101), "urwxr-xr-x");
        assert_eq!(mode_string(69206416), "Dcrw--w----");
    }

    #[test]
    fn escaping_and_sizes() {
        assert_eq!(
            go_escape(br#"{"a":"<&>"}"#.to_vec()),
            br#"{"a":"\u003c\u0026\u003e"}"#.to_vec()
        );
        assert_eq!(format_bytes(24), "24 B");
        assert_eq!(format_bytes(1536), "1.500 KiB");
    }

    #[test]
    fn durations_as_go_prints_them() {
        use std::time::Duration;
        assert_eq!(go_duration_ms(Duration::from_micros(400)), "0s");
        assert_eq!(go_duration_ms(Duration::from_micros(10_400)), "10ms");
        assert_eq!(go_duration_ms(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration_ms(Duration::from_millis(2000)), "2s");
        assert_eq!(go_duration_ms(Duration::from_millis(123_004)), "2m3.004s");
        assert_eq!(go_duration_ms(Duration::from_secs(3600)), "1h0m0s");
    }
}
