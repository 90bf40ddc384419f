//! The `export-astu` job: which shifts (the closed unexported ones, or `--shift` ids) →
//! `export::export_shifts` → summary and exit code.

use anyhow::anyhow;

use super::{
    export::{self, ExportReport},
    state,
};
use crate::core::prelude::*;

pub const JOB: &str = "export-astu";

/// The options of `csjobs export-astu` (its `--help` is these doc comments).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ExportOptions {
    /// Export exactly this shift (workshiftid), open or closed, again if it was (repeatable)
    /// [default: every closed shift not yet exported]
    #[arg(long = "shift", value_name = "WORKSHIFTID")]
    pub shifts: Vec<i64>,
}

/// Runs `csjobs export-astu`.
pub async fn run(cfg: &Config, opts: &ExportOptions) -> Result<Outcome, JobError> {
    let url = cfg.cashserver_url()?;
    let mut client = db::connect(url, Database::CashServer, "csjobs export-astu").await?;
    // No job lock: each shift is locked while its file is written (`export::export_shifts`).
    Frame::new(JOB).run(cfg, &mut client, async |ctx| work(ctx, opts).await).await
}

async fn work(ctx: Ctx<'_>, opts: &ExportOptions) -> Ran {
    match export(ctx.cfg, opts, ctx.db).await {
        Ok(report) => {
            let counters = serde_json::json!({
                "exported": report.exported.len(),
                "failed": report.failed.len(),
                "missing": report.missing.len(),
            });
            Ran::new(outcome(ctx.cfg, &report), counters)
        }
        Err(e) => Ran::new(Err(e), serde_json::json!({})),
    }
}

async fn export(
    cfg: &Config,
    opts: &ExportOptions,
    client: &mut tokio_postgres::Client,
) -> Result<ExportReport, JobError> {
    let ids = if opts.shifts.is_empty() {
        state::unexported_closed(client)
            .await
            .map_err(|e| db_error(e, "cannot list the unexported shifts"))?
    } else {
        opts.shifts.clone()
    };
    let report = export::export_shifts(client, &cfg.paths.astu_outbox, &ids)
        .await
        .map_err(|e| db_error(e, "cannot read or mark the shifts to export"))?;
    for (id, path) in &report.exported {
        tracing::info!(workshiftid = id, file = %path.display(), "exported to ASTU");
        output::line(&format!("exported\tworkshiftid {id}\t{}", path.display()));
    }
    for (id, why) in &report.failed {
        tracing::error!(workshiftid = id, "not exported to ASTU: {why}");
        output::line(&format!("failed\tworkshiftid {id}\t{why}"));
    }
    for id in &report.missing {
        tracing::warn!(workshiftid = id, "no such shift");
        output::line(&format!("missing\tworkshiftid {id}\tno such shift in the cash server DB"));
    }
    output::line(&format!(
        "export-astu: {} shifts exported, {} failed, {} not found",
        report.exported.len(),
        report.failed.len(),
        report.missing.len()
    ));
    Ok(report)
}

fn db_error(e: tokio_postgres::Error, what: &str) -> JobError {
    anyhow::Error::new(e).context(format!("{what} (cash server DB)")).into()
}

/// A write failure is a file system that could not be used (exit 1); an unknown
/// `--shift` id is a rejected input (exit 3).
fn outcome(cfg: &Config, report: &ExportReport) -> Result<Outcome, JobError> {
    if let Some(msg) = report.failure_message(&cfg.paths.astu_outbox) {
        return Err(anyhow!("{msg}").into());
    }
    if !report.missing.is_empty() {
        let ids: Vec<String> = report.missing.iter().map(i64::to_string).collect();
        tracing::warn!("no shift with workshiftid {} in the cash server DB", ids.join(", "));
    }
    Ok(Outcome::rejected(report.missing.len() as u64))
}
