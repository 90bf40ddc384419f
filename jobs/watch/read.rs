//! The read stage of revenue-watch: the shops, their revenue on today and the same weekdays
//! before (up to now's time of day, and whole days), and the alerts still open or owed.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
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

/// Revenue (Σ sale − Σ return of documents closed that day) per shop and day, for `today`
/// and the `weeks` same weekdays before it: up to `time_of_day`, and the whole day.
const REVENUE: &str = "
select w.shopcode, days.d,
       coalesce(sum(case d.doctype when 'sale' then d.total else -d.total end)
                filter (where d.time_end <= days.d + $2::time), 0),
       coalesce(sum(case d.doctype when 'sale' then d.total else -d.total end), 0)
  from (select $1::date - 7 * k as d from generate_series(0, $3::int) k) days
  join document d on d.time_end >= days.d and d.time_end < days.d + 1
                 and d.doctype in ('sale', 'return')
  join workshift w on w.workshiftid = d.workshiftid
 where $4::int[] is null or w.shopcode = any($4)
 group by w.shopcode, days.d";

pub async fn revenue(
    client: &Client,
    today: NaiveDate,
    time_of_day: NaiveTime,
    weeks: u32,
    only: Option<&[i32]>,
) -> Result<HashMap<(i32, NaiveDate), DayRevenue>, tokio_postgres::Error> {
    let only: Option<Vec<i32>> = only.map(<[i32]>::to_vec);
    let rows = client.query(REVENUE, &[&today, &time_of_day, &(weeks as i32), &only]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let date: NaiveDate = r.get(1);
            ((r.get(0), date), DayRevenue { date, upto: r.get(2), whole_day: r.get(3) })
        })
        .collect())
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
