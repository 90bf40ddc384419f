//! Working hours of a shop (часы работы магазина, table `shop_hours`): is the shop open at a
//! wall-clock moment, and since when without a break. Pure: the rows are read elsewhere.
//!
//! The rules (shared/spec/monitoring.md): one row per open ISO weekday; `closes` ≤ `opens`
//! means open past midnight (into the next day); no row for a weekday: closed that day; no
//! row at all: open around the clock. Intervals that touch or overlap (Monday 08:00–00:00
//! and Tuesday 00:00–22:00) are one stretch of opening, so "open since" looks back across them.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};

/// The ISO weekdays as people read them, Monday first.
pub const WEEKDAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// The working hours of one shop.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShopHours {
    /// Index 0 = Monday … 6 = Sunday: (opens, closes), or closed that weekday.
    days: [Option<(NaiveTime, NaiveTime)>; 7],
    /// True once any row was given: a shop without rows is open around the clock.
    any: bool,
}

/// Whether a shop is open at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    Closed,
    /// Open without a break since this wall-clock moment.
    OpenSince(NaiveDateTime),
    /// Open around the clock: no working hours are set, or every day runs into the next.
    Always,
}

impl Opening {
    pub fn is_open(self) -> bool {
        !matches!(self, Opening::Closed)
    }

    /// Open now, and for longer than `span` (strictly).
    pub fn open_longer_than(self, now: NaiveDateTime, span: TimeDelta) -> bool {
        match self {
            Opening::Closed => false,
            Opening::Always => true,
            Opening::OpenSince(t) => now - t > span,
        }
    }
}

impl ShopHours {
    /// A shop without rows: open around the clock.
    pub fn around_the_clock() -> ShopHours {
        ShopHours::default()
    }

    /// Adds the row of ISO weekday `weekday` (1 = Monday … 7 = Sunday). A weekday outside
    /// 1..7 cannot be stored (the table checks it) and is ignored.
    pub fn set(&mut self, weekday: i16, opens: NaiveTime, closes: NaiveTime) {
        if let Some(slot) = usize::try_from(weekday - 1).ok().and_then(|i| self.days.get_mut(i)) {
            *slot = Some((opens, closes));
            self.any = true;
        }
    }

    /// The rows, Monday first: (ISO weekday, opens, closes). Empty: open around the clock.
    pub fn rows(&self) -> Vec<(u8, NaiveTime, NaiveTime)> {
        (1u8..)
            .zip(self.days)
            .filter_map(|(weekday, day)| day.map(|(opens, closes)| (weekday, opens, closes)))
            .collect()
    }

    /// The hours as people write them: consecutive weekdays with the same hours joined
    /// (`Mon–Fri 09:00–21:00, Sat 10:00–18:00`), closed days left out; `around the clock`
    /// without rows, `closed every day` when no weekday is open.
    pub fn text(&self) -> String {
        if !self.any {
            return "around the clock".into();
        }
        let mut parts = Vec::new();
        let mut i = 0;
        while i < 7 {
            let Some((opens, closes)) = self.days[i] else {
                i += 1;
                continue;
            };
            let mut j = i;
            while j + 1 < 7 && self.days[j + 1] == self.days[i] {
                j += 1;
            }
            let days = if i == j {
                WEEKDAY_NAMES[i].to_string()
            } else {
                format!("{}–{}", WEEKDAY_NAMES[i], WEEKDAY_NAMES[j])
            };
            parts.push(format!("{days} {}–{}", opens.format("%H:%M"), closes.format("%H:%M")));
            i = j + 1;
        }
        if parts.is_empty() {
            "closed every day".into()
        } else {
            parts.join(", ")
        }
    }

    /// The interval the shop is open that starts on `day`, if it opens that day.
    fn interval(&self, day: NaiveDate) -> Option<(NaiveDateTime, NaiveDateTime)> {
        let (opens, closes) = self.days[day.weekday().num_days_from_monday() as usize]?;
        let start = day.and_time(opens);
        let end =
            if closes <= opens { (day + TimeDelta::days(1)).and_time(closes) } else { day.and_time(closes) };
        Some((start, end))
    }

    /// Open or closed at the wall-clock moment `now`, and since when.
    pub fn at(&self, now: NaiveDateTime) -> Opening {
        if !self.any {
            return Opening::Always;
        }
        let today = now.date();
        let yesterday = today - TimeDelta::days(1);
        // Of the intervals holding `now` (yesterday's may run past midnight), the earliest start.
        let Some(mut since) = [yesterday, today]
            .into_iter()
            .filter_map(|d| self.interval(d))
            .filter(|&(start, end)| start <= now && now < end)
            .map(|(start, _)| start)
            .min()
        else {
            return Opening::Closed;
        };
        // Walk back over the intervals of earlier days that reach the start found so far.
        // A week of them without a gap is a shop that never closes.
        let mut day = since.date();
        for _ in 0..8 {
            day -= TimeDelta::days(1);
            match self.interval(day) {
                Some((start, end)) if end >= since => since = since.min(start),
                _ => return Opening::OpenSince(since),
            }
        }
        Opening::Always
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }
    /// 2026-11-23 is a Monday.
    fn at(day: u32, h: u32, m: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, day).unwrap().and_time(t(h, m))
    }

    #[test]
    fn no_rows_is_open_around_the_clock() {
        assert_eq!(ShopHours::around_the_clock().at(at(24, 3, 0)), Opening::Always);
    }

    #[test]
    fn a_day_shop_opens_at_opens_and_closes_at_closes() {
        let mut h = ShopHours::default();
        h.set(1, t(9, 0), t(21, 0)); // Monday only
        assert_eq!(h.at(at(23, 8, 59)), Opening::Closed);
        assert_eq!(h.at(at(23, 9, 0)), Opening::OpenSince(at(23, 9, 0)));
        assert_eq!(h.at(at(23, 20, 59)), Opening::OpenSince(at(23, 9, 0)));
        assert_eq!(h.at(at(23, 21, 0)), Opening::Closed);
        // Tuesday has no row: closed all day.
        assert_eq!(h.at(at(24, 12, 0)), Opening::Closed);
    }

    #[test]
    fn hours_past_midnight_belong_to_the_day_they_open() {
        let mut h = ShopHours::default();
        h.set(5, t(20, 0), t(2, 0)); // Friday 20:00 → Saturday 02:00
        assert_eq!(h.at(at(27, 23, 0)), Opening::OpenSince(at(27, 20, 0)));
        assert_eq!(h.at(at(28, 1, 59)), Opening::OpenSince(at(27, 20, 0)));
        assert_eq!(h.at(at(28, 2, 0)), Opening::Closed);
        // Saturday itself has no row.
        assert_eq!(h.at(at(28, 20, 30)), Opening::Closed);
    }

    #[test]
    fn touching_intervals_are_one_opening() {
        let mut h = ShopHours::default();
        h.set(1, t(8, 0), t(0, 0)); // Monday 08:00 → Tuesday 00:00
        h.set(2, t(0, 0), t(22, 0)); // Tuesday 00:00 → 22:00
        assert_eq!(h.at(at(24, 3, 0)), Opening::OpenSince(at(23, 8, 0)));
        let span = TimeDelta::hours(2);
        assert!(h.at(at(24, 0, 30)).open_longer_than(at(24, 0, 30), span));
    }

    #[test]
    fn every_day_into_the_next_is_always_open() {
        let mut h = ShopHours::default();
        for d in 1..=7 {
            h.set(d, t(0, 0), t(0, 0)); // 24 hours each, end to end
        }
        assert_eq!(h.at(at(25, 12, 0)), Opening::Always);
    }

    #[test]
    fn open_longer_than_is_strict() {
        let mut h = ShopHours::default();
        h.set(2, t(9, 0), t(21, 0));
        let span = TimeDelta::hours(2);
        assert!(!h.at(at(24, 11, 0)).open_longer_than(at(24, 11, 0), span));
        assert!(h.at(at(24, 11, 1)).open_longer_than(at(24, 11, 1), span));
        assert!(!Opening::Closed.open_longer_than(at(24, 11, 1), span));
    }

    #[test]
    fn hours_read_as_people_write_them() {
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        assert_eq!(ShopHours::around_the_clock().text(), "around the clock");
        let mut h = ShopHours::default();
        for d in 1..=7 {
            h.set(d, t(9, 0), t(21, 30));
        }
        assert_eq!(h.text(), "Mon–Sun 09:00–21:30");
        h.set(6, t(10, 0), t(18, 0));
        h.set(7, t(10, 0), t(18, 0));
        assert_eq!(h.text(), "Mon–Fri 09:00–21:30, Sat–Sun 10:00–18:00");
        let mut g = ShopHours::default();
        g.set(3, t(20, 0), t(2, 0));
        assert_eq!(g.text(), "Wed 20:00–02:00");
        assert_eq!(g.rows(), vec![(3, t(20, 0), t(2, 0))]);
    }
}
