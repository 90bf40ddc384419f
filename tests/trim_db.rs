//! `csjobs trim-db` against real PostgreSQL (rules.md §4).

mod common;
#[path = "support/synth.rs"]
mod synth;

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use common::*;
use synth::SplitMix;

const NOW: &str = "2026-11-23T12:00:00+03:00";

/// A shift of cash 17 with `docs` closed sales of `items` items each, and the revenue sums
/// load-sales would have kept; returns its id.
async fn add_shift(
    db: &TestDb,
    num: i32,
    beg: Option<&str>,
    end: Option<&str>,
    exported: bool,
    docs: i32,
    items: i32,
) -> i64 {
    let id = insert_shift(db, num, beg, end, exported, docs, items).await;
    db.rebuild_revenue_hour().await;
    id
}

/// [`add_shift`] without the revenue sums: for many shifts, summed once at the end.
async fn insert_shift(
    db: &TestDb,
    num: i32,
    beg: Option<&str>,
    end: Option<&str>,
    exported: bool,
    docs: i32,
    items: i32,
) -> i64 {
    let id: i64 = db
        .client
        .query_one(
            "with w as (
                insert into workshift (cashcode, shopcode, shiftnum, time_beg, time_end, astu_exported_at, loaded_at)
                values (17, 8, $1, $2::text::timestamp, $3::text::timestamp, case when $4 then now() end, now())
                returning workshiftid),
             d as (
                insert into document (workshiftid, docnum, doctype, time_beg, time_end, total)
                select w.workshiftid, i, 'sale', coalesce($2::text::timestamp, '2026-01-01'), $3::text::timestamp, $6::int
                  from w, generate_series(1, $5::int) i returning documentid),
             g as (
                insert into goodsitem (documentid, posnum, ware, dept, quantity, price, discount, total)
                select d.documentid, p, 'w', 1, 1, 1, 0, 1 from d, generate_series(1, $6::int) p),
             p as (insert into payment (documentid, paynum, paytype, amount) select documentid, 1, 'cash', $6::int from d)
             select workshiftid from w",
            &[&num, &beg, &end, &exported, &docs, &items],
        )
        .await
        .unwrap()
        .get(0);
    id
}

async fn shift_ids(db: &TestDb) -> Vec<i64> {
    db.client
        .query("select workshiftid from workshift order by 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn trim(db: &TestDb, dirs: &Dirs, args: &[&str]) -> Run {
    let mut c = csjobs(&db.url, dirs);
    c.args(["--now", NOW, "trim-db"]).args(args);
    run(c)
}

#[tokio::test]
async fn which_shifts_go_and_which_stay_at_the_boundary() {
    let (db, dirs) = (TestDb::cashserver().await, Dirs::new());
    // keep 30 days before 2026-11-23 12:00 local: the cutoff is 2026-10-24 12:00:00.
    let a = add_shift(&db, 1, Some("2026-10-24 00:00:00"), Some("2026-10-24 11:59:59"), true, 2, 3).await;
    let b = add_shift(&db, 2, Some("2026-10-24 00:00:00"), Some("2026-10-24 12:00:00"), true, 2, 3).await;
    let c = add_shift(&db, 3, Some("2026-09-01 08:00:00"), Some("2026-09-01 20:00:00"), false, 2, 3).await;
    let d = add_shift(&db, 4, Some("2026-09-01 08:00:00"), None, false, 2, 3).await;
    let e = add_shift(&db, 5, None, None, false, 1, 1).await;
    let f = add_shift(&db, 6, Some("2026-11-20 08:00:00"), Some("2026-11-20 20:00:00"), true, 1, 1).await;

    let r = trim(&db, &dirs, &["--keep-days", "30", "--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("       8  2026-09        1          2          6"), "{}", r.stdout);
    assert!(r.stdout.contains("       8  2026-10        1          2          6"), "{}", r.stdout);
    assert!(r.stdout.contains("kept: 1 closed shifts never exported"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!(
            "kept: 1 shifts without open and close time (never trimmed automatically): workshiftid {e}"
        )),
        "{}",
        r.stdout
    );
    assert_eq!(db.scalar_i64("select count(*) from workshift").await, 6, "a dry run deletes nothing");

    let r = trim(&db, &dirs, &["--keep-days", "30"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("total shifts deleted: 2"), "{}", r.stdout);
    assert_eq!(
        shift_ids(&db).await,
        [b, c, e, f],
        "a (closed before the cutoff) and d (open, opened before it) went"
    );
    assert_eq!(
        db.scalar_i64(
            "select count(*) from document where workshiftid in (select workshiftid from workshift)"
        )
        .await,
        6
    );
    assert_eq!(db.scalar_i64("select count(*) from document").await, 6, "documents went with their shifts");
    assert_eq!(db.scalar_i64("select count(*) from goodsitem").await, 6 + 6 + 1 + 1, "items of b, c, e, f");
    assert_eq!(db.scalar_i64("select count(*) from payment").await, 6);
    db.assert_revenue_hour_agrees().await;
    assert_eq!(
        db.scalar_i64(
            "select count(*) from revenue_hour where workshiftid not in (select workshiftid from workshift)"
        )
        .await,
        0,
        "the sums of deleted shifts went with them"
    );
    let _ = (a, d);

    let r = trim(&db, &dirs, &["--keep-days", "30", "--include-unexported"]);
    assert_eq!(r.code, 0);
    assert_eq!(shift_ids(&db).await, [b, e, f]);
    // The config's trim.keep_days applies without --keep-days (default 180: nothing more goes).
    let r = trim(&db, &dirs, &[]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("keep 180 days"), "{}", r.stdout);
    assert_eq!(db.scalar_i64("select count(*) from workshift").await, 3);
}

#[tokio::test]
async fn bookkeeping_past_retention_goes_and_the_rest_stays() {
    let (db, dirs) = (TestDb::cashserver().await, Dirs::new());
    db.client
        .batch_execute(
            "insert into job_run (job, host, pid, started_at, finished_at) values
                 ('load-sales', 'h', 1, '2026-01-01T00:00:00+03', '2026-01-01T00:01:00+03'),
                 ('load-sales', 'h', 1, '2026-11-22T00:00:00+03', '2026-11-22T00:01:00+03');
             insert into load_log (file_name, file_size, content_sha256, disposition, started_at, finished_at) values
                 ('old.json', 1, 'x', 'processed', '2026-01-01T00:00:00+03', '2026-01-01T00:00:00+03'),
                 ('new.json', 1, 'x', 'processed', '2026-11-22T00:00:00+03', '2026-11-22T00:00:00+03');
             insert into error_message (created_at, job, message) values
                 ('2026-11-19T11:00:00+03', 'load-sales', 'four days old'),
                 ('2026-11-21T12:00:00+03', 'load-sales', 'two days old');
             insert into changeaccountbalancetemp (accountnumber, amount, created_at, transferred_at) values
                 ('A', 1, '2026-01-01T00:00:00+03', '2026-01-01T00:05:00+03'),
                 ('B', 1, '2026-01-01T00:00:00+03', null),
                 ('C', 1, '2026-11-22T00:00:00+03', '2026-11-22T00:05:00+03');
             -- Transferred through the done log (sql/cashserver/0008): D long ago, E lately.
             insert into changeaccountbalancetemp (id, accountnumber, amount, created_at) values
                 (10, 'D', 1, '2026-01-01T00:00:00+03'), (11, 'D', 2, '2026-01-01T00:00:00+03'),
                 (13, 'E', 1, '2026-11-22T00:00:00+03');
             insert into transfer_done (staging_table, first_id, last_id, ids, done_at, wait_for) values
                 ('changeaccountbalancetemp', 10, 11, '{[10,11]}', '2026-01-01T00:05:00+03', '{}'),
                 ('changeaccountbalancetemp', 13, 13, '{[13,13]}', '2026-11-22T00:05:00+03', '{}');",
        )
        .await
        .unwrap();
    let r = trim(&db, &dirs, &["--keep-days", "30"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains(
            "also deleted: 1 load log rows, 1 job runs, 1 error messages, 3 transferred staged rows"
        ),
        "{}",
        r.stdout
    );
    assert_eq!(db.rows("select file_name from load_log").await, ["(new.json)"]);
    assert_eq!(db.rows("select message from error_message order by id").await, ["(\"two days old\")"]);
    assert_eq!(
        db.rows("select accountnumber from changeaccountbalancetemp order by 1").await,
        ["(B)", "(C)", "(E)"],
        "a staged row not yet transferred is never trimmed"
    );
    assert_eq!(
        db.rows("select first_id from transfer_done").await,
        ["(13)"],
        "the done row goes with its rows"
    );
    assert_eq!(
        db.scalar_i64("select count(*) from job_run where job = 'trim-db'").await,
        1,
        "this run's own row stays"
    );
}

async fn many_old_shifts(db: &TestDb, n: i32) {
    for i in 0..n {
        let day = 1 + i % 28;
        let beg = format!("2026-0{}-{day:02} 08:00:00", 1 + i % 6);
        let end = format!("2026-0{}-{day:02} 20:00:00", 1 + i % 6);
        insert_shift(db, 1000 + i, Some(&beg), Some(&end), true, 20, 5).await;
    }
    for i in 0..5 {
        insert_shift(db, 5000 + i, Some("2026-11-20 08:00:00"), Some("2026-11-20 20:00:00"), true, 20, 5)
            .await;
    }
    db.rebuild_revenue_hour().await;
}

#[tokio::test]
async fn killed_mid_run_leaves_only_whole_shifts_and_the_rerun_ends_as_an_uninterrupted_run() {
    let dirs = Dirs::new();
    let reference = TestDb::cashserver().await;
    many_old_shifts(&reference, 150).await;
    let r = trim(&reference, &dirs, &["--keep-days", "30", "--batch-size", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let expected = reference.sales_state().await;

    let db = TestDb::cashserver().await;
    many_old_shifts(&db, 150).await;
    let mut rng = SplitMix(11);
    let mut partial = 0;
    // Until 8 kills have landed mid-deletion (at most 40 runs): each kill overshoots by what
    // the run deletes before the test sees the count drop, more on a loaded machine, so a
    // fixed number of runs could use up the 145 old shifts first.
    for _ in 0..40 {
        if partial >= 8 {
            break;
        }
        let mut c = csjobs(&db.url, &dirs);
        c.args(["--now", NOW, "trim-db", "--keep-days", "30", "--batch-size", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let before = db.scalar_i64("select count(*) from workshift").await;
        if before == 5 {
            break;
        }
        let mut child = c.spawn().unwrap();
        // Kill once the run has deleted a few shifts: mid-deletion, a statement in flight.
        let k = rng.range(1, 6) as i64;
        let mut killed = false;
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if db.scalar_i64("select count(*) from workshift").await <= before - k {
                killed = child.kill().is_ok(); // SIGKILL
                break;
            }
        }
        let status = child.wait().unwrap();
        killed &= status.code().is_none();
        // Only whole shifts: every shift left has all its documents, items and payments.
        assert_eq!(
            db.scalar_i64(
                "select count(*) from workshift w where (select count(*) from document d where d.workshiftid = w.workshiftid) <> 20
                    or (select count(*) from goodsitem g join document d using (documentid) where d.workshiftid = w.workshiftid) <> 100"
            )
            .await,
            0
        );
        // This kill on its own: the run it ended had deleted shifts (fewer now than just
        // before it started) and had not deleted all it was to delete.
        let left = db.scalar_i64("select count(*) from workshift").await;
        if killed && left < before && left > 5 {
            partial += 1;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    eprintln!("{partial} kills landed mid-deletion");
    assert!(partial >= 8, "kills must land mid-deletion: {partial}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = trim(&db, &dirs, &["--keep-days", "30", "--batch-size", "1"]);
        if r.code == 0 {
            break;
        }
        assert!(r.code == 4 && Instant::now() < deadline, "{} {}", r.code, r.stderr);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(db.sales_state().await, expected);
    assert_eq!(db.scalar_i64("select count(*) from workshift").await, 5);
}

#[tokio::test]
async fn loading_goes_on_while_a_large_trim_runs_and_loses_nothing() {
    let (db, dirs) = (TestDb::cashserver().await, Dirs::new());
    many_old_shifts(&db, 400).await;
    for i in 0..60u64 {
        let f = sales_file(
            8,
            17,
            9000 + (i % 3) as i64,
            Some("2026-11-22T08:00:00"),
            None,
            vec![sale(i as i64 + 1, "2.50")],
        );
        dirs.put(&format!("new-{i:03}.json"), &f, i);
    }
    let mut c = csjobs(&db.url, &dirs);
    c.args(["--now", NOW, "trim-db", "--keep-days", "30", "--batch-size", "1"]).stdout(Stdio::null());
    let trimmer = c.spawn().unwrap();
    // Load once the trim is deleting (some old shifts gone): 400 one-shift batches take it
    // far longer than the load, whatever else the machine is doing.
    let old = "select count(*) from workshift where shiftnum between 1000 and 4999";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while db.scalar_i64(old).await == 400 {
        assert!(std::time::Instant::now() < deadline, "the trim never started deleting");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let mut c = csjobs(&db.url, &dirs);
    c.env("CSJOBS_SALES_BATCH_FILES", "5").arg("load-sales");
    let load = run(c);
    let trim_out = trimmer.wait_with_output().unwrap();
    assert_eq!(load.code, 0, "{}", load.stderr);
    assert_eq!(trim_out.status.code(), Some(0));
    assert_eq!(Dirs::names(&dirs.processed).len(), 60);
    assert_eq!(db.scalar_i64("select count(*) from workshift where shiftnum >= 9000").await, 3);
    assert_eq!(
        db.scalar_i64(
            "select count(*) from document d join workshift w using (workshiftid) where w.shiftnum >= 9000"
        )
        .await,
        60
    );
    assert_eq!(db.scalar_i64("select count(*) from workshift where shiftnum between 1000 and 4999").await, 0);
    db.assert_revenue_hour_agrees().await;
    // They did run at the same time: the two runs' logged intervals overlap.
    let overlapped = db
        .scalar_i64(
            "select count(*) from job_run t, job_run l
              where t.job = 'trim-db' and l.job = 'load-sales'
                and t.started_at < l.finished_at and l.started_at < t.finished_at",
        )
        .await;
    assert_eq!(overlapped, 1, "the load must run while the trim runs, or this test proves nothing");
}

/// One SIGTERM: the run finishes the batch under way and exits 0 with old shifts left (whole
/// ones); the next run deletes them and ends as an uninterrupted run does.
#[tokio::test]
async fn one_sigterm_finishes_the_batch_exits_0_and_the_rerun_completes() {
    let dirs = Dirs::new();
    let reference = TestDb::cashserver().await;
    many_old_shifts(&reference, 150).await;
    let r = trim(&reference, &dirs, &["--keep-days", "30", "--batch-size", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let expected = reference.sales_state().await;

    let db = TestDb::cashserver().await;
    many_old_shifts(&db, 150).await;
    let mut c = csjobs(&db.url, &dirs);
    c.args(["--now", NOW, "trim-db", "--keep-days", "30", "--batch-size", "1"]);
    stop_once_under_way(
        c,
        &db,
        "select count(*) from workshift",
        |n| n != 155,
        "the run never deleted a shift",
    )
    .await;
    let left = db.scalar_i64("select count(*) from workshift").await;
    assert!(left > 5 && left < 155, "stopped mid-way: {left} shifts left");
    assert_eq!(
        db.scalar_i64(
            "select count(*) from workshift w where (select count(*) from document d where d.workshiftid = w.workshiftid) <> 20"
        )
        .await,
        0,
        "only whole shifts"
    );
    let r = trim(&db, &dirs, &["--keep-days", "30", "--batch-size", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(db.sales_state().await, expected);
}
