//! The `transfer` job: for each table asked for, batches of staged rows in id order are
//! applied to the bonus DB and then marked on the cash server side. A batch the bonus DB
//! refuses is split in halves until the refused rows are found; those are marked with the
//! reason and skipped, and the run exits 3. A database that cannot be used stops the run
//! (exit 1); the next run repairs (see `staged` for why nothing is applied twice).

use std::{future::Future, pin::Pin, time::Instant};

use anyhow::{anyhow, Context};
use tokio_postgres::Client;

use super::{
    done::{self, Compaction, DoneSet},
    staged::{self, Batch},
    types::Table,
};
use crate::core::{
    config::Config,
    db::{self, Database, ErrorClass},
    output, runlog,
    runner::{Ctx, Frame, Ran},
    stop::StopFlag,
    JobError, Outcome,
};

pub const JOB: &str = "transfer";

/// `csjobs transfer`'s options (its `--help` is these doc comments).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TransferOptions {
    /// Only this staging table (repeatable) [default: all three]
    #[arg(long = "table", value_name = "NAME", value_enum)]
    pub tables: Vec<Table>,
    /// Show how many rows per table are waiting; move nothing
    #[arg(long)]
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

fn tables(opts: &TransferOptions) -> Vec<Table> {
    // In the fixed order, each once, however often and in whatever order they were named.
    Table::ALL.into_iter().filter(|t| opts.tables.is_empty() || opts.tables.contains(t)).collect()
}

pub async fn run(cfg: &Config, opts: &TransferOptions) -> Result<Outcome, JobError> {
    let tables = tables(opts);
    let cash_url = cfg.cashserver_url()?;
    let bonus_url = cfg.bonus_url()?;
    let mut cash = db::connect(cash_url, Database::CashServer, "csjobs transfer").await?;
    if opts.dry_run {
        output::line("transfer --dry-run: rows waiting per table");
        for t in &tables {
            let n = done::pending(&cash, *t).await.context("cannot read the staging tables")?;
            output::line(&format!("  {:<26} {n:>10}", t.name()));
        }
        return Ok(Outcome::default());
    }
    let mut bonus = db::connect(bonus_url, Database::Bonus, "csjobs transfer").await?;
    let frame = Frame::new(JOB).job_lock(cash_url).await?;
    // The cash server side's writes (transferred_at marks, refusals, the run log) need not
    // wait for their WAL flush: one lost in a server crash only makes the next run read those
    // rows again, and their claims in the bonus DB make that re-read apply nothing. The
    // bonus side's commits stay synchronous: they are what "applied" means.
    cash.batch_execute("set synchronous_commit = off").await.context("the cash server DB cannot be used")?;
    let work = async |ctx: Ctx<'_>| {
        let started = Instant::now();
        let mut counts: Vec<TableCounts> = Vec::new();
        let result = transfer(cfg, &tables, ctx.db, &mut bonus, &ctx.stop.flag(), &mut counts).await;
        let elapsed = started.elapsed().as_secs_f64();

        let total: u64 = counts.iter().map(|c| c.applied + c.already + c.refused).sum();
        let refused: u64 = counts.iter().map(|c| c.refused).sum();
        output::line(&format!(
            "transfer: {total} rows in {elapsed:.2} s ({:.0} rows/s)",
            total as f64 / elapsed.max(1e-6)
        ));
        output::line(&format!("  {:<26} {:>10} {:>10} {:>10}", "table", "applied", "already", "refused"));
        for c in &counts {
            output::line(&format!("  {:<26} {:>10} {:>10} {:>10}", c.table, c.applied, c.already, c.refused));
            tracing::info!(
                table = c.table,
                applied = c.applied,
                already = c.already,
                refused = c.refused,
                "transferred"
            );
        }
        let counters = serde_json::json!({ "tables": counts, "elapsed_s": elapsed });
        Ran::new(result.map(|()| Outcome::rejected(refused)), counters)
    };
    frame.stops_on_signals().run(cfg, &mut cash, work).await
}

async fn transfer(
    cfg: &Config,
    tables: &[Table],
    cash: &Client,
    bonus: &mut Client,
    stop: &StopFlag,
    counts: &mut Vec<TableCounts>,
) -> Result<(), JobError> {
    let pruned = staged::prune_claims(bonus, cfg.trim_keep_days.max(30))
        .await
        .context("the bonus DB cannot be used (pruning transfer_claim)")?;
    if pruned > 0 {
        tracing::info!(pruned, "forgot old transfer claims");
    }
    let cashserver_id = staged::cashserver_id(cash).await.context("cannot read csjobs_instance")?;
    for &table in tables {
        counts.push(TableCounts { table: table.name(), ..Default::default() });
        let c = counts.last_mut().expect("just pushed");
        let source = staged::source_id(bonus, &cashserver_id, table)
            .await
            .context("cannot register the transfer source in the bonus DB")?;
        let (watermark, done) = compact(cash, table).await?;
        // Pipelined: while the bonus DB applies batch k, the cash server records batch k-1
        // done and reads batch k+1 (two servers, two cores). Recording after the apply
        // committed is all the ordering exactly-once needs.
        let mut next = read(cash, table, watermark, cfg.transfer_batch_rows, &done).await?;
        let mut pending_mark: Option<(Batch, Applied)> = None;
        while !next.is_empty() && !stop.requested() {
            let batch = next;
            let after = *batch.ids().last().expect("not empty");
            let t0 = Instant::now();
            let (applied, marked_and_read) = tokio::join!(
                async {
                    let r = apply_isolating(bonus, source, &batch).await;
                    (r, t0.elapsed())
                },
                async {
                    if let Some((b, a)) = pending_mark.take() {
                        mark(cash, table, &b, &a, c).await?;
                    }
                    let r = read(cash, table, after, cfg.transfer_batch_rows, &done).await;
                    r.map(|b| (b, t0.elapsed()))
                }
            );
            let (applied, apply_time) = applied;
            let (marked_and_read, cash_time) = match marked_and_read {
                Ok((b, t)) => (Ok(b), t),
                Err(e) => (Err(e), t0.elapsed()),
            };
            tracing::debug!(
                table = table.name(),
                rows = batch.len(),
                apply_ms = apply_time.as_millis() as u64,
                mark_and_read_ms = cash_time.as_millis() as u64,
                "batch"
            );
            let applied = applied.map_err(|e| {
                anyhow!(
                    "the bonus DB cannot be used while applying {} ids {}..={after}: {}; the next run \
                     repairs (nothing is applied twice)",
                    table.name(),
                    batch.ids()[0],
                    db::describe(&e)
                )
            })?;
            next = marked_and_read?;
            pending_mark = Some((batch, applied));
        }
        if let Some((b, a)) = pending_mark.take() {
            mark(cash, table, &b, &a, c).await?;
        }
        compact(cash, table).await?;
    }
    Ok(())
}

/// Moves the watermark of `table` over what is certainly done (see `done::compact`);
/// returns the watermark and the ids done above it, where the reads start.
async fn compact(cash: &Client, table: Table) -> Result<(i64, DoneSet), JobError> {
    let (c, done) = done::compact(cash, table).await.with_context(|| {
        format!("the cash server DB cannot be used (moving the watermark of {})", table.name())
    })?;
    match c {
        Compaction::Advanced(from, to) => {
            tracing::debug!(table = table.name(), from, to, "watermark advanced")
        }
        Compaction::Kept(at) => tracing::debug!(table = table.name(), at, "watermark kept"),
        Compaction::SequenceCached(at) => tracing::warn!(
            table = table.name(),
            at,
            "the id sequence of the staging table has CACHE > 1, so ids do not follow commit order: \
             the watermark stays and every run reads the done log above it; set CACHE 1"
        ),
    }
    Ok((c.watermark(), done))
}

async fn read(
    cash: &Client,
    table: Table,
    after: i64,
    limit: usize,
    done: &DoneSet,
) -> Result<Batch, JobError> {
    staged::read(cash, table, after, limit, done)
        .await
        .with_context(|| format!("the cash server DB cannot be used (reading {})", table.name()))
        .map_err(JobError::from)
}

/// The dispose stage: records an applied batch done on the cash server side (refused rows
/// included, with their reason) and counts it.
async fn mark(
    cash: &Client,
    table: Table,
    batch: &Batch,
    a: &Applied,
    c: &mut TableCounts,
) -> Result<(), JobError> {
    // Refusals first: a row refused and killed before the done row is written keeps its
    // reason (and transferred_at) and is not pending; the other way round it would be done
    // without one.
    for (id, reason) in &a.refused {
        tracing::warn!(table = table.name(), id, reason = %reason, "staged row refused by the bonus DB");
        staged::mark_refused(cash, table, *id, reason)
            .await
            .context("the cash server DB cannot be used (recording a refused row)")?;
        runlog::record_error(cash, JOB, Some(&format!("{} id {id}", table.name())), reason).await?;
    }
    done::record(cash, table, batch.ids()).await.with_context(|| {
        format!(
            "the cash server DB cannot be used (recording {} rows as transferred; they are applied in \
             the bonus DB and the next run only marks them)",
            table.name()
        )
    })?;
    let done_rows = (batch.len() - a.refused.len()) as u64;
    c.applied += a.claimed as u64;
    c.refused += a.refused.len() as u64;
    c.already += done_rows.saturating_sub(a.claimed as u64);
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
    source: i32,
    batch: &'a Batch,
) -> Pin<Box<dyn Future<Output = Result<Applied, tokio_postgres::Error>> + 'a>> {
    Box::pin(async move {
        let mut tries = 0;
        loop {
            match staged::apply(bonus, source, batch).await {
                Ok(claimed) => return Ok(Applied { claimed, refused: vec![] }),
                Err(e) => match db::classify(&e) {
                    ErrorClass::Retry if tries < 3 => tries += 1,
                    ErrorClass::Refused if batch.len() == 1 => {
                        let reason = format!("the bonus DB refused the row: {}", db::describe(&e));
                        return Ok(Applied { claimed: 0, refused: vec![(batch.ids()[0], reason)] });
                    }
                    ErrorClass::Refused => {
                        let mid = batch.len() / 2;
                        let (first, second) = (batch.slice(0..mid), batch.slice(mid..batch.len()));
                        let mut a = apply_isolating(bonus, source, &first).await?;
                        let b = apply_isolating(bonus, source, &second).await?;
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
