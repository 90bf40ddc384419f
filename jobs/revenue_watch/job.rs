//! Entry point of `csjobs revenue-watch`: check where alerts go → lock → read → judge each
//! shop and register → print the verdicts → record the alerts' life cycle → send what is due
//! as one message → mark it sent. It writes only its own table `alert` (no run log).

use std::io::IsTerminal;

use anyhow::Context;

use chrono::TimeDelta;
use serde_json::json;

use super::{
    alerts::{self, Due},
    deliver::Delivery,
};
use crate::{
    core::{
        config::Config,
        db::{self, Database},
        lock, output,
        runlog::host_name,
        table, JobError, Outcome,
    },
    monitoring::{
        self,
        alert_rows::{live_alerts, AlertRow},
        collect,
        revenue::{assess, percent, read_facts, Assessment, Condition, ShopVerdict},
    },
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

/// Runs `csjobs revenue-watch`.
pub async fn run(cfg: &Config, opts: &WatchOptions) -> Result<Outcome, JobError> {
    if let Some(url) = &cfg.report_url {
        alerts::check_report_url(url).map_err(JobError::Usage)?;
    }
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
    db::monitoring_session(&client).await?;
    let only = (!opts.shops.is_empty()).then_some(opts.shops.as_slice());
    if let Some(shops) = only {
        collect::check_shops(&client, shops).await?;
    }

    let now = cfg.now;
    // The registers and the revenue are read at once, on two connections.
    let second = db::connect(url, Database::CashServer, "csjobs revenue-watch").await?;
    db::monitoring_session(&second).await?;
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
        r.state = monitoring::judge(r, now, cfg.status.stale_after.as_duration());
    }
    let Assessment { verdicts, conditions } = assess(cfg, &facts, &registers);
    let format = opts.format.unwrap_or(if std::io::stdout().is_terminal() {
        WatchFormat::Table
    } else {
        WatchFormat::Json
    });

    let live = live_alerts(&client).await.with_context(|| read_err("the alerts (table alert)"))?;
    let plan = alerts::plan(&conditions, &live);
    let repeat_after = cfg.alerts.repeat_after.as_duration();
    let Some(delivery) = delivery else {
        // --dry-run: what would be due if the plan were applied, and its message, printed in
        // the one document (JSON) or after the table.
        let after = simulate(&live, &plan, now);
        let due = alerts::due(&after, now, repeat_after);
        let message =
            (!due.is_empty()).then(|| alerts::message(&due, now, &host_name(), cfg.report_url.as_deref()));
        print_verdicts(&verdicts, &conditions, format, Some(message.as_ref()));
        return Ok(Outcome { rejected: 0, problems: conditions.len() as u64 });
    };
    print_verdicts(&verdicts, &conditions, format, None);

    alerts::apply(&mut client, &plan, now).await.context("cannot record the alerts (table alert)")?;
    let live = live_alerts(&client).await.with_context(|| read_err("the alerts (table alert)"))?;
    let open = live.iter().filter(|a| a.resolved_at.is_none()).count() as u64;
    let due = alerts::due(&live, now, repeat_after);
    if !due.is_empty() {
        let m = alerts::message(&due, now, &host_name(), cfg.report_url.as_deref());
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
            let rows: Vec<Vec<String>> = verdicts
                .iter()
                .map(|v| {
                    vec![
                        v.shop.to_string(),
                        v.place(),
                        v.today.round_dp(2).to_string(),
                        v.profile.map_or("-".into(), |p| p.to_string()),
                        v.deviation.map_or("-".into(), percent),
                        v.verdict.name().to_string(),
                    ]
                })
                .collect();
            let mut out = table::render(
                0,
                &["SHOP", "PLACE", "TODAY", "PROFILE", "DEVIATION", "VERDICT"],
                &rows,
                &[0, 2, 3, 4],
                |_| None,
            );
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
