//! Entry point of `csjobs revenue-watch`: check where alerts go → lock → read → judge each
//! shop and register → print the verdicts → record the alerts' life cycle → send what is due
//! as one message → mark it sent. It writes only its own table `alert` (no run log).

use std::io::IsTerminal;

use anyhow::Context;
use std::collections::HashMap;

use chrono::{NaiveDate, TimeDelta};
use rust_decimal::Decimal;
use serde_json::json;
use tokio_postgres::Client;

use super::{
    alerts::{self, Condition, Due},
    deliver::Delivery,
    judge,
    read::{self, AlertRow, HourlyRevenue},
    same_weekdays_before, DayRevenue, ShopVerdict, Verdict,
};
use crate::{
    core::{
        config::Config,
        db::{self, Database},
        lock, output,
        runlog::host_name,
        JobError, Outcome,
    },
    status::{self, collect, time_text, Register},
};

pub const JOB: &str = "revenue-watch";

/// `--format` of the verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WatchFormat {
    Table,
    Json,
}

/// The options of `csjobs revenue-watch`.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchOptions {
    /// Only this shop (shopcode; repeatable) [default: every shop]
    #[arg(long = "shop", value_name = "N")]
    pub shops: Vec<i32>,
    /// Print the verdicts and the message that would be sent (in JSON: its key would_send);
    /// send nothing, write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Format of the verdicts on stdout, json being one document [default: table on a
    /// terminal, json otherwise]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<WatchFormat>,
}

fn read_err(what: &str) -> String {
    format!("cannot read {what} (cash server DB)")
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

/// Runs `csjobs revenue-watch`.
pub async fn run(cfg: &Config, opts: &WatchOptions) -> Result<Outcome, JobError> {
    let delivery = if opts.dry_run {
        None
    } else {
        match Delivery::from_settings(&cfg.alerts) {
            Err(e) => return Err(JobError::Usage(e.to_string())),
            Ok(None) => {
                return Err(JobError::usage(
                    "revenue-watch has nowhere to send alerts: set alerts.smtp_url (with alerts.to) and/or \
                     alerts.webhook_url (CSJOBS_ALERTS_SMTP_URL, CSJOBS_ALERTS_TO, CSJOBS_ALERTS_WEBHOOK_URL), \
                     or look with --dry-run",
                ))
            }
            Ok(Some(d)) => Some(d),
        }
    };
    let url = cfg.cashserver_url()?;
    let _lock = match opts.dry_run {
        true => None,
        false => Some(lock::acquire(url, JOB).await?),
    };
    let mut client = db::connect(url, Database::CashServer, "csjobs revenue-watch").await?;
    db::jit_off(&client).await?;
    let only = (!opts.shops.is_empty()).then_some(opts.shops.as_slice());
    if let Some(shops) = only {
        collect::check_shops(&client, shops).await?;
    }

    let now = cfg.now;
    // The registers and the revenue are read at once, on two connections.
    let second = db::connect(url, Database::CashServer, "csjobs revenue-watch").await?;
    db::jit_off(&second).await?;
    let (registers, facts) = tokio::try_join!(
        async {
            collect::registers(&client, now, now - TimeDelta::days(1), only)
                .await
                .context("cannot read the registers (cash server DB)")
                .map_err(JobError::Failed)
        },
        read_facts(&second, cfg, only)
    )?;
    drop(second);
    let mut registers = registers;
    for r in &mut registers {
        r.state = status::judge(r, now, cfg.status.stale_after.as_duration());
    }
    let Assessment { verdicts, conditions } = assess(cfg, &facts, &registers);
    let format = opts.format.unwrap_or(if std::io::stdout().is_terminal() {
        WatchFormat::Table
    } else {
        WatchFormat::Json
    });

    let live = read::live_alerts(&client).await.with_context(|| read_err("the alerts (table alert)"))?;
    let plan = alerts::plan(&conditions, &live);
    let repeat_after = cfg.alerts.repeat_after.as_duration();
    let Some(delivery) = delivery else {
        // --dry-run: what would be due if the plan were applied, and its message, printed in
        // the one document (JSON) or after the table.
        let after = simulate(&live, &plan, now);
        let due = alerts::due(&after, now, repeat_after);
        let message = (!due.is_empty()).then(|| alerts::message(&due, now, &host_name()));
        print_verdicts(&verdicts, &conditions, format, Some(message.as_ref()));
        return Ok(Outcome { rejected: 0, problems: conditions.len() as u64 });
    };
    print_verdicts(&verdicts, &conditions, format, None);

    alerts::apply(&mut client, &plan, now).await.context("cannot record the alerts (table alert)")?;
    let live = read::live_alerts(&client).await.with_context(|| read_err("the alerts (table alert)"))?;
    let open = live.iter().filter(|a| a.resolved_at.is_none()).count() as u64;
    let due = alerts::due(&live, now, repeat_after);
    if !due.is_empty() {
        let m = alerts::message(&due, now, &host_name());
        let failed = delivery.send(&m);
        if !failed.is_empty() {
            return Err(JobError::Failed(anyhow::anyhow!(
                "the alert message could not be delivered ({}); {} alert notices stay owed and the next run \
                 sends them",
                failed.join("; "),
                due.len()
            )));
        }
        alerts::mark_sent(&client, &due, now).await.context("cannot mark the alerts sent (table alert)")?;
        let counts = |d: Due| due.iter().filter(|(x, _)| *x == d).count();
        tracing::info!(
            new = counts(Due::New),
            repeated = counts(Due::Repeat),
            resolved = counts(Due::Resolved),
            "alert message sent"
        );
    }
    Ok(Outcome { rejected: 0, problems: open })
}

/// What revenue-watch reads: the shops (only those asked for), their working hours, and
/// their revenue by day and hour (the verdict sums the hours; `report` draws them).
pub struct RevenueFacts {
    pub shops: Vec<read::Shop>,
    pub hours: HashMap<i32, status::hours::ShopHours>,
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
    let shops = read::shops(client, only).await.with_context(|| read_err("the shops"))?;
    let hours = collect::shop_hours(client, only).await.with_context(|| read_err("the working hours"))?;
    let revenue = read::revenue_by_hour(client, wall.date(), wall.time(), cfg.watch.weeks, only)
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
        let opening = facts.hours.get(&s.shop).map_or(status::hours::Opening::Always, |h| h.at(wall));
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

/// The live alerts as they would be once `plan` is applied (for --dry-run).
fn simulate(
    live: &[AlertRow],
    plan: &alerts::AlertChanges,
    now: chrono::DateTime<chrono::FixedOffset>,
) -> Vec<AlertRow> {
    let now_utc = now.with_timezone(&chrono::Utc);
    let mut after: Vec<AlertRow> = live
        .iter()
        .cloned()
        .map(|mut a| {
            if plan.resolve.contains(&a.alert_id) {
                a.resolved_at = Some(now_utc);
            }
            if let Some((_, d)) = plan.refresh.iter().find(|(id, _)| *id == a.alert_id) {
                a.details = d.clone();
            }
            a
        })
        .collect();
    after.extend(plan.open.iter().map(|c| AlertRow {
        alert_id: 0,
        kind: c.kind.to_string(),
        shop: c.shop,
        cash: c.cash,
        opened_at: now_utc,
        last_sent_at: None,
        resolved_at: None,
        resolved_sent_at: None,
        details: c.details.clone(),
    }));
    after
}

/// The verdicts on stdout: one JSON document, or the table. `would_send` is the dry run's
/// message (`Some(None)`: nothing would be sent; `None`: not a dry run): in JSON the key
/// `would_send` (`null`, or `{"subject", "text"}`), after the table as text.
fn print_verdicts(
    verdicts: &[ShopVerdict],
    conditions: &[Condition],
    format: WatchFormat,
    would_send: Option<Option<&alerts::Message>>,
) {
    match format {
        WatchFormat::Json => {
            let silent: Vec<serde_json::Value> = conditions
                .iter()
                .filter(|c| c.kind == "register_silent")
                .map(|c| json!({"shop": c.shop, "cash": c.cash, "last_contact": c.details["last_contact"]}))
                .collect();
            let mut doc =
                json!({"format": "csjobs-revenue-watch/1", "shops": verdicts, "silent_registers": silent});
            if let Some(m) = would_send {
                doc["would_send"] = json!(m.map(|m| json!({"subject": m.subject, "text": m.text})));
            }
            output::line(&serde_json::to_string_pretty(&doc).expect("serialisable"));
        }
        WatchFormat::Table => {
            let mut out = format!(
                "{:>6}  {:<28}  {:>12}  {:>12}  {:>9}  {}\n",
                "SHOP", "PLACE", "TODAY", "PROFILE", "DEVIATION", "VERDICT"
            );
            for v in verdicts {
                out.push_str(&format!(
                    "{:>6}  {:<28}  {:>12}  {:>12}  {:>9}  {}\n",
                    v.shop,
                    v.place().chars().take(28).collect::<String>(),
                    v.today.round_dp(2),
                    v.profile.map_or("-".into(), |p| p.to_string()),
                    v.deviation.map_or("-".into(), percent),
                    v.verdict.name()
                ));
            }
            for c in conditions.iter().filter(|c| c.kind == "register_silent") {
                out.push_str(&format!(
                    "register {} of shop {} silent since {}\n",
                    c.cash.unwrap_or(0),
                    c.shop,
                    c.details["last_contact"].as_str().unwrap_or("?")
                ));
            }
            match would_send {
                None => {}
                Some(None) => out.push_str("nothing to send\n"),
                Some(Some(m)) => out.push_str(&format!(
                    "--- the message that would be sent\nSubject: {}\n\n{}",
                    m.subject, m.text
                )),
            }
            output::say(&out);
        }
    }
}
