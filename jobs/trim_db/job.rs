//! The `trim-db` job: plan, then delete whole shifts in short batches, then trim the
//! bookkeeping tables; prints the breakdown per shop and month.

use std::fmt::Write;

use anyhow::Context;
use chrono::TimeDelta;

use super::{Cutoff, TrimPlan};
use crate::core::prelude::*;

pub const JOB: &str = "trim-db";

/// The options of `csjobs trim-db` (its `--help` is these doc comments).
#[derive(Debug, Clone, clap::Args)]
pub struct TrimOptions {
    /// Keep this many days of sales [default: trim.keep_days / CSJOBS_TRIM_KEEP_DAYS, 180]
    #[arg(long, value_name = "N")]
    pub keep_days: Option<u32>,
    /// Print what would be deleted, per shop and month, and what is kept and why; delete nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Shifts deleted per transaction (smaller: shorter transactions)
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub batch_size: u32,
    /// Also delete closed shifts never exported to ASTU
    #[arg(long)]
    pub include_unexported: bool,
}

pub fn render(plan: &TrimPlan, keep_days: u32, c: Cutoff, dry_run: bool, deleted: Option<u64>) -> String {
    let mut s = String::new();
    let verb = if dry_run { "would delete" } else { "deleted" };
    let _ = writeln!(
        s,
        "trim-db{}: keep {keep_days} days (shifts older than {})",
        if dry_run { " --dry-run" } else { "" },
        c.before
    );
    let _ = writeln!(s, "  {verb}, per shop and month:");
    let _ = writeln!(s, "  {:>6} {:>8} {:>8} {:>10} {:>10}", "shop", "month", "shifts", "documents", "items");
    for l in &plan.lines {
        let _ =
            writeln!(s, "  {:>6} {:>8} {:>8} {:>10} {:>10}", l.shop, l.month, l.shifts, l.documents, l.items);
    }
    let planned: i64 = plan.lines.iter().map(|l| l.shifts).sum();
    let _ = writeln!(s, "  total shifts {verb}: {}", deleted.map(|d| d as i64).unwrap_or(planned));
    let _ = writeln!(
        s,
        "  kept: {} closed shifts never exported to ASTU (export them, or --include-unexported)",
        plan.kept_unexported
    );
    let ids: Vec<String> = plan.kept_no_dates.iter().take(20).map(|i| i.to_string()).collect();
    let _ = writeln!(
        s,
        "  kept: {} shifts without open and close time (never trimmed automatically){}{}",
        plan.kept_no_dates.len(),
        if ids.is_empty() { String::new() } else { format!(": workshiftid {}", ids.join(", ")) },
        if plan.kept_no_dates.len() > 20 { ", …" } else { "" }
    );
    s
}

pub async fn run(cfg: &Config, opts: &TrimOptions) -> Result<Outcome, JobError> {
    if opts.batch_size == 0 {
        return Err(JobError::usage("--batch-size must be at least 1"));
    }
    let url = cfg.cashserver_url()?;
    let keep_days = opts.keep_days.unwrap_or(cfg.trim_keep_days);
    let cutoff = Cutoff {
        before: cfg.now.naive_local() - TimeDelta::days(keep_days as i64),
        include_unexported: opts.include_unexported,
    };
    let before_tz = cfg.now - TimeDelta::days(keep_days as i64);
    let mut cs = db::connect(url, Database::CashServer, "csjobs trim-db").await?;
    if opts.dry_run {
        let plan = super::plan(&cs, cutoff).await.context("cannot read the cash server DB")?;
        output::say(&render(&plan, keep_days, cutoff, true, None));
        return Ok(Outcome::default());
    }
    let frame = Frame::new(JOB).job_lock(url).await?;
    // Planned under the lock, just before deleting and before the run log: no other trim
    // changes it meanwhile (a plan made before the lock could be another run's), and the
    // total printed is what the batches really deleted.
    let plan = super::plan(&cs, cutoff).await.context("cannot read the cash server DB")?;
    let work = async |ctx: Ctx<'_>| {
        let (cs, stop) = (&*ctx.db, ctx.stop.flag());
        let mut deleted = 0u64;
        let result: anyhow::Result<super::Bookkeeping> = async {
            while !stop.requested() {
                let n = super::delete_batch(cs, cutoff, opts.batch_size as i64)
                    .await
                    .context("the cash server DB cannot be used (deleting old shifts); what went is whole shifts, the next run goes on")?;
                deleted += n;
                if n == 0 {
                    break;
                }
            }
            let b = super::trim_bookkeeping(cs, cfg.now, before_tz, 5000)
                .await
                .context("the cash server DB cannot be used (trimming the bookkeeping tables)")?;
            Ok(b)
        }
        .await;
        let book = result.as_ref().cloned().unwrap_or_default();
        let mut text = render(&plan, keep_days, cutoff, false, Some(deleted));
        let _ = writeln!(
            text,
            "  also deleted: {} load log rows, {} job runs, {} error messages, {} transferred staged rows",
            book.load_log, book.job_run, book.error_message, book.staged_rows
        );
        output::say(&text);
        tracing::info!(
            deleted_shifts = deleted,
            kept_unexported = plan.kept_unexported,
            kept_no_dates = plan.kept_no_dates.len(),
            load_log = book.load_log,
            job_run = book.job_run,
            error_message = book.error_message,
            staged_rows = book.staged_rows,
            "trim-db summary"
        );
        let counters = serde_json::json!({ "deleted_shifts": deleted, "kept_unexported": plan.kept_unexported,
            "kept_no_dates": plan.kept_no_dates.len(), "bookkeeping": book });
        Ran::new(result.map(|_| Outcome::default()).map_err(JobError::from), counters)
    };
    frame.stops_on_signals().run(cfg, &mut cs, work).await
}
