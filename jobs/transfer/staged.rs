//! The three staging tables and what each of their rows does in the bonus DB. All the SQL
//! of the transfer is here.
//!
//! Exactly once, structurally: the bonus transaction that applies a batch leaves out the
//! staged ids that a claim of its source already holds (`transfer_claim`), applies the rest
//! and records them as one new claim. A claim and its effect commit together, so a row
//! re-read after a crash (not yet recorded done on the cash server side) finds
//! its claim and changes nothing. Appliers of one source are serialised by a transaction
//! advisory lock, so two of them can never both find an id unclaimed.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::collections::HashMap;

use tokio_postgres::{
    binary_copy::BinaryCopyInWriter,
    types::{ToSql, Type},
    Client, GenericClient, Transaction,
};

use super::{
    done::{runs_of, DoneSet},
    types::Table,
};

/// A batch of staged rows of one table, column by column (as the SQL takes them).
#[derive(Debug, Clone)]
pub enum Batch {
    Pins {
        id: Vec<i64>,
        card: Vec<String>,
        pin: Vec<String>,
        created: Vec<DateTime<Utc>>,
    },
    Balances {
        id: Vec<i64>,
        account: Vec<String>,
        amount: Vec<Decimal>,
        reason: Vec<Option<String>>,
        created: Vec<DateTime<Utc>>,
    },
    Bindings {
        id: Vec<i64>,
        card: Vec<String>,
        account: Vec<Option<String>>,
        status: Vec<i16>,
        created: Vec<DateTime<Utc>>,
    },
}

impl Batch {
    pub fn ids(&self) -> &[i64] {
        match self {
            Batch::Pins { id, .. } | Batch::Balances { id, .. } | Batch::Bindings { id, .. } => id,
        }
    }

    pub fn len(&self) -> usize {
        self.ids().len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids().is_empty()
    }

    /// The rows `range` of this batch (to isolate a refused row).
    pub fn slice(&self, r: std::ops::Range<usize>) -> Batch {
        match self {
            Batch::Pins { id, card, pin, created } => Batch::Pins {
                id: id[r.clone()].to_vec(),
                card: card[r.clone()].to_vec(),
                pin: pin[r.clone()].to_vec(),
                created: created[r].to_vec(),
            },
            Batch::Balances { id, account, amount, reason, created } => Batch::Balances {
                id: id[r.clone()].to_vec(),
                account: account[r.clone()].to_vec(),
                amount: amount[r.clone()].to_vec(),
                reason: reason[r.clone()].to_vec(),
                created: created[r].to_vec(),
            },
            Batch::Bindings { id, card, account, status, created } => Batch::Bindings {
                id: id[r.clone()].to_vec(),
                card: card[r.clone()].to_vec(),
                account: account[r.clone()].to_vec(),
                status: status[r.clone()].to_vec(),
                created: created[r].to_vec(),
            },
        }
    }
}

/// The next rows of `table` not yet transferred with an id above `after`, in id order, at
/// most `limit`: those above the watermark in no done run of `done` and not marked. A run
/// starts from its table's watermark, so a row whose id was allocated before but committed
/// after rows already transferred is taken by the next run.
pub async fn read(
    cash: &Client,
    table: Table,
    after: i64,
    limit: usize,
    done: &DoneSet,
) -> Result<Batch, tokio_postgres::Error> {
    let cols = match table {
        Table::AccountPincode => "id, cardnumber, pincode, created_at",
        Table::ChangeAccountBalance => "id, accountnumber, amount, reason, created_at",
        Table::ChangeCardAccount => "id, cardnumber, accountnumber, status, created_at",
    };
    let sql = format!(
        "select {cols} from {} where id between $1 and $2 and transferred_at is null order by id limit $3",
        table.name()
    );
    let mut rows = Vec::new();
    let mut at = after;
    // One query per interval between done runs: in steady state one, past the last run.
    while rows.len() < limit {
        let Some((lo, hi)) = done.next_uncovered(at) else { break };
        rows.extend(cash.query(&sql, &[&lo, &hi, &((limit - rows.len()) as i64)]).await?);
        if hi == i64::MAX {
            break;
        }
        at = hi;
    }
    let rows = &rows[..];
    Ok(match table {
        Table::AccountPincode => {
            Batch::Pins { id: col(rows, 0), card: col(rows, 1), pin: col(rows, 2), created: col(rows, 3) }
        }
        Table::ChangeAccountBalance => Batch::Balances {
            id: col(rows, 0),
            account: col(rows, 1),
            amount: col(rows, 2),
            reason: col(rows, 3),
            created: col(rows, 4),
        },
        Table::ChangeCardAccount => Batch::Bindings {
            id: col(rows, 0),
            card: col(rows, 1),
            account: col(rows, 2),
            status: col(rows, 3),
            created: col(rows, 4),
        },
    })
}

fn col<T: for<'a> tokio_postgres::types::FromSql<'a>>(rows: &[tokio_postgres::Row], i: usize) -> Vec<T> {
    rows.iter().map(|r| r.get(i)).collect()
}

/// The rows of the batch no claim of the source holds (`fresh`), and the claim of them,
/// one row for the batch (`claim`). A claim that may hold an id of the batch covers a range
/// overlapping the batch's; in steady state none does and the index says so at once.
const CLAIM: &str = "bounds as (select min(x) as lo, max(x) as hi from unnest($2::bigint[]) as x),
    claimed as (
        select coalesce(range_agg(c.id_ranges), '{}') as ids from transfer_claim c
         where c.source_id = $1 and c.last_id >= (select lo from bounds) and c.first_id <= (select hi from bounds)
    ),
    fresh_ids as (
        select t.id from unnest($2::bigint[]) as t(id) where not t.id <@ (select ids from claimed)
    ),
    claim as (
        insert into transfer_claim (source_id, first_id, last_id, id_ranges)
        select $1, min(id), max(id), range_agg(int8range(id, id, '[]')) from fresh_ids having count(*) > 0
    )";

/// Serialises the appliers of one source for the rest of the transaction. The job lock
/// already allows one run per cash server; this makes the claims right even if two ran.
const CLAIM_LOCK: &str = "select pg_advisory_xact_lock(hashtext('csjobs transfer claims'), $1)";

/// Who this cash server is (`csjobs_instance.id`), as text: no uuid crate for two queries.
pub async fn cashserver_id(cash: &Client) -> Result<String, tokio_postgres::Error> {
    Ok(cash.query_one("select id::text from csjobs_instance", &[]).await?.get(0))
}

/// The bonus DB's number for `table` of the cash server `instance` (made on first use).
pub async fn source_id(bonus: &Client, instance: &str, table: Table) -> Result<i32, tokio_postgres::Error> {
    bonus
        .execute(
            "insert into transfer_source (cashserver_id, staging_table) values ($1::text::uuid, $2)
             on conflict do nothing",
            &[&instance, &table.name()],
        )
        .await?;
    Ok(bonus
        .query_one(
            "select source_id from transfer_source where cashserver_id = $1::text::uuid and staging_table = $2",
            &[&instance, &table.name()],
        )
        .await?
        .get(0))
}

/// Pins: the newest row per card wins; older ones (in this batch or already stored under a
/// newer staged id) change nothing. Creates the card.
const APPLY_PINS: &str = "
    with {CLAIM},
    r as (
        select t.* from unnest($2::bigint[], $3::text[], $4::text[]) as t(id, card, pin)
        where t.id in (select id from fresh_ids)
    ),
    newest as (select distinct on (card) id, card, pin from r order by card, id desc),
    cards as (
        insert into card (cardnumber) select card from newest
        where not exists (select 1 from card c where c.cardnumber = newest.card)
        on conflict do nothing
    ),
    up as (
        insert into pincode (cardnumber, pincode, updated_at, staged_id)
        select card, pin, now(), id from newest
        on conflict (cardnumber) do update
           set pincode = excluded.pincode, updated_at = excluded.updated_at, staged_id = excluded.staged_id
         where pincode.staged_id is null or pincode.staged_id < excluded.staged_id
    )
    select count(*) from fresh_ids";

/// Balances: one asset row per staged row, same signed amount and reason. Creates the
/// account.
const APPLY_BALANCES: &str = "
    with {CLAIM},
    r as (
        select t.* from unnest($2::bigint[], $3::text[], $4::numeric[], $5::text[], $6::timestamptz[])
                        as t(id, account, amount, reason, created)
        where t.id in (select id from fresh_ids)
    ),
    accounts as (
        insert into account (accountnumber, created_at)
        select distinct account, now() from r
        where not exists (select 1 from account a where a.accountnumber = r.account)
        on conflict do nothing
    ),
    assets as (
        insert into asset (accountnumber, amount, reason, created_at)
        select account, amount, reason, created from r order by id
    )
    select count(*) from fresh_ids";

/// Bindings: the newest row per card sets `cardaccounting` (binding and status) and
/// `card.status`. Creates the card and the account.
const APPLY_BINDINGS: &str = "
    with {CLAIM},
    r as (
        select t.* from unnest($2::bigint[], $3::text[], $4::text[], $5::smallint[]) as t(id, card, account, status)
        where t.id in (select id from fresh_ids)
    ),
    newest as (select distinct on (card) id, card, account, status from r order by card, id desc),
    accounts as (
        insert into account (accountnumber, created_at)
        select distinct account, now() from r
        where account is not null and not exists (select 1 from account a where a.accountnumber = r.account)
        on conflict do nothing
    ),
    cards as (
        insert into card (cardnumber, status) select card, status from newest
        where not exists (select 1 from card c where c.cardnumber = newest.card)
        on conflict do nothing
    ),
    up as (
        insert into cardaccounting (cardnumber, accountnumber, status, updated_at, staged_id)
        select card, account, status, now(), id from newest
        on conflict (cardnumber) do update
           set accountnumber = excluded.accountnumber, status = excluded.status,
               updated_at = excluded.updated_at, staged_id = excluded.staged_id
         where cardaccounting.staged_id is null or cardaccounting.staged_id < excluded.staged_id
        returning cardnumber, status
    ),
    statuses as (update card c set status = up.status from up where c.cardnumber = up.cardnumber and c.status <> up.status)
    select count(*) from fresh_ids";

/// Whether a claim of the source may hold an id of the batch `[$2, $3]`. Only then is the
/// batch filtered id by id (a rerun after a crash, a row committed late); otherwise every
/// row is fresh and the batch is applied whole.
const OVERLAP: &str = "select exists (select 1 from transfer_claim
                                       where source_id = $1 and last_id >= $2 and first_id <= $3)";

/// Applies a batch in one bonus transaction. Returns how many rows were newly claimed (the
/// others were applied by an earlier, interrupted run).
pub async fn apply(bonus: &mut Client, source: i32, batch: &Batch) -> Result<i64, tokio_postgres::Error> {
    let ids = batch.ids();
    let (Some(&lo), Some(&hi)) = (ids.first(), ids.last()) else { return Ok(0) };
    let tx = bonus.transaction().await?;
    tx.execute(CLAIM_LOCK, &[&source]).await?;
    let overlap: bool = tx.query_one(OVERLAP, &[&source, &lo, &hi]).await?.get(0);
    let claimed = if overlap {
        apply_unclaimed(&tx, source, batch).await?
    } else {
        apply_all(&tx, source, batch).await?
    };
    tx.commit().await?;
    Ok(claimed)
}

/// The slow path: one statement per table that leaves out the ids a claim holds.
async fn apply_unclaimed(
    tx: &Transaction<'_>,
    source: i32,
    batch: &Batch,
) -> Result<i64, tokio_postgres::Error> {
    match batch {
        Batch::Pins { id, card, pin, .. } => {
            let params: [&(dyn ToSql + Sync); 4] = [&source, id, card, pin];
            query_count(tx, APPLY_PINS, &params).await
        }
        Batch::Balances { id, account, amount, reason, created } => {
            let params: [&(dyn ToSql + Sync); 6] = [&source, id, account, amount, reason, created];
            query_count(tx, APPLY_BALANCES, &params).await
        }
        Batch::Bindings { id, card, account, status, .. } => {
            let params: [&(dyn ToSql + Sync); 5] = [&source, id, card, account, status];
            query_count(tx, APPLY_BINDINGS, &params).await
        }
    }
}

/// The fast path, no id of the batch claimed before: the claim is one row, the rows are
/// reduced in memory (the newest per card, the distinct accounts) and written set-based;
/// balance changes are copied into `asset` (binary COPY).
async fn apply_all(tx: &Transaction<'_>, source: i32, batch: &Batch) -> Result<i64, tokio_postgres::Error> {
    let ids = batch.ids();
    let (lo, hi) = runs_of(ids);
    tx.execute(
        "insert into transfer_claim (source_id, first_id, last_id, id_ranges)
         select $1, $2, $3, range_agg(int8range(lo, hi, '[]')) from unnest($4::bigint[], $5::bigint[]) as r(lo, hi)",
        &[&source, &ids[0], &ids[ids.len() - 1], &lo, &hi],
    )
    .await?;
    match batch {
        Batch::Pins { id, card, pin, .. } => {
            let keep = newest_per_card(card);
            let card: Vec<&str> = keep.iter().map(|&i| card[i].as_str()).collect();
            let pin: Vec<&str> = keep.iter().map(|&i| pin[i].as_str()).collect();
            let id: Vec<i64> = keep.iter().map(|&i| id[i]).collect();
            tx.execute(
                "insert into card (cardnumber) select c from unnest($1::text[]) as c
                  where not exists (select 1 from card where cardnumber = c) on conflict do nothing",
                &[&card],
            )
            .await?;
            tx.execute(UPSERT_PINS, &[&card, &pin, &id]).await?;
        }
        Batch::Balances { account, amount, reason, created, .. } => {
            insert_accounts(tx, account.iter().map(String::as_str)).await?;
            let sink = tx
                .copy_in("copy asset (accountnumber, amount, reason, created_at) from stdin (format binary)")
                .await?;
            let writer =
                BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::NUMERIC, Type::TEXT, Type::TIMESTAMPTZ]);
            let mut writer = std::pin::pin!(writer);
            for i in 0..ids.len() {
                let row: [&(dyn ToSql + Sync); 4] = [&account[i], &amount[i], &reason[i], &created[i]];
                writer.as_mut().write(&row).await?;
            }
            writer.finish().await?;
        }
        Batch::Bindings { id, card, account, status, .. } => {
            insert_accounts(tx, account.iter().flatten().map(String::as_str)).await?;
            let keep = newest_per_card(card);
            let card: Vec<&str> = keep.iter().map(|&i| card[i].as_str()).collect();
            let account: Vec<Option<&str>> = keep.iter().map(|&i| account[i].as_deref()).collect();
            let status: Vec<i16> = keep.iter().map(|&i| status[i]).collect();
            let id: Vec<i64> = keep.iter().map(|&i| id[i]).collect();
            tx.execute(UPSERT_BINDINGS, &[&card, &account, &status, &id]).await?;
        }
    }
    Ok(ids.len() as i64)
}

/// The accounts a batch refers to, created when missing (each once, in a fixed order). The
/// `not exists` probe is cheaper than letting `on conflict` find the existing ones (about
/// 1 against 1.6 µs an account); `on conflict` stays for an account inserted meanwhile.
async fn insert_accounts<'a>(
    tx: &Transaction<'_>,
    accounts: impl Iterator<Item = &'a str>,
) -> Result<(), tokio_postgres::Error> {
    let mut accounts: Vec<&str> = accounts.collect();
    accounts.sort_unstable();
    accounts.dedup();
    tx.execute(
        "insert into account (accountnumber, created_at) select a, now() from unnest($1::text[]) as a
          where not exists (select 1 from account where accountnumber = a) on conflict do nothing",
        &[&accounts],
    )
    .await?;
    Ok(())
}

/// The index of the newest row of each card (rows in id order: the last one), ascending.
pub fn newest_per_card(cards: &[String]) -> Vec<usize> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(cards.len());
    for (i, c) in cards.iter().enumerate() {
        last.insert(c.as_str(), i);
    }
    let mut keep: Vec<usize> = last.into_values().collect();
    keep.sort_unstable();
    keep
}

/// Pins of distinct cards: a value from a lower staged id than the one stored changes nothing.
const UPSERT_PINS: &str = "
    insert into pincode (cardnumber, pincode, updated_at, staged_id)
    select c, p, now(), i from unnest($1::text[], $2::text[], $3::bigint[]) as t(c, p, i)
    on conflict (cardnumber) do update
       set pincode = excluded.pincode, updated_at = excluded.updated_at, staged_id = excluded.staged_id
     where pincode.staged_id is null or pincode.staged_id < excluded.staged_id";

/// Bindings of distinct cards, and the card's status; a card is created with its status (a
/// statement does not see its own inserts, so the update touches only cards that existed).
const UPSERT_BINDINGS: &str = "
    with cards as (
        insert into card (cardnumber, status) select c, s from unnest($1::text[], $3::smallint[]) as t(c, s)
         where not exists (select 1 from card where cardnumber = c) on conflict do nothing
    ),
    up as (
        insert into cardaccounting (cardnumber, accountnumber, status, updated_at, staged_id)
        select c, a, s, now(), i from unnest($1::text[], $2::text[], $3::smallint[], $4::bigint[]) as t(c, a, s, i)
        on conflict (cardnumber) do update
           set accountnumber = excluded.accountnumber, status = excluded.status,
               updated_at = excluded.updated_at, staged_id = excluded.staged_id
         where cardaccounting.staged_id is null or cardaccounting.staged_id < excluded.staged_id
        returning cardnumber, status
    )
    update card c set status = up.status from up where c.cardnumber = up.cardnumber and c.status <> up.status";

async fn query_count<C: GenericClient>(
    c: &C,
    template: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<i64, tokio_postgres::Error> {
    let sql = template.replace("{CLAIM}", CLAIM);
    Ok(c.query_one(&sql, params).await?.get(0))
}

/// Marks a row the bonus DB refused: skipped from now on, with the reason kept. (The job
/// also records it in `error_message`.)
pub async fn mark_refused(
    cash: &Client,
    table: Table,
    id: i64,
    reason: &str,
) -> Result<(), tokio_postgres::Error> {
    let sql =
        format!("update {} set transferred_at = now(), transfer_error = $2 where id = $1", table.name());
    cash.execute(&sql, &[&id, &reason]).await?;
    Ok(())
}

/// Forgets claims older than `days`: by then the cash server side has long marked the row
/// (any successful run does), so it is never read again.
pub async fn prune_claims(bonus: &Client, days: u32) -> Result<u64, tokio_postgres::Error> {
    bonus
        .execute(
            "delete from transfer_claim where applied_at < now() - make_interval(days => $1)",
            &[&(days as i32)],
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_row_of_each_card_in_id_order() {
        let cards: Vec<String> = ["C1", "C2", "C1", "C3", "C2", "C1"].iter().map(|s| s.to_string()).collect();
        assert_eq!(newest_per_card(&cards), [3, 4, 5]);
        assert_eq!(newest_per_card(&[]), Vec::<usize>::new());
    }
}
