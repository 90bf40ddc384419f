//! The alert life cycle (жизненный цикл оповещения), as Alertmanager has it: an alert is sent
//! once when it fires, again every `alerts.repeat_after` while it holds, and a "resolved"
//! notice once when it clears; everything due in a run goes out as one message.
//!
//! State lives in table `alert` only. A run (under the job lock) first records what holds now,
//! in one transaction: new alerts opened, details refreshed, cleared ones resolved. Then it
//! sends what is due — first messages never sent, repeats, resolved notices not yet sent — and
//! only after a delivery that worked does it mark them sent. A run that dies or fails between
//! sending and marking leaves them due: the next run sends them again. So a message is
//! delivered at least once and never lost, and the unique index on open alerts keeps one
//! open alert per (kind, shop, cash) whatever happens.

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{json, Value};
use tokio_postgres::{Client, GenericClient};

use crate::monitoring::{
    alert_rows::{describe, AlertRow},
    revenue::Condition,
};

/// What the run changes in `alert`.
#[derive(Debug, Default, PartialEq)]
pub struct AlertChanges {
    /// Conditions without an open alert: opened now.
    pub open: Vec<Condition>,
    /// Open alerts that still hold: their details refreshed.
    pub refresh: Vec<(i64, Value)>,
    /// Open alerts whose condition cleared: resolved now.
    pub resolve: Vec<i64>,
}

/// Plans the run against the alerts that are open (`live` may also hold resolved ones whose
/// notice is owed; those are left as they are).
pub fn plan(conditions: &[Condition], live: &[AlertRow]) -> AlertChanges {
    let open: Vec<&AlertRow> = live.iter().filter(|a| a.resolved_at.is_none()).collect();
    let mut p = AlertChanges::default();
    let holding: HashSet<(&str, i32, Option<i32>)> = conditions.iter().map(Condition::key).collect();
    for a in &open {
        if holding.contains(&(a.kind.as_str(), a.shop, a.cash)) {
            let c = conditions.iter().find(|c| c.key() == (a.kind.as_str(), a.shop, a.cash)).expect("held");
            p.refresh.push((a.alert_id, c.details.clone()));
        } else {
            p.resolve.push(a.alert_id);
        }
    }
    for c in conditions {
        if !open.iter().any(|a| (a.kind.as_str(), a.shop, a.cash) == c.key()) {
            p.open.push(c.clone());
        }
    }
    p
}

/// Why an alert is in this run's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Never sent yet (new, or its first delivery failed).
    New,
    /// Still holds, and was last sent `repeat_after` ago or more.
    Repeat,
    /// Cleared, and its "resolved" notice is not sent yet.
    Resolved,
}

impl Due {
    pub fn name(self) -> &'static str {
        match self {
            Due::New => "new",
            Due::Repeat => "repeat",
            Due::Resolved => "resolved",
        }
    }
}

/// What of `live` (after the plan was applied) goes into this run's message.
pub fn due(
    live: &[AlertRow],
    now: DateTime<FixedOffset>,
    repeat_after: chrono::TimeDelta,
) -> Vec<(Due, AlertRow)> {
    live.iter()
        .filter_map(|a| {
            let d = match (a.resolved_at, a.last_sent_at, a.resolved_sent_at) {
                (Some(_), _, None) => Due::Resolved,
                (Some(_), _, Some(_)) => return None,
                (None, None, _) => Due::New,
                (None, Some(sent), _) if now.with_timezone(&Utc) - sent >= repeat_after => Due::Repeat,
                (None, Some(_), _) => return None,
            };
            Some((d, a.clone()))
        })
        .collect()
}

/// Applies `plan` in one transaction, at `now`.
pub async fn apply(
    client: &mut Client,
    plan: &AlertChanges,
    now: DateTime<FixedOffset>,
) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    for c in &plan.open {
        tx.execute(
            "insert into alert (kind, shopcode, cashcode, opened_at, details) values ($1, $2, $3, $4, $5)",
            &[&c.kind, &c.shop, &c.cash, &now, &c.details],
        )
        .await?;
    }
    for (id, details) in &plan.refresh {
        tx.execute("update alert set details = $2 where alert_id = $1", &[id, details]).await?;
    }
    if !plan.resolve.is_empty() {
        tx.execute(
            "update alert set resolved_at = $2 where alert_id = any($1) and resolved_at is null",
            &[&plan.resolve, &now],
        )
        .await?;
    }
    tx.commit().await
}

/// Marks what a delivery that worked carried.
pub async fn mark_sent(
    client: &impl GenericClient,
    sent: &[(Due, AlertRow)],
    now: DateTime<FixedOffset>,
) -> Result<(), tokio_postgres::Error> {
    let (resolved, firing): (Vec<_>, Vec<_>) = sent.iter().partition(|(d, _)| *d == Due::Resolved);
    let ids = |v: &[&(Due, AlertRow)]| v.iter().map(|(_, a)| a.alert_id).collect::<Vec<i64>>();
    client
        .execute("update alert set last_sent_at = $2 where alert_id = any($1)", &[&ids(&firing), &now])
        .await?;
    client
        .execute(
            // A resolved notice also tells of an alert whose first notice never went out (its
            // run died before sending, and it cleared before the next): it is not owed twice.
            "update alert set resolved_sent_at = $2, last_sent_at = coalesce(last_sent_at, $2) \
             where alert_id = any($1)",
            &[&ids(&resolved), &now],
        )
        .await?;
    Ok(())
}

/// One message of a run, for people and for machines.
#[derive(Debug, Clone)]
pub struct Message {
    pub subject: String,
    pub text: String,
    /// Alertmanager's webhook payload, version 4.
    pub webhook: Value,
}

fn place(d: &Value) -> String {
    let parts: Vec<&str> = [d["city"].as_str(), d["address"].as_str()].into_iter().flatten().collect();
    let name = d["shop_name"].as_str().unwrap_or("");
    format!("shop {} {name} ({})", d["shop"], parts.join(", "))
}

/// A stable fingerprint of an alert's identity, as Alertmanager gives one.
fn fingerprint(a: &AlertRow) -> String {
    use sha2::{Digest, Sha256};
    let key = format!("{}/{}/{}", a.kind, a.shop, a.cash.map_or("-".into(), |c| c.to_string()));
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// The message of `due` items, grouped by shop: for each, what fired, held or cleared, the
/// revenue against its profile, every register with its last contact and state, and the
/// command to look closer.
/// The link to shop `shop`'s section of the report page served at `report_url`
/// (`report.url`): `<url>#shop-<N>`, any fragment of the setting replaced.
pub fn shop_link(report_url: &str, shop: i32) -> String {
    let base = report_url.split_once('#').map_or(report_url, |(b, _)| b);
    format!("{base}#shop-{shop}")
}

/// `report.url` checked: an absolute http(s) URL, else what is wrong with it (exit 2).
pub fn check_report_url(url: &str) -> Result<(), String> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(u) => Err(format!(
            "report.url (CSJOBS_REPORT_URL) must be an http:// or https:// URL, not {}:",
            u.scheme()
        )),
        Err(e) => Err(format!("report.url (CSJOBS_REPORT_URL) is not a URL: {e}")),
    }
}

/// The one message of a run: `due` grouped by shop, each shop linked to its section of the
/// report page when `report_url` is set.
pub fn message(
    due: &[(Due, AlertRow)],
    now: DateTime<FixedOffset>,
    host: &str,
    report_url: Option<&str>,
) -> Message {
    let mut shops: Vec<i32> = due.iter().map(|(_, a)| a.shop).collect();
    shops.sort();
    shops.dedup();
    let firing = due.iter().filter(|(d, _)| *d != Due::Resolved).count();
    let resolved = due.len() - firing;
    let subject = format!(
        "[csjobs] {}{}{} at {} shop{}",
        if firing > 0 {
            format!("{firing} alert{}", if firing == 1 { "" } else { "s" })
        } else {
            String::new()
        },
        if firing > 0 && resolved > 0 { ", " } else { "" },
        if resolved > 0 { format!("{resolved} resolved") } else { String::new() },
        shops.len(),
        if shops.len() == 1 { "" } else { "s" }
    );
    let mut text =
        format!("revenue-watch on {host} at {}\n\n", now.to_rfc3339_opts(chrono::SecondsFormat::Secs, false));
    for shop in &shops {
        let items: Vec<&(Due, AlertRow)> = due.iter().filter(|(_, a)| a.shop == *shop).collect();
        let d = &items[0].1.details;
        text.push_str(&format!("== {}\n", place(d)));
        for (due, a) in &items {
            let opened =
                a.opened_at.with_timezone(now.offset()).to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
            let what = describe(a);
            text.push_str(&format!("  [{}] {what} (since {opened})\n", due.name().to_uppercase()));
        }
        if let Some(regs) = d["registers"].as_array() {
            text.push_str("  registers:\n");
            for r in regs {
                text.push_str(&format!(
                    "    {:>5}  {:<20}  {:<9}  last file {}\n",
                    r["cash"],
                    r["cash_name"].as_str().unwrap_or(""),
                    r["state"].as_str().unwrap_or(""),
                    r["last_contact"].as_str().unwrap_or("never")
                ));
            }
        }
        if let Some(url) = report_url {
            text.push_str(&format!("  on the report page: {}\n", shop_link(url, *shop)));
        }
        text.push_str(&format!("  look closer: csjobs status --shop {shop}\n\n"));
    }
    let alerts: Vec<Value> = due
        .iter()
        .map(|(d, a)| {
            let mut labels = json!({ "alertname": a.kind, "shop": a.shop.to_string() });
            if let Some(c) = a.cash {
                labels["cash"] = json!(c.to_string());
            }
            json!({
                "status": if *d == Due::Resolved { "resolved" } else { "firing" },
                "labels": labels,
                "annotations": {
                    "summary": format!("{} at {}", a.kind, place(&a.details)),
                    "csjobs_due": d.name(),
                },
                "startsAt": a.opened_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "endsAt": a.resolved_at.map_or("0001-01-01T00:00:00Z".to_string(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                "generatorURL": report_url.map_or(String::new(), |u| shop_link(u, a.shop)),
                "fingerprint": fingerprint(a),
                "details": a.details,
            })
        })
        .collect();
    let webhook = json!({
        "version": "4",
        "groupKey": "{}:{alertname=~\"revenue_low|register_silent\"}",
        "truncatedAlerts": 0,
        "status": if firing > 0 { "firing" } else { "resolved" },
        "receiver": "csjobs",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "",
        "alerts": alerts,
    });
    Message { subject, text, webhook }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, kind: &str, shop: i32, cash: Option<i32>) -> AlertRow {
        AlertRow {
            alert_id: id,
            kind: kind.into(),
            shop,
            cash,
            opened_at: Utc::now(),
            last_sent_at: None,
            resolved_at: None,
            resolved_sent_at: None,
            details: json!({}),
        }
    }
    fn cond(kind: &'static str, shop: i32, cash: Option<i32>) -> Condition {
        Condition { kind, shop, cash, details: json!({"x": 1}) }
    }

    #[test]
    fn fire_hold_and_clear() {
        let live = vec![row(1, "revenue_low", 8, None), row(2, "register_silent", 8, Some(17))];
        let p = plan(&[cond("revenue_low", 8, None), cond("revenue_low", 9, None)], &live);
        assert_eq!(p.open, vec![cond("revenue_low", 9, None)]);
        assert_eq!(p.refresh, vec![(1, json!({"x": 1}))]);
        assert_eq!(p.resolve, vec![2]);
    }

    #[test]
    fn due_new_repeat_resolved() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-24T12:00:00+03:00").unwrap();
        let at = |h: i64| Some(now.with_timezone(&Utc) - chrono::TimeDelta::hours(h));
        let mut a = row(1, "revenue_low", 8, None);
        let mut b = row(2, "revenue_low", 9, None);
        b.last_sent_at = at(4);
        let mut c = row(3, "revenue_low", 10, None);
        c.last_sent_at = at(3);
        let mut d = row(4, "revenue_low", 11, None);
        (d.last_sent_at, d.resolved_at) = (at(1), at(0));
        let mut e = d.clone();
        e.resolved_sent_at = at(0);
        a.details = json!({});
        let due = due(&[a, b, c, d, e], now, chrono::TimeDelta::hours(4));
        let got: Vec<(i64, Due)> = due.iter().map(|(d, a)| (a.alert_id, *d)).collect();
        assert_eq!(got, vec![(1, Due::New), (2, Due::Repeat), (4, Due::Resolved)]);
    }
}
