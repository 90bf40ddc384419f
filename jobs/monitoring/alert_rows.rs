//! The table `alert` as the pages read it (revenue-watch keeps it, `report` shows it): the
//! alerts still open or whose resolved notice is owed, and each alert in a sentence.

use chrono::{DateTime, Utc};
use serde_json::Value;

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

fn money(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
}

/// One alert in a sentence: what is wrong, with its figures.
pub fn describe(a: &AlertRow) -> String {
    match (a.kind.as_str(), a.cash) {
        ("revenue_low", _) => format!(
            "revenue low: today {} against a usual {} by this time, {} below",
            money(&a.details["today"]),
            money(&a.details["profile"]),
            a.details["deviation_percent"].as_str().unwrap_or("?")
        ),
        (_, Some(cash)) => format!(
            "register {cash} \"{}\" silent: last file {}",
            a.details["cash_name"].as_str().unwrap_or(""),
            a.details["last_contact"].as_str().unwrap_or("never")
        ),
        (kind, None) => kind.to_string(),
    }
}
