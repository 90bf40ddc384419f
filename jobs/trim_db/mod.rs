//! `trim-db`: old sales out of the cash server DB without stalling loading
//! (shared/spec/rules.md §4). All its SQL is here.
//!
//! plan ([`plan`]: what would go, per shop and month, and what is kept and why) → apply
//! ([`delete_batch`]: whole shifts, a batch per short transaction, shifts a loader holds
//! are skipped and left for the next run) → bookkeeping ([`trim_bookkeeping`]).
//!
//! A shift's age is `time_end`, or `time_beg` for a shift never closed; it goes when that is
//! more than `keep_days` days before "now" (exactly `keep_days` stays). Shifts with neither
//! time never go. A closed shift not exported to ASTU stays unless `include_unexported`.

pub mod job;

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use tokio_postgres::Client;

/// Which shifts may go.
#[derive(Debug, Clone, Copy)]
pub struct Cutoff {
    /// Shifts whose age (local shop time) is before this go.
    pub before: NaiveDateTime,
    pub include_unexported: bool,
}

/// The shifts that may go, as SQL over `workshift w` with $1 = cutoff, $2 = include unexported.
const CANDIDATE: &str = "coalesce(w.time_end, w.time_beg) < $1
     and (w.time_end is null or w.astu_exported_at is not null or $2)";

/// One line of the breakdown: a shop's shifts of one month (by age).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthLine {
    pub shop: i32,
    pub month: String,
    pub shifts: i64,
    pub documents: i64,
    pub items: i64,
}

/// What a run would do.
#[derive(Debug, Clone, Default)]
pub struct TrimPlan {
    pub lines: Vec<MonthLine>,
    /// Closed, old enough, but never exported to ASTU: kept.
    pub kept_unexported: i64,
    /// Neither open nor close time: never deleted automatically.
    pub kept_no_dates: Vec<i64>,
}

pub async fn plan(cs: &Client, c: Cutoff) -> Result<TrimPlan, tokio_postgres::Error> {
    let sql = format!(
        "select w.shopcode, to_char(coalesce(w.time_end, w.time_beg), 'YYYY-MM') as month,
                count(*)::bigint, sum(n.docs)::bigint, sum(n.items)::bigint
           from workshift w
           cross join lateral (
                select (select count(*) from document d where d.workshiftid = w.workshiftid) as docs,
                       (select count(*) from goodsitem g join document d using (documentid)
                         where d.workshiftid = w.workshiftid) as items) n
          where {CANDIDATE}
          group by 1, 2 order by 1, 2"
    );
    let lines = cs
        .query(&sql, &[&c.before, &c.include_unexported])
        .await?
        .iter()
        .map(|r| MonthLine {
            shop: r.get(0),
            month: r.get(1),
            shifts: r.get(2),
            documents: r.get(3),
            items: r.get(4),
        })
        .collect();
    let kept_unexported = if c.include_unexported {
        0
    } else {
        cs.query_one(
            "select count(*) from workshift
              where time_end is not null and time_end < $1 and astu_exported_at is null",
            &[&c.before],
        )
        .await?
        .get(0)
    };
    let kept_no_dates = cs
        .query(
            "select workshiftid from workshift where time_beg is null and time_end is null order by 1",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(TrimPlan { lines, kept_unexported, kept_no_dates })
}

/// Deletes up to `batch` of the oldest shifts that may go, with their documents, items and
/// payments, in one short transaction (a single statement). Shifts locked by a loader are
/// skipped: the loader never waits on the trim for more than one batch, and the skipped
/// shifts go in a later run. Returns how many shifts went.
pub async fn delete_batch(cs: &Client, c: Cutoff, batch: i64) -> Result<u64, tokio_postgres::Error> {
    let sql = format!(
        "with victims as (
            select w.workshiftid from workshift w
             where {CANDIDATE}
             order by coalesce(w.time_end, w.time_beg)
             limit $3
             for update skip locked)
         delete from workshift w using victims v where w.workshiftid = v.workshiftid"
    );
    cs.execute(&sql, &[&c.before, &c.include_unexported, &batch]).await
}

/// Rows of the bookkeeping tables removed by one run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Bookkeeping {
    pub load_log: u64,
    pub job_run: u64,
    pub error_message: u64,
    pub staged_rows: u64,
}

/// Trims the load log and the job run log past `before`, error messages older than 3 days
/// before `now`, and transferred staging rows transferred before `before`; in batches of
/// `batch` rows, each its own short transaction.
pub async fn trim_bookkeeping(
    cs: &Client,
    now: DateTime<FixedOffset>,
    before: DateTime<FixedOffset>,
    batch: i64,
) -> Result<Bookkeeping, tokio_postgres::Error> {
    let three_days = now - chrono::TimeDelta::days(3);
    let mut b = Bookkeeping {
        load_log: in_batches(cs, "load_log", "load_id", "finished_at < $1", before, batch).await?,
        // Killed runs (no end) go too: a run started before the retention has ended long since.
        job_run: in_batches(cs, "job_run", "run_id", "started_at < $1", before, batch).await?,
        error_message: in_batches(cs, "error_message", "id", "created_at < $1", three_days, batch).await?,
        staged_rows: 0,
    };
    for t in crate::transfer::types::Table::ALL {
        // Done through the done log, and marked ones (refused, or from before the log).
        b.staged_rows += crate::transfer::done::trim(cs, t, before).await?;
        b.staged_rows += in_batches(
            cs,
            t.name(),
            "id",
            "transferred_at is not null and transferred_at < $1",
            before,
            batch,
        )
        .await?;
    }
    Ok(b)
}

async fn in_batches(
    cs: &Client,
    table: &str,
    key: &str,
    cond: &str,
    at: DateTime<FixedOffset>,
    batch: i64,
) -> Result<u64, tokio_postgres::Error> {
    let sql = format!("delete from {table} where {key} in (select {key} from {table} where {cond} limit $2)");
    let mut total = 0;
    loop {
        let n = cs.execute(&sql, &[&at, &batch]).await?;
        total += n;
        if n == 0 {
            return Ok(total);
        }
    }
}
