//! The keep policy applied to one group of snapshots: which to keep, with every rule that
//! kept each, and which to remove.

use super::{has_tags, tag_list_string, KeepDuration};
use arca_format::gotime::GoTime;
use arca_format::snapshot::Snapshot;
use arca_format::Id;
use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeZone, Timelike};
use std::fmt;

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

#[cfg(test)]
mod tests;
