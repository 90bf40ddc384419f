//! The period view (monitoring.md, "the period view"): per shop and day its revenue, checks,
//! the profile of that day (the rule of today's, computed for that day: the median of the
//! same weekdays before it, closed days left out) and the deviation, the days beyond
//! `watch.threshold` marked; per register and day its checks and revenue. Read from the sums
//! load-sales keeps (`revenue_hour`), never from the documents' items.

use std::collections::{BTreeSet, HashMap};

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use rust_decimal::Decimal;
use tokio_postgres::Client;

use super::{
    collect::today_sums,
    hours::Opening,
    revenue::{judge, same_weekdays_before, DayRevenue, Verdict},
    Moment,
};
use crate::core::config::WatchSettings;

/// The longest period a page shows, in days (both ends counted).
pub const MAX_DAYS: i64 = 92;

/// `--from` and `--to` checked: in order, at most [`MAX_DAYS`] days.
pub fn check(from: NaiveDate, to: NaiveDate) -> Result<(), String> {
    if to < from {
        return Err(format!("--to {to} is before --from {from}"));
    }
    // The profile of the first day looks back watch.weeks (at most 52) weeks.
    if from.checked_sub_signed(TimeDelta::weeks(53)).is_none() {
        return Err(format!("--from {from} is too early a date"));
    }
    let days = (to - from).num_days() + 1;
    if days > MAX_DAYS {
        return Err(format!("--from {from} --to {to} is {days} days; at most {MAX_DAYS} fit one page"));
    }
    Ok(())
}

/// What a register or a shop sold on a day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayFigures {
    pub checks: i64,
    pub revenue: Decimal,
}

impl DayFigures {
    fn add(&mut self, checks: i64, revenue: Decimal) {
        self.checks += checks;
        self.revenue += revenue;
    }
}

/// The sums of every day read, by shop and by (shop, register).
#[derive(Debug, Default)]
pub struct Daily {
    pub by_shop: HashMap<(i32, NaiveDate), DayFigures>,
    pub by_cash: HashMap<(i32, i32, NaiveDate), DayFigures>,
    /// The registers that sold something in the period, per shop.
    pub cashes: HashMap<i32, BTreeSet<i32>>,
}

/// Whole days before today from `revenue_hour`; `$1`, `$2` the first and last day, `$3` only
/// these shops or null. Summed per shift and day first, in the order of the primary key
/// (workshiftid, day, hour), without a hash table that would spill at the default work_mem;
/// then per register and day (a shift may run past midnight).
const WHOLE_DAYS: &str = "
select w.shopcode, w.cashcode, x.day, sum(x.checks)::bigint, sum(x.amount)
  from (select workshiftid, day, sum(checks) as checks, sum(amount) as amount
          from revenue_hour where day between $1 and $2 group by 1, 2) x
  join workshift w on w.workshiftid = x.workshiftid
 where $3::int[] is null or w.shopcode = any($3)
 group by 1, 2, 3";

/// The days a period page needs: `from − 7 × weeks` (the first day's profile) up to `to`,
/// today counted up to now and days after today left out.
pub async fn read_daily(
    client: &Client,
    now: Moment,
    from: NaiveDate,
    to: NaiveDate,
    weeks: u32,
    only: Option<&[i32]>,
) -> Result<Daily, tokio_postgres::Error> {
    let today = now.naive_local().date();
    let first = from - TimeDelta::days(7 * i64::from(weeks));
    let last_whole = to.min(today - TimeDelta::days(1));
    let only_v: Option<Vec<i32>> = only.map(<[i32]>::to_vec);
    let mut daily = Daily::default();
    let mut put = |shop: i32, cash: i32, day: NaiveDate, checks: i64, revenue: Decimal| {
        daily.by_shop.entry((shop, day)).or_default().add(checks, revenue);
        daily.by_cash.entry((shop, cash, day)).or_default().add(checks, revenue);
        if day >= from {
            daily.cashes.entry(shop).or_default().insert(cash);
        }
    };
    if first <= last_whole {
        for r in client.query(WHOLE_DAYS, &[&first, &last_whole, &only_v]).await? {
            put(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        }
    }
    if from <= today && today <= to {
        let t = today_sums(client, now, only).await?;
        for ((shop, cash), (checks, revenue)) in t.by_shop_cash {
            put(shop, cash, today, checks, revenue);
        }
    }
    Ok(daily)
}

/// One shop on one day of the period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopDay {
    pub date: NaiveDate,
    pub figures: DayFigures,
    /// `None` with fewer than `watch.min_weeks` past same weekdays with revenue.
    pub profile: Option<Decimal>,
    /// (profile − revenue) / profile.
    pub deviation: Option<Decimal>,
    /// What would raise `revenue_low` (`revenue::judge`): deviation beyond `watch.threshold`
    /// with a profile of at least `watch.min_profile`; a past day judged at its end, today at
    /// now (no opening hours: the period view has none).
    pub beyond: bool,
}

/// Shop `shop`'s days from `from` to `to` (after `today` left out). A past day is judged
/// whole against whole past days; `today_past`, today's profile days as revenue-watch reads
/// them (each up to now's time of day), judges today as the alert does.
pub fn shop_days(
    daily: &Daily,
    shop: i32,
    from: NaiveDate,
    to: NaiveDate,
    now: NaiveDateTime,
    today_past: &[DayRevenue],
    w: &WatchSettings,
) -> Vec<ShopDay> {
    let today = now.date();
    let whole = |d: NaiveDate| daily.by_shop.get(&(shop, d)).copied().unwrap_or_default();
    from.iter_days()
        .take_while(|d| *d <= to && *d <= today)
        .map(|date| {
            let figures = whole(date);
            let past: Vec<DayRevenue> = if date == today {
                today_past.to_vec()
            } else {
                same_weekdays_before(date, w.weeks)
                    .map(|p| {
                        let r = whole(p).revenue;
                        DayRevenue { date: p, upto: r, whole_day: r }
                    })
                    .collect()
            };
            // The alert's own rule: a past day judged at its end, today at now.
            let at = if date == today { now } else { date.and_hms_opt(23, 59, 59).expect("a time") };
            let (profile, deviation, verdict) = judge(figures.revenue, &past, Opening::Always, at, w);
            ShopDay {
                date,
                figures,
                profile: profile.map(|p| p.round_dp(2)),
                deviation: deviation.map(|d| d.round_dp(4)),
                beyond: verdict == Verdict::Low,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::duration::Span;
    use chrono::Datelike;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }
    fn day(m: u32, n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, n).unwrap()
    }
    fn noon(n: u32) -> NaiveDateTime {
        day(11, n).and_hms_opt(12, 0, 0).unwrap()
    }
    fn w() -> WatchSettings {
        WatchSettings {
            threshold: d("0.40"),
            weeks: 4,
            min_weeks: 2,
            min_profile: d("1000.00"),
            start_after: Span::hours(1),
            silent_after: Span::hours(1),
        }
    }

    #[test]
    fn a_period_is_in_order_and_at_most_92_days() {
        assert!(check(day(11, 1), day(11, 1)).is_ok());
        assert!(check(day(9, 1), day(12, 1)).is_ok(), "92 days");
        assert!(check(day(9, 1), day(12, 2)).unwrap_err().contains("93 days"));
        assert!(check(day(11, 2), day(11, 1)).unwrap_err().contains("before"));
        let first = NaiveDate::MIN + TimeDelta::days(10);
        assert!(check(first, first).unwrap_err().contains("too early"));
    }

    #[test]
    fn each_day_against_its_own_same_weekdays() {
        let mut daily = Daily::default();
        // Tuesdays 3, 10, 17 Nov: 10,000 each; 24 Nov: 5,000 (beyond 40 %), 25 Nov: nothing
        // on Wednesdays before: no profile.
        for (n, r) in [(3, "10000"), (10, "10000"), (17, "10000"), (24, "5000"), (25, "900")] {
            daily.by_shop.insert((8, day(11, n)), DayFigures { checks: 10, revenue: d(r) });
        }
        let all = shop_days(&daily, 8, day(11, 17), day(11, 30), noon(25), &[], &w());
        assert_eq!(all.len(), 9, "17 … 25 November: every day up to today, none after");
        assert_eq!(all[1].figures, DayFigures::default(), "a day without sales");
        let days: Vec<&ShopDay> = all.iter().filter(|x| [17, 24, 25].contains(&x.date.day())).collect();
        assert_eq!((days[0].profile, days[0].beyond), (Some(d("10000")), false));
        assert_eq!(
            (days[1].profile, days[1].deviation, days[1].beyond),
            (Some(d("10000")), Some(d("0.5")), true)
        );
        assert_eq!((days[2].profile, days[2].beyond), (None, false), "today without past days");
        // Exactly at the threshold is not beyond; a small profile is never marked.
        daily.by_shop.insert((8, day(11, 24)), DayFigures { checks: 1, revenue: d("6000") });
        assert!(!shop_days(&daily, 8, day(11, 24), day(11, 24), noon(25), &[], &w())[0].beyond);
        let mut small = w();
        small.min_profile = d("20000");
        daily.by_shop.insert((8, day(11, 24)), DayFigures { checks: 1, revenue: d("0") });
        assert!(!shop_days(&daily, 8, day(11, 24), day(11, 24), noon(25), &[], &small)[0].beyond);
    }
}
