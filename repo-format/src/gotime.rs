//! Go `time.Time` as restic stores it: RFC3339Nano text with the writer's UTC offset.
//!
//! The text is part of the tree bytes, so formatting follows Go exactly: the fraction loses its
//! trailing zeros (and disappears when zero) and a zero offset is written as `Z`.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A point in time plus the UTC offset it is displayed in.
///
/// Equality and ordering compare instants only (like Go's `Time.Equal`), so two values that
/// compare equal can still format differently when their offsets differ.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoTime(pub DateTime<FixedOffset>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RFC 3339 time {input:?}: {reason}")]
pub struct TimeError {
    pub input: String,
    pub reason: &'static str,
}

const NANOS: u32 = 1_000_000_000;
/// Unix seconds of Go's zero time, 0001-01-01T00:00:00Z.
const GO_ZERO_UNIX: i64 = -62_135_596_800;
/// 400 Gregorian years: a whole number of days and weeks, so shifting by it changes only the
/// year (and the local offset rules that depend on month, weekday and time of day stay valid).
const CYCLE_SECS: i64 = 146_097 * 86_400;
/// 10400-01-01T00:00:00Z and -0400-01-01T00:00:00Z.
const FAR_FUTURE: i64 = 266_025_081_600;
const FAR_PAST: i64 = -74_790_000_000;

impl GoTime {
    /// Go's zero `time.Time`, `0001-01-01T00:00:00Z`.
    pub fn zero() -> GoTime {
        let utc = NaiveDate::from_ymd_opt(1, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("0001-01-01 is representable");
        GoTime(DateTime::from_naive_utc_and_offset(utc, utc_offset()))
    }

    /// Whether this is Go's zero time (compared as an instant, like `Time.IsZero`).
    pub fn is_zero(&self) -> bool {
        self.unix_secs() == GO_ZERO_UNIX && self.unix_nanos_part() == 0
    }

    /// Go `time.Unix(secs, nanos)`: the instant in the local time zone, with the offset the
    /// zone has at that instant (what restic writes for file times on the same machine).
    ///
    /// Instants beyond the years -400 and 10400 are moved by whole 400-year cycles towards
    /// those years. That keeps month, day, time of day and weekday, and the year stays outside
    /// 0000–9999, so [`GoTime::clamp_year`] gives what restic stores, without overflowing.
    pub fn from_unix(secs: i64, nanos: u32) -> GoTime {
        let mut secs = secs.saturating_add((nanos / NANOS) as i64);
        let nanos = nanos % NANOS;
        if secs >= FAR_FUTURE {
            secs = FAR_FUTURE + (secs - FAR_FUTURE).rem_euclid(CYCLE_SECS);
        } else if secs < FAR_PAST {
            secs = FAR_PAST + (secs - FAR_PAST).rem_euclid(CYCLE_SECS);
        }
        let utc = DateTime::<Utc>::from_timestamp(secs, nanos)
            .expect("seconds reduced into chrono's range")
            .naive_utc();
        let offset = chrono::Local.offset_from_utc_datetime(&utc);
        GoTime(DateTime::from_naive_utc_and_offset(utc, offset))
    }

    /// The current time in the local time zone (Go `time.Now()` as serialized).
    pub fn now() -> GoTime {
        let now = Utc::now();
        GoTime::from_unix(now.timestamp(), now.timestamp_subsec_nanos())
    }

    /// Seconds since the Unix epoch.
    pub fn unix_secs(&self) -> i64 {
        self.utc_parts().0.and_utc().timestamp()
    }

    /// Nanoseconds within the second, 0..1e9.
    pub fn unix_nanos_part(&self) -> u32 {
        self.utc_parts().1
    }

    /// The offset from UTC in seconds.
    pub fn offset_secs(&self) -> i32 {
        self.0.offset().local_minus_utc()
    }

    /// UTC date-time (nanosecond field zero) and nanoseconds, with chrono's leap-second
    /// representation (nanoseconds >= 1e9) folded into the next second as Go would see it.
    fn utc_parts(&self) -> (NaiveDateTime, u32) {
        let utc = self.0.naive_utc();
        let n = utc.nanosecond();
        let base = utc.with_nanosecond(0).unwrap_or(utc);
        if n >= NANOS {
            let next = base
                .checked_add_signed(chrono::TimeDelta::seconds(1))
                .unwrap_or(base);
            (next, n - NANOS)
        } else {
            (base, n)
        }
    }

    /// Wall-clock date-time in this value's offset, plus nanoseconds.
    fn local_parts(&self) -> (NaiveDateTime, u32) {
        let (utc, n) = self.utc_parts();
        let local = utc
            .checked_add_signed(chrono::TimeDelta::seconds(self.offset_secs() as i64))
            .unwrap_or(utc);
        (local, n)
    }

    /// restic's `fixTime`: a wall-clock year before 0000 becomes 0000 and one after 9999 becomes
    /// 9999, keeping month, day, time and offset. Like Go's `AddDate`, Feb 29 in a year that
    /// has none rolls over to Mar 1.
    pub fn clamp_year(&self) -> GoTime {
        let (local, n) = self.local_parts();
        let year = match local.year() {
            y if y < 0 => 0,
            y if y > 9999 => 9999,
            _ => return *self,
        };
        let date = NaiveDate::from_ymd_opt(year, local.month(), local.day())
            .or_else(|| NaiveDate::from_ymd_opt(year, 3, 1))
            .expect("Mar 1 exists in every year");
        let time = local.time().with_nanosecond(n).unwrap_or(local.time());
        let offset = *self.0.offset();
        let utc = date.and_time(time) - offset;
        GoTime(DateTime::from_naive_utc_and_offset(utc, offset))
    }

    /// Go's `Format(time.RFC3339Nano)`.
    pub fn format(&self) -> String {
        let mut v = Vec::with_capacity(35);
        self.append_rfc3339(&mut v);
        // Only ASCII digits and separators are written.
        String::from_utf8(v).unwrap_or_default()
    }

    /// [`GoTime::format`] appending to `out`.
    pub fn append_rfc3339(&self, out: &mut Vec<u8>) {
        let (local, nanos) = self.local_parts();
        self.write_parts(out, local, nanos);
    }

    /// What restic's `Node.MarshalJSON` writes: `clamp_year()` then RFC3339Nano.
    pub fn append_rfc3339_clamped(&self, out: &mut Vec<u8>) {
        let (local, nanos) = self.local_parts();
        if (0..=9999).contains(&local.year()) {
            self.write_parts(out, local, nanos);
        } else {
            self.clamp_year().append_rfc3339(out);
        }
    }

    fn write_parts(&self, out: &mut Vec<u8>, local: NaiveDateTime, nanos: u32) {
        push_year(out, local.year());
        out.push(b'-');
        push2(out, local.month());
        out.push(b'-');
        push2(out, local.day());
        out.push(b'T');
        push2(out, local.hour());
        out.push(b':');
        push2(out, local.minute());
        out.push(b':');
        push2(out, local.second());
        if nanos != 0 {
            let mut digits = [b'0'; 9];
            let mut v = nanos;
            for d in digits.iter_mut().rev() {
                *d = b'0' + (v % 10) as u8;
                v /= 10;
            }
            let len = 9 - digits.iter().rev().take_while(|&&d| d == b'0').count();
            out.push(b'.');
            out.extend_from_slice(&digits[..len]);
        }
        let offset = self.offset_secs();
        if offset == 0 {
            out.push(b'Z');
        } else {
            // Go truncates sub-minute offsets (e.g. historic LMT zones) towards zero.
            let minutes = offset / 60;
            out.push(if minutes < 0 { b'-' } else { b'+' });
            let minutes = minutes.unsigned_abs();
            push2(out, minutes / 60);
            out.push(b':');
            push2(out, minutes % 60);
        }
    }

    /// Parses RFC 3339 as Go 1.19's `time.Parse(time.RFC3339, s)` does (which is also how
    /// `UnmarshalJSON` reads times): any number of fraction digits (beyond nine are ignored),
    /// `.` or `,` before the fraction, `Z` or `±hh:mm`.
    pub fn parse(s: &str) -> Result<GoTime, TimeError> {
        parse_rfc3339(s.as_bytes()).map_err(|reason| TimeError {
            input: s.chars().take(64).collect(),
            reason,
        })
    }
}

fn utc_offset() -> FixedOffset {
    FixedOffset::east_opt(0).expect("zero offset")
}

fn push2(out: &mut Vec<u8>, v: u32) {
    out.push(b'0' + (v / 10 % 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

/// Go's `2006` layout element: at least four digits, a leading `-` for negative years.
fn push_year(out: &mut Vec<u8>, y: i32) {
    if (0..10_000).contains(&y) {
        push2(out, y as u32 / 100);
        push2(out, y as u32 % 100);
        return;
    }
    if y < 0 {
        out.push(b'-');
    }
    let a = y.unsigned_abs();
    let s = a.to_string();
    for _ in s.len()..4 {
        out.push(b'0');
    }
    out.extend_from_slice(s.as_bytes());
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), &'static str> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err("unexpected character")
        }
    }

    fn digit(&mut self) -> Option<u32> {
        match self.peek() {
            Some(c @ b'0'..=b'9') => {
                self.i += 1;
                Some((c - b'0') as u32)
            }
            _ => None,
        }
    }

    fn fixed(&mut self, n: usize) -> Result<u32, &'static str> {
        let mut v = 0;
        for _ in 0..n {
            v = v * 10 + self.digit().ok_or("expected digit")?;
        }
        Ok(v)
    }
}

fn parse_rfc3339(b: &[u8]) -> Result<GoTime, &'static str> {
    let mut c = Cursor { b, i: 0 };
    let year = c.fixed(4)? as i32;
    c.expect(b'-')?;
    let month = c.fixed(2)?;
    c.expect(b'-')?;
    let day = c.fixed(2)?;
    c.expect(b'T')?;
    // Go's `15` layout element accepts one or two digits.
    let mut hour = c.digit().ok_or("expected digit")?;
    if let Some(d) = c.digit() {
        hour = hour * 10 + d;
    }
    c.expect(b':')?;
    let minute = c.fixed(2)?;
    c.expect(b':')?;
    let second = c.fixed(2)?;
    let mut nanos = 0;
    if matches!(c.peek(), Some(b'.' | b',')) && b.get(c.i + 1).is_some_and(u8::is_ascii_digit) {
        c.i += 1;
        let mut n = 0;
        while let Some(d) = c.digit() {
            if n < 9 {
                nanos = nanos * 10 + d;
                n += 1;
            }
        }
        nanos *= 10u32.pow(9 - n);
    }
    let offset = match c.peek() {
        Some(b'Z') => {
            c.i += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            c.i += 1;
            let hh = c.fixed(2)?;
            c.expect(b':')?;
            let mm = c.fixed(2)?;
            // Go 1.19 allows 24 and 60 here.
            if hh > 24 || mm > 60 {
                return Err("zone offset out of range");
            }
            let secs = ((hh * 60 + mm) * 60) as i32;
            if sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return Err("expected time zone"),
    };
    if c.i != b.len() {
        return Err("extra text after time");
    }
    if !(1..=12).contains(&month) {
        return Err("month out of range");
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err("time of day out of range");
    }
    let date = NaiveDate::from_ymd_opt(year, month, day).ok_or("day out of range")?;
    let local = date
        .and_hms_nano_opt(hour, minute, second, nanos)
        .ok_or("time of day out of range")?;
    let offset = FixedOffset::east_opt(offset).ok_or("zone offset out of range")?;
    let dt = offset
        .from_local_datetime(&local)
        .single()
        .ok_or("time out of range")?;
    Ok(GoTime(dt))
}

impl Default for GoTime {
    fn default() -> GoTime {
        GoTime::zero()
    }
}

impl fmt::Display for GoTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format())
    }
}

impl fmt::Debug for GoTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GoTime({})", self.format())
    }
}

impl std::str::FromStr for GoTime {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<GoTime, TimeError> {
        GoTime::parse(s)
    }
}

impl From<DateTime<FixedOffset>> for GoTime {
    fn from(dt: DateTime<FixedOffset>) -> GoTime {
        GoTime(dt)
    }
}

/// Like Go's `MarshalJSON`, refuses years outside 0000–9999 (restic could not read them back).
impl Serialize for GoTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let year = self.local_parts().0.year();
        if !(0..=9999).contains(&year) {
            return Err(serde::ser::Error::custom(
                "GoTime: year outside of range [0,9999]",
            ));
        }
        s.serialize_str(&self.format())
    }
}

/// Reads the RFC 3339 string; JSON `null` gives the zero time, as Go's `UnmarshalJSON` leaves
/// the value untouched.
impl<'de> Deserialize<'de> for GoTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<GoTime, D::Error> {
        let s = Option::<std::borrow::Cow<'de, str>>::deserialize(d)?;
        match s {
            None => Ok(GoTime::zero()),
            Some(s) => GoTime::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(s: &str) {
        let t = GoTime::parse(s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.format(), s);
    }

    #[test]
    fn reference_examples_round_trip() {
        rt("2015-01-02T18:10:50.895208559+02:00");
        rt("2015-01-02T18:10:50.8952085+02:00");
        rt("2015-01-02T18:10:50+02:00");
        rt("2015-01-02T18:10:50.1Z");
        rt("0001-01-01T00:00:00Z");
        rt("2026-11-24T04:10:04.478388311Z");
        rt("1969-12-31T23:59:59.999999999-05:30");
        rt("0000-01-01T00:00:00+14:00");
        rt("9999-12-31T23:59:59.000000001-12:00");
    }

    #[test]
    fn zero_time() {
        assert_eq!(GoTime::zero().format(), "0001-01-01T00:00:00Z");
        assert_eq!(GoTime::zero().unix_secs(), GO_ZERO_UNIX);
        assert!(GoTime::zero().is_zero());
        assert_eq!(GoTime::default(), GoTime::zero());
    }

    #[test]
    fn parse_normalises_like_go() {
        let t = GoTime::parse("2015-01-02T18:10:50.123456789123Z").unwrap();
        assert_eq!(t.unix_nanos_part(), 123_456_789);
        assert_eq!(t.format(), "2015-01-02T18:10:50.123456789Z");
        let t = GoTime::parse("2015-01-02T18:10:50,5Z").unwrap();
        assert_eq!(t.format(), "2015-01-02T18:10:50.5Z");
        let t = GoTime::parse("2015-01-02T8:10:50+00:00").unwrap();
        assert_eq!(t.format(), "2015-01-02T08:10:50Z");
        let a = GoTime::parse("2015-01-02T18:10:50+02:00").unwrap();
        let b = GoTime::parse("2015-01-02T16:10:50Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.unix_secs(), 1_420_215_050);
        assert!(GoTime::parse("2015-01-02T16:10:51Z").unwrap() > a);
    }

    #[test]
    fn parse_rejects() {
        for s in [
            "",
            "2015-01-02",
            "2015-01-02T18:10:50",
            "2015-01-02 18:10:50Z",
            "2015-01-02t18:10:50Z",
            "2015-01-02T18:10:50z",
            "2015-13-02T18:10:50Z",
            "2015-02-29T18:10:50Z",
            "2015-01-02T24:10:50Z",
            "2015-01-02T18:60:50Z",
            "2015-01-02T18:10:60Z",
            "2015-01-02T18:10:50.Z",
            "2015-01-02T18:10:50+0200",
            "2015-01-02T18:10:50+25:00",
            "2015-01-02T18:10:50Zjunk",
            "-001-01-02T18:10:50Z",
            "2015-01-02T18:10:50+24:00",
        ] {
            assert!(GoTime::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn sub_minute_offsets_truncate() {
        let off = FixedOffset::east_opt(53 * 60 + 28).unwrap();
        let t = GoTime(off.with_ymd_and_hms(1890, 1, 1, 12, 0, 0).unwrap());
        assert_eq!(t.format(), "1890-01-01T12:00:00+00:53");
        let off = FixedOffset::west_opt(30).unwrap();
        let t = GoTime(off.with_ymd_and_hms(1890, 1, 1, 12, 0, 0).unwrap());
        assert_eq!(t.format(), "1890-01-01T12:00:00+00:00");
    }

    #[test]
    fn from_unix_uses_local_offset() {
        let t = GoTime::from_unix(1_420_215_050, 895_208_559);
        assert_eq!(t.unix_secs(), 1_420_215_050);
        assert_eq!(t.unix_nanos_part(), 895_208_559);
        let expect = chrono::Local
            .timestamp_opt(1_420_215_050, 0)
            .unwrap()
            .offset()
            .local_minus_utc();
        assert_eq!(t.offset_secs(), expect);
        assert_eq!(GoTime::from_unix(5, 2_500_000_000).unix_secs(), 7);
    }

    #[test]
    fn year_clamp() {
        let off = FixedOffset::east_opt(7200).unwrap();
        let t = GoTime(off.with_ymd_and_hms(12345, 6, 7, 8, 9, 10).unwrap());
        assert_eq!(t.clamp_year().format(), "9999-06-07T08:09:10+02:00");
        let t = GoTime(off.with_ymd_and_hms(-5, 6, 7, 8, 9, 10).unwrap());
        assert_eq!(t.format(), "-0005-06-07T08:09:10+02:00");
        assert_eq!(t.clamp_year().format(), "0000-06-07T08:09:10+02:00");
        // 10000 is a leap year, 9999 is not.
        let t = GoTime(
            Utc.with_ymd_and_hms(10000, 2, 29, 1, 2, 3)
                .unwrap()
                .fixed_offset(),
        );
        assert_eq!(t.clamp_year().format(), "9999-03-01T01:02:03Z");
        let t = GoTime::parse("2015-01-02T18:10:50.5+02:00").unwrap();
        assert_eq!(t.clamp_year().format(), t.format());
        // Far-out instants keep their month, day and time through the 400-year reduction.
        let big = GoTime::from_unix(i64::MAX, 0).clamp_year();
        assert!(big.format().starts_with("9999-"));
        let small = GoTime::from_unix(i64::MIN, 0).clamp_year();
        assert!(small.format().starts_with("0000-"));
        let secs_per_400y = CYCLE_SECS;
        let a = GoTime::from_unix(300_000_000_000, 7).clamp_year();
        let b = GoTime::from_unix(300_000_000_000 + 1000 * secs_per_400y, 7).clamp_year();
        assert_eq!(a.format(), b.format());
    }

    #[test]
    fn serde_as_string() {
        let t = GoTime::parse("2015-01-02T18:10:50.8952085+02:00").unwrap();
        let j = serde_json::to_string(&t).unwrap();
        assert_eq!(j, "\"2015-01-02T18:10:50.8952085+02:00\"");
        let back: GoTime = serde_json::from_str(&j).unwrap();
        assert_eq!(back.format(), t.format());
        let z: GoTime = serde_json::from_str("null").unwrap();
        assert!(z.is_zero());
        assert!(serde_json::from_str::<GoTime>("\"yesterday\"").is_err());
        assert!(serde_json::from_str::<GoTime>("5").is_err());
        let off = FixedOffset::east_opt(0).unwrap();
        let far = GoTime(off.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap());
        assert!(serde_json::to_string(&far).is_err());
    }
}
