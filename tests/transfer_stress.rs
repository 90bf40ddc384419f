//! The exactly-once guarantee of `transfer` under stress: writers insert staged rows
//! concurrently (some hold their transaction open, some allocate the id long before they
//! commit it) while the job runs in a loop and is SIGKILLed at random moments. After the
//! writers stop and one last run, every balance equals the sum of its staged amounts, each
//! staged balance row produced exactly one asset row, and pins and bindings equal the newest
//! staged value per card.

mod common;
#[path = "support/synth.rs"]
mod synth;

use std::{
    collections::{BTreeMap, BTreeSet},
    process::Stdio,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use common::*;
use rust_decimal::Decimal;
use synth::SplitMix;

async fn writer(url: String, seed: u64, stop: Arc<AtomicBool>) -> u64 {
    let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let mut rng = SplitMix(seed);
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        let card = format!("C{}", rng.range(1, 25));
        let account = format!("A{}", rng.range(1, 40));
        c.batch_execute("begin").await.unwrap();
        // Sometimes take the id first and insert it after a while: it commits after rows
        // with higher ids.
        let early = rng.range(0, 3) == 0;
        let table = ["accountpincodetemp", "changeaccountbalancetemp", "changecardaccounttemp"]
            [rng.range(0, 2) as usize];
        let id: Option<i64> = if early {
            let sql = format!("select nextval(pg_get_serial_sequence('{table}', 'id'))");
            Some(c.query_one(&sql, &[]).await.unwrap().get(0))
        } else {
            None
        };
        if rng.range(0, 2) == 0 {
            tokio::time::sleep(Duration::from_millis(rng.range(1, 40))).await;
        }
        match table {
            "accountpincodetemp" => {
                let pin = format!("{:04}", rng.range(0, 9999));
                c.execute(
                    "insert into accountpincodetemp (id, cardnumber, pincode)
                     values (coalesce($1, nextval(pg_get_serial_sequence('accountpincodetemp', 'id'))), $2, $3)",
                    &[&id, &card, &pin],
                )
                .await
                .unwrap();
            }
            "changeaccountbalancetemp" => {
                let amount = Decimal::new(rng.range(1, 100_000) as i64 - 50_000, 2);
                c.execute(
                    "insert into changeaccountbalancetemp (id, accountnumber, amount, reason)
                     values (coalesce($1, nextval(pg_get_serial_sequence('changeaccountbalancetemp', 'id'))), $2, $3, 'stress')",
                    &[&id, &account, &amount],
                )
                .await
                .unwrap();
            }
            _ => {
                let acc = if rng.range(0, 4) == 0 { None } else { Some(account.clone()) };
                let status = rng.range(0, 3) as i16;
                c.execute(
                    "insert into changecardaccounttemp (id, cardnumber, accountnumber, status)
                     values (coalesce($1, nextval(pg_get_serial_sequence('changecardaccounttemp', 'id'))), $2, $3, $4)",
                    &[&id, &card, &acc, &status],
                )
                .await
                .unwrap();
            }
        }
        if rng.range(0, 3) == 0 {
            tokio::time::sleep(Duration::from_millis(rng.range(1, 60))).await;
        }
        // Some roll back: holes in the ids that no row ever fills, which the watermark must pass.
        if rng.range(0, 6) == 0 {
            c.batch_execute("rollback").await.unwrap();
            continue;
        }
        c.batch_execute("commit").await.unwrap();
        n += 1;
    }
    n
}

/// The rows applied in the bonus DB (its claims), and those of them that the cash server DB
/// still counts as pending: (staging table, id).
async fn window(
    cash: &tokio_postgres::Client,
    bonus: &tokio_postgres::Client,
) -> (i64, BTreeSet<(String, i64)>) {
    let claims = bonus
        .query(
            "select s.staging_table, lower(r), upper(r) from transfer_claim c join transfer_source s using (source_id),
                    unnest(c.id_ranges) r",
            &[],
        )
        .await
        .unwrap();
    let claimed: i64 = claims.iter().map(|r| r.get::<_, i64>(2) - r.get::<_, i64>(1)).sum();
    let pending: BTreeSet<(String, i64)> = cash
        .query("select staging_table, id from transfer_pending", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let unmarked = pending
        .into_iter()
        .filter(|(t, id)| {
            claims
                .iter()
                .any(|c| c.get::<_, String>(0) == *t && c.get::<_, i64>(1) <= *id && *id < c.get::<_, i64>(2))
        })
        .collect();
    (claimed, unmarked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn concurrent_writers_and_random_kills_transfer_every_row_exactly_once() {
    let (cash, bonus, dirs) = (TestDb::cashserver().await, TestDb::bonus().await, Dirs::new());
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> =
        (0..4).map(|i| tokio::spawn(writer(cash.url.clone(), 100 + i, stop.clone()))).collect();

    let cash_url = cash.url.clone();
    let bonus_url = bonus.url.clone();
    let queue = dirs.tmp.path().to_path_buf();
    let killer = tokio::spawn(async move {
        let connect = |url: String| async move {
            let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            c
        };
        let (cash_db, bonus_db) = (connect(cash_url.clone()).await, connect(bonus_url.clone()).await);
        let mut rng = SplitMix(5);
        let (mut kills, mut completed) = (0usize, 0usize);
        // Each kill judged by what changed between just before its run and just after it:
        // `mid_transfer` — that run had applied rows to the bonus DB; `applied_unmarked` — it
        // left rows applied in the bonus DB that the cash server DB still counts as pending
        // (the window exactly-once is about).
        let (mut mid_transfer, mut applied_unmarked) = (0usize, 0usize);
        // Six seconds at least; on a busy machine fewer kills land in the narrow window, so it
        // goes on (three minutes at most) until the minimums asserted below are met.
        let until = Instant::now() + Duration::from_secs(6);
        let cap = Instant::now() + Duration::from_secs(180);
        let enough = |kills: usize, mid: usize, unmarked: usize| kills >= 10 && mid >= 10 && unmarked >= 3;
        while Instant::now() < until
            || (!enough(kills, mid_transfer, applied_unmarked) && Instant::now() < cap)
        {
            let before = window(&cash_db, &bonus_db).await;
            let mut child = std::process::Command::new(csjobs_bin())
                .env("CSJOBS_CASHSERVER_DATABASE_URL", &cash_url)
                .env("CSJOBS_BONUS_DATABASE_URL", &bonus_url)
                .env("CSJOBS_TRANSFER_BATCH_ROWS", "25")
                .env("CSJOBS_LOG_FORMAT", "json")
                .env("CSJOBS_QUEUE_DIR", &queue)
                .arg("transfer")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let wait = Duration::from_millis(rng.range(5, 120));
            if tokio::task::block_in_place(|| kill_after(&mut child, wait)) {
                completed += 1;
            } else {
                kills += 1;
                let after = window(&cash_db, &bonus_db).await;
                mid_transfer += usize::from(after.0 > before.0);
                applied_unmarked += usize::from(!after.1.is_subset(&before.1));
            }
            tokio::time::sleep(Duration::from_millis(rng.range(0, 30))).await;
        }
        (kills, completed, mid_transfer, applied_unmarked)
    });
    let (kills, completed, mid_transfer, applied_unmarked) = killer.await.unwrap();
    stop.store(true, Ordering::SeqCst);
    let mut written = 0;
    for w in writers {
        written += w.await.unwrap();
    }
    eprintln!(
        "{kills} kills ({completed} runs completed): {mid_transfer} after applying rows, \
         {applied_unmarked} with rows applied but not yet marked done"
    );
    assert!(written > 300, "writers wrote {written} rows");
    assert!(kills >= 10, "killed {kills} times ({completed} runs completed)");
    assert!(mid_transfer >= 10, "kills must land mid-transfer: {mid_transfer} of {kills}");
    assert!(
        applied_unmarked >= 3,
        "kills must land between applying and marking: {applied_unmarked} of {kills}"
    );

    // One last run (a killed run's lock may take a moment to vanish).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = tokio::task::block_in_place(|| transfer(&cash, &bonus, &dirs, &[]));
        if r.code == 0 {
            break;
        }
        assert!(r.code == 4 && Instant::now() < deadline, "final run: {} {}", r.code, r.stderr);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every balance equals the sum of its staged amounts, one asset row per staged row.
    let staged = cash
        .rows(
            "select accountnumber, count(*), sum(amount) from changeaccountbalancetemp group by 1 order by 1",
        )
        .await;
    let applied =
        bonus.rows("select accountnumber, count(*), sum(amount) from asset group by 1 order by 1").await;
    assert_eq!(applied, staged);
    let staged_rows = cash.scalar_i64("select count(*) from changeaccountbalancetemp").await;
    assert_eq!(
        bonus
            .scalar_i64("select coalesce(sum(upper(r) - lower(r)), 0)::bigint from transfer_claim join transfer_source using (source_id), unnest(id_ranges) r where staging_table = 'changeaccountbalancetemp'")
            .await,
        staged_rows
    );
    // Pins and bindings equal the newest staged value per card.
    let newest_pins =
        cash.rows("select distinct on (cardnumber) cardnumber, pincode from accountpincodetemp order by cardnumber, id desc").await;
    assert_eq!(bonus.rows("select cardnumber, pincode from pincode order by 1").await, newest_pins);
    let newest_bindings = cash
        .rows(
            "select distinct on (cardnumber) cardnumber, accountnumber, status
               from changecardaccounttemp order by cardnumber, id desc",
        )
        .await;
    assert_eq!(
        bonus.rows("select cardnumber, accountnumber, status from cardaccounting order by 1").await,
        newest_bindings
    );
    let statuses: BTreeMap<String, String> = newest_bindings
        .iter()
        .map(|r| {
            let f: Vec<&str> = r.trim_matches(|c| c == '(' || c == ')').split(',').collect();
            (f[0].to_string(), f[2].to_string())
        })
        .collect();
    for row in bonus.rows("select cardnumber, status from card").await {
        let f: Vec<&str> = row.trim_matches(|c| c == '(' || c == ')').split(',').collect();
        if let Some(s) = statuses.get(f[0]) {
            assert_eq!(f[1], s, "card.status of {}", f[0]);
        }
    }
    for t in ["accountpincodetemp", "changeaccountbalancetemp", "changecardaccounttemp"] {
        assert_eq!(
            cash.scalar_i64(&format!("select count(*) from transfer_pending where staging_table = '{t}'"))
                .await,
            0,
            "{t}"
        );
    }

    // Once no transaction is open, the watermarks pass every hole (rolled back, killed runs'
    // reads) up to the last id: the done log does not grow above them for ever. A killed
    // run's backend may linger a moment, so a few more runs are allowed.
    let behind = "select count(*) from transfer_watermark w
                   where w.last_id < coalesce(case w.staging_table
                       when 'accountpincodetemp' then (select max(id) from accountpincodetemp)
                       when 'changeaccountbalancetemp' then (select max(id) from changeaccountbalancetemp)
                       else (select max(id) from changecardaccounttemp) end, 0)";
    let deadline = Instant::now() + Duration::from_secs(20);
    while cash.scalar_i64(behind).await > 0 {
        assert!(
            Instant::now() < deadline,
            "watermarks stay behind: {:?}",
            cash.rows("select staging_table, last_id from transfer_watermark order by 1").await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let r = tokio::task::block_in_place(|| transfer(&cash, &bonus, &dirs, &[]));
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
}
