//! restic's durations for `--keep-within*`: years, months, days and hours.

use std::fmt;

/// restic's `Duration`: years, months, days and hours, e.g. `1y2m3d4h`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeepDuration {
    pub years: i64,
    pub months: i64,
    pub days: i64,
    pub hours: i64,
}

/// Why a `--keep-within*` duration does not parse (restic's messages).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("no number found")]
    NoNumber,
    #[error("number {0} is too large")]
    TooLarge(String),
    #[error("no unit found after number {0}")]
    NoUnit(i64),
    #[error("invalid unit {0:?} found after number {1}")]
    BadUnit(char, i64),
}

impl KeepDuration {
    /// Parse `6y5m234d37h`: numbers (optionally negative) each followed by one unit of `y`,
    /// `m`, `d` or `h`, in any order; a later unit overrides an earlier one. Surrounding
    /// whitespace is ignored; the empty string is the zero duration.
    pub fn parse(s: &str) -> std::result::Result<KeepDuration, DurationError> {
        let mut d = KeepDuration::default();
        let mut rest = s.trim().as_bytes();
        while !rest.is_empty() {
            let negative = rest[0] == b'-';
            if negative {
                rest = &rest[1..];
            }
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 {
                return Err(DurationError::NoNumber);
            }
            let text = std::str::from_utf8(&rest[..digits]).expect("ASCII digits");
            let mut num: i64 = text
                .parse()
                .map_err(|_| DurationError::TooLarge(text.to_string()))?;
            if negative {
                num = -num;
            }
            rest = &rest[digits..];
            let Some(&unit) = rest.first() else {
                return Err(DurationError::NoUnit(num));
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
                    return Err(DurationError::BadUnit(shown, num));
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

#[cfg(test)]
mod tests {
    use super::*;

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
            KeepDuration::parse("5").unwrap_err().to_string(),
            "no unit found after number 5"
        );
        assert_eq!(
            KeepDuration::parse("d").unwrap_err().to_string(),
            "no number found"
        );
        assert_eq!(
            KeepDuration::parse("5w").unwrap_err().to_string(),
            "invalid unit 'w' found after number 5"
        );
        assert!(KeepDuration::parse("1d 2h").is_err());
        assert!(KeepDuration::parse("99999999999999999999d").is_err());
    }
}
