//! `forget`: restic's retention policy. Pure functions decide which snapshots to keep (and
//! why) and which to remove; [`remove_snapshots`] deletes the snapshot files.
//!
//! Semantics follow current restic (`internal/data/snapshot_policy.go`,
//! `snapshot_group.go`, `duration.go`):
//!
//! - Snapshots are grouped (by default by host and paths), the policy is applied to each group.
//! - Within a group snapshots are ordered newest first. A snapshot is kept when any rule keeps
//!   it; the reasons list every rule that did.
//! - The counted rules (`last`, `hourly`, ..., `yearly`) keep the newest snapshot of each
//!   bucket until their count is used up (`-1`: no limit). Buckets are calendar hours, days,
//!   ISO weeks, months and years in the offset the snapshot time was written with (the
//!   writer's local time, which is what Go's `time.Time` fields give restic).
//! - If a counted or a within-bucket rule still has room when the oldest snapshot of the
//!   group is reached, that snapshot is kept too (reason prefixed with `oldest`).
//! - `within` durations count back from the newest snapshot that is not in the future
//!   (relative to `now`) using Go's `AddDate` calendar arithmetic, then whole hours; a snapshot
//!   is inside when it is strictly after that point.

use crate::error::{Error, Result};
use crate::repo::{Repository, LOAD_CONCURRENCY};
use arca_format::gotime::GoTime;
use arca_format::snapshot::Snapshot;
use arca_format::Id;
use arca_storage::FileType;
use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeZone, Timelike};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::fmt;

// ------------------------------------------------------------------ durations

/// restic's `Duration`: years, months, days and hours, e.g. `1y2m3d4h`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeepDuration {
    pub years: i64,
    pub months: i64,
    pub days: i64,
    pub hours: i64,
}

impl KeepDuration {
    /// Parse `6y5m234d37h`: numbers (optionally negative) each followed by one unit of `y`,
    /// `m`, `d` or `h`, in any order; a later unit overrides an earlier one. Surrounding
    /// whitespace is ignored; the empty string is the zero duration.
    pub fn parse(s: &str) -> std::result::Result<KeepDuration, String> {
        let mut d = KeepDuration::default();
        let mut rest = s.trim().as_bytes();
        while !rest.is_empty() {
            let negative = rest[0] == b'-';
            if negative {
                rest = &rest[1..];
            }
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 {
                return Err("no number found".into());
            }
            let text = std::str::from_utf8(&rest[..digits]).expect("ASCII digits");
            let mut num: i64 = text
                .parse()
                .map_err(|_| format!("number {text} is too large"))?;
            if negative {
                num = -num;
            }
            rest = &rest[digits..];
            let Some(&unit) = rest.first() else {
                return Err(format!("no unit found after number {num}"));
            };
            match unit {
                b'y' => d.years = num,
                b'm' => d.months = num,
                b'd' => d.days = num,
                b'h' => d.hours = num,
                other => {
                    let shown = std::str::from_utf8(rest)
                        .ok()
                        .and_then(|s| s.chars().next())
                        .unwrap_or(other as char);
                    return Err(format!("invalid unit {shown:?} found after number {num}"));
                }
            }
            rest = &rest[1..];
        }
        Ok(d)
    }

    pub fn is_zero(&self) -> bool {
        self.years == 0 && self.months == 0 && self.days == 0 && self.hours == 0
    }

    pub fn has_negative(&self) -> bool {
        self.years < 0 || self.months < 0 || self.days < 0 || self.hours < 0
    }
}

impl fmt::Display for KeepDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (v, unit) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if v != 0 {
                write!(f, "{v}{unit}")?;
            }
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ tags

/// restic's `TagList.String()`: `[a, b]`.
pub fn tag_list_string(l: &[String]) -> String {
    format!("[{}]", l.join(", "))
}

/// restic's `Snapshot.HasTags`: every tag of `wanted` is present; an empty tag reached
/// while the snapshot has no tags at all matches (so `''` selects untagged snapshots).
pub fn has_tags(s: &Snapshot, wanted: &[String]) -> bool {
    for tag in wanted {
        if tag.is_empty() && s.tags.is_empty() {
            return true;
        }
        if !s.tags.contains(tag) {
            return false;
        }
    }
    true
}

/// restic's `TagList.Set`: split at commas, trim whitespace around each tag (empty tags stay).
pub fn parse_tag_list(s: &str) -> Vec<String> {
    s.split(',').map(|t| t.trim().to_string()).collect()
}

// ------------------------------------------------------------------ policy

/// Which snapshots to keep. Counts: 0 = rule off, -1 = unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpirePolicy {
    pub last: i64,
    pub hourly: i64,
    pub daily: i64,
    pub weekly: i64,
    pub monthly: i64,
    pub yearly: i64,
    pub within: KeepDuration,
    pub within_hourly: KeepDuration,
    pub within_daily: KeepDuration,
    pub within_weekly: KeepDuration,
    pub within_monthly: KeepDuration,
    pub within_yearly: KeepDuration,
    /// Keep every snapshot that has all tags of at least one of these lists.
    pub tags: Vec<Vec<String>>,
}

impl ExpirePolicy {
    /// No rule at all: restic refuses to act on it (it would remove everything).
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
            && [
                self.last,
                self.hourly,
                self.daily,
                self.weekly,
                self.monthly,
                self.yearly,
            ]
            .iter()
            .all(|&c| c == 0)
            && [
                self.within,
                self.within_hourly,
                self.within_daily,
                self.within_weekly,
                self.within_monthly,
                self.within_yearly,
            ]
            .iter()
            .all(KeepDuration::is_zero)
    }
}

/// restic's `ExpirePolicy.String()`, printed after "Applying Policy: ".
impl fmt::Display for ExpirePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keeps = Vec::new();
        for (count, what) in [
            (self.last, "latest"),
            (self.hourly, "hourly"),
            (self.daily, "daily"),
            (self.weekly, "weekly"),
            (self.monthly, "monthly"),
            (self.yearly, "yearly"),
        ] {
            if count > 0 {
                keeps.push(format!("{count} {what}"));
            } else if count == -1 {
                keeps.push(format!("all {what}"));
            }
        }
        let mut keepw = Vec::new();
        for (d, what) in [
            (self.within_hourly, "hourly"),
            (self.within_daily, "daily"),
            (self.within_weekly, "weekly"),
            (self.within_monthly, "monthly"),
            (self.within_yearly, "yearly"),
        ] {
            if !d.is_zero() {
                keepw.push(format!("{what} snapshots within {d}"));
            }
        }
        let mut s = String::new();
        if !keeps.is_empty() {
            s = format!("{} snapshots", keeps.join(", "));
        }
        if !keepw.is_empty() {
            if !s.is_empty() {
                s.push_str(", ");
            }
            s.push_str(&keepw.join(", "));
        }
        if !self.tags.is_empty() {
            if !s.is_empty() {
                s.push_str(" and ");
            }
            let lists: Vec<String> = self.tags.iter().map(|l| tag_list_string(l)).collect();
            s.push_str(&format!("all snapshots with tags [{}]", lists.join(" ")));
        }
        if !self.within.is_zero() {
            if !s.is_empty() {
                s.push_str(" and ");
            }
            s.push_str(&format!(
                "all snapshots within {} of the newest",
                self.within
            ));
        }
        if s.is_empty() {
            f.write_str("remove")
        } else {
            write!(f, "keep {s}")
        }
    }
}

/// The bucket counters after a kept snapshot was evaluated (what restic 0.14 printed in JSON).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub last: i64,
    pub hourly: i64,
    pub daily: i64,
    pub weekly: i64,
    pub monthly: i64,
    pub yearly: i64,
}

/// Why one snapshot is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeepReason {
    pub id: Id,
    /// e.g. `daily snapshot`, `within 1d`, `has tags [a]`, `oldest monthly snapshot`.
    pub matches: Vec<String>,
    pub counters: Counters,
}

/// The outcome for one list of snapshots: both lists newest first; `reasons[i]` is about
/// `keep[i]`.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    pub keep: Vec<Snapshot>,
    pub remove: Vec<Snapshot>,
    pub reasons: Vec<KeepReason>,
}

#[derive(Clone, Copy)]
enum Bucket {
    Always,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Bucket {
    /// restic's bucket value: YYYYMMDDHH, YYYYMMDD, ISO YYYYWW, YYYYMM, YYYY or the position.
    fn value(self, t: &GoTime, nr: usize) -> i64 {
        let d = &t.0; // wall clock in the offset the time was written with
        let (y, m, day, h) = (
            d.year() as i64,
            d.month() as i64,
            d.day() as i64,
            d.hour() as i64,
        );
        match self {
            Bucket::Always => nr as i64,
            Bucket::Hour => y * 1_000_000 + m * 10_000 + day * 100 + h,
            Bucket::Day => y * 10_000 + m * 100 + day,
            Bucket::Week => {
                let w = d.iso_week();
                w.year() as i64 * 100 + w.week() as i64
            }
            Bucket::Month => y * 100 + m,
            Bucket::Year => y,
        }
    }
}

/// An instant as (seconds, nanoseconds) since the Unix epoch, for comparisons.
type Instant = (i64, u32);

fn instant(t: &GoTime) -> Instant {
    (t.unix_secs(), t.unix_nanos_part())
}

/// The newest snapshot time that is before `now` (Go's zero time when there is none).
fn latest_before(list: &[Snapshot], now: &GoTime) -> GoTime {
    let mut latest = GoTime::zero();
    for s in list {
        if s.time > latest && s.time < *now {
            latest = s.time;
        }
    }
    latest
}

/// Offset of the machine's local zone at a UTC instant, in seconds.
fn local_offset_at(utc: &NaiveDateTime) -> i64 {
    chrono::Local
        .offset_from_utc_datetime(utc)
        .local_minus_utc() as i64
}

/// `latest.AddDate(-years, -months, -days).Add(-hours)` as Go computes it, or `None` when the
/// result is before any representable time (then every snapshot is inside).
///
/// Go parses a stored time into the local zone when its offset is the local offset at that
/// instant, else into a fixed zone; `AddDate` keeps the wall clock and resolves it in that
/// zone (so across a DST change the offset may differ). Months and days overflow like Go's
/// `time.Date` (Mar 31 minus one month is Mar 2 or 3).
fn within_start(latest: &GoTime, d: &KeepDuration) -> Option<Instant> {
    let wall = latest.0.naive_local();
    let nanos = latest.unix_nanos_part();
    let offset = latest.offset_secs() as i64;
    let in_local_zone = !latest.is_zero() && local_offset_at(&latest.0.naive_utc()) == offset;

    let month0 = (wall.month0() as i64).checked_sub(d.months)?;
    let year = (wall.year() as i64)
        .checked_sub(d.years)?
        .checked_add(month0.div_euclid(12))?;
    let month = month0.rem_euclid(12) as u32 + 1;
    let first = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, 1)?;
    let day_offset = (wall.day() as i64 - 1).checked_sub(d.days)?;
    let date = first.checked_add_signed(chrono::TimeDelta::try_days(day_offset)?)?;
    let new_wall = date.and_time(wall.time());

    // Seconds of the wall clock read as if it were UTC.
    let wall_secs = new_wall.and_utc().timestamp();
    let zone_offset = if in_local_zone {
        // Go's Date: guess the offset at the wall-clock-as-UTC instant, correct it once.
        let guess = local_offset_at(&new_wall);
        let utc = chrono::DateTime::from_timestamp(wall_secs - guess, 0)?.naive_utc();
        let actual = local_offset_at(&utc);
        if actual != guess {
            actual
        } else {
            guess
        }
    } else {
        offset
    };
    let secs = (wall_secs - zone_offset).checked_sub(d.hours.checked_mul(3600)?)?;
    Some((secs, nanos))
}

fn is_after(t: &GoTime, start: &Option<Instant>) -> bool {
    match start {
        Some(s) => instant(t) > *s,
        None => true,
    }
}

/// Apply `p` to one group of snapshots. `now` is the current time: snapshots after it are
/// ignored when finding the newest snapshot that `within` durations count back from.
///
/// The list is ordered newest first with a stable sort, so snapshots with equal times keep
/// the order they were given in.
pub fn apply_policy(mut list: Vec<Snapshot>, p: &ExpirePolicy, now: &GoTime) -> Applied {
    list.sort_by_key(|s| std::cmp::Reverse(s.time));
    let mut out = Applied::default();
    if list.is_empty() {
        return out;
    }

    struct Counted {
        count: i64,
        bucket: Bucket,
        last: i64,
        reason: &'static str,
    }
    let mut counted = [
        (p.last, Bucket::Always, "last snapshot"),
        (p.hourly, Bucket::Hour, "hourly snapshot"),
        (p.daily, Bucket::Day, "daily snapshot"),
        (p.weekly, Bucket::Week, "weekly snapshot"),
        (p.monthly, Bucket::Month, "monthly snapshot"),
        (p.yearly, Bucket::Year, "yearly snapshot"),
    ]
    .map(|(count, bucket, reason)| Counted {
        count,
        bucket,
        last: -1,
        reason,
    });

    let latest = latest_before(&list, now);
    struct Within {
        start: Option<Instant>,
        duration: KeepDuration,
        bucket: Bucket,
        last: i64,
        reason: &'static str,
    }
    let mut within_buckets: Vec<Within> = [
        (p.within_hourly, Bucket::Hour, "hourly within"),
        (p.within_daily, Bucket::Day, "daily within"),
        (p.within_weekly, Bucket::Week, "weekly within"),
        (p.within_monthly, Bucket::Month, "monthly within"),
        (p.within_yearly, Bucket::Year, "yearly within"),
    ]
    .into_iter()
    .filter(|(d, _, _)| !d.is_zero())
    .map(|(duration, bucket, reason)| Within {
        start: within_start(&latest, &duration),
        duration,
        bucket,
        last: -1,
        reason,
    })
    .collect();
    let within_all = (!p.within.is_zero()).then(|| within_start(&latest, &p.within));

    let oldest = list.len() - 1;
    for (nr, cur) in list.into_iter().enumerate() {
        let mut matches = Vec::new();

        for l in &p.tags {
            if has_tags(&cur, l) {
                matches.push(format!("has tags {}", tag_list_string(l)));
            }
        }

        if let Some(start) = &within_all {
            if is_after(&cur.time, start) {
                matches.push(format!("within {}", p.within));
            }
        }

        for b in counted.iter_mut() {
            if b.count > 0 || b.count == -1 {
                let val = b.bucket.value(&cur.time, nr);
                if val != b.last || nr == oldest {
                    if val == b.last {
                        matches.push(format!("oldest {}", b.reason));
                    } else {
                        matches.push(b.reason.to_string());
                    }
                    b.last = val;
                    if b.count > 0 {
                        b.count -= 1;
                    }
                }
            }
        }

        for b in within_buckets.iter_mut() {
            if is_after(&cur.time, &b.start) {
                let val = b.bucket.value(&cur.time, nr);
                if val != b.last || nr == oldest {
                    let prefix = if val == b.last { "oldest " } else { "" };
                    matches.push(format!("{prefix}{} {}", b.reason, b.duration));
                    b.last = val;
                }
            }
        }

        if matches.is_empty() {
            out.remove.push(cur);
        } else {
            out.reasons.push(KeepReason {
                id: cur.id,
                matches,
                counters: Counters {
                    last: counted[0].count,
                    hourly: counted[1].count,
                    daily: counted[2].count,
                    weekly: counted[3].count,
                    monthly: counted[4].count,
                    yearly: counted[5].count,
                },
            });
            out.keep.push(cur);
        }
    }
    out
}

// ------------------------------------------------------------------ grouping

/// restic's `--group-by`: any of host, paths, tags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupBy {
    pub host: bool,
    pub paths: bool,
    pub tags: bool,
}

impl GroupBy {
    /// `forget`'s default.
    pub const HOST_PATHS: GroupBy = GroupBy {
        host: true,
        paths: true,
        tags: false,
    };

    /// Comma-separated `host`/`hosts`, `path`/`paths`, `tag`/`tags`; empty parts are ignored,
    /// so `""` means no grouping.
    pub fn parse(s: &str) -> std::result::Result<GroupBy, String> {
        let mut g = GroupBy::default();
        for part in s.split(',') {
            match part {
                "host" | "hosts" => g.host = true,
                "path" | "paths" => g.paths = true,
                "tag" | "tags" => g.tags = true,
                "" => {}
                other => return Err(format!("unknown grouping option: {other:?}")),
            }
        }
        Ok(g)
    }

    pub fn used(&self) -> bool {
        self.host || self.paths || self.tags
    }
}

/// What the snapshots of one group share. Empty `paths`/`tags` mean "not grouped by it" (or
/// none), printed as `null` in JSON like restic's nil slices.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    pub hostname: String,
    pub paths: Vec<String>,
    pub tags: Vec<String>,
}

fn json_list(v: &[String]) -> serde_json::Value {
    if v.is_empty() {
        serde_json::Value::Null
    } else {
        v.iter().cloned().collect()
    }
}

impl GroupKey {
    /// restic's key JSON, `{"hostname":..,"paths":..,"tags":..}`.
    pub fn to_json(&self) -> String {
        let mut m = serde_json::Map::new();
        m.insert("hostname".into(), self.hostname.clone().into());
        m.insert("paths".into(), json_list(&self.paths));
        m.insert("tags".into(), json_list(&self.tags));
        // serde_json keeps insertion order only with preserve_order; write it by hand.
        format!(
            "{{\"hostname\":{},\"paths\":{},\"tags\":{}}}",
            m["hostname"], m["paths"], m["tags"]
        )
    }
}

/// restic's `SnapshotGroupKey.String()`: `host h, path [/a /b], tags [x]`.
impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.hostname.is_empty() {
            parts.push(format!("host {}", self.hostname));
        }
        if !self.paths.is_empty() {
            parts.push(format!("path [{}]", self.paths.join(" ")));
        }
        if !self.tags.is_empty() {
            parts.push(format!("tags [{}]", self.tags.join(" ")));
        }
        f.write_str(&parts.join(", "))
    }
}

/// Split snapshots into groups, ordered by their key JSON (restic's order is a Go map's, i.e.
/// random). Like restic, every snapshot's paths are sorted, and its tags too when grouping by
/// tags, so the printed snapshots show them sorted. Within a group the input order is kept.
pub fn group_snapshots(list: Vec<Snapshot>, by: GroupBy) -> Vec<(GroupKey, Vec<Snapshot>)> {
    let mut groups: BTreeMap<String, (GroupKey, Vec<Snapshot>)> = BTreeMap::new();
    for mut s in list {
        s.paths.sort();
        if by.tags {
            s.tags.sort();
        }
        let key = GroupKey {
            hostname: if by.host {
                s.hostname.clone()
            } else {
                String::new()
            },
            paths: if by.paths {
                s.paths.clone()
            } else {
                Vec::new()
            },
            tags: if by.tags { s.tags.clone() } else { Vec::new() },
        };
        groups
            .entry(key.to_json())
            .or_insert_with(|| (key, Vec::new()))
            .1
            .push(s);
    }
    groups.into_values().collect()
}

// ------------------------------------------------------------------ planning

/// The decision for one group.
#[derive(Clone, Debug)]
pub struct ForgetGroup {
    pub key: GroupKey,
    /// Newest first.
    pub keep: Vec<Snapshot>,
    /// Newest first.
    pub remove: Vec<Snapshot>,
    /// `reasons[i]` is about `keep[i]`.
    pub reasons: Vec<KeepReason>,
}

/// Group `snapshots` and apply `policy` to each group.
///
/// Refuses, like restic, an empty policy (it would remove everything) unless
/// `allow_remove_all`, and a non-empty policy that would leave a group with no snapshot at all
/// (e.g. `--keep-tag` with a tag no snapshot has).
pub fn plan(
    snapshots: Vec<Snapshot>,
    policy: &ExpirePolicy,
    group_by: GroupBy,
    allow_remove_all: bool,
    now: &GoTime,
) -> Result<Vec<ForgetGroup>> {
    if policy.is_empty() && !allow_remove_all {
        return Err(Error::Invalid(
            "no policy was specified, no snapshots will be removed".into(),
        ));
    }
    let mut out = Vec::new();
    for (key, list) in group_snapshots(snapshots, group_by) {
        let a = apply_policy(list, policy, now);
        if !policy.is_empty() && a.keep.is_empty() {
            return Err(Error::Invalid(format!(
                "refusing to delete last snapshot of snapshot group \"{key}\""
            )));
        }
        out.push(ForgetGroup {
            key,
            keep: a.keep,
            remove: a.remove,
            reasons: a.reasons,
        });
    }
    Ok(out)
}

/// Delete snapshot files, several at a time. Returns each ID with its outcome, in the order
/// given.
pub async fn remove_snapshots(repo: &Repository, ids: &[Id]) -> Vec<(Id, Result<()>)> {
    let backend = repo.backend();
    let mut results: Vec<(usize, Id, Result<()>)> =
        futures::stream::iter(ids.iter().enumerate().map(|(i, id)| async move {
            let r = backend
                .remove(FileType::Snapshot, &id.to_hex())
                .await
                .map_err(Error::from);
            (i, *id, r)
        }))
        .buffer_unordered(LOAD_CONCURRENCY)
        .collect()
        .await;
    results.sort_by_key(|(i, _, _)| *i);
    results.into_iter().map(|(_, id, r)| (id, r)).collect()
}

// ------------------------------------------------------------------ tests

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> GoTime {
        GoTime::parse(s).unwrap()
    }

    /// A snapshot at `time` (RFC 3339) with an ID derived from `name`.
    fn snap(name: &str, time: &str) -> Snapshot {
        snap_full(name, time, "host", &["/data"], &[])
    }

    fn snap_full(name: &str, time: &str, host: &str, paths: &[&str], tags: &[&str]) -> Snapshot {
        let json = serde_json::json!({
            "time": time,
            "tree": Id::hash(b"tree").to_hex(),
            "paths": paths,
            "hostname": host,
            "tags": tags,
        });
        let mut s = Snapshot::parse(json.to_string().as_bytes(), Id::hash(name.as_bytes()))
            .expect("snapshot JSON");
        s.id = id_of(name);
        s
    }

    /// IDs that sort like their names, so ties are predictable in tests.
    fn id_of(name: &str) -> Id {
        let mut b = [0u8; 32];
        for (i, c) in name.bytes().take(32).enumerate() {
            b[i] = c;
        }
        Id(b)
    }

    fn now() -> GoTime {
        t("2100-01-01T00:00:00Z")
    }

    fn names(list: &[Snapshot], all: &[(String, Id)]) -> Vec<String> {
        list.iter()
            .map(|s| {
                all.iter()
                    .find(|(_, id)| *id == s.id)
                    .map(|(n, _)| n.clone())
                    .unwrap()
            })
            .collect()
    }

    struct Case {
        snaps: Vec<Snapshot>,
        ids: Vec<(String, Id)>,
    }

    impl Case {
        fn new(list: &[(&str, &str)]) -> Case {
            let snaps: Vec<Snapshot> = list.iter().map(|(n, tm)| snap(n, tm)).collect();
            let ids = list
                .iter()
                .map(|(n, _)| (n.to_string(), id_of(n)))
                .collect();
            Case { snaps, ids }
        }
        fn apply(&self, p: &ExpirePolicy) -> (Vec<String>, Vec<String>, Vec<Vec<String>>) {
            let a = apply_policy(self.snaps.clone(), p, &now());
            (
                names(&a.keep, &self.ids),
                names(&a.remove, &self.ids),
                a.reasons.iter().map(|r| r.matches.clone()).collect(),
            )
        }
        fn keep(&self, p: &ExpirePolicy) -> Vec<String> {
            self.apply(p).0
        }
    }

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    /// restic docs: one backup every Sunday for 12 weeks.
    fn sundays() -> Case {
        Case::new(&[
            ("0a1f9759", "2019-09-01T11:00:00Z"),
            ("46cfe4d5", "2019-09-08T11:00:00Z"),
            ("f6b1f037", "2019-09-15T11:00:00Z"),
            ("eb430a5d", "2019-09-22T11:00:00Z"),
            ("8cf1cb9a", "2019-09-29T11:00:00Z"),
            ("5d33b116", "2019-10-06T11:00:00Z"),
            ("b9553125", "2019-10-13T11:00:00Z"),
            ("e1a7b58b", "2019-10-20T11:00:00Z"),
            ("8f8018c0", "2019-10-27T11:00:00Z"),
            ("59403279", "2019-11-03T11:00:00Z"),
            ("dfee9fb4", "2019-11-10T11:00:00Z"),
            ("e1ae2f40", "2019-11-17T11:00:00Z"),
        ])
    }

    #[test]
    fn docs_example_keep_daily_4() {
        let c = sundays();
        let p = ExpirePolicy {
            daily: 4,
            ..Default::default()
        };
        let (keep, remove, reasons) = c.apply(&p);
        assert_eq!(keep, v(&["e1ae2f40", "dfee9fb4", "59403279", "8f8018c0"]));
        assert_eq!(remove.len(), 8);
        assert_eq!(remove[0], "e1a7b58b");
        assert!(reasons.iter().all(|r| r == &v(&["daily snapshot"])));
        assert_eq!(p.to_string(), "keep 4 daily snapshots");
    }

    #[test]
    fn docs_example_weekly_monthly_overlap() {
        // Sundays: each is its own ISO week; months Sep(5), Oct(4), Nov(3).
        let c = sundays();
        let p = ExpirePolicy {
            daily: 2,
            weekly: 3,
            monthly: 2,
            ..Default::default()
        };
        let (keep, _, reasons) = c.apply(&p);
        assert_eq!(keep, v(&["e1ae2f40", "dfee9fb4", "59403279", "8f8018c0"]));
        assert_eq!(
            reasons[0],
            v(&["daily snapshot", "weekly snapshot", "monthly snapshot"])
        );
        assert_eq!(reasons[1], v(&["daily snapshot", "weekly snapshot"]));
        assert_eq!(reasons[2], v(&["weekly snapshot"]));
        assert_eq!(reasons[3], v(&["monthly snapshot"]));
    }

    /// The restic docs' "one backup a day" example, shortened: --keep-daily 7 --keep-weekly 5
    /// --keep-monthly 12 keeps 7 dailies, 4 more weeklies and 11 or 12 monthlies.
    #[test]
    fn docs_example_daily_backups_for_years() {
        let start = NaiveDate::from_ymd_opt(2019, 1, 1).unwrap();
        let mut list = Vec::new();
        for i in 0..(3 * 365) {
            let d = start + chrono::TimeDelta::days(i);
            list.push((format!("s{i:05}"), format!("{d}T12:00:00Z")));
        }
        let refs: Vec<(&str, &str)> = list.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let c = Case::new(&refs);
        let p = ExpirePolicy {
            daily: 7,
            weekly: 5,
            monthly: 12,
            yearly: 75,
            ..Default::default()
        };
        let (keep, _, reasons) = c.apply(&p);
        let count = |what: &str| {
            reasons
                .iter()
                .filter(|r| r.iter().any(|m| m == what))
                .count()
        };
        assert_eq!(count("daily snapshot"), 7);
        assert_eq!(count("weekly snapshot"), 5);
        assert_eq!(count("monthly snapshot"), 12);
        // The newest of 2021 (Dec 30), 2020 and 2019 (Dec 31), and 2019-01-01 as the oldest
        // since the yearly count has room left.
        assert_eq!(count("yearly snapshot"), 3);
        assert_eq!(count("oldest yearly snapshot"), 1);
        // The last day is Thu 2021-12-30. Dailies Dec 24-30 hold the weeklies of ISO weeks 52
        // and 51, so 3 more weeklies (Dec 19, 12, 5); the monthlies are the month ends of 2021
        // of which Dec 30 is a daily (11 more); yearlies 2020 and 2019 (2 more); the oldest.
        assert_eq!(keep.len(), 7 + 3 + 11 + 2 + 1);
        assert_eq!(keep.last().unwrap(), "s00000");
    }

    #[test]
    fn keep_last_and_unlimited() {
        let c = sundays();
        let p = ExpirePolicy {
            last: 3,
            ..Default::default()
        };
        let (keep, remove, reasons) = c.apply(&p);
        assert_eq!(keep, v(&["e1ae2f40", "dfee9fb4", "59403279"]));
        assert_eq!(remove.len(), 9);
        assert_eq!(reasons[2], v(&["last snapshot"]));
        assert_eq!(p.to_string(), "keep 3 latest snapshots");

        let all = ExpirePolicy {
            last: -1,
            ..Default::default()
        };
        let (keep, remove, _) = c.apply(&all);
        assert_eq!(keep.len(), 12);
        assert!(remove.is_empty());
        assert!(!all.is_empty());
        assert_eq!(all.to_string(), "keep all latest snapshots");

        // More than there are: all kept, the oldest as a plain "last snapshot" (its bucket
        // value is unique).
        let (keep, _, reasons) = c.apply(&ExpirePolicy {
            last: 20,
            ..Default::default()
        });
        assert_eq!(keep.len(), 12);
        assert_eq!(reasons[11], v(&["last snapshot"]));
    }

    #[test]
    fn hourly_daily_with_same_bucket() {
        let c = Case::new(&[
            ("a", "2024-03-01T10:05:00Z"),
            ("b", "2024-03-01T10:55:00Z"),
            ("c", "2024-03-01T11:00:00Z"),
            ("d", "2024-03-02T09:00:00Z"),
            ("e", "2024-03-02T09:30:00Z"),
        ]);
        let hourly = ExpirePolicy {
            hourly: 10,
            ..Default::default()
        };
        let (keep, remove, reasons) = c.apply(&hourly);
        // e (09h Mar 2), c (11h), b (10h); a is the oldest and the count has room left.
        assert_eq!(keep, v(&["e", "c", "b", "a"]));
        assert_eq!(remove, v(&["d"]));
        assert_eq!(reasons[3], v(&["oldest hourly snapshot"]));

        let (keep, remove, _) = c.apply(&ExpirePolicy {
            hourly: 2,
            ..Default::default()
        });
        assert_eq!(keep, v(&["e", "c"]));
        assert_eq!(remove, v(&["d", "b", "a"]));

        let (keep, _, reasons) = c.apply(&ExpirePolicy {
            daily: -1,
            ..Default::default()
        });
        assert_eq!(keep, v(&["e", "c", "a"]));
        assert_eq!(reasons[2], v(&["oldest daily snapshot"]));
        // Unlimited counters stay -1.
        let a = apply_policy(
            c.snaps.clone(),
            &ExpirePolicy {
                daily: -1,
                weekly: 1,
                ..Default::default()
            },
            &now(),
        );
        assert_eq!(a.reasons[0].counters.daily, -1);
        assert_eq!(a.reasons[0].counters.weekly, 0);
    }

    #[test]
    fn weekly_uses_iso_weeks() {
        // 2020-12-31 (Thu) and 2021-01-03 (Sun) are both in ISO week 2020-53;
        // 2021-01-04 (Mon) starts 2021-W01.
        let c = Case::new(&[
            ("a", "2020-12-28T00:00:00Z"),
            ("b", "2020-12-31T12:00:00Z"),
            ("c", "2021-01-03T23:59:59Z"),
            ("d", "2021-01-04T00:00:00Z"),
        ]);
        let (keep, remove, _) = c.apply(&ExpirePolicy {
            weekly: 2,
            ..Default::default()
        });
        assert_eq!(keep, v(&["d", "c"]));
        assert_eq!(remove, v(&["b", "a"]));
        // Yearly is by calendar year, not ISO year.
        let (keep, _, _) = c.apply(&ExpirePolicy {
            yearly: 2,
            ..Default::default()
        });
        assert_eq!(keep, v(&["d", "b"]));
    }

    #[test]
    fn buckets_use_the_stored_offset() {
        // 23:30 at +02:00 is 21:30 UTC the same day; 00:30 at +02:00 is the day before in UTC.
        let c = Case::new(&[
            ("a", "2024-05-01T23:30:00+02:00"),
            ("b", "2024-05-02T00:30:00+02:00"),
        ]);
        let (keep, _, reasons) = c.apply(&ExpirePolicy {
            daily: 2,
            ..Default::default()
        });
        // Different days in their own offset (in UTC both are May 1, and a would only be
        // kept as "oldest daily snapshot").
        assert_eq!(keep, v(&["b", "a"]));
        assert_eq!(reasons[1], v(&["daily snapshot"]));
        // a is 23:00 UTC May 1; b is 22:30 UTC May 1 (older) but May 2 in its own offset.
        let c = Case::new(&[
            ("a", "2024-05-01T23:00:00Z"),
            ("b", "2024-05-02T00:30:00+02:00"),
        ]);
        let (keep, remove, reasons) = c.apply(&ExpirePolicy {
            daily: 2,
            ..Default::default()
        });
        assert_eq!(keep, v(&["a", "b"]));
        assert!(remove.is_empty());
        // In UTC both would share May 1 and b would only be "oldest daily snapshot".
        assert_eq!(reasons[1], v(&["daily snapshot"]));
    }

    #[test]
    fn monthly_and_yearly() {
        let c = Case::new(&[
            ("a", "2022-01-15T00:00:00Z"),
            ("b", "2022-06-15T00:00:00Z"),
            ("c", "2022-06-20T00:00:00Z"),
            ("d", "2023-02-01T00:00:00Z"),
            ("e", "2023-02-28T00:00:00Z"),
        ]);
        let (keep, remove, _) = c.apply(&ExpirePolicy {
            monthly: 2,
            ..Default::default()
        });
        assert_eq!(keep, v(&["e", "c"]));
        assert_eq!(remove, v(&["d", "b", "a"]));
        let (keep, _, reasons) = c.apply(&ExpirePolicy {
            yearly: 5,
            ..Default::default()
        });
        assert_eq!(keep, v(&["e", "c", "a"]));
        assert_eq!(
            reasons,
            vec![
                v(&["yearly snapshot"]),
                v(&["yearly snapshot"]),
                v(&["oldest yearly snapshot"])
            ]
        );
    }

    #[test]
    fn keep_tags() {
        let mut c = sundays();
        c.snaps[0].tags = v(&["a", "b"]);
        c.snaps[1].tags = v(&["a"]);
        c.snaps[5].tags = v(&["b"]);
        let p = ExpirePolicy {
            tags: vec![v(&["a", "b"]), v(&["b"])],
            ..Default::default()
        };
        let (keep, remove, reasons) = c.apply(&p);
        assert_eq!(keep, v(&["5d33b116", "0a1f9759"]));
        assert_eq!(remove.len(), 10);
        assert_eq!(reasons[0], v(&["has tags [b]"]));
        assert_eq!(reasons[1], v(&["has tags [a, b]", "has tags [b]"]));
        assert_eq!(p.to_string(), "keep all snapshots with tags [[a, b] [b]]");

        // '' matches untagged snapshots only.
        let p = ExpirePolicy {
            tags: vec![v(&[""])],
            ..Default::default()
        };
        let (keep, _, reasons) = c.apply(&p);
        assert_eq!(keep.len(), 9);
        assert_eq!(reasons[0], v(&["has tags []"]));
        assert!(!keep.contains(&"5d33b116".to_string()));
    }

    #[test]
    fn keep_within_boundaries() {
        let c = Case::new(&[
            ("a", "2024-01-01T00:00:00Z"),
            ("b", "2024-01-01T00:00:01Z"),
            ("c", "2024-01-02T00:00:00Z"),
            ("d", "2024-01-03T00:00:00Z"),
        ]);
        // Start is exactly 2024-01-01T00:00:00: a is not strictly after it.
        let p = ExpirePolicy {
            within: KeepDuration::parse("2d").unwrap(),
            ..Default::default()
        };
        let (keep, remove, reasons) = c.apply(&p);
        assert_eq!(keep, v(&["d", "c", "b"]));
        assert_eq!(remove, v(&["a"]));
        assert_eq!(reasons[0], v(&["within 2d"]));
        assert_eq!(p.to_string(), "keep all snapshots within 2d of the newest");
        // Hours are whole hours after the calendar part.
        let p = ExpirePolicy {
            within: KeepDuration::parse("1d23h").unwrap(),
            ..Default::default()
        };
        assert_eq!(c.keep(&p), v(&["d", "c"]));
        let p = ExpirePolicy {
            within: KeepDuration::parse("48h").unwrap(),
            ..Default::default()
        };
        assert_eq!(c.keep(&p), v(&["d", "c", "b"]));
    }

    #[test]
    fn keep_within_ignores_future_snapshots() {
        let c = Case::new(&[
            ("a", "2024-01-01T00:00:00Z"),
            ("b", "2024-01-05T00:00:00Z"),
            ("future", "2200-01-01T00:00:00Z"),
        ]);
        let p = ExpirePolicy {
            within: KeepDuration::parse("3d").unwrap(),
            ..Default::default()
        };
        // Counted from b (the newest before now), the future one is after the start too.
        let (keep, remove, _) = c.apply(&p);
        assert_eq!(keep, v(&["future", "b"]));
        assert_eq!(remove, v(&["a"]));
        // All in the future: counted from Go's zero time, so everything is inside.
        let c = Case::new(&[("x", "2300-01-01T00:00:00Z"), ("y", "2300-06-01T00:00:00Z")]);
        assert_eq!(c.keep(&p), v(&["y", "x"]));
    }

    #[test]
    fn keep_within_month_arithmetic_like_go() {
        // Latest Mar 31; minus 1 month is "Feb 31" = Mar 2 (2024 is a leap year).
        let c = Case::new(&[
            ("a", "2024-03-01T12:00:00Z"),
            ("b", "2024-03-02T11:59:59Z"),
            ("c", "2024-03-02T12:00:01Z"),
            ("d", "2024-03-31T12:00:00Z"),
        ]);
        let p = ExpirePolicy {
            within: KeepDuration::parse("1m").unwrap(),
            ..Default::default()
        };
        assert_eq!(c.keep(&p), v(&["d", "c"]));
        // One year back from Feb 29 is "Feb 29 2023" = Mar 1 2023.
        let c = Case::new(&[
            ("a", "2023-02-28T12:00:00Z"),
            ("b", "2023-03-01T12:00:01Z"),
            ("c", "2024-02-29T12:00:00Z"),
        ]);
        let p = ExpirePolicy {
            within: KeepDuration::parse("1y").unwrap(),
            ..Default::default()
        };
        assert_eq!(c.keep(&p), v(&["c", "b"]));
        // A huge duration reaches before any time: everything is inside.
        let p = ExpirePolicy {
            within: KeepDuration::parse("999999999y").unwrap(),
            ..Default::default()
        };
        assert_eq!(c.keep(&p).len(), 3);
    }

    #[test]
    fn keep_within_in_a_fixed_offset() {
        // +05:00 wall clock: latest 2024-01-10T01:00+05:00 minus 1d = 2024-01-09T01:00+05:00.
        let c = Case::new(&[
            ("a", "2024-01-08T20:00:00Z"), // 2024-01-09T01:00+05:00 exactly: not after
            ("b", "2024-01-08T20:00:01Z"),
            ("c", "2024-01-10T01:00:00+05:00"),
        ]);
        let p = ExpirePolicy {
            within: KeepDuration::parse("1d").unwrap(),
            ..Default::default()
        };
        assert_eq!(c.keep(&p), v(&["c", "b"]));
    }

    #[test]
    fn keep_within_buckets() {
        let c = Case::new(&[
            ("a", "2024-05-01T08:00:00Z"),
            ("b", "2024-05-02T08:00:00Z"),
            ("c", "2024-05-02T11:00:00Z"),
            ("d", "2024-05-04T09:00:00Z"),
            ("e", "2024-05-05T10:00:00Z"),
        ]);
        // The forum example: --keep-daily 4 vs --keep-within-daily 4d.
        let (keep, _, _) = c.apply(&ExpirePolicy {
            daily: 4,
            ..Default::default()
        });
        assert_eq!(keep, v(&["e", "d", "c", "a"]));
        let p = ExpirePolicy {
            within_daily: KeepDuration::parse("4d").unwrap(),
            ..Default::default()
        };
        let (keep, remove, reasons) = c.apply(&p);
        assert_eq!(keep, v(&["e", "d", "c"]));
        assert_eq!(remove, v(&["b", "a"]));
        assert_eq!(reasons[0], v(&["daily within 4d"]));
        assert_eq!(p.to_string(), "keep daily snapshots within 4d");

        // The oldest snapshot inside the range is kept even if its bucket was seen.
        let c = Case::new(&[
            ("a", "2024-05-05T08:00:00Z"),
            ("b", "2024-05-05T09:00:00Z"),
            ("c", "2024-05-05T10:00:00Z"),
        ]);
        let (keep, remove, reasons) = c.apply(&ExpirePolicy {
            within_daily: KeepDuration::parse("1d").unwrap(),
            within_hourly: KeepDuration::parse("1h").unwrap(),
            ..Default::default()
        });
        assert_eq!(keep, v(&["c", "a"]));
        assert_eq!(remove, v(&["b"]));
        assert_eq!(reasons[0], v(&["hourly within 1h", "daily within 1d"]));
        assert_eq!(reasons[1], v(&["oldest daily within 1d"]));

        // Every kind of within bucket. Sundays at 11:00: 14 days back from Nov 17 is Nov 3
        // 11:00 exactly, so only Nov 10 and Nov 17 are inside.
        let c = sundays();
        let d = KeepDuration::parse("14d").unwrap();
        type Field = fn(&mut ExpirePolicy) -> &mut KeepDuration;
        let cases: [(Field, &str, Vec<String>); 4] = [
            (
                |p| &mut p.within_hourly,
                "hourly within 14d",
                v(&["e1ae2f40", "dfee9fb4"]),
            ),
            (
                |p| &mut p.within_weekly,
                "weekly within 14d",
                v(&["e1ae2f40", "dfee9fb4"]),
            ),
            (
                |p| &mut p.within_monthly,
                "monthly within 14d",
                v(&["e1ae2f40"]),
            ),
            (
                |p| &mut p.within_yearly,
                "yearly within 14d",
                v(&["e1ae2f40"]),
            ),
        ];
        for (field, reason, expect) in cases {
            let mut p = ExpirePolicy::default();
            *field(&mut p) = d;
            let (keep, _, reasons) = c.apply(&p);
            assert_eq!(keep, expect, "{reason}");
            assert_eq!(reasons[0], v(&[reason]));
        }
    }

    #[test]
    fn combined_policy_string() {
        let p = ExpirePolicy {
            last: 1,
            daily: -1,
            within_hourly: KeepDuration::parse("2d").unwrap(),
            within_yearly: KeepDuration::parse("10y").unwrap(),
            tags: vec![v(&["x"])],
            within: KeepDuration::parse("1y2m3d4h").unwrap(),
            ..Default::default()
        };
        assert_eq!(
            p.to_string(),
            "keep 1 latest, all daily snapshots, hourly snapshots within 2d, yearly snapshots \
             within 10y and all snapshots with tags [[x]] and all snapshots within 1y2m3d4h of \
             the newest"
        );
        assert_eq!(ExpirePolicy::default().to_string(), "remove");
        assert!(ExpirePolicy::default().is_empty());
        assert!(ExpirePolicy {
            within: KeepDuration::parse("0d").unwrap(),
            ..Default::default()
        }
        .is_empty());
    }

    #[test]
    fn reasons_order_and_all_rules_together() {
        let mut c = sundays();
        c.snaps[11].tags = v(&["t"]);
        let p = ExpirePolicy {
            last: 1,
            hourly: 1,
            daily: 1,
            weekly: 1,
            monthly: 1,
            yearly: 1,
            within: KeepDuration::parse("1h").unwrap(),
            within_hourly: KeepDuration::parse("1h").unwrap(),
            within_daily: KeepDuration::parse("1h").unwrap(),
            within_weekly: KeepDuration::parse("1h").unwrap(),
            within_monthly: KeepDuration::parse("1h").unwrap(),
            within_yearly: KeepDuration::parse("1h").unwrap(),
            tags: vec![v(&["t"])],
        };
        let (keep, _, reasons) = c.apply(&p);
        assert_eq!(keep, v(&["e1ae2f40"]));
        assert_eq!(
            reasons[0],
            v(&[
                "has tags [t]",
                "within 1h",
                "last snapshot",
                "hourly snapshot",
                "daily snapshot",
                "weekly snapshot",
                "monthly snapshot",
                "yearly snapshot",
                "hourly within 1h",
                "daily within 1h",
                "weekly within 1h",
                "monthly within 1h",
                "yearly within 1h",
            ])
        );
    }

    #[test]
    fn same_timestamps_keep_input_order() {
        let c = Case::new(&[
            ("a", "2024-01-01T00:00:00Z"),
            ("b", "2024-01-01T00:00:00Z"),
            ("c", "2024-01-01T00:00:00Z"),
        ]);
        // Stable sort: equal times stay in input order, so "a" is newest-first's first.
        let (keep, remove, _) = c.apply(&ExpirePolicy {
            last: 2,
            ..Default::default()
        });
        assert_eq!(keep, v(&["a", "b"]));
        assert_eq!(remove, v(&["c"]));
        // One daily bucket: the first is the daily, the last (oldest position) is kept as oldest.
        let (keep, remove, reasons) = c.apply(&ExpirePolicy {
            daily: 5,
            ..Default::default()
        });
        assert_eq!(keep, v(&["a", "c"]));
        assert_eq!(remove, v(&["b"]));
        assert_eq!(reasons[1], v(&["oldest daily snapshot"]));
    }

    #[test]
    fn empty_list_and_single_snapshot() {
        let a = apply_policy(
            Vec::new(),
            &ExpirePolicy {
                last: 1,
                ..Default::default()
            },
            &now(),
        );
        assert!(a.keep.is_empty() && a.remove.is_empty());
        let c = Case::new(&[("a", "2024-01-01T00:00:00Z")]);
        let (keep, _, reasons) = c.apply(&ExpirePolicy {
            weekly: 3,
            ..Default::default()
        });
        assert_eq!(keep, v(&["a"]));
        assert_eq!(reasons[0], v(&["weekly snapshot"]));
        // An empty policy keeps nothing (callers refuse it unless asked to remove all).
        let (keep, remove, _) = c.apply(&ExpirePolicy::default());
        assert!(keep.is_empty());
        assert_eq!(remove, v(&["a"]));
    }

    #[test]
    fn durations() {
        let d = KeepDuration::parse("1y2m3d4h").unwrap();
        assert_eq!(
            d,
            KeepDuration {
                years: 1,
                months: 2,
                days: 3,
                hours: 4
            }
        );
        assert_eq!(d.to_string(), "1y2m3d4h");
        assert_eq!(KeepDuration::parse(" 4h2y ").unwrap().to_string(), "2y4h");
        assert_eq!(KeepDuration::parse("1d2d").unwrap().days, 2);
        assert_eq!(KeepDuration::parse("").unwrap(), KeepDuration::default());
        assert!(KeepDuration::parse("0y0h").unwrap().is_zero());
        let neg = KeepDuration::parse("-3d").unwrap();
        assert_eq!(neg.days, -3);
        assert!(neg.has_negative());
        assert_eq!(
            KeepDuration::parse("5").unwrap_err(),
            "no unit found after number 5"
        );
        assert_eq!(KeepDuration::parse("d").unwrap_err(), "no number found");
        assert_eq!(
            KeepDuration::parse("5w").unwrap_err(),
            "invalid unit 'w' found after number 5"
        );
        assert!(KeepDuration::parse("1d 2h").is_err());
        assert!(KeepDuration::parse("99999999999999999999d").is_err());
    }

    #[test]
    fn group_by_parsing_and_keys() {
        assert_eq!(GroupBy::parse("host,paths").unwrap(), GroupBy::HOST_PATHS);
        assert_eq!(GroupBy::parse("").unwrap(), GroupBy::default());
        assert!(!GroupBy::parse(",").unwrap().used());
        let g = GroupBy::parse("hosts,path,tag").unwrap();
        assert!(g.host && g.paths && g.tags);
        assert_eq!(
            GroupBy::parse("host,bogus").unwrap_err(),
            "unknown grouping option: \"bogus\""
        );
        let k = GroupKey {
            hostname: "h".into(),
            paths: v(&["/a", "/b"]),
            tags: Vec::new(),
        };
        assert_eq!(
            k.to_json(),
            r#"{"hostname":"h","paths":["/a","/b"],"tags":null}"#
        );
        assert_eq!(k.to_string(), "host h, path [/a /b]");
    }

    #[test]
    fn grouping() {
        let list = vec![
            snap_full(
                "1",
                "2024-01-01T00:00:00Z",
                "h1",
                &["/b", "/a"],
                &["y", "x"],
            ),
            snap_full("2", "2024-01-02T00:00:00Z", "h1", &["/a", "/b"], &[]),
            snap_full(
                "3",
                "2024-01-03T00:00:00Z",
                "h2",
                &["/a", "/b"],
                &["x", "y"],
            ),
            snap_full("4", "2024-01-04T00:00:00Z", "h1", &["/a"], &[]),
        ];
        let g = group_snapshots(list.clone(), GroupBy::HOST_PATHS);
        let keys: Vec<String> = g.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(
            keys,
            v(&[
                "host h1, path [/a /b]",
                "host h1, path [/a]",
                "host h2, path [/a /b]"
            ])
        );
        assert_eq!(g[0].1.len(), 2);
        // Paths sorted in place; tags untouched when not grouping by tags.
        assert_eq!(g[0].1[0].paths, v(&["/a", "/b"]));
        assert_eq!(g[0].1[0].tags, v(&["y", "x"]));

        let g = group_snapshots(list.clone(), GroupBy::parse("tags").unwrap());
        assert_eq!(g.len(), 2);
        assert_eq!(
            g[0].0.to_json(),
            r#"{"hostname":"","paths":null,"tags":["x","y"]}"#
        );
        assert_eq!(g[0].1.len(), 2);
        assert_eq!(g[0].1[0].tags, v(&["x", "y"]));
        assert_eq!(
            g[1].0.to_json(),
            r#"{"hostname":"","paths":null,"tags":null}"#
        );

        let g = group_snapshots(list.clone(), GroupBy::default());
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].1.len(), 4);
        assert_eq!(g[0].0.to_string(), "");

        // The policy applies per group.
        let p = ExpirePolicy {
            last: 1,
            ..Default::default()
        };
        let groups = plan(
            list.clone(),
            &p,
            GroupBy::parse("host").unwrap(),
            false,
            &now(),
        )
        .unwrap();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].keep[0].id, id_of("4"));
        assert_eq!(groups[0].remove.len(), 2);
        assert_eq!(groups[1].keep[0].id, id_of("3"));
        assert!(groups[1].remove.is_empty());
    }

    #[test]
    fn plan_refusals() {
        let list = vec![
            snap_full("1", "2024-01-01T00:00:00Z", "h1", &["/a"], &["keep"]),
            snap_full("2", "2024-01-02T00:00:00Z", "h2", &["/a"], &[]),
        ];
        let err = plan(
            list.clone(),
            &ExpirePolicy::default(),
            GroupBy::HOST_PATHS,
            false,
            &now(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no policy was specified, no snapshots will be removed"
        );
        // Allowed: everything goes.
        let groups = plan(
            list.clone(),
            &ExpirePolicy::default(),
            GroupBy::HOST_PATHS,
            true,
            &now(),
        )
        .unwrap();
        assert!(groups
            .iter()
            .all(|g| g.keep.is_empty() && g.remove.len() == 1));
        // A policy that would empty a group.
        let p = ExpirePolicy {
            tags: vec![v(&["keep"])],
            ..Default::default()
        };
        let err = plan(list.clone(), &p, GroupBy::HOST_PATHS, false, &now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "refusing to delete last snapshot of snapshot group \"host h2, path [/a]\""
        );
        // Without grouping the tagged one keeps the group alive.
        let groups = plan(list, &p, GroupBy::default(), false, &now()).unwrap();
        assert_eq!(groups[0].keep.len(), 1);
        assert_eq!(groups[0].remove.len(), 1);
    }

    #[test]
    fn tag_helpers() {
        assert_eq!(parse_tag_list("a, b ,,c"), v(&["a", "b", "", "c"]));
        assert_eq!(tag_list_string(&v(&["a", "b"])), "[a, b]");
        let s = snap_full("1", "2024-01-01T00:00:00Z", "h", &["/a"], &["a", "b"]);
        assert!(has_tags(&s, &v(&["a"])));
        assert!(has_tags(&s, &v(&["b", "a"])));
        assert!(!has_tags(&s, &v(&["a", "c"])));
        assert!(!has_tags(&s, &v(&[""])));
        assert!(has_tags(&s, &[]));
        let untagged = snap("2", "2024-01-01T00:00:00Z");
        assert!(has_tags(&untagged, &v(&[""])));
        assert!(!has_tags(&untagged, &v(&["a"])));
    }
}
