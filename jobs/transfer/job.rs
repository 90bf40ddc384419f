//! The `transfer` job: for each table asked for, batches of staged rows in id order are
//! applied to the bonus DB and then marked on the cash server side. A batch the bonus DB
//! refuses is split in halves until the refused rows are found; those are marked with the
//! reason and skipped, and the run exits 3. A database that cannot be used stops the run
//! (exit 1); the next run repairs (see `staged` for why nothing is applied twice).

use std::{future::Future, pin::Pin, time::Instant};

use anyhow::{anyhow, Context};
use tokio_postgres::Client;

use super::staged::{self, Batch, Table};
use crate::core::{
    config::Config,
    db::{self, Database, ErrorClass},
    lock,
    runlog::{self, RunLog},
    stop, JobError, Outcome,
};

pub const JOB: &str = "transfer";

#[derive(Debug, Clone, Default)]
pub struct TransferOptions {
    /// Table names from `--table`; empty means all three.
    pub tables: Vec<String>,
    pub dry_run: bool,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct TableCounts {
    pub table: &'static str,
    /// Newly applied in the bonus DB by this run.
    pub applied: u64,
    /// Already applied by an interrupted run; only marked now.
    pub already: u64,
    pub refused: u64,
}

fn tables(opts: &TransferOptions) -> Result<Vec<Table>, JobError> {
    if opts.tables.is_empty() {
        return Ok(Table::ALL.to_vec());
    }
    opts.tables
        .iter()
        .map(|n| {
            Table::parse(n).ok_or_else(|| {
                JobError::usage(format!(
                    "--table {n}: not a staging table; expected accountpincodetemp, \
                     changeaccountbalancetemp or changecardaccounttemp"
                ))
            })
        })
        .collect()
}

pub async fn run(cfg: &Config, opts: &TransferOptions) -> Result<Outcome, JobError> {
    let tables = tables(opts)?;
    let cash_url = cfg.cashserver_url()?;
    let bonus_url = cfg.bonus_url()?;
    let cash = db::connect(cash_url, Database::CashServer, "csjobs transfer").await?;
    if opts.dry_run {
        println!("transfer --dry-run: rows waiting per table");
        for t in &tables {
            let n = staged::pending(&cash, *t).await.context("cannot read the staging tables")?;
            println!("  {:<26} {n:>10}", t.name());
        }
        return Ok(Outcome::default());
    }
    let mut bonus = db::connect(bonus_url, Database::Bonus, "csjobs transfer").await?;
    let _lock = lock::acquire(cash_url, JOB).await?;
    let run = RunLog::start(&cash, JOB).await?;
    let started = Instant::now();
    let mut counts: Vec<TableCounts> = Vec::new();
    let result = transfer(cfg, &tables, &cash, &mut bonus, &mut counts).await;
    let elapsed = started.elapsed().as_secs_f64();

    let total: u64 = counts.iter().map(|c| c.applied + c.already + c.refused).sum();
    let refused: u64 = counts.iter().map(|c| c.refused).sum();
    println!("transfer: {total} rows in {elapsed:.2} s ({:.0} rows/s)", total as f64 / elapsed.max(1e-6));
    println!("  {:<26} {:>10} {:>10} {:>10}", "table", "applied", "already", "refused");
    for c in &counts {
        println!("  {:<26} {:>10} {:>10} {:>10}", c.table, c.applied, c.already, c.refused);
        tracing::info!(
            table = c.table,
            applied = c.applied,
            already = c.already,
            refused = c.refused,
            "transferred"
        );
    }
    let (outcome, code) = match &result {
        Ok(()) if refused > 0 => ("rejected", 3),
        Ok(()) => ("done", 0),
        Err(_) => ("failed", 1),
    };
    let counters = serde_json::json!({ "tables": counts, "elapsed_s": elapsed });
    if let Err(e) = run.finish(&cash, outcome, code, &counters).await {
        tracing::warn!(error = %format!("{e:#}"), "could not complete the job run log");
    }
    if let Err(e) = &result {
        let _ = runlog::record_error(&cash, JOB, None, &format!("{e:#}")).await;
    }
    result?;
    Ok(Outcome { rejected: refused })
}

async fn transfer(
    cfg: &Config,
    tables: &[Table],
    cash: &Client,
    bonus: &mut Client,
    counts: &mut Vec<TableCounts>,
) -> Result<(), JobError> {
    let stop = stop::install();
    let pruned = staged::prune_claims(bonus, cfg.trim_keep_days.max(30))
        .await
        .context("the bonus DB cannot be used (pruning transfer_applied)")?;
    if pruned > 0 {
        tracing::info!(pruned, "forgot old transfer claims");
    }
    for &table in tables {
        counts.push(TableCounts { table: table.name(), ..Default::default() });
        let c = counts.last_mut().expect("just pushed");
        let mut after = 0i64;
        while !stop.requested() {
            let batch = staged::read(cash, table, after, cfg.transfer_batch_rows)
                .await
                .with_context(|| format!("the cash server DB cannot be used (reading {})", table.name()))?;
            let Some(&last) = batch.ids().last() else { break };
            after = last;
            let outcome = apply_isolating(bonus, table, batch.clone()).await.map_err(|e| {
                anyhow!(
                    "the bonus DB cannot be used while applying {} ids {}..={}: {}; the next run \
                     repairs (nothing is applied twice)",
                    table.name(),
                    batch.ids()[0],
                    last,
                    db::describe(&e)
                )
            })?;
            let refused_ids: Vec<i64> = outcome.refused.iter().map(|(id, _)| *id).collect();
            let done: Vec<i64> = batch.ids().iter().copied().filter(|id| !refused_ids.contains(id)).collect();
            staged::mark(cash, table, &done).await.with_context(|| {
                format!(
                    "the cash server DB cannot be used (marking {} rows as transferred; they are \
                     applied in the bonus DB and the next run only marks them)",
                    table.name()
                )
            })?;
            for (id, reason) in &outcome.refused {
                tracing::warn!(table = table.name(), id, reason = %reason, "staged row refused by the bonus DB");
                staged::mark_refused(cash, table, *id, reason)
                    .await
                    .context("the cash server DB cannot be used (recording a refused row)")?;
            }
            c.applied += outcome.claimed as u64;
            c.refused += outcome.refused.len() as u64;
            c.already += (done.len() as u64).saturating_sub(outcome.claimed as u64);
        }
    }
    Ok(())
}

struct Applied {
    claimed: i64,
    refused: Vec<(i64, String)>,
}

/// Applies a batch; when the bonus DB refuses it, applies each half on its own, down to
/// single rows, so one bad row costs O(log n) transactions and blocks nothing behind it.
fn apply_isolating<'a>(
    bonus: &'a mut Client,
    table: Table,
    batch: Batch,
) -> Pin<Box<dyn Future<Output = Result<Applied, tokio_postgres::Error>> + 'a>> {
    Box::pin(async move {
        let mut tries = 0;
        loop {
            match staged::apply(bonus, table, &batch).await {
                Ok(claimed) => return Ok(Applied { claimed, refused: vec![] }),
                Err(e) => match db::classify(&e) {
                    ErrorClass::Retry if tries < 3 => tries += 1,
                    ErrorClass::Refused if batch.len() == 1 => {
                        let reason = format!("the bonus DB refused the row: {}", db::describe(&e));
                        return Ok(Applied { claimed: 0, refused: vec![(batch.ids()[0], reason)] });
                    }
                    ErrorClass::Refused => {
                        let mid = batch.len() / 2;
                        let mut a = apply_isolating(bonus, table, batch.slice(0..mid)).await?;
                        let b = apply_isolating(bonus, table, batch.slice(mid..batch.len())).await?;
                        a.claimed += b.claimed;
                        a.refused.extend(b.refused);
                        return Ok(a);
                    }
                    _ => return Err(e),
                },
            }
        }
    })
}
