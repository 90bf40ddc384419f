//! The read stage of revenue-watch (and of `report`'s charts): the shops, their revenue on
//! today and the same weekdays before (by hour, split at now's time of day), and the alerts
//! still open or owed.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveTime, Timelike, Utc};
use rust_decimal::Decimal;
use tokio_postgres::Client;

use super::DayRevenue;

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
    std::iter::once(today).chain(super::same_weekdays_before(today, weeks)).collect()
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

/// An alert of table `alert`.
#[derive(Debug, Clone)]
pub struct AlertRow {
    pub alert_id: i64,
    pub kind: String,
    pub shop: i32,
    pub cash: Option<i32>,
    pub opened_at: DateTime<Utc>,
    pub last_sent_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_sent_at: Option<DateTime<Utc>>,
    pub details: serde_json::Value,
}

/// The alerts still open, and the resolved ones whose notice is owed.
pub async fn live_alerts(
    client: &impl tokio_postgres::GenericClient,
) -> Result<Vec<AlertRow>, tokio_postgres::Error> {
    let rows = client
        .query(
            "select alert_id, kind, shopcode, cashcode, opened_at, last_sent_at, resolved_at, resolved_sent_at, \
                    coalesce(details, '{}') \
               from alert where resolved_at is null or resolved_sent_at is null order by alert_id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| AlertRow {
            alert_id: r.get(0),
            kind: r.get(1),
            shop: r.get(2),
            cash: r.get(3),
            opened_at: r.get(4),
            last_sent_at: r.get(5),
            resolved_at: r.get(6),
            resolved_sent_at: r.get(7),
            details: r.get(8),
        })
        .collect())
}
