//! The read stage of revenue-watch (and of `report`'s charts): the shops, their revenue on
//! today and the same weekdays before (by hour, split at now's time of day), and the alerts
//! still open or owed.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
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
    (0..=i64::from(weeks)).map(|k| today - chrono::TimeDelta::days(7 * k)).collect()
}

/// The revenue query over `days.len()` days, `$3…` the days, `$1` now's time of day, `$2`
/// only these shops or null. One pass over `document`: one `time_end` range per day, OR-ed,
/// read through `document_time_end_idx` (a bitmap per day); per group and day two filtered
/// sums, up to now's time of day and the whole day, so that the groups stay few and are
/// hashed (grouping by day made PostgreSQL sort every document read).
///
/// `by_hour`: grouped by shop and hour of the day (the report's charts), the hour written as
/// `document_hour_stats` knows it so that the planner sees 24 hours, not one group per
/// document; else by shop alone.
fn revenue_sql(days: usize, by_hour: bool) -> String {
    let v = "case d.doctype when 'sale' then d.total else -d.total end";
    let mut sums = Vec::new();
    let mut ranges = Vec::new();
    for p in 3..days + 3 {
        let range = format!("d.time_end >= ${p}::date and d.time_end < ${p}::date + 1");
        sums.push(format!(
            "coalesce(sum({v}) filter (where {range} and d.time_end <= ${p}::date + $1::time), 0)"
        ));
        sums.push(format!("coalesce(sum({v}) filter (where {range}), 0)"));
        ranges.push(format!("({range})"));
    }
    let (key, group) = if by_hour {
        ("w.shopcode, extract(hour from d.time_end)", "1, 2")
    } else {
        ("w.shopcode, null::numeric", "1")
    };
    format!(
        "select {key}, {} \
           from document d \
           join workshift w on w.workshiftid = d.workshiftid \
          where d.doctype in ('sale', 'return') and ({}) \
            and ($2::int[] is null or w.shopcode = any($2)) \
          group by {group}",
        sums.join(", "),
        ranges.join(" or ")
    )
}

async fn query_revenue(
    client: &Client,
    today: NaiveDate,
    time_of_day: NaiveTime,
    weeks: u32,
    only: Option<&[i32]>,
    by_hour: bool,
) -> Result<(Vec<NaiveDate>, Vec<tokio_postgres::Row>), tokio_postgres::Error> {
    let only: Option<Vec<i32>> = only.map(<[i32]>::to_vec);
    let days = days_of(today, weeks);
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&time_of_day, &only];
    params.extend(days.iter().map(|d| d as &(dyn tokio_postgres::types::ToSql + Sync)));
    let rows = client.query(&revenue_sql(days.len(), by_hour), &params).await?;
    Ok((days, rows))
}

/// Revenue (Σ sale − Σ return of the documents closed that day) per shop and day, for
/// `today` and the `weeks` same weekdays before it: up to `time_of_day`, and the whole day.
/// A day a shop sold nothing on is absent.
pub async fn revenue(
    client: &Client,
    today: NaiveDate,
    time_of_day: NaiveTime,
    weeks: u32,
    only: Option<&[i32]>,
) -> Result<HashMap<(i32, NaiveDate), DayRevenue>, tokio_postgres::Error> {
    let (days, rows) = query_revenue(client, today, time_of_day, weeks, only, false).await?;
    let mut out = HashMap::new();
    for r in &rows {
        for (i, &date) in days.iter().enumerate() {
            let (upto, whole_day): (Decimal, Decimal) = (r.get(2 + 2 * i), r.get(3 + 2 * i));
            if !whole_day.is_zero() || !upto.is_zero() {
                out.insert((r.get(0), date), DayRevenue { date, upto, whole_day });
            }
        }
    }
    Ok(out)
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

/// [`revenue`] by hour of the day, for the report's charts (the same figures summed).
pub async fn revenue_by_hour(
    client: &Client,
    today: NaiveDate,
    time_of_day: NaiveTime,
    weeks: u32,
    only: Option<&[i32]>,
) -> Result<HashMap<(i32, NaiveDate), HourlyRevenue>, tokio_postgres::Error> {
    let (days, rows) = query_revenue(client, today, time_of_day, weeks, only, true).await?;
    let mut out: HashMap<(i32, NaiveDate), HourlyRevenue> = HashMap::new();
    for r in &rows {
        let hour: Decimal = r.get(1);
        let hour = hour.try_into().map_or(0usize, |h: u32| h.min(23) as usize);
        for (i, &date) in days.iter().enumerate() {
            let (upto, whole_day): (Decimal, Decimal) = (r.get(2 + 2 * i), r.get(3 + 2 * i));
            if whole_day.is_zero() && upto.is_zero() {
                continue;
            }
            let e = out.entry((r.get(0), date)).or_default();
            e.upto[hour] += upto;
            e.after[hour] += whole_day - upto;
        }
    }
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
