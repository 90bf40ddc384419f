//! Revenue (выручка) as the monitoring jobs see it: per shop, day and hour (whole hours from
//! the sums load-sales keeps in `revenue_hour`, the hour of now from the documents), the
//! profile of a day (the median of the same weekdays before it), and a shop's verdict against
//! it with the alert conditions that hold now (monitoring.md, `revenue-watch`). `revenue-watch`
//! records and sends the conditions; `report` draws the same figures.

use std::collections::HashMap;

use anyhow::Context;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{json, Value};
use tokio_postgres::Client;

use super::{
    collect,
    hours::{Opening, ShopHours},
    time_text, Register,
};
use crate::core::{
    config::{Config, WatchSettings},
    JobError,
};

fn read_err(what: &str) -> String {
    format!("cannot read {what} (cash server DB)")
}

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

/// What holds now: an alert's key and what the message says of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// `revenue_low` or `register_silent`.
    pub kind: &'static str,
    pub shop: i32,
    pub cash: Option<i32>,
    pub details: Value,
}

impl Condition {
    pub fn key(&self) -> (&str, i32, Option<i32>) {
        (self.kind, self.shop, self.cash)
    }
}

/// A shop (магазин) as the messages name it.
#[derive(Debug, Clone)]
pub struct Shop {
    pub shop: i32,
    pub name: String,
    pub city: Option<String>,
    pub address: Option<String>,
}

pub async fn shops(client: &Client, only: Option<&[i32]>) -> Result<Vec<Shop>, tokio_postgres::Error> {
    let only: Option<Vec<i32>> = only.map(<[i32]>::to_vec);
    let rows = client
        .query(
            "select shopcode, name, city, address from shop where $1::int[] is null or shopcode = any($1) \
             order by city nulls last, address nulls last, shopcode",
            &[&only],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Shop { shop: r.get(0), name: r.get(1), city: r.get(2), address: r.get(3) })
        .collect())
}

/// The days revenue is read for: `today` and the `weeks` same weekdays before it.
fn days_of(today: NaiveDate, weeks: u32) -> Vec<NaiveDate> {
    std::iter::once(today).chain(same_weekdays_before(today, weeks)).collect()
}

/// Whole hours, from the sums the database keeps (`revenue_hour`, migration 0007): per shop,
/// day and hour. `$1` the days, `$2` only these shops or null.
const WHOLE_HOURS: &str = "
select w.shopcode, r.day, r.hour, sum(r.amount)
  from revenue_hour r
  join workshift w on w.workshiftid = r.workshiftid
 where r.day = any($1::date[]) and ($2::int[] is null or w.shopcode = any($2))
 group by 1, 2, 3";

/// The hour that holds now's time of day, up to it, read from the documents: one short
/// `time_end` range per day (`$3…`), OR-ed, through `document_time_end_idx`. `$1` the hour's
/// start, `$2` now's time of day, `$3…` the days; the last parameter: only these shops, or null.
fn current_hour_sql(days: usize) -> String {
    let ranges: Vec<String> = (3..days + 3)
        .map(|p| format!("(d.time_end >= ${p}::date + $1::time and d.time_end <= ${p}::date + $2::time)"))
        .collect();
    let only = days + 3;
    format!(
        "select w.shopcode, d.time_end::date, sum(case d.doctype when 'sale' then d.total else -d.total end) \
           from document d \
           join workshift w on w.workshiftid = d.workshiftid \
          where d.doctype in ('sale', 'return') and ({}) \
            and (${only}::int[] is null or w.shopcode = any(${only})) \
          group by 1, 2",
        ranges.join(" or ")
    )
}

/// The revenue of one shop on one day, by hour of the day (0‥23) and split at now's time of
/// day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HourlyRevenue {
    /// Up to now's time of day, by the hour the documents closed in.
    pub upto: [Decimal; 24],
    /// After now's time of day.
    pub after: [Decimal; 24],
}

impl HourlyRevenue {
    /// The day as revenue-watch judges it.
    pub fn day(&self, date: NaiveDate) -> DayRevenue {
        let upto: Decimal = self.upto.iter().sum();
        DayRevenue { date, upto, whole_day: upto + self.after.iter().sum::<Decimal>() }
    }

    /// Revenue of the hours before `hour` (0‥24), whole: the cumulative curve at `hour`:00.
    pub fn before_hour(&self, hour: usize) -> Decimal {
        self.upto[..hour].iter().chain(&self.after[..hour]).sum()
    }
}

/// Revenue (Σ sale − Σ return of the documents closed in it) per shop, day and hour of the
/// day, for `today` and the `weeks` same weekdays before it: whole hours from `revenue_hour`,
/// and the hour of now split at now's time of day from the documents (both queries at once).
/// A day a shop sold nothing on is absent.
pub async fn revenue_by_hour(
    client: &Client,
    today: NaiveDate,
    time_of_day: NaiveTime,
    weeks: u32,
    only: Option<&[i32]>,
) -> Result<HashMap<(i32, NaiveDate), HourlyRevenue>, tokio_postgres::Error> {
    use tokio_postgres::types::ToSql;
    let only: Option<Vec<i32>> = only.map(<[i32]>::to_vec);
    let days = days_of(today, weeks);
    let hour = time_of_day.hour() as usize;
    let hour_start = NaiveTime::from_hms_opt(time_of_day.hour(), 0, 0).expect("an hour");
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&hour_start, &time_of_day];
    params.extend(days.iter().map(|d| d as &(dyn ToSql + Sync)));
    params.push(&only);
    let current_sql = current_hour_sql(days.len());
    let whole_params: [&(dyn ToSql + Sync); 2] = [&days, &only];
    let (whole, current) =
        tokio::try_join!(client.query(WHOLE_HOURS, &whole_params), client.query(&current_sql, &params))?;
    let mut out: HashMap<(i32, NaiveDate), HourlyRevenue> = HashMap::new();
    for r in &whole {
        let h = r.get::<_, i16>(2).clamp(0, 23) as usize;
        let amount: Decimal = r.get(3);
        let e = out.entry((r.get(0), r.get(1))).or_default();
        if h < hour {
            e.upto[h] += amount;
        } else {
            e.after[h] += amount;
        }
    }
    // The hour of now: what was sold up to now moves from "after" to "up to".
    for r in &current {
        let amount: Decimal = r.get(2);
        let e = out.entry((r.get(0), r.get(1))).or_default();
        e.upto[hour] += amount;
        e.after[hour] -= amount;
    }
    out.retain(|_, h| h.upto.iter().chain(&h.after).any(|a| !a.is_zero()));
    Ok(out)
}

/// A ratio to 4 places, always written with 4 (0.5 → 0.5000).
fn ratio(d: Decimal) -> Decimal {
    let mut x = d.round_dp(4);
    x.rescale(4);
    x
}

/// A ratio as people read it: 0.4567 → `45.7%`.
pub fn percent(d: Decimal) -> String {
    format!("{}%", (d * Decimal::ONE_HUNDRED).round_dp(1))
}

/// What revenue-watch reads: the shops (only those asked for), their working hours, and
/// their revenue by day and hour (the verdict sums the hours; `report` draws them).
pub struct RevenueFacts {
    pub shops: Vec<Shop>,
    pub hours: HashMap<i32, ShopHours>,
    pub revenue: HashMap<(i32, NaiveDate), HourlyRevenue>,
}

impl RevenueFacts {
    /// A shop's revenue on a day (a day the query found nothing for had none).
    pub fn day(&self, shop: i32, date: NaiveDate) -> DayRevenue {
        self.revenue.get(&(shop, date)).map_or_else(|| HourlyRevenue::default().day(date), |h| h.day(date))
    }
}

/// What revenue-watch finds: every shop judged, and the alert conditions that hold now.
pub struct Assessment {
    pub verdicts: Vec<ShopVerdict>,
    pub conditions: Vec<Condition>,
}

/// The read stage of revenue-watch, shared with `report`. Runs on a connection of its own
/// beside the registers' read.
pub async fn read_facts(
    client: &Client,
    cfg: &Config,
    only: Option<&[i32]>,
) -> Result<RevenueFacts, JobError> {
    let wall = cfg.now.naive_local();
    let shops = shops(client, only).await.with_context(|| read_err("the shops"))?;
    let hours = collect::shop_hours(client, only).await.with_context(|| read_err("the working hours"))?;
    let revenue = revenue_by_hour(client, wall.date(), wall.time(), cfg.watch.weeks, only)
        .await
        .with_context(|| read_err("the revenue (tables revenue_hour, document)"))?;
    Ok(RevenueFacts { shops, hours, revenue })
}

/// The judge stage of revenue-watch, shared with `report`: each shop against its profile,
/// each of its `registers` (already judged by `status`) for silence. Pure: what was read,
/// the settings and `--now`.
pub fn assess(cfg: &Config, facts: &RevenueFacts, registers: &[Register]) -> Assessment {
    let now = cfg.now;
    let wall = now.naive_local();
    let today = wall.date();
    let w = &cfg.watch;
    let mut verdicts = Vec::new();
    let mut conditions = Vec::new();
    for s in &facts.shops {
        let opening = facts.hours.get(&s.shop).map_or(Opening::Always, |h| h.at(wall));
        let day = |date| facts.day(s.shop, date);
        let past: Vec<DayRevenue> = same_weekdays_before(today, w.weeks).map(day).collect();
        let today_rev = day(today).upto;
        let (profile, deviation, verdict) = judge(today_rev, &past, opening, wall, w);
        let regs: Vec<&Register> = registers.iter().filter(|r| r.shop == s.shop).collect();
        let register_list: Vec<serde_json::Value> = regs
            .iter()
            .map(|r| {
                json!({
                    "cash": r.cash, "cash_name": r.cash_name, "state": r.state.name(),
                    "last_contact": r.last_contact.as_ref().map(time_text),
                })
            })
            .collect();
        let base = json!({
            "shop": s.shop, "shop_name": s.name, "city": s.city, "address": s.address,
            "registers": register_list,
        });
        if verdict == Verdict::Low {
            let mut d = base.clone();
            d["today"] = json!(today_rev.to_string());
            d["profile"] = json!(profile.map(|p| p.round_dp(2).to_string()));
            d["deviation"] = json!(deviation.map(|x| ratio(x).to_string()));
            d["deviation_percent"] = json!(deviation.map(percent));
            conditions.push(Condition { kind: "revenue_low", shop: s.shop, cash: None, details: d });
        }
        // A register of an open shop gone quiet. One never heard from is status' `never`.
        if !w.silent_after.is_zero() && opening.open_longer_than(wall, w.start_after.as_duration()) {
            for r in
                regs.iter().filter(|r| r.last_contact.is_some_and(|t| now - t > w.silent_after.as_duration()))
            {
                let mut d = base.clone();
                d["cash_name"] = json!(r.cash_name);
                d["last_contact"] = json!(r.last_contact.as_ref().map(time_text));
                conditions.push(Condition {
                    kind: "register_silent",
                    shop: s.shop,
                    cash: Some(r.cash),
                    details: d,
                });
            }
        }
        verdicts.push(ShopVerdict {
            shop: s.shop,
            name: s.name.clone(),
            city: s.city.clone(),
            address: s.address.clone(),
            today: today_rev,
            profile: profile.map(|p| p.round_dp(2)),
            deviation: deviation.map(ratio),
            verdict,
            days: past.iter().filter(|d| !d.whole_day.is_zero()).map(|d| (d.date, d.upto)).collect(),
        });
    }
    Assessment { verdicts, conditions }
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
