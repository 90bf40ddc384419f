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

/// Revenue (Σ sale − Σ return of the documents closed in it) per shop, day and hour, for
/// `today` and the `weeks` same weekdays before it; the hour that holds now's time of day is
/// split in two (up to it, and after), so the same rows give the revenue up to now's time of
/// day, the whole day and the chart by hour. One scan of the covering index
/// `document_revenue_idx` over those days only.
const REVENUE_BY_HOUR: &str = "
select w.shopcode, days.d, extract(hour from d.time_end)::int,
       d.time_end <= days.d + $2::time,
       sum(case d.doctype when 'sale' then d.total else -d.total end)
  from (select $1::date - 7 * k as d from generate_series(0, $3::int) k) days
  join document d on d.time_end >= days.d and d.time_end < days.d + 1
                 and d.doctype in ('sale', 'return')
  join workshift w on w.workshiftid = d.workshiftid
 where $4::int[] is null or w.shopcode = any($4)
 group by 1, 2, 3, 4";

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

pub async fn revenue_by_hour(
    client: &Client,
    today: NaiveDate,
    time_of_day: NaiveTime,
    weeks: u32,
    only: Option<&[i32]>,
) -> Result<HashMap<(i32, NaiveDate), HourlyRevenue>, tokio_postgres::Error> {
    let only: Option<Vec<i32>> = only.map(<[i32]>::to_vec);
    let rows = client.query(REVENUE_BY_HOUR, &[&today, &time_of_day, &(weeks as i32), &only]).await?;
    let mut out: HashMap<(i32, NaiveDate), HourlyRevenue> = HashMap::new();
    for r in &rows {
        let hour = r.get::<_, i32>(2).clamp(0, 23) as usize;
        let before_now: bool = r.get(3);
        let amount: Decimal = r.get(4);
        let e = out.entry((r.get(0), r.get(1))).or_default();
        if before_now {
            e.upto[hour] += amount;
        } else {
            e.after[hour] += amount;
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
