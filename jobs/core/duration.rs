//! Durations as the monitoring settings and options write them (shared/spec/monitoring.md,
//! "Time, durations, working hours"): a whole number and a unit, `30m`, `2h`, `1d`
//! (minutes, hours, days). Anything else is refused; the caller names the option or key.

use std::{fmt, str::FromStr};

/// A span of time of a setting or option, kept with the unit it was written in so that it
/// prints back the way the admin wrote it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    amount: u32,
    unit: Unit,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Unit {
    #[default]
    Minutes,
    Hours,
    Days,
}

impl Span {
    pub const fn minutes(n: u32) -> Span {
        Span { amount: n, unit: Unit::Minutes }
    }
    pub const fn hours(n: u32) -> Span {
        Span { amount: n, unit: Unit::Hours }
    }
    pub const fn days(n: u32) -> Span {
        Span { amount: n, unit: Unit::Days }
    }

    pub fn as_duration(self) -> chrono::TimeDelta {
        let n = i64::from(self.amount);
        match self.unit {
            Unit::Minutes => chrono::TimeDelta::minutes(n),
            Unit::Hours => chrono::TimeDelta::hours(n),
            Unit::Days => chrono::TimeDelta::days(n),
        }
    }

    pub fn is_zero(self) -> bool {
        self.amount == 0
    }
}

/// What a duration must look like, for messages.
pub const EXPECTED: &str = "a whole number and a unit: 30m, 2h or 1d (minutes, hours, days)";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a duration: expected {EXPECTED}")]
pub struct BadSpan(pub String);

impl FromStr for Span {
    type Err = BadSpan;

    fn from_str(s: &str) -> Result<Span, BadSpan> {
        let bad = || BadSpan(s.to_string());
        let t = s.trim();
        let split = t.len().checked_sub(1).filter(|&i| t.is_char_boundary(i)).ok_or_else(bad)?;
        let (digits, unit) = t.split_at(split);
        let unit = match unit {
            "m" => Unit::Minutes,
            "h" => Unit::Hours,
            "d" => Unit::Days,
            _ => return Err(bad()),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let amount: u32 = digits.parse().map_err(|_| bad())?;
        // 100 years is far beyond any sensible setting and keeps every sum of times in range.
        if i64::from(amount) * Span::unit_minutes(unit) > 100 * 366 * 24 * 60 {
            return Err(bad());
        }
        Ok(Span { amount, unit })
    }
}

impl Span {
    fn unit_minutes(unit: Unit) -> i64 {
        match unit {
            Unit::Minutes => 1,
            Unit::Hours => 60,
            Unit::Days => 24 * 60,
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = match self.unit {
            Unit::Minutes => "m",
            Unit::Hours => "h",
            Unit::Days => "d",
        };
        write!(f, "{}{u}", self.amount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_units_and_nothing_else() {
        assert_eq!("30m".parse::<Span>().unwrap().as_duration(), chrono::TimeDelta::minutes(30));
        assert_eq!("2h".parse::<Span>().unwrap().as_duration(), chrono::TimeDelta::hours(2));
        assert_eq!("1d".parse::<Span>().unwrap().as_duration(), chrono::TimeDelta::days(1));
        assert_eq!("0m".parse::<Span>().unwrap().as_duration(), chrono::TimeDelta::zero());
        for bad in ["", "m", "2", "2s", "1w", "-1h", "+1h", "1.5h", "1 h", "h1", "2H", "1д", "99999999d"] {
            assert!(bad.parse::<Span>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn prints_back_as_written() {
        for s in ["15m", "2h", "1d", "90m"] {
            assert_eq!(s.parse::<Span>().unwrap().to_string(), s);
        }
    }
}
