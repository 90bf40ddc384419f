//! The cash server side of "transferred" (переданные строки): the done log and the watermark
//! (sql/cashserver/0008_transfer_done.sql). All their SQL is here.
//!
//! A batch whose effect committed in the bonus DB is recorded as one `transfer_done` row
//! (its ids as runs of consecutive ids) instead of one update per staged row. The watermark
//! of a table moves up over the done rows once it is certain that no row with a lower id can
//! still appear ([`compact`]); the reads skip what is done ([`DoneSet`]).

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset};
use tokio_postgres::Client;

use super::types::Table;

/// Ids done above a table's watermark, as sorted, disjoint, non-adjacent inclusive intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DoneSet {
    runs: Vec<(i64, i64)>,
}

impl DoneSet {
    /// From inclusive intervals in any order, overlapping or adjacent ones merged.
    pub fn from_runs(mut runs: Vec<(i64, i64)>) -> DoneSet {
        runs.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(runs.len());
        for (lo, hi) in runs {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        DoneSet { runs: merged }
    }

    /// The first interval of ids not done, above `after`: `(lo, hi)`, inclusive, `hi` being
    /// `i64::MAX` past the last done run. `None` only when nothing is above `after`.
    pub fn next_uncovered(&self, after: i64) -> Option<(i64, i64)> {
        let mut lo = after.checked_add(1)?;
        let i = self.runs.partition_point(|&(_, hi)| hi < lo);
        let mut next = self.runs.get(i);
        if let Some(&(a, b)) = next {
            if a <= lo {
                lo = b.checked_add(1)?;
                next = self.runs.get(i + 1);
            }
        }
        Some((lo, next.map_or(i64::MAX, |&(a, _)| a - 1)))
    }

    /// The intervals not done within `(after, upto]`, in order.
    pub fn gaps(&self, after: i64, upto: i64) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        let mut at = after;
        while at < upto {
            let Some((lo, hi)) = self.next_uncovered(at) else { break };
            if lo > upto {
                break;
            }
            out.push((lo, hi.min(upto)));
            at = hi;
        }
        out
    }
}

/// Runs of consecutive ids of ascending `ids`: what a done row records.
pub fn runs_of(ids: &[i64]) -> (Vec<i64>, Vec<i64>) {
    let (mut lo, mut hi) = (Vec::new(), Vec::new());
    for &id in ids {
        match hi.last_mut() {
            Some(h) if *h + 1 == id => *h = id,
            _ => {
                lo.push(id);
                hi.push(id);
            }
        }
    }
    (lo, hi)
}

/// One done row as compaction sees it.
#[derive(Debug, Clone)]
pub struct DoneRow {
    pub last_id: i64,
    pub wait_for: Vec<String>,
}

/// The highest id up to which no staged row can still appear: the greatest `last_id` of a
/// done row all of whose `wait_for` transactions have ended. Ids are handed out in order, so
/// a row with a lower id than one that was visible when the done row was written was being
/// inserted by a transaction open then, and is visible once all of those have ended.
pub fn settled_upto(rows: &[DoneRow], alive: &HashSet<String>) -> Option<i64> {
    rows.iter().filter(|r| r.wait_for.iter().all(|v| !alive.contains(v))).map(|r| r.last_id).max()
}

/// The transactions of this database other than the caller's that are open now, by virtual
/// transaction id, plus its prepared transactions (they may commit rows later). Autovacuum
/// never inserts staged rows and is left out.
const OPEN_TRANSACTIONS: &str = "
    select l.virtualxid from pg_locks l join pg_stat_activity a on a.pid = l.pid
     where l.locktype = 'virtualxid' and l.mode = 'ExclusiveLock' and l.granted
       and a.datname = current_database() and l.pid <> pg_backend_pid()
       and a.backend_type not like 'autovacuum%'
    union
    select 'prepared ' || p.transaction::text from pg_prepared_xacts p where p.database = current_database()";

/// Records a batch as done (after its bonus commit). `ids` ascending, not empty.
pub async fn record(cash: &Client, table: Table, ids: &[i64]) -> Result<(), tokio_postgres::Error> {
    let (Some(first), Some(last)) = (ids.first(), ids.last()) else { return Ok(()) };
    let (lo, hi) = runs_of(ids);
    let sql = format!(
        "insert into transfer_done (staging_table, first_id, last_id, ids, wait_for)
         select $1, $2, $3,
                (select range_agg(int8range(lo, hi, '[]')) from unnest($4::bigint[], $5::bigint[]) r(lo, hi)),
                coalesce((select array_agg(v) from ({OPEN_TRANSACTIONS}) o(v)), '{{}}')"
    );
    cash.execute(&sql, &[&table.name(), first, last, &lo, &hi]).await?;
    Ok(())
}

async fn watermark(cash: &Client, table: Table) -> Result<i64, tokio_postgres::Error> {
    cash.execute(
        "insert into transfer_watermark (staging_table) values ($1) on conflict do nothing",
        &[&table.name()],
    )
    .await?;
    Ok(cash
        .query_one("select last_id from transfer_watermark where staging_table = $1", &[&table.name()])
        .await?
        .get(0))
}

/// What [`compact`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compaction {
    /// The watermark moved from the first to the second id.
    Advanced(i64, i64),
    /// It stays: nothing settled above it, or a row not done is right above it.
    Kept(i64),
    /// The table's id sequence hands out ids from a per-session cache (CACHE > 1), so ids
    /// are not in commit order and no hole is ever certain: the watermark stays, the done
    /// rows do all the work (correct, slower reads).
    SequenceCached(i64),
}

impl Compaction {
    /// The watermark after compaction.
    pub fn watermark(self) -> i64 {
        match self {
            Compaction::Advanced(_, at) | Compaction::Kept(at) | Compaction::SequenceCached(at) => at,
        }
    }
}

/// Moves the watermark of `table` as far as is certain: up to the highest settled id
/// ([`settled_upto`]), but below the first row visible now that is neither done nor marked.
/// The open transactions are read before the rows are looked at, so every transaction a
/// settled done row waited for has committed (or rolled back) before that look. Returns
/// what it did and the ids done above the old watermark, for the run's reads (runs below
/// the new watermark are skipped by them anyway).
pub async fn compact(cash: &Client, table: Table) -> Result<(Compaction, DoneSet), tokio_postgres::Error> {
    let w = watermark(cash, table).await?;
    // The done rows above the watermark, once: their runs for the reads, their last id and
    // awaited transactions for the compaction.
    let above = cash
        .query(
            "select d.last_id, d.wait_for, array(select lower(r) from unnest(d.ids) r),
                    array(select upper(r) - 1 from unnest(d.ids) r)
               from transfer_done d where d.staging_table = $1 and d.last_id > $2",
            &[&table.name(), &w],
        )
        .await?;
    let done = DoneSet::from_runs(
        above.iter().flat_map(|r| r.get::<_, Vec<i64>>(2).into_iter().zip(r.get::<_, Vec<i64>>(3))).collect(),
    );
    let rows: Vec<DoneRow> =
        above.iter().map(|r| DoneRow { last_id: r.get(0), wait_for: r.get(1) }).collect();
    let cache: i64 = cash
        .query_one(
            "select coalesce((select seqcache from pg_sequence
                               where seqrelid = pg_get_serial_sequence($1, 'id')::regclass), 1)",
            &[&table.name()],
        )
        .await?
        .get(0);
    if cache > 1 {
        return Ok((Compaction::SequenceCached(w), done));
    }
    if rows.is_empty() {
        return Ok((Compaction::Kept(w), done));
    }
    let alive: HashSet<String> = cash.query(OPEN_TRANSACTIONS, &[]).await?.iter().map(|r| r.get(0)).collect();
    let Some(upto) = settled_upto(&rows, &alive) else { return Ok((Compaction::Kept(w), done)) };
    let mut new = upto;
    let sql =
        format!("select min(id) from {} where id between $1 and $2 and transferred_at is null", table.name());
    for (lo, hi) in done.gaps(w, upto) {
        let first: Option<i64> = cash.query_one(&sql, &[&lo, &hi]).await?.get(0);
        if let Some(id) = first {
            new = id - 1;
            break;
        }
    }
    if new <= w {
        return Ok((Compaction::Kept(w), done));
    }
    cash.execute(
        "update transfer_watermark set last_id = $2, advanced_at = now() where staging_table = $1 and last_id < $2",
        &[&table.name(), &new],
    )
    .await?;
    Ok((Compaction::Advanced(w, new), done))
}

/// The rows of `table` waiting for transfer (`--dry-run`, status).
pub async fn pending(cash: &Client, table: Table) -> Result<i64, tokio_postgres::Error> {
    Ok(cash
        .query_one("select count(*) from transfer_pending where staging_table = $1", &[&table.name()])
        .await?
        .get(0))
}

/// Deletes the staged rows of `table` recorded done before `before` (`trim-db`), one done
/// row and its staged rows per statement, so a killed trim leaves each batch whole or gone.
/// (Rows marked `transferred_at`, refused or from before the done log, trim-db deletes by
/// that mark.) Returns the staged rows deleted.
pub async fn trim(
    cash: &Client,
    table: Table,
    before: DateTime<FixedOffset>,
) -> Result<u64, tokio_postgres::Error> {
    let sql = format!(
        "with d as (
            delete from transfer_done where ctid in (
                select ctid from transfer_done where staging_table = $1 and done_at < $2 order by last_id limit 1)
            returning ids),
         del as (
            delete from {} t using (select lower(r) as lo, upper(r) as hi from d cross join lateral unnest(d.ids) r) r
             where t.id >= r.lo and t.id < r.hi returning 1)
         select (select count(*) from d), (select count(*) from del)",
        table.name()
    );
    let mut total = 0;
    loop {
        let row = cash.query_one(&sql, &[&table.name(), &before]).await?;
        let (batches, rows): (i64, i64) = (row.get(0), row.get(1));
        total += rows as u64;
        if batches == 0 {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(runs: &[(i64, i64)]) -> DoneSet {
        DoneSet::from_runs(runs.to_vec())
    }

    #[test]
    fn runs_merge_when_they_touch_or_overlap() {
        assert_eq!(set(&[(5, 7), (1, 3), (4, 4), (10, 12), (11, 20)]).runs, [(1, 7), (10, 20)]);
        assert_eq!(set(&[(1, 3)]).next_uncovered(0), Some((4, i64::MAX)), "1..=3 done, 4 not");
        assert_eq!(set(&[(2, 3)]).next_uncovered(0), Some((1, 1)), "1 not done");
    }

    #[test]
    fn uncovered_intervals_skip_done_runs() {
        let s = set(&[(3, 5), (8, 9)]);
        assert_eq!(s.next_uncovered(0), Some((1, 2)));
        assert_eq!(s.next_uncovered(2), Some((6, 7)), "2 is the last before a done run");
        assert_eq!(s.next_uncovered(4), Some((6, 7)), "inside a done run");
        assert_eq!(s.next_uncovered(7), Some((10, i64::MAX)));
        assert_eq!(s.next_uncovered(i64::MAX), None);
        assert_eq!(DoneSet::default().next_uncovered(41), Some((42, i64::MAX)));
        assert_eq!(s.gaps(0, 9), [(1, 2), (6, 7)]);
        assert_eq!(s.gaps(2, 8), [(6, 7)]);
        assert_eq!(s.gaps(5, 12), [(6, 7), (10, 12)]);
        assert_eq!(s.gaps(9, 9), []);
        assert_eq!(set(&[(1, 10)]).gaps(0, 10), []);
    }

    #[test]
    fn runs_of_ascending_ids() {
        assert_eq!(runs_of(&[1, 2, 3, 7, 9, 10]), (vec![1, 7, 9], vec![3, 7, 10]));
        assert_eq!(runs_of(&[]), (vec![], vec![]));
    }

    #[test]
    fn settled_only_when_every_awaited_transaction_ended() {
        let rows = [
            DoneRow { last_id: 10, wait_for: vec![] },
            DoneRow { last_id: 20, wait_for: vec!["3/7".into()] },
            DoneRow { last_id: 15, wait_for: vec!["4/1".into()] },
        ];
        let alive = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<HashSet<_>>();
        assert_eq!(settled_upto(&rows, &alive(&[])), Some(20));
        assert_eq!(settled_upto(&rows, &alive(&["3/7"])), Some(15));
        assert_eq!(settled_upto(&rows, &alive(&["3/7", "4/1"])), Some(10));
        assert_eq!(settled_upto(&rows[1..2], &alive(&["3/7"])), None);
    }
}
