//! The three staging tables and what each of their rows does in the bonus DB. All the SQL
//! of the transfer is here.
//!
//! Exactly once, structurally: the bonus transaction that applies a batch leaves out the
//! staged ids that a claim of its source already holds (`transfer_claim`), applies the rest
//! and records them as one new claim. A claim and its effect commit together, so a row
//! re-read after a crash (its `transferred_at` not yet set on the cash server side) finds
//! its claim and changes nothing. Appliers of one source are serialised by a transaction
//! advisory lock, so two of them can never both find an id unclaimed.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tokio_postgres::{types::ToSql, Client, GenericClient};

/// A staging table (промежуточная таблица) that outside systems insert into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// Pin codes of cards (`accountpincodetemp` → `pincode`).
    AccountPincode,
    /// Balance changes (`changeaccountbalancetemp` → `asset`).
    ChangeAccountBalance,
    /// Card bindings and statuses (`changecardaccounttemp` → `cardaccounting`, `card.status`).
    ChangeCardAccount,
}

impl Table {
    pub const ALL: [Table; 3] =
        [Table::AccountPincode, Table::ChangeAccountBalance, Table::ChangeCardAccount];

    pub fn name(self) -> &'static str {
        match self {
            Table::AccountPincode => "accountpincodetemp",
            Table::ChangeAccountBalance => "changeaccountbalancetemp",
            Table::ChangeCardAccount => "changecardaccounttemp",
        }
    }

    pub fn parse(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }
}

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

/// The next rows of `table` not yet transferred, with an id above `after`, in id order.
/// Each run starts again from the lowest pending id, so a row whose id was allocated before
/// but committed after rows already transferred is taken by the next run.
pub async fn read(
    cash: &Client,
    table: Table,
    after: i64,
    limit: usize,
) -> Result<Batch, tokio_postgres::Error> {
    let cols = match table {
        Table::AccountPincode => "id, cardnumber, pincode, created_at",
        Table::ChangeAccountBalance => "id, accountnumber, amount, reason, created_at",
        Table::ChangeCardAccount => "id, cardnumber, accountnumber, status, created_at",
    };
    let sql = format!(
        "select {cols} from {} where transferred_at is null and id > $1 order by id limit $2",
        table.name()
    );
    let rows = cash.query(&sql, &[&after, &(limit as i64)]).await?;
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

/// The rows of `table` waiting for transfer (`--dry-run`).
pub async fn pending(cash: &Client, table: Table) -> Result<i64, tokio_postgres::Error> {
    let sql = format!("select count(*) from {} where transferred_at is null", table.name());
    Ok(cash.query_one(&sql, &[]).await?.get(0))
}

/// The rows of the batch no claim of the source holds (`fresh`), and the claim of them,
/// one row for the batch (`claim`). A claim that may hold an id of the batch covers a range
/// overlapping the batch's; in steady state none does and the index says so at once.
const CLAIM: &str = "bounds as (select min(x) as lo, max(x) as hi from unnest($2::bigint[]) as x),
    fresh_ids as (
        select t.id from unnest($2::bigint[]) as t(id)
        where not exists (
            select 1 from transfer_claim c cross join lateral unnest(c.ids) as d(id)
            where c.source_id = $1 and c.last_id >= (select lo from bounds)
              and c.first_id <= (select hi from bounds) and d.id = t.id)
    ),
    claim as (
        insert into transfer_claim (source_id, first_id, last_id, ids)
        select $1, min(id), max(id), array_agg(id order by id) from fresh_ids having count(*) > 0
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
    statuses as (update card c set status = up.status from up where c.cardnumber = up.cardnumber)
    select count(*) from fresh_ids";

/// Applies a batch in one bonus transaction. Returns how many rows were newly claimed (the
/// others were applied by an earlier, interrupted run).
pub async fn apply(bonus: &mut Client, source: i32, batch: &Batch) -> Result<i64, tokio_postgres::Error> {
    let tx = bonus.transaction().await?;
    tx.execute(CLAIM_LOCK, &[&source]).await?;
    let claimed: i64 = match batch {
        Batch::Pins { id, card, pin, .. } => {
            let params: [&(dyn ToSql + Sync); 4] = [&source, id, card, pin];
            query_count(&tx, APPLY_PINS, &params).await?
        }
        Batch::Balances { id, account, amount, reason, created } => {
            let params: [&(dyn ToSql + Sync); 6] = [&source, id, account, amount, reason, created];
            query_count(&tx, APPLY_BALANCES, &params).await?
        }
        Batch::Bindings { id, card, account, status, .. } => {
            let params: [&(dyn ToSql + Sync); 5] = [&source, id, card, account, status];
            query_count(&tx, APPLY_BINDINGS, &params).await?
        }
    };
    tx.commit().await?;
    Ok(claimed)
}

async fn query_count<C: GenericClient>(
    c: &C,
    template: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<i64, tokio_postgres::Error> {
    let sql = template.replace("{CLAIM}", CLAIM);
    Ok(c.query_one(&sql, params).await?.get(0))
}

/// Marks rows as transferred on the cash server side (after their bonus commit).
pub async fn mark(cash: &Client, table: Table, ids: &[i64]) -> Result<(), tokio_postgres::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = format!("update {} set transferred_at = now() where id = any($1)", table.name());
    cash.execute(&sql, &[&ids]).await?;
    Ok(())
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
