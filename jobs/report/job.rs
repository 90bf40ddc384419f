//! Entry point of `csjobs report`: gather the facts `status` sees (`monitoring::facts`) →
//! assess revenue as `revenue-watch` does (`monitoring::revenue`, without touching its alerts) → chart series → the page → written
//! whole to `--output` (a temporary name, fsync, rename: a web server never serves half a
//! page). Takes no lock and writes to no database.
//!
//! When the cash server DB cannot be read the page is still written with what needs no
//! database, and the run exits 1, as `status` does.

use std::path::PathBuf;

use anyhow::Context;
use chrono::NaiveDate;

use super::{
    page::{self, Page, ShopPanel},
    period::{self as period_page, PeriodPage, ShopPeriod},
    series,
};
use crate::{
    core::{
        config::Config,
        db::{self, Database},
        duration::Span,
        output,
        runlog::host_name,
        JobError, Outcome,
    },
    monitoring::{
        alert_rows::{live_alerts, AlertRow},
        collect, facts, period,
        revenue::{self, assess, read_facts, same_weekdays_before, Assessment, HourlyRevenue, RevenueFacts},
        LinkState, Register,
    },
};

/// The options of `csjobs report`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportOptions {
    /// Write the page to this file, whole (a temporary name beside it, then renamed into place)
    #[arg(long, value_name = "FILE.html")]
    pub output: PathBuf,
    /// Only this shop (shopcode; repeatable) [default: every shop]
    #[arg(long = "shop", value_name = "N")]
    pub shops: Vec<i32>,
    /// The period view from this day (YYYY-MM-DD, with --to; at most 92 days): per shop and
    /// day revenue, checks, that day's profile and the deviation, per register and day
    #[arg(long, value_name = "DATE", requires = "to")]
    pub from: Option<NaiveDate>,
    /// The last day of the period view (YYYY-MM-DD, inclusive; with --from)
    #[arg(long, value_name = "DATE", requires = "from")]
    pub to: Option<NaiveDate>,
}

/// Runs `csjobs report`. Exit codes as `status`: 0 all well, 3 problems or open alerts (shown
/// on the page), 1 the cash server DB cannot be read (the page is written with the rest), 2 a
/// bad option or setting.
pub async fn run(cfg: &Config, opts: &ReportOptions) -> Result<Outcome, JobError> {
    if let (Some(from), Some(to)) = (opts.from, opts.to) {
        return run_period(cfg, opts, from, to).await;
    }
    let only = (!opts.shops.is_empty()).then_some(opts.shops.as_slice());
    // What status sees and the revenue are read at once, on connections of their own.
    let (gathered, revenue) =
        tokio::join!(facts::gather(cfg, &opts.shops, Span::days(1)), read_revenue(cfg, only));
    let gathered = gathered?;
    let st = &gathered.status;
    let readable =
        matches!(st.cashserver().state, LinkState::Ok | LinkState::ReadOnly) && gathered.unreadable.is_none();
    let (facts, alerts, failure) = match (readable, revenue) {
        (true, Ok((facts, alerts))) => (Ok(facts), alerts, None),
        (true, Err(e)) => (Err(format!("{e}")), Vec::new(), Some(e)),
        (false, _) => {
            (Err("the cash server DB cannot be read (see the problems above)".to_string()), Vec::new(), None)
        }
    };
    let open_alerts = alerts.len() as u64;
    let assessment = facts.as_ref().map(|f| (f, assess(cfg, f, &st.registers)));
    let shops = assessment.as_ref().map(|(f, a)| panels(cfg, f, a, &st.registers)).map_err(|e| (*e).clone());
    let page = Page { status: st, shops, alerts, threshold: cfg.watch.threshold, host: host_name() };
    let html = page::html(&page);
    output::product_to(Some(&opts.output), html.as_bytes())
        .with_context(|| format!("cannot write the page to {}", opts.output.display()))?;
    tracing::info!(file = %opts.output.display(), bytes = html.len(), "report written");
    if let Some(e) = failure {
        return Err(e);
    }
    let mut outcome = facts::outcome(gathered, "the page")?;
    outcome.problems += open_alerts;
    Ok(outcome)
}

/// The revenue by hour as revenue-watch reads it, and the open alerts (only of `only`'s
/// shops).
async fn read_revenue(cfg: &Config, only: Option<&[i32]>) -> Result<(RevenueFacts, Vec<AlertRow>), JobError> {
    let url = cfg.cashserver_url()?;
    let client = db::connect(url, Database::CashServer, "csjobs report").await?;
    db::monitoring_session(&client).await?;
    let facts = read_facts(&client, cfg, only).await?;
    let live = live_alerts(&client).await.context("cannot read the alerts (table alert, cash server DB)")?;
    let open = live
        .into_iter()
        .filter(|x| x.resolved_at.is_none() && only.is_none_or(|s| s.contains(&x.shop)))
        .collect();
    Ok((facts, open))
}

/// Each shop's chart series and registers, in the order of the verdicts.
fn panels<'a>(
    cfg: &Config,
    facts: &'a RevenueFacts,
    a: &'a Assessment,
    registers: &'a [Register],
) -> Vec<ShopPanel<'a>> {
    let w = &cfg.watch;
    let wall = cfg.now.naive_local();
    let today = wall.date();
    let hourly = &facts.revenue;
    a.verdicts
        .iter()
        .map(|v| {
            let past: Vec<(NaiveDate, &HourlyRevenue)> = same_weekdays_before(today, w.weeks)
                .filter_map(|date| hourly.get(&(v.shop, date)).map(|h| (date, h)))
                .collect();
            ShopPanel {
                verdict: v,
                series: series(hourly.get(&(v.shop, today)), &past, wall.time(), w.min_weeks, w.threshold),
                registers: registers.iter().filter(|r| r.shop == v.shop).collect(),
            }
        })
        .collect()
}

/// `csjobs report --from --to`: the period view. Exit 0 when written, 1 when the cash server
/// DB cannot be read (nothing is written: a page of a period is history, not a live state), 2
/// a bad period or shop.
async fn run_period(
    cfg: &Config,
    opts: &ReportOptions,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Outcome, JobError> {
    period::check(from, to).map_err(JobError::Usage)?;
    let only = (!opts.shops.is_empty()).then_some(opts.shops.as_slice());
    let url = cfg.cashserver_url()?;
    let client = db::connect(url, Database::CashServer, "csjobs report").await?;
    db::monitoring_session(&client).await?;
    if let Some(shops) = only {
        collect::check_shops(&client, shops).await?;
    }
    let w = &cfg.watch;
    // The daily sums, the biggest read, on a connection of its own beside the rest: the
    // server works on both at once.
    let second = db::connect(url, Database::CashServer, "csjobs report").await?;
    db::monitoring_session(&second).await?;
    // Today's hourly revenue (for today's profile up to now) only when the period holds today.
    let today = cfg.now.naive_local().date();
    let (facts, daily, cashes) = tokio::try_join!(
        async {
            if from <= today && today <= to {
                return read_facts(&second, cfg, only).await;
            }
            let shops = revenue::shops(&second, only)
                .await
                .context("cannot read the shops (table shop, cash server DB)")
                .map_err(JobError::Failed)?;
            Ok(RevenueFacts { shops, hours: Default::default(), revenue: Default::default() })
        },
        async {
            period::read_daily(&client, cfg.now, from, to, w.weeks, only)
                .await
                .context("cannot read the revenue by day (table revenue_hour, cash server DB)")
                .map_err(JobError::Failed)
        },
        async {
            let only: Option<Vec<i32>> = only.map(<[i32]>::to_vec);
            second
                .query(
                    "select shopcode, cashcode, name from cash where $1::int[] is null or shopcode = any($1) order by 1, 2",
                    &[&only],
                )
                .await
                .context("cannot read the registers (table cash, cash server DB)")
                .map_err(JobError::Failed)
        }
    )?;
    let shops: Vec<ShopPeriod> = facts
        .shops
        .iter()
        .map(|s| {
            let today_past: Vec<_> =
                same_weekdays_before(today, w.weeks).map(|d| facts.day(s.shop, d)).collect();
            let mut registers: Vec<(i32, String)> = cashes
                .iter()
                .filter(|r| r.get::<_, i32>(0) == s.shop)
                .map(|r| (r.get(1), r.get(2)))
                .collect();
            // A register that sold in the period but has left table cash (or another shop's).
            for c in daily.cashes.get(&s.shop).into_iter().flatten() {
                if !registers.iter().any(|(x, _)| x == c) {
                    registers.push((*c, String::new()));
                }
            }
            registers.sort();
            ShopPeriod {
                shop: s,
                days: period::shop_days(&daily, s.shop, from, to, cfg.now.naive_local(), &today_past, w),
                registers,
            }
        })
        .collect();
    let page = PeriodPage {
        from,
        to,
        now: cfg.now,
        host: host_name(),
        threshold: w.threshold,
        shops,
        daily: &daily,
    };
    let html = period_page::html(&page);
    output::product_to(Some(&opts.output), html.as_bytes())
        .with_context(|| format!("cannot write the page to {}", opts.output.display()))?;
    let beyond: usize = page.shops.iter().map(|s| s.days.iter().filter(|d| d.beyond).count()).sum();
    tracing::info!(file = %opts.output.display(), bytes = html.len(), shops = page.shops.len(), beyond, "period report written");
    Ok(Outcome { rejected: 0, problems: 0 })
}
