//! `csjobs revenue-watch` (контроль выручки): today's revenue of each shop against its usual
//! profile, and registers gone silent while their shop is open; alerts kept in table `alert`
//! and sent by e-mail and/or webhook (shared/spec/monitoring.md).
//!
//! The flow: `read` (revenue per shop and day, shops, working hours, registers) → this module
//! judges (the profile and the verdict of each shop, the silent registers; pure functions of
//! what was read, the settings and `--now`) → `alerts` plans the life cycle against the open
//! alerts and builds one message → `deliver` sends it → `alerts` records what was sent.

pub mod alerts;
pub mod deliver;
pub mod job;
pub mod read;

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::{core::config::WatchSettings, status::hours::Opening};

/// The revenue of one shop on one day: up to the time of day of "now", and the whole day
/// (a day whose whole-day revenue is zero was a closed day, or has no data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRevenue {
    pub date: NaiveDate,
    pub upto: Decimal,
    pub whole_day: Decimal,
}

/// The same weekdays before `today` that the profile is made of: 7, 14, … `7 × weeks` days
/// back, nearest first.
pub fn same_weekdays_before(today: NaiveDate, weeks: u32) -> impl Iterator<Item = NaiveDate> {
    (1..=i64::from(weeks)).map(move |k| today - TimeDelta::days(7 * k))
}

/// The median of `v` (the mean of the two middle values for an even count); `None` when empty.
pub fn median(v: &[Decimal]) -> Option<Decimal> {
    let mut s = v.to_vec();
    s.sort();
    let n = s.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(s[n / 2]),
        _ => Some((s[n / 2 - 1] + s[n / 2]) / Decimal::TWO),
    }
}

/// The profile: the median, over the past same weekdays whose whole-day revenue is not zero,
/// of the revenue up to the same time of day; `None` with fewer than `min_weeks` such days.
pub fn profile(past: &[DayRevenue], min_weeks: u32) -> Option<Decimal> {
    let days: Vec<Decimal> = past.iter().filter(|d| !d.whole_day.is_zero()).map(|d| d.upto).collect();
    if days.len() < min_weeks as usize {
        return None;
    }
    median(&days)
}

/// What revenue-watch says of one shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Fewer than `watch.min_weeks` past days with revenue: no verdict.
    NoProfile,
    /// The profile is below `watch.min_profile`: too small to judge.
    SmallProfile,
    /// Closed now, or open for less than `watch.start_after` today.
    NotYet,
    /// Revenue as usual (deviation at most `watch.threshold`).
    Ok,
    /// `revenue_low`: deviation above `watch.threshold`.
    Low,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::NoProfile => "no_profile",
            Verdict::SmallProfile => "small_profile",
            Verdict::NotYet => "not_yet",
            Verdict::Ok => "ok",
            Verdict::Low => "low",
        }
    }
}

/// A shop judged.
#[derive(Debug, Clone, Serialize)]
pub struct ShopVerdict {
    pub shop: i32,
    pub name: String,
    pub city: Option<String>,
    pub address: Option<String>,
    /// Revenue so far today.
    pub today: Decimal,
    pub profile: Option<Decimal>,
    /// (profile − today) / profile, rounded to 4 places for display; the verdict uses the
    /// exact value.
    pub deviation: Option<Decimal>,
    pub verdict: Verdict,
    /// The past days the profile was made of (date, revenue up to now's time of day), closed
    /// days left out.
    pub days: Vec<(NaiveDate, Decimal)>,
}

impl ShopVerdict {
    /// Where the shop is, for people: `city, address` (either may be missing).
    pub fn place(&self) -> String {
        [self.city.as_deref(), self.address.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(", ")
    }
}

/// Whether the shop has been open longer than `span` today: open now (where it has working
/// hours), and open since a moment at least `span` before now, counting from today's
/// midnight at the earliest (revenue "today" starts then).
pub fn open_today_longer_than(opening: Opening, now: NaiveDateTime, span: TimeDelta) -> bool {
    let midnight = now.date().and_hms_opt(0, 0, 0).expect("midnight");
    let since = match opening {
        Opening::Closed => return false,
        Opening::Always => midnight,
        Opening::OpenSince(t) => t.max(midnight),
    };
    now - since > span
}

/// Judges one shop: `today` and `past` (the same weekdays before), its opening at `now`.
pub fn judge(
    today: Decimal,
    past: &[DayRevenue],
    opening: Opening,
    now: NaiveDateTime,
    w: &WatchSettings,
) -> (Option<Decimal>, Option<Decimal>, Verdict) {
    let Some(profile) = profile(past, w.min_weeks) else {
        return (None, None, Verdict::NoProfile);
    };
    let deviation = (!profile.is_zero()).then(|| (profile - today) / profile);
    let verdict = if profile < w.min_profile {
        Verdict::SmallProfile
    } else if !open_today_longer_than(opening, now, w.start_after.as_duration()) {
        Verdict::NotYet
    } else if deviation.is_some_and(|d| d > w.threshold) {
        Verdict::Low
    } else {
        Verdict::Ok
    };
    (Some(profile), deviation, verdict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::duration::Span;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }
    fn day(n: u32, upto: &str, whole: &str) -> DayRevenue {
        DayRevenue { date: NaiveDate::from_ymd_opt(2026, 11, n).unwrap(), upto: d(upto), whole_day: d(whole) }
    }
    fn settings() -> WatchSettings {
        WatchSettings {
            threshold: d("0.40"),
            weeks: 4,
            min_weeks: 2,
            min_profile: d("1000.00"),
            start_after: Span::hours(1),
            silent_after: Span::hours(1),
        }
    }
    fn noon() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 24).unwrap().and_hms_opt(12, 0, 0).unwrap()
    }

    #[test]
    fn the_median_of_an_odd_and_an_even_count() {
        assert_eq!(median(&[d("3"), d("1"), d("2")]), Some(d("2")));
        assert_eq!(median(&[d("4"), d("1"), d("3"), d("2")]), Some(d("2.5")));
        assert_eq!(median(&[d("100.01"), d("100.02")]), Some(d("100.015")));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn closed_days_are_left_out_and_too_few_give_no_profile() {
        let past = [day(17, "5000", "9000"), day(10, "0", "0"), day(3, "7000", "9500")];
        assert_eq!(profile(&past, 2), Some(d("6000")));
        assert_eq!(profile(&past, 3), None);
        // A day with sales but nothing yet by this time of day still counts.
        assert_eq!(profile(&[day(17, "0", "100"), day(10, "3000", "9000")], 2), Some(d("1500")));
    }

    #[test]
    fn the_verdict_at_the_threshold_and_just_above() {
        let past = [day(17, "10000", "20000"), day(10, "10000", "20000")];
        let w = settings();
        // deviation exactly 0.40: no alert.
        assert_eq!(judge(d("6000"), &past, Opening::Always, noon(), &w).2, Verdict::Ok);
        // just above.
        let (p, dev, v) = judge(d("5999.99"), &past, Opening::Always, noon(), &w);
        assert_eq!((p, v), (Some(d("10000")), Verdict::Low));
        assert!(dev.unwrap() > d("0.40"));
        // below min_profile: no alert however low.
        let small = [day(17, "900", "2000"), day(10, "900", "2000")];
        assert_eq!(judge(d("0"), &small, Opening::Always, noon(), &w).2, Verdict::SmallProfile);
        // no profile.
        assert_eq!(judge(d("0"), &past[..1], Opening::Always, noon(), &w).2, Verdict::NoProfile);
    }

    #[test]
    fn only_once_the_shop_has_been_open_longer_than_start_after() {
        let past = [day(17, "10000", "20000"), day(10, "10000", "20000")];
        let w = settings();
        let at = |h, m| NaiveDate::from_ymd_opt(2026, 11, 24).unwrap().and_hms_opt(h, m, 0).unwrap();
        let opened = Opening::OpenSince(at(11, 0));
        assert_eq!(judge(d("0"), &past, opened, at(12, 0), &w).2, Verdict::NotYet, "exactly start_after");
        assert_eq!(judge(d("0"), &past, opened, at(12, 1), &w).2, Verdict::Low);
        assert_eq!(judge(d("0"), &past, Opening::Closed, at(12, 1), &w).2, Verdict::NotYet, "after closing");
        // Open past midnight since yesterday 20:00: "today" starts at midnight.
        let night = Opening::OpenSince(at(23, 0) - TimeDelta::days(1));
        assert_eq!(judge(d("0"), &past, night, at(0, 59), &w).2, Verdict::NotYet);
        assert_eq!(judge(d("0"), &past, night, at(1, 1), &w).2, Verdict::Low);
        // Around the clock: from midnight too.
        assert_eq!(judge(d("0"), &past, Opening::Always, at(0, 30), &w).2, Verdict::NotYet);
    }
}
