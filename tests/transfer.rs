//! `csjobs transfer` between a real cash server DB and a real bonus DB (rules.md §2).

mod common;

use common::*;

async fn stage(cash: &TestDb, sql: &str) {
    cash.client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A database as an older csjobs left it: the first `count` migrations of `db` applied and
/// recorded, the rest for `migrate` to bring.
async fn migrated_up_to(tag: &str, db: csjobs::core::db::Database, count: usize) -> TestDb {
    let t = TestDb::empty(tag).await;
    stage(
        &t,
        "create table csjobs_schema_migrations (version int primary key, name text not null,
             checksum text not null, applied_at timestamptz not null default now())",
    )
    .await;
    for m in &db.migrations()[..count] {
        stage(&t, m.sql).await;
        t.client
            .execute(
                "insert into csjobs_schema_migrations (version, name, checksum) values ($1, $2, $3)",
                &[&m.version, &m.name, &m.checksum()],
            )
            .await
            .unwrap();
    }
    t
}

/// A trigger that terminates its own backend when it fires: a connection lost at exactly
/// that statement.
fn die_on(when: &str) -> String {
    format!(
        "create function die() returns trigger language plpgsql as $$
         begin perform pg_terminate_backend(pg_backend_pid()); return new; end $$;
         create trigger die {when} execute function die();"
    )
}

#[tokio::test]
async fn each_table_maps_row_by_row_and_creates_missing_cards_and_accounts() {
    let (cash, bonus, dirs) = (TestDb::cashserver().await, TestDb::bonus().await, Dirs::new());
    bonus
        .client
        .batch_execute("insert into card values ('C-OLD', 2); insert into account values ('A-OLD', now())")
        .await
        .unwrap();
    stage(
        &cash,
        "insert into accountpincodetemp (cardnumber, pincode) values ('C1', '1111'), ('C2', '2222'), ('C1', '1234');
         insert into changeaccountbalancetemp (accountnumber, amount, reason) values
             ('A1', 100.00, 'accrual'), ('A1', -30.50, 'write-off'), ('A-OLD', 5.00, null);
         insert into changecardaccounttemp (cardnumber, accountnumber, status) values
             ('C1', 'A1', 1), ('C3', 'A3', 3), ('C-OLD', 'A-OLD', 0), ('C3', null, 2);",
    )
    .await;
    let r = transfer(&cash, &bonus, &dirs, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("transfer: 10 rows"), "{}", r.stdout);
    // The newest pin per card wins; cards are created.
    assert_eq!(
        bonus.rows("select cardnumber, pincode from pincode order by 1").await,
        ["(C1,1234)", "(C2,2222)"]
    );
    // One asset row per staged row, same signed amount and reason.
    assert_eq!(
        bonus.rows("select accountnumber, amount, reason from asset order by assetid").await,
        ["(A1,100.00,accrual)", "(A1,-30.50,write-off)", "(A-OLD,5.00,)"]
    );
    assert_eq!(bonus.rows("select sum(amount) from asset where accountnumber = 'A1'").await, ["(69.50)"]);
    // Bindings, in id order per card: C3 was bound, then unbound with status 2.
    assert_eq!(
        bonus.rows("select cardnumber, accountnumber, status from cardaccounting order by 1").await,
        ["(C-OLD,A-OLD,0)", "(C1,A1,1)", "(C3,,2)"]
    );
    assert_eq!(
        bonus.rows("select cardnumber, status from card order by 1").await,
        ["(C-OLD,0)", "(C1,1)", "(C2,0)", "(C3,2)"]
    );
    assert_eq!(bonus.rows("select accountnumber from account order by 1").await, ["(A-OLD)", "(A1)", "(A3)"]);
    // Staged rows are kept, none pending, and the watermarks stand at the last ids (the
    // done log is compacted: the next run reads from there).
    assert_eq!(
        cash.scalar_i64(
            "select (select count(*) from accountpincodetemp) + (select count(*) from changeaccountbalancetemp)
                  + (select count(*) from changecardaccounttemp)"
        )
        .await,
        10
    );
    assert_eq!(cash.scalar_i64("select count(*) from transfer_pending").await, 0);
    assert_eq!(
        cash.rows("select staging_table, last_id from transfer_watermark order by 1").await,
        ["(accountpincodetemp,3)", "(changeaccountbalancetemp,3)", "(changecardaccounttemp,4)"]
    );
    // Running again changes nothing.
    let r = transfer(&cash, &bonus, &dirs, &[]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("transfer: 0 rows"), "{}", r.stdout);
    assert_eq!(bonus.scalar_i64("select count(*) from asset").await, 3);
    assert_eq!(
        cash.rows("select job, outcome from job_run order by run_id").await,
        ["(transfer,done)", "(transfer,done)"]
    );
}

#[tokio::test]
async fn a_row_committed_late_with_a_lower_id_is_taken_later_and_never_overwrites_a_newer_one() {
    let (cash, bonus, dirs) = (TestDb::cashserver().await, TestDb::bonus().await, Dirs::new());
    // Writer A allocates its id first but commits last.
    let (a, conn) = tokio_postgres::connect(&cash.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    a.batch_execute("begin").await.unwrap();
    let early: i64 = a
        .query_one("select nextval(pg_get_serial_sequence('accountpincodetemp', 'id'))", &[])
        .await
        .unwrap()
        .get(0);
    a.execute("insert into changeaccountbalancetemp (accountnumber, amount) values ('A1', 7.00)", &[])
        .await
        .unwrap();
    stage(
        &cash,
        "insert into accountpincodetemp (cardnumber, pincode) values ('C1', 'newer');
         insert into changeaccountbalancetemp (accountnumber, amount) values ('A1', 1.00);",
    )
    .await;
    assert_eq!(transfer(&cash, &bonus, &dirs, &[]).code, 0);
    assert_eq!(bonus.rows("select pincode from pincode").await, ["(newer)"]);
    assert_eq!(bonus.rows("select sum(amount) from asset").await, ["(1.00)"], "open transactions wait");

    a.execute(
        "insert into accountpincodetemp (id, cardnumber, pincode) values ($1, 'C1', 'older')",
        &[&early],
    )
    .await
    .unwrap();
    a.batch_execute("commit").await.unwrap();
    assert_eq!(transfer(&cash, &bonus, &dirs, &[]).code, 0);
    assert_eq!(
        bonus.rows("select sum(amount), count(*) from asset").await,
        ["(8.00,2)"],
        "taken by a later run"
    );
    assert_eq!(bonus.rows("select pincode from pincode").await, ["(newer)"], "the newest staged pin wins");
    assert_eq!(
        cash.scalar_i64("select count(*) from transfer_pending where staging_table = \'accountpincodetemp\'")
            .await,
        0
    );
}

#[tokio::test]
async fn killed_after_the_bonus_commit_the_next_run_only_marks() {
    let (cash, bonus, dirs) = (TestDb::cashserver().await, TestDb::bonus().await, Dirs::new());
    stage(&cash, "insert into changeaccountbalancetemp (accountnumber, amount) select 'A' || (i % 7), i from generate_series(1, 500) i").await;
    // The cash server connection dies exactly when the applied rows are to be recorded done.
    stage(&cash, &die_on("before insert on transfer_done for each row")).await;
    let r = transfer(&cash, &bonus, &dirs, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("the next run only marks them"), "{}", r.stderr);
    assert_eq!(bonus.scalar_i64("select count(*) from asset").await, 500, "applied, not yet marked");
    stage(&cash, "drop trigger die on transfer_done").await;
    let r = transfer(&cash, &bonus, &dirs, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("changeaccountbalancetemp            0        500          0"), "{}", r.stdout);
    assert_eq!(bonus.scalar_i64("select count(*) from asset").await, 500, "nothing applied twice");
    assert_eq!(bonus.rows("select sum(amount) from asset").await, ["(125250.00)"]);
}

#[tokio::test]
async fn bonus_connection_lost_mid_run_exits_1_and_the_next_run_repairs() {
    let (cash, bonus, dirs) = (TestDb::cashserver().await, TestDb::bonus().await, Dirs::new());
    stage(&cash, "insert into changeaccountbalancetemp (accountnumber, amount) select 'A' || (i % 3), 1 from generate_series(1, 300) i").await;
    bonus
        .client
        .batch_execute(
            "create function die() returns trigger language plpgsql as $$
             begin if (select count(*) from asset) >= 200 then perform pg_terminate_backend(pg_backend_pid()); end if;
                   return new; end $$;
             create trigger die before insert on asset for each statement execute function die();",
        )
        .await
        .unwrap();
    let mut c = csjobs(&cash.url, &dirs);
    c.env("CSJOBS_BONUS_DATABASE_URL", &bonus.url).env("CSJOBS_TRANSFER_BATCH_ROWS", "100").arg("transfer");
    let r = run(c);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("the bonus DB cannot be used"), "{}", r.stderr);
    assert_eq!(bonus.scalar_i64("select count(*) from asset").await, 200);
    bonus.client.batch_execute("drop trigger die on asset").await.unwrap();
    assert_eq!(transfer(&cash, &bonus, &dirs, &[]).code, 0);
    assert_eq!(bonus.scalar_i64("select count(*) from asset").await, 300);
    assert_eq!(
        bonus.scalar_i64("select coalesce(sum(upper(r) - lower(r)), 0)::bigint from transfer_claim, unnest(id_ranges) r").await,
        300
    );
}

#[tokio::test]
async fn a_row_the_bonus_db_refuses_is_recorded_skipped_and_never_blocks_the_others() {
    let (cash, bonus, dirs) = (TestDb::cashserver().await, TestDb::bonus().await, Dirs::new());
    bonus
        .client
        .batch_execute("alter table asset add constraint reason_short check (length(reason) <= 20)")
        .await
        .unwrap();
    stage(
        &cash,
        "insert into changeaccountbalancetemp (accountnumber, amount, reason)
         select 'A1', 1, case when i = 37 then repeat('x', 50) else 'ok' end from generate_series(1, 100) i",
    )
    .await;
    let r = transfer(&cash, &bonus, &dirs, &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(bonus.scalar_i64("select count(*) from asset").await, 99);
    let refused = cash.rows("select id, transfer_error is not null from changeaccountbalancetemp where transfer_error is not null").await;
    assert_eq!(refused.len(), 1);
    assert!(cash
        .rows("select transfer_error from changeaccountbalancetemp where transfer_error is not null")
        .await[0]
        .contains("reason_short"));
    assert_eq!(cash.scalar_i64("select count(*) from error_message where job = 'transfer'").await, 1);
    // Not retried forever.
    let r = transfer(&cash, &bonus, &dirs, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(bonus.scalar_i64("select count(*) from asset").await, 99);
}

#[tokio::test]
async fn lock_held_exits_4_unreachable_bonus_exits_1_bad_table_exits_2() {
    let (cash, bonus, dirs) = (TestDb::cashserver().await, TestDb::bonus().await, Dirs::new());
    stage(&cash, "insert into accountpincodetemp (cardnumber, pincode) values ('C1', '1')").await;

    let key = csjobs::core::db::lock_key("csjobs job lock: transfer");
    cash.client.execute("select pg_advisory_lock($1)", &[&key]).await.unwrap();
    let r = transfer(&cash, &bonus, &dirs, &[]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    cash.client.execute("select pg_advisory_unlock($1)", &[&key]).await.unwrap();

    let mut c = csjobs(&cash.url, &dirs);
    c.env("CSJOBS_BONUS_DATABASE_URL", "postgres://bonus:Secret42@127.0.0.1:1/bonus").arg("transfer");
    let r = run(c);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("bonus DB") && r.stderr.contains("bonus@"), "{}", r.stderr);
    assert!(!r.stderr.contains("Secret42"));

    let r = transfer(&cash, &bonus, &dirs, &["--table", "nosuchtemp"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("nosuchtemp"));

    let mut c = csjobs(&cash.url, &dirs);
    c.arg("transfer");
    assert_eq!(run(c).code, 2, "no bonus URL");

    assert_eq!(
        cash.scalar_i64("select count(*) from transfer_pending where staging_table = \'accountpincodetemp\'")
            .await,
        1
    );
}

#[tokio::test]
async fn table_option_and_dry_run() {
    let (cash, bonus, dirs) = (TestDb::cashserver().await, TestDb::bonus().await, Dirs::new());
    stage(
        &cash,
        "insert into accountpincodetemp (cardnumber, pincode) values ('C1', '1'), ('C2', '2');
         insert into changeaccountbalancetemp (accountnumber, amount) values ('A1', 1);",
    )
    .await;
    let r = transfer(&cash, &bonus, &dirs, &["--dry-run"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("accountpincodetemp                  2"), "{}", r.stdout);
    assert!(r.stdout.contains("changeaccountbalancetemp            1"), "{}", r.stdout);
    assert_eq!(bonus.scalar_i64("select count(*) from pincode").await, 0);
    let r = transfer(&cash, &bonus, &dirs, &["--table", "changeaccountbalancetemp"]);
    assert_eq!(r.code, 0);
    assert_eq!(bonus.scalar_i64("select count(*) from asset").await, 1);
    assert_eq!(bonus.scalar_i64("select count(*) from pincode").await, 0);
}

#[tokio::test]
async fn two_cash_servers_with_overlapping_ids_feed_one_bonus_db() {
    let (cash_a, cash_b, bonus, dirs) =
        (TestDb::cashserver().await, TestDb::cashserver().await, TestDb::bonus().await, Dirs::new());
    stage(
        &cash_a,
        "insert into changeaccountbalancetemp (accountnumber, amount) values ('A1', 1), ('A1', 2)",
    )
    .await;
    stage(
        &cash_b,
        "insert into changeaccountbalancetemp (accountnumber, amount) values ('A1', 10), ('A1', 20)",
    )
    .await;
    assert_eq!(
        cash_a.rows("select id from changeaccountbalancetemp order by id").await,
        cash_b.rows("select id from changeaccountbalancetemp order by id").await,
        "the same staged ids on both cash servers"
    );
    assert_eq!(transfer(&cash_a, &bonus, &dirs, &[]).code, 0);
    assert_eq!(transfer(&cash_b, &bonus, &dirs, &[]).code, 0);
    assert_eq!(bonus.rows("select sum(amount), count(*) from asset").await, ["(33.00,4)"]);
}

/// A bonus DB migrated before claims were per batch (0001, 0002 only) holds per-row claims
/// of rows the cash server never marked (killed after the bonus commit). After `migrate`
/// brings 0003, those rows are still applied exactly once.
#[tokio::test]
async fn claims_made_before_the_per_batch_migration_still_hold() {
    let cash = TestDb::cashserver().await;
    let bonus = migrated_up_to("bonus_upgrade", csjobs::core::db::Database::Bonus, 2).await;
    let dirs = Dirs::new();
    stage(
        &cash,
        "insert into changeaccountbalancetemp (accountnumber, amount, reason) values
             ('A1', 1.00, 'a'), ('A1', 2.00, 'b'), ('A1', 4.00, 'c'), ('A1', 8.00, 'd');",
    )
    .await;
    // The old run applied ids 1..3 and died before marking them on the cash server.
    let instance: String =
        cash.client.query_one("select id::text from csjobs_instance", &[]).await.unwrap().get(0);
    bonus
        .client
        .batch_execute(&format!(
            "insert into account values ('A1', now());
             insert into asset (accountnumber, amount, reason, created_at)
                 values ('A1', 1.00, 'a', now()), ('A1', 2.00, 'b', now()), ('A1', 4.00, 'c', now());
             insert into transfer_source (cashserver_id, staging_table) values ('{instance}', 'changeaccountbalancetemp');
             insert into transfer_applied (source_id, staged_id) select source_id, g from transfer_source, generate_series(1, 3) g;"
        ))
        .await
        .unwrap();

    let mut c = csjobs(&cash.url, &dirs);
    c.env("CSJOBS_BONUS_DATABASE_URL", &bonus.url).args(["migrate", "--bonus"]);
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("0003_transfer_claims"), "{}", r.stdout);

    assert_eq!(transfer(&cash, &bonus, &dirs, &[]).code, 0);
    assert_eq!(
        bonus.rows("select amount from asset order by assetid").await,
        ["(1.00)", "(2.00)", "(4.00)", "(8.00)"]
    );
    assert_eq!(
        cash.scalar_i64(
            "select count(*) from transfer_pending where staging_table = \'changeaccountbalancetemp\'"
        )
        .await,
        0
    );
}

/// The window the done log adds: a batch recorded done, the run killed before the watermark
/// moved over it. The next run skips the done rows (reads past them), moves the watermark and
/// ends where an uninterrupted run ends.
#[tokio::test]
async fn killed_between_the_done_row_and_the_watermark_the_next_run_moves_it_and_applies_nothing_again() {
    let (cash, bonus, dirs) = (TestDb::cashserver().await, TestDb::bonus().await, Dirs::new());
    stage(&cash, "insert into changeaccountbalancetemp (accountnumber, amount) select 'A' || (i % 5), i from generate_series(1, 300) i").await;
    stage(&cash, &die_on("before update on transfer_watermark for each row")).await;
    let mut c = csjobs(&cash.url, &dirs);
    c.env("CSJOBS_BONUS_DATABASE_URL", &bonus.url).env("CSJOBS_TRANSFER_BATCH_ROWS", "100").arg("transfer");
    let r = run(c);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("moving the watermark of changeaccountbalancetemp"), "{}", r.stderr);
    assert_eq!(cash.scalar_i64("select count(*) from transfer_done").await, 3, "all three batches recorded");
    assert_eq!(
        cash.scalar_i64("select count(*) from transfer_pending").await,
        0,
        "the done log says so alone"
    );
    assert_eq!(
        cash.scalar_i64(
            "select last_id from transfer_watermark where staging_table = 'changeaccountbalancetemp'"
        )
        .await,
        0
    );
    stage(&cash, "drop trigger die on transfer_watermark").await;
    let r = transfer(&cash, &bonus, &dirs, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("transfer: 0 rows"), "nothing read again: {}", r.stdout);
    assert_eq!(
        cash.scalar_i64(
            "select last_id from transfer_watermark where staging_table = 'changeaccountbalancetemp'"
        )
        .await,
        300
    );
    assert_eq!(bonus.rows("select count(*), sum(amount) from asset").await, ["(300,45150.00)"]);
}

/// With CACHE > 1 a session hands out ids from its own block, so a low id can be committed
/// after higher ones were transferred although no transaction was open in between: no hole
/// is ever certain. The watermark must then stay, and the row is still taken.
#[tokio::test]
async fn a_cached_id_sequence_keeps_the_watermark_and_a_low_id_committed_later_is_still_taken() {
    let (cash, bonus, dirs) = (TestDb::cashserver().await, TestDb::bonus().await, Dirs::new());
    stage(&cash, "alter table changeaccountbalancetemp alter column id set cache 10").await;
    let (a, conn) = tokio_postgres::connect(&cash.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let insert = "insert into changeaccountbalancetemp (accountnumber, amount) values ('A1', 1) returning id";
    let first: i64 = a.query_one(insert, &[]).await.unwrap().get(0);
    let other: i64 = cash.client.query_one(insert, &[]).await.unwrap().get(0);
    assert!(other > first + 1, "two sessions, two cached blocks: {first} {other}");
    assert_eq!(transfer(&cash, &bonus, &dirs, &[]).code, 0);
    let second: i64 = a.query_one(insert, &[]).await.unwrap().get(0);
    assert_eq!(second, first + 1, "from session a's block, below the ids transferred");
    let r = transfer(&cash, &bonus, &dirs, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("transfer: 1 rows"), "{}", r.stdout);
    assert_eq!(bonus.rows("select count(*), sum(amount) from asset").await, ["(3,3.00)"]);
    assert_eq!(
        cash.scalar_i64(
            "select last_id from transfer_watermark where staging_table = 'changeaccountbalancetemp'"
        )
        .await,
        0
    );
}

/// A transaction left open holds a low id: the watermark cannot pass it, so the done rows
/// above it stay in the done log, and every run must read past them (not apply them again,
/// not read them again) until the transaction ends; then its row is taken and the watermark
/// catches up.
#[tokio::test]
async fn an_open_transaction_holds_the_watermark_and_runs_read_past_the_done_rows_above_it() {
    let (cash, bonus, dirs) = (TestDb::cashserver().await, TestDb::bonus().await, Dirs::new());
    let (a, conn) = tokio_postgres::connect(&cash.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    a.batch_execute(
        "begin; insert into changeaccountbalancetemp (accountnumber, amount) values ('LATE', 1000)",
    )
    .await
    .unwrap();
    stage(&cash, "insert into changeaccountbalancetemp (accountnumber, amount) select 'A' || (i % 5), i from generate_series(1, 300) i").await;
    let watermark = "select last_id from transfer_watermark where staging_table = 'changeaccountbalancetemp'";
    let mut c = csjobs(&cash.url, &dirs);
    c.env("CSJOBS_BONUS_DATABASE_URL", &bonus.url).env("CSJOBS_TRANSFER_BATCH_ROWS", "100").arg("transfer");
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("transfer: 300 rows"), "{}", r.stdout);
    assert_eq!(cash.scalar_i64(watermark).await, 0, "id 1 may still come");
    assert_eq!(cash.scalar_i64("select count(*) from transfer_done").await, 3);

    let r = transfer(&cash, &bonus, &dirs, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("transfer: 0 rows"), "the done rows are read past, not again: {}", r.stdout);

    a.batch_execute("commit").await.unwrap();
    let r = transfer(&cash, &bonus, &dirs, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("transfer: 1 rows"), "{}", r.stdout);
    assert_eq!(bonus.rows("select count(*), sum(amount) from asset").await, ["(301,46150.00)"]);
    assert_eq!(cash.scalar_i64(watermark).await, 301, "caught up once nothing is open");
}

/// A cash server DB whose rows were marked `transferred_at` before the done log (0008): after
/// `migrate`, those rows are done (never sent again), the pending one is taken, and the
/// watermark passes them all.
#[tokio::test]
async fn rows_marked_before_the_done_log_migration_are_not_sent_again() {
    let cash = migrated_up_to("cash_upgrade", csjobs::core::db::Database::CashServer, 7).await;
    assert!(csjobs::core::db::Database::CashServer.migrations()[7].name.contains("transfer_done"));
    let (bonus, dirs) = (TestDb::bonus().await, Dirs::new());
    stage(
        &cash,
        "insert into changeaccountbalancetemp (accountnumber, amount, transferred_at) values
             ('A1', 1, now()), ('A1', 2, now()), ('A1', 4, null), ('A1', 8, now());",
    )
    .await;
    let mut c = csjobs(&cash.url, &dirs);
    c.args(["migrate"]);
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("0008_transfer_done"), "{}", r.stdout);
    assert_eq!(cash.rows("select id from transfer_pending").await, ["(3)"]);
    let r = transfer(&cash, &bonus, &dirs, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(bonus.rows("select amount from asset").await, ["(4.00)"]);
    // Up to the last done row (id 3): ids 1 and 2 are passed; 4 stays above it, done by its mark.
    assert_eq!(
        cash.scalar_i64(
            "select last_id from transfer_watermark where staging_table = 'changeaccountbalancetemp'"
        )
        .await,
        3
    );
    assert_eq!(transfer(&cash, &bonus, &dirs, &[]).code, 0);
    assert_eq!(bonus.scalar_i64("select count(*) from asset").await, 1, "nothing sent again");
}

/// The first SIGTERM asks the run to finish its batch; when that batch cannot finish (here
/// it waits for a lock another session holds) a second one exits at once, code 1. Nothing
/// was committed for the batch, and the next run transfers every row exactly once.
#[tokio::test]
async fn a_second_stop_request_exits_at_once_with_1_and_the_next_run_carries_on() {
    use rustix::process::{kill_process, Pid, Signal};
    use std::time::{Duration, Instant};
    let (cash, bonus, dirs) = (TestDb::cashserver().await, TestDb::bonus().await, Dirs::new());
    stage(&cash, "insert into changeaccountbalancetemp (accountnumber, amount) select 'A', i from generate_series(1, 100) i").await;
    let (holder, conn) = tokio_postgres::connect(&bonus.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    holder.batch_execute("begin; lock table asset in access exclusive mode").await.unwrap();

    let mut c = csjobs(&cash.url, &dirs);
    c.env("CSJOBS_BONUS_DATABASE_URL", &bonus.url)
        .arg("transfer")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let pid = Pid::from_child(&child);
    // Its log, line by line as it comes: the test waits for what the run says, not for a while.
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let log = log.clone();
        let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            let mut line = String::new();
            while std::io::BufRead::read_line(&mut err, &mut line).is_ok_and(|n| n > 0) {
                log.lock().unwrap().push_str(&line);
                line.clear();
            }
        })
    };
    let waiting = "select count(*) from pg_stat_activity
                    where datname = current_database() and wait_event_type = 'Lock' and query ilike '%asset%'";
    let deadline = Instant::now() + Duration::from_secs(30);
    while bonus.scalar_i64(waiting).await == 0 {
        assert!(Instant::now() < deadline, "the run never reached the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill_process(pid, Signal::TERM).unwrap();
    // The run has taken the request (it says so) and goes on waiting for its batch.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !log.lock().unwrap().contains("stop requested") {
        assert!(child.try_wait().unwrap().is_none(), "the first request waits for the batch");
        assert!(Instant::now() < deadline, "the run never took the stop request: {}", log.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(child.try_wait().unwrap().is_none(), "the first request waits for the batch");
    assert_eq!(bonus.scalar_i64(waiting).await, 1, "still waiting for the lock after the first request");
    kill_process(pid, Signal::TERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "a second stop request did not end the run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    reader.join().unwrap();
    let stderr = log.lock().unwrap().clone();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("second stop request"), "{stderr}");

    holder.batch_execute("rollback").await.unwrap();
    let r = transfer(&cash, &bonus, &dirs, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(bonus.rows("select count(*), sum(amount) from asset").await, ["(100,5050.00)"]);
}

/// One SIGTERM: the run finishes the batch under way and exits 0; the rows of later batches
/// stay staged; the next run transfers them, each exactly once.
#[tokio::test]
async fn one_sigterm_finishes_the_batch_exits_0_and_the_rerun_completes() {
    let (cash, bonus, dirs) = (TestDb::cashserver().await, TestDb::bonus().await, Dirs::new());
    stage(&cash, "insert into changeaccountbalancetemp (accountnumber, amount) select 'A' || (i % 7), i from generate_series(1, 3000) i").await;
    let mut c = csjobs(&cash.url, &dirs);
    c.env("CSJOBS_BONUS_DATABASE_URL", &bonus.url).env("CSJOBS_TRANSFER_BATCH_ROWS", "10").arg("transfer");
    stop_once_under_way(c, &bonus, "select count(*) from asset", |n| n > 0, "the run never applied a batch")
        .await;
    let applied = bonus.scalar_i64("select count(*) from asset").await;
    let pending = cash.scalar_i64("select count(*) from transfer_pending").await;
    assert!(applied > 0 && applied < 3000, "stopped mid-way: {applied} applied");
    assert_eq!(applied + pending, 3000, "what was applied is marked done, the rest pending");

    let r = transfer(&cash, &bonus, &dirs, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(bonus.rows("select count(*), sum(amount) from asset").await, ["(3000,4501500.00)"]);
    assert_eq!(cash.scalar_i64("select count(*) from transfer_pending").await, 0);
    assert_eq!(
        bonus.rows("select accountnumber, count(*), sum(amount) from asset group by 1 order by 1").await,
        cash.rows(
            "select accountnumber, count(*), sum(amount) from changeaccountbalancetemp group by 1 order by 1"
        )
        .await
    );
}
