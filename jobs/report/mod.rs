//! `csjobs report` (сводная страница): everything `status` and `revenue-watch` know, as one
//! self-contained HTML page for a web server or a browser opened on the file
//! (shared/spec/monitoring.md, "`csjobs report`").
//!
//! The flow: `monitoring::facts::gather` (links, queues, jobs, registers) and
//! `monitoring::revenue::assess` (verdicts and the revenue by hour) read and judge → this module turns
//! the revenue into chart series (pure) → `chart` draws them as inline SVG → `page` lays out
//! the page → `job` writes it whole. Writes to no database and takes no lock.

pub mod chart;
pub mod job;
pub mod page;
pub mod period;

use chrono::{NaiveDate, NaiveTime, Timelike};
use rust_decimal::Decimal;

use crate::monitoring::revenue::{median, HourlyRevenue};

/// One point of a cumulative curve: minutes since midnight, revenue so far.
pub type Point = (u32, Decimal);

/// The curves of one shop's chart: today's cumulative revenue up to now, the profile over the
/// whole day (the median of the past same weekdays' cumulative revenue at each hour, and at
/// now's minute exactly as revenue-watch judges it), and the alert line, `1 − threshold` of
/// the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    pub today: Vec<Point>,
    pub profile: Vec<Point>,
    pub alert_line: Vec<Point>,
}

/// The chart series of one shop. `today` is its revenue today (`None`: nothing sold yet),
/// `past` the same weekdays before (closed days — no revenue all day — are left out, as in the
/// profile); with fewer than `min_weeks` days left there is no profile and no alert line.
pub fn series(
    today: Option<&HourlyRevenue>,
    past: &[(NaiveDate, &HourlyRevenue)],
    now: NaiveTime,
    min_weeks: u32,
    threshold: Decimal,
) -> Series {
    let now_minute = now.hour() * 60 + now.minute();
    let empty = HourlyRevenue::default();
    let today = today.unwrap_or(&empty);
    // Each whole hour before now, then now itself (the figure the verdict uses, also when now
    // falls on the hour: a sale at 12:00:00 counts at 12:00).
    let hours_before = |m: u32| (0..=24usize).filter(move |h| (*h as u32) * 60 < m);
    let mut today_points: Vec<Point> =
        hours_before(now_minute).map(|h| (h as u32 * 60, today.before_hour(h))).collect();
    today_points.push((now_minute, today.upto.iter().sum()));
    let days: Vec<&HourlyRevenue> =
        past.iter().filter(|(date, h)| !h.day(*date).whole_day.is_zero()).map(|(_, h)| *h).collect();
    if days.len() < min_weeks as usize || days.is_empty() {
        return Series { today: today_points, profile: Vec::new(), alert_line: Vec::new() };
    }
    let median_of = |f: &dyn Fn(&HourlyRevenue) -> Decimal| {
        median(&days.iter().map(|d| f(d)).collect::<Vec<_>>()).expect("days")
    };
    let mut profile: Vec<Point> =
        hours_before(now_minute).map(|h| (h as u32 * 60, median_of(&|d| d.before_hour(h)))).collect();
    profile.push((now_minute, median_of(&|d| d.upto.iter().sum())));
    profile.extend(
        (0..=24usize)
            .filter(|h| (*h as u32) * 60 > now_minute)
            .map(|h| (h as u32 * 60, median_of(&|d| d.before_hour(h)))),
    );
    let keep = Decimal::ONE - threshold;
    let alert_line = profile.iter().map(|&(m, v)| (m, v * keep)).collect();
    Series { today: today_points, profile, alert_line }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }
    /// A day selling `per_hour` in each of the hours given, all before now's time of day when
    /// `before` is true.
    fn day(hours: &[(usize, &str)], split: usize) -> HourlyRevenue {
        let mut h = HourlyRevenue::default();
        for &(hour, amount) in hours {
            if hour < split {
                h.upto[hour] += d(amount);
            } else {
                h.after[hour] += d(amount);
            }
        }
        h
    }
    fn date(n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, n).unwrap()
    }

    #[test]
    fn today_runs_to_now_and_the_profile_through_the_day() {
        let now = NaiveTime::from_hms_opt(10, 30, 0).unwrap();
        // Split at 10:30: hour 10 counts as "up to now" for sales before 10:30 only; these
        // fixtures put hour 10's sales after it.
        let today = day(&[(9, "100"), (10, "50")], 10);
        let a = day(&[(9, "200"), (10, "100"), (15, "700")], 10);
        let b = day(&[(9, "400"), (10, "100"), (15, "300")], 10);
        let closed = HourlyRevenue::default();
        let past = [(date(17), &a), (date(10), &closed), (date(3), &b)];
        let s = series(Some(&today), &past, now, 2, d("0.40"));
        // Today: 0:00 … 10:00, then 10:30 with what was sold up to now (hour 9 only).
        assert_eq!(s.today.len(), 12);
        assert_eq!(s.today[10], (600, d("100")));
        assert_eq!(s.today[11], (630, d("100")));
        // Profile: the median of 200 and 400 at 10:00, at 10:30 (hour 9 only) and at 16:00.
        assert_eq!(s.profile.len(), 26);
        assert_eq!(s.profile[10], (600, d("300")));
        assert_eq!(s.profile[11], (630, d("300")));
        assert_eq!(s.profile[12], (660, d("400")));
        assert_eq!(s.profile[25], (24 * 60, d("900")));
        assert_eq!(s.alert_line[25], (24 * 60, d("540.00")));
    }

    #[test]
    fn too_few_days_draw_no_profile() {
        let now = NaiveTime::from_hms_opt(12, 0, 0).unwrap();
        let a = day(&[(9, "200")], 12);
        let closed = HourlyRevenue::default();
        let s = series(None, &[(date(17), &a), (date(10), &closed)], now, 2, d("0.40"));
        assert!(s.profile.is_empty() && s.alert_line.is_empty());
        // On the hour: 0:00 … 11:00, then 12:00 itself.
        assert_eq!(s.today.len(), 13);
        assert_eq!(s.today[12].0, 720);
        assert!(s.today.iter().all(|(_, v)| v.is_zero()));
    }

    #[test]
    fn a_sale_on_the_hour_of_now_counts_at_now() {
        let now = NaiveTime::from_hms_opt(12, 0, 0).unwrap();
        let today = day(&[(9, "800"), (12, "800")], 13);
        let past_day = day(&[(9, "800"), (12, "800")], 13);
        let s = series(Some(&today), &[(date(17), &past_day), (date(10), &past_day)], now, 2, d("0.5"));
        assert_eq!(s.today.last(), Some(&(720, d("1600"))));
        // The profile at now (what the verdict compares with), then 13:00 onwards.
        let at = |m| s.profile.iter().find(|(x, _)| *x == m).unwrap().1;
        assert_eq!((at(660), at(720), at(780)), (d("800"), d("1600"), d("1600")));
        assert_eq!(s.profile.iter().filter(|(m, _)| *m == 720).count(), 1);
        assert_eq!(s.alert_line[12], (720, d("800.0")));
    }
}
