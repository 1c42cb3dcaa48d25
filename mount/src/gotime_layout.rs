//! Times written with a Go layout (restic's `--time-template`): the layout is Go's reference
//! time, Mon Jan 2 15:04:05 MST 2006 (zone -0700), written the way the result should look.
//! Each recognised piece stands for one field; everything else is copied.

use chrono::{DateTime, Datelike, FixedOffset, Timelike};

/// One piece of a layout, as Go's time package recognises them.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Piece {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    Pm,
    PmLower,
    ZoneName,
    /// Offset: `Z` for UTC when `z`; with colons; with seconds; hours only.
    Offset {
        z: bool,
        colons: bool,
        seconds: bool,
        hours_only: bool,
    },
    /// Fraction of a second with this many digits; trailing zeros dropped when `trim`.
    Fraction {
        sep: u8,
        digits: usize,
        trim: bool,
    },
}

/// The piece at the start of `s`, and its length; Go's rules and precedence.
fn piece_at(s: &[u8]) -> Option<(Piece, usize)> {
    let has = |p: &str| s.starts_with(p.as_bytes());
    let offsets: [(&str, bool, bool, bool); 5] = [
        ("070000", false, true, false),
        ("07:00:00", true, true, false),
        ("0700", false, false, false),
        ("07:00", true, false, false),
        ("07", false, false, true),
    ];
    let found = match s.first()? {
        b'J' if has("January") => (Piece::LongMonth, 7),
        b'J' if has("Jan") => (Piece::Month, 3),
        b'M' if has("Monday") => (Piece::LongWeekDay, 6),
        b'M' if has("Mon") => (Piece::WeekDay, 3),
        b'M' if has("MST") => (Piece::ZoneName, 3),
        b'0' if has("002") => (Piece::ZeroYearDay, 3),
        b'0' if has("01") => (Piece::ZeroMonth, 2),
        b'0' if has("02") => (Piece::ZeroDay, 2),
        b'0' if has("03") => (Piece::ZeroHour12, 2),
        b'0' if has("04") => (Piece::ZeroMinute, 2),
        b'0' if has("05") => (Piece::ZeroSecond, 2),
        b'0' if has("06") => (Piece::Year, 2),
        b'1' if has("15") => (Piece::Hour, 2),
        b'1' => (Piece::NumMonth, 1),
        b'2' if has("2006") => (Piece::LongYear, 4),
        b'2' => (Piece::Day, 1),
        b'_' if has("__2") => (Piece::UnderYearDay, 3),
        // "_2006" is an underscore and a year.
        b'_' if has("_2") && !has("_2006") => (Piece::UnderDay, 2),
        b'3' => (Piece::Hour12, 1),
        b'4' => (Piece::Minute, 1),
        b'5' => (Piece::Second, 1),
        b'P' if has("PM") => (Piece::Pm, 2),
        b'p' if has("pm") => (Piece::PmLower, 2),
        c @ (b'-' | b'Z') => {
            let rest = &s[1..];
            let (text, colons, seconds, hours_only) = offsets
                .iter()
                .find(|(t, ..)| rest.starts_with(t.as_bytes()))?;
            let piece = Piece::Offset {
                z: *c == b'Z',
                colons: *colons,
                seconds: *seconds,
                hours_only: *hours_only,
            };
            (piece, 1 + text.len())
        }
        &sep @ (b'.' | b',') => {
            let digit = *s.get(1).filter(|d| **d == b'0' || **d == b'9')?;
            let run = s[1..].iter().take_while(|&&d| d == digit).count();
            // Only a run of 0s or 9s that no other digit follows.
            if s.get(1 + run).is_some_and(u8::is_ascii_digit) {
                return None;
            }
            let piece = Piece::Fraction {
                sep,
                digits: run,
                trim: digit == b'9',
            };
            (piece, 1 + run)
        }
        _ => return None,
    };
    Some(found)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

fn offset(out: &mut String, secs: i32, z: bool, colons: bool, seconds: bool, hours_only: bool) {
    if z && secs == 0 {
        out.push('Z');
        return;
    }
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
    out.push_str(&format!("{sign}{h:02}"));
    if hours_only {
        return;
    }
    let sep = if colons { ":" } else { "" };
    out.push_str(&format!("{sep}{m:02}"));
    if seconds {
        out.push_str(&format!("{sep}{s:02}"));
    }
}

/// `t` written as the Go layout `layout` asks.
pub fn format(t: &DateTime<FixedOffset>, layout: &str) -> String {
    let bytes = layout.as_bytes();
    let mut out = String::with_capacity(layout.len() + 8);
    let mut i = 0;
    // Copied text runs between pieces; kept as byte offsets so multi-byte text stays whole.
    let mut literal_from = 0;
    while i < bytes.len() {
        let Some((piece, len)) = piece_at(&bytes[i..]) else {
            i += 1;
            continue;
        };
        out.push_str(&layout[literal_from..i]);
        let hour12 = match t.hour() % 12 {
            0 => 12,
            h => h,
        };
        match piece {
            Piece::LongMonth => out.push_str(MONTHS[t.month0() as usize]),
            Piece::Month => out.push_str(&MONTHS[t.month0() as usize][..3]),
            Piece::NumMonth => out.push_str(&t.month().to_string()),
            Piece::ZeroMonth => out.push_str(&format!("{:02}", t.month())),
            Piece::LongWeekDay => out.push_str(DAYS[t.weekday().num_days_from_monday() as usize]),
            Piece::WeekDay => out.push_str(&DAYS[t.weekday().num_days_from_monday() as usize][..3]),
            Piece::Day => out.push_str(&t.day().to_string()),
            Piece::UnderDay => out.push_str(&format!("{:>2}", t.day())),
            Piece::ZeroDay => out.push_str(&format!("{:02}", t.day())),
            Piece::UnderYearDay => out.push_str(&format!("{:>3}", t.ordinal())),
            Piece::ZeroYearDay => out.push_str(&format!("{:03}", t.ordinal())),
            Piece::Hour => out.push_str(&format!("{:02}", t.hour())),
            Piece::Hour12 => out.push_str(&hour12.to_string()),
            Piece::ZeroHour12 => out.push_str(&format!("{hour12:02}")),
            Piece::Minute => out.push_str(&t.minute().to_string()),
            Piece::ZeroMinute => out.push_str(&format!("{:02}", t.minute())),
            Piece::Second => out.push_str(&t.second().to_string()),
            Piece::ZeroSecond => out.push_str(&format!("{:02}", t.second())),
            Piece::LongYear => out.push_str(&format!("{:04}", t.year())),
            Piece::Year => out.push_str(&format!("{:02}", t.year().rem_euclid(100))),
            Piece::Pm => out.push_str(if t.hour() >= 12 { "PM" } else { "AM" }),
            Piece::PmLower => out.push_str(if t.hour() >= 12 { "pm" } else { "am" }),
            Piece::ZoneName => {
                // A zone read from a snapshot has no name but its offset.
                let secs = t.offset().local_minus_utc();
                if secs == 0 {
                    out.push_str("UTC");
                } else {
                    offset(&mut out, secs, false, false, false, false);
                }
            }
            Piece::Offset {
                z,
                colons,
                seconds,
                hours_only,
            } => offset(
                &mut out,
                t.offset().local_minus_utc(),
                z,
                colons,
                seconds,
                hours_only,
            ),
            Piece::Fraction { sep, digits, trim } => {
                let nanos = format!("{:09}", t.nanosecond() % 1_000_000_000);
                let mut frac = &nanos[..digits.min(9)];
                if trim {
                    frac = frac.trim_end_matches('0');
                }
                if !frac.is_empty() || !trim {
                    out.push(sep as char);
                    out.push_str(frac);
                }
            }
        }
        i += len;
        literal_from = i;
    }
    out.push_str(&layout[literal_from..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    #[test]
    fn restic_default_and_common_layouts() {
        let utc = at("2026-03-04T05:06:07.120Z");
        let east = at("2026-12-24T17:08:09+01:30");
        let rfc = "2006-01-02T15:04:05Z07:00";
        assert_eq!(format(&utc, rfc), "2026-03-04T05:06:07Z");
        assert_eq!(format(&east, rfc), "2026-12-24T17:08:09+01:30");
        assert_eq!(format(&east, "2006/01/02/15-04"), "2026/12/24/17-08");
        assert_eq!(
            format(&east, "Mon Jan _2 3:4:5 PM 06"),
            "Thu Dec 24 5:8:9 PM 26"
        );
        assert_eq!(
            format(&utc, "Monday, January 2 pm"),
            "Wednesday, March 4 am"
        );
        assert_eq!(format(&utc, "002 __2 1"), "063  63 3");
        assert_eq!(
            format(&east, "-0700 -07 Z07:00:00 MST"),
            "+0130 +01 +01:30:00 +0130"
        );
        assert_eq!(format(&utc, "MST Z0700 -07:00"), "UTC Z +00:00");
        assert_eq!(format(&utc, "05.000 05.999 05,9"), "07.120 07.12 07,1");
        assert_eq!(format(&east, "05.999"), "09");
        // An underscore before a year, text that is no piece, and a '%' are copied.
        assert_eq!(format(&utc, "_2006 at x%é"), "_2026 at x%é");
        // A run of 0s another digit follows is no fraction.
        assert_eq!(format(&utc, ".0001"), ".0003");
    }
}
