//! `csjobs status` against real PostgreSQL (a real standby too), real directories, and the
//! real clients of its output: promtool, prometheus-node-exporter's textfile collector,
//! calamine for the workbook, Python's HTML parser for the page. Every register state at its
//! boundaries with `--now`; every unhealthy condition with its sentence and exit code 3.

mod common;

use std::{
    collections::BTreeMap,
    fs,
    io::{Read, Write},
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, SystemTime},
};

use chrono::{DateTime, FixedOffset, TimeDelta};
use common::*;
use serde_json::Value;

/// Tuesday noon in Moscow time: the `--now` of the boundary tests.
const NOW: &str = "2026-11-24T12:00:00+03:00";

fn now() -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(NOW).unwrap()
}

/// Test directories with the backup directory too: every `paths.*` exists.
fn dirs() -> Dirs {
    let d = Dirs::new();
    fs::create_dir_all(d.tmp.path().join("backup")).unwrap();
    d
}

fn status_cmd(url: &str, dirs: &Dirs, now: &str, args: &[&str]) -> Command {
    let mut c = csjobs(url, dirs);
    c.args(["--now", now, "status"]).args(args);
    c
}

fn status(db: &TestDb, dirs: &Dirs, now: &str, args: &[&str]) -> Run {
    run(status_cmd(&db.url, dirs, now, args))
}

fn json_of(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", r.stdout, r.stderr))
}

/// cash → state, from a JSON document.
fn states(v: &Value) -> BTreeMap<i64, String> {
    v["registers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["cash"].as_i64().unwrap(), r["state"].as_str().unwrap().to_string()))
        .collect()
}

fn problems(v: &Value) -> Vec<String> {
    v["problems"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect()
}

/// A moment `minutes` (may be negative) before `now`, as text for SQL.
fn before(now: DateTime<FixedOffset>, seconds: i64) -> String {
    (now - TimeDelta::seconds(seconds)).to_rfc3339()
}

/// One load log row of `cash`, handled at `at`, as the loader writes it.
async fn log(
    db: &TestDb,
    cash: i32,
    at: &str,
    disposition: &str,
    sha: &str,
    host: Option<&str>,
    ip: Option<&str>,
) {
    db.client
        .execute(
            "insert into load_log (file_name, file_size, content_sha256, shopcode, cashcode, source_host, \
             source_ip, disposition, started_at, finished_at, disposed_at, last_sale_at) \
             select $1, 100, $2, c.shopcode, c.cashcode, $3, $4, $5, $6::text::timestamptz, \
                    $6::text::timestamptz, $6::text::timestamptz, \
                    case when $5 = 'processed' then ($6::text::timestamptz at time zone '+03:00') end \
               from cash c where c.cashcode = $7",
            &[&format!("{cash}-{sha}.json"), &sha, &host, &ip, &disposition, &at, &cash],
        )
        .await
        .unwrap();
}

/// A shop of its own with cash registers `cashes`.
async fn shop(db: &TestDb, shop: i32, city: &str, address: &str, cashes: impl IntoIterator<Item = i32>) {
    db.client
        .execute(
            "insert into shop (shopcode, name, city, address) values ($1, $2, $3, $4)",
            &[&shop, &format!("Магазин №{shop}"), &city, &address],
        )
        .await
        .unwrap();
    for c in cashes {
        db.client
            .execute(
                "insert into cash (cashcode, shopcode, name) values ($1, $2, $3)",
                &[&c, &shop, &format!("Касса {c}")],
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn every_register_state_at_its_boundaries() {
    let db = TestDb::cashserver().await;
    let dirs = dirs();
    shop(&db, 10, "Москва", "Тверская, 1", 101..=113).await;
    let n = now();
    let h = 3600;
    // never: no file at all.
    // duplicate by host, both in the window; a second host just outside the window is not one;
    // one exactly at the window's start is.
    log(&db, 102, &before(n, 2 * h), "processed", "a1", Some("pos-a"), Some("10.0.0.1")).await;
    log(&db, 102, &before(n, h), "processed", "a2", Some("pos-b"), Some("10.0.0.1")).await;
    log(&db, 103, &before(n, 24 * h + 1), "processed", "b1", Some("pos-old"), None).await;
    log(&db, 103, &before(n, h), "processed", "b2", Some("pos-a"), None).await;
    log(&db, 113, &before(n, 24 * h), "processed", "m1", Some("pos-old"), None).await;
    log(&db, 113, &before(n, h), "processed", "m2", Some("pos-a"), None).await;
    // duplicate by ip where the host is absent; the same host from two ips is one sender.
    log(&db, 104, &before(n, 3 * h), "processed", "c1", None, Some("10.0.0.1")).await;
    log(&db, 104, &before(n, h), "processed", "c2", Some(""), Some("10.0.0.2")).await;
    log(&db, 105, &before(n, 3 * h), "processed", "d1", Some("pos-a"), Some("10.0.0.1")).await;
    log(&db, 105, &before(n, h), "processed", "d2", Some("pos-a"), Some("10.0.0.2")).await;
    // errors: not made good; made good by a later processed file of the same content; a
    // processed file of that content *before* the error does not make it good; an error
    // outside the window does not count; a later file of other content does not make it good.
    log(&db, 106, &before(n, h), "error", "e1", Some("pos-a"), None).await;
    log(&db, 107, &before(n, 3 * h), "error", "f1", Some("pos-a"), None).await;
    log(&db, 107, &before(n, h), "processed", "f1", Some("pos-a"), None).await;
    log(&db, 108, &before(n, 3 * h), "processed", "g1", Some("pos-a"), None).await;
    log(&db, 108, &before(n, h), "error", "g1", Some("pos-a"), None).await;
    log(&db, 109, &before(n, 24 * h + 1), "broken", "h1", Some("pos-a"), None).await;
    log(&db, 109, &before(n, h), "processed", "h2", Some("pos-a"), None).await;
    log(&db, 112, &before(n, h), "broken", "k1", Some("pos-a"), None).await;
    log(&db, 112, &before(n, 1800), "processed", "k2", Some("pos-a"), None).await;
    // stale (no working hours: open around the clock): exactly stale_after is not longer.
    log(&db, 110, &before(n, 2 * h), "processed", "i1", Some("pos-a"), None).await;
    log(&db, 111, &before(n, 2 * h + 1), "processed", "j1", Some("pos-a"), None).await;

    let r = status(&db, &dirs, NOW, &["--shop", "10", "--format", "json"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let v = json_of(&r);
    let expected: BTreeMap<i64, String> = [
        (101, "never"),
        (102, "duplicate"),
        (103, "ok"),
        (104, "duplicate"),
        (105, "ok"),
        (106, "errors"),
        (107, "ok"),
        (108, "errors"),
        (109, "ok"),
        (110, "ok"),
        (111, "stale"),
        (112, "errors"),
        (113, "duplicate"),
    ]
    .into_iter()
    .map(|(c, s)| (c, s.to_string()))
    .collect();
    assert_eq!(states(&v), expected);

    let reg =
        |cash: i64| v["registers"].as_array().unwrap().iter().find(|r| r["cash"] == cash).unwrap().clone();
    assert_eq!(reg(102)["senders"], serde_json::json!(["pos-a", "pos-b"]));
    assert_eq!(reg(104)["senders"], serde_json::json!(["10.0.0.1", "10.0.0.2"]));
    assert_eq!(reg(101)["ip"], Value::Null);
    assert_eq!(reg(101)["last_contact"], Value::Null);
    assert_eq!(reg(102)["ip"], "10.0.0.1");
    assert_eq!(reg(102)["host"], "pos-b");
    assert_eq!(reg(102)["last_contact"], "2026-11-24T11:00:00+03:00");
    assert_eq!(
        (reg(112)["files"].as_i64(), reg(112)["errors"].as_i64(), reg(112)["broken"].as_i64()),
        (Some(1), Some(0), Some(1))
    );
    // Every state that is not ok is a sentence naming the register, its shop and what to do.
    let p = problems(&v);
    for cash in [101, 102, 104, 106, 108, 111, 112, 113] {
        assert!(p.iter().any(|s| s.contains(&format!("register {cash} "))), "no sentence for {cash}: {p:#?}");
    }
    assert!(p.iter().any(|s| s.contains("register 102 ")
        && s.contains("pos-a, pos-b")
        && s.contains("several machines")));
    assert!(p.iter().any(|s| s.contains("register 111 ") && s.contains("status.stale_after 2h")));
    assert!(p.iter().any(|s| s.contains("register 106 ") && s.contains("--retry-errors")));
    assert!(p.iter().any(|s| s.contains("register 101 ") && s.contains("never sent")));
    // A longer stale_after makes 111 ok.
    let mut c = status_cmd(&db.url, &dirs, NOW, &["--shop", "10", "--format", "json"]);
    c.env("CSJOBS_STATUS_STALE_AFTER", "3h");
    assert_eq!(states(&json_of(&run(c)))[&111], "ok");
}

#[tokio::test]
async fn stale_only_while_the_shop_is_open_longer_than_stale_after() {
    let db = TestDb::cashserver().await;
    let dirs = dirs();
    shop(&db, 11, "Москва", "Арбат, 2", [201]).await;
    shop(&db, 12, "Москва", "Арбат, 4", [202]).await;
    // Heard from long ago: older than stale_after at every "now" below.
    log(&db, 201, "2026-11-01T10:00:00+03:00", "processed", "x1", Some("pos-201"), None).await;
    log(&db, 202, "2026-11-01T10:00:00+03:00", "processed", "x2", Some("pos-202"), None).await;
    // Shop 11: Monday 22:00 → Tuesday 02:00 (past midnight), Wednesday 09:00–21:00; closed on
    // Tuesday itself. Shop 12 has no hours: open around the clock.
    db.client
        .batch_execute(
            "insert into shop_hours (shopcode, weekday, opens, closes) values \
             (11, 1, '22:00', '02:00'), (11, 3, '09:00', '21:00')",
        )
        .await
        .unwrap();
    let cases = [
        ("2026-11-23T23:30:00+03:00", "ok", "open only 1h30m"),
        ("2026-11-24T00:00:00+03:00", "ok", "open exactly 2h"),
        ("2026-11-24T00:00:01+03:00", "stale", "open 2h and a second, past midnight"),
        ("2026-11-24T01:59:59+03:00", "stale", "still open before 02:00"),
        ("2026-11-24T02:00:00+03:00", "ok", "closed at 02:00"),
        ("2026-11-24T12:00:00+03:00", "ok", "Tuesday has no row: closed all day"),
        ("2026-11-25T11:00:00+03:00", "ok", "Wednesday, open exactly 2h"),
        ("2026-11-25T11:00:01+03:00", "stale", "Wednesday, open longer than 2h"),
        ("2026-11-25T21:30:00+03:00", "ok", "Wednesday after closing"),
        // The same wall clock written in another offset is another moment: 08:30 UTC is
        // 08:30 on the shop's clock (times compare in now's own offset).
        ("2026-11-25T08:30:00+00:00", "ok", "before opening in now's offset"),
    ];
    for (now, want, why) in cases {
        let v = json_of(&status(&db, &dirs, now, &["--format", "json", "--shop", "11", "--shop", "12"]));
        let s = states(&v);
        assert_eq!(s[&201], want, "shop 11 at {now}: {why}");
        assert_eq!(s[&202], "stale", "shop 12 (no hours) at {now}");
    }
}

#[tokio::test]
async fn since_shop_and_problems_choose_the_registers() {
    let db = TestDb::cashserver().await;
    let dirs = dirs();
    let n = now();
    log(&db, 17, &before(n, 600), "processed", "a", Some("pos-8-17"), None).await;
    log(&db, 18, &before(n, 3600), "error", "b", Some("pos-8-18"), None).await;
    log(&db, 18, &before(n, 60), "processed", "c", Some("pos-8-18"), None).await;
    log(&db, 21, &before(n, 600), "processed", "d", Some("pos-9-21"), None).await;

    let all = json_of(&status(&db, &dirs, NOW, &["--format", "json"]));
    assert_eq!(
        states(&all),
        [(17, "ok"), (18, "errors"), (21, "ok")].map(|(c, s)| (c, s.to_string())).into()
    );
    // A window of 30 minutes no longer holds the error of an hour ago.
    let recent = json_of(&status(&db, &dirs, NOW, &["--format", "json", "--since", "30m"]));
    assert_eq!(states(&recent)[&18], "ok");
    assert_eq!(recent["window"], "30m");
    // --shop: only that shop's registers; --problems: only those not ok.
    let shop9 = json_of(&status(&db, &dirs, NOW, &["--format", "json", "--shop", "9"]));
    assert_eq!(states(&shop9).keys().copied().collect::<Vec<_>>(), vec![21]);
    let bad = status(&db, &dirs, NOW, &["--format", "json", "--problems"]);
    assert_eq!(bad.code, 3);
    assert_eq!(states(&json_of(&bad)).keys().copied().collect::<Vec<_>>(), vec![18]);
    let none = status(&db, &dirs, NOW, &["--format", "json", "--problems", "--shop", "9"]);
    assert_eq!((none.code, states(&json_of(&none)).len()), (0, 0), "{}", none.stdout);
    // An unknown shop is a mistyped option.
    let r = status(&db, &dirs, NOW, &["--format", "json", "--shop", "77"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--shop 77"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
}

/// A sales file of one closed sale, from `host`.
fn file_from(shop: i64, cash: i64, shift: i64, host: &str, ip: &str, price: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&sales_file(
        shop,
        cash,
        shift,
        Some("2026-11-20T09:00:00"),
        None,
        vec![sale(1, price)],
    ))
    .unwrap();
    v["source"] = serde_json::json!({ "host": host, "ip": ip, "software": "4.6" });
    serde_json::to_vec(&v).unwrap()
}

/// The real clock moved on `seconds`, to the whole second (ages are whole seconds).
fn real_now_plus(seconds: i64) -> String {
    let t = chrono::Local::now().fixed_offset() + TimeDelta::seconds(seconds);
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

#[tokio::test]
async fn real_files_duplicate_sender_and_errors_made_good_by_retry() {
    let db = TestDb::cashserver().await;
    let dirs = dirs();
    // Register 17's identity on two PCs; register 30 not yet in the dictionary.
    dirs.put("a.json", &file_from(8, 17, 1, "pos-8-17", "10.8.0.17", "10.00"), 1);
    dirs.put("b.json", &file_from(8, 17, 2, "kassa-copy", "10.8.0.99", "20.00"), 2);
    dirs.put("c.json", &file_from(8, 30, 1, "pos-8-30", "10.8.0.30", "30.00"), 3);
    dirs.put("d.json", &file_from(8, 18, 1, "pos-8-18", "10.8.0.18", "40.00"), 4);
    dirs.put("e.json", &file_from(9, 21, 1, "pos-9-21", "10.9.0.21", "50.00"), 5);
    assert_eq!(load_sales(&db, &dirs, &[]).code, 3);
    db.client
        .batch_execute("insert into cash (cashcode, shopcode, name) values (30, 8, 'Касса 30')")
        .await
        .unwrap();
    let now = real_now_plus(60);

    let v = json_of(&status(&db, &dirs, &now, &["--format", "json"]));
    let s = states(&v);
    assert_eq!((s[&17].as_str(), s[&30].as_str(), s[&18].as_str()), ("duplicate", "errors", "ok"));
    let r17 = v["registers"].as_array().unwrap().iter().find(|r| r["cash"] == 17).unwrap();
    assert_eq!(r17["senders"], serde_json::json!(["kassa-copy", "pos-8-17"]));
    assert_eq!(r17["files"], 2);
    // Prominent in every format: the table shows it first, the checklist names the state.
    let table = status(&db, &dirs, &now, &["--format", "table"]);
    let regs = table.stdout.split("REGISTERS").nth(1).unwrap();
    let first_row = regs.lines().nth(2).unwrap();
    assert!(
        first_row.trim_start().starts_with("DUPLICATE") && first_row.contains("kassa-copy + pos-8-17"),
        "{first_row}"
    );
    assert!(!table.stdout.contains('\x1b'), "no colours when stdout is not a terminal");
    let csv = status(&db, &dirs, &now, &["--format", "csv"]).stdout;
    assert!(csv.lines().any(|l| l.contains(",17,") && l.contains(",duplicate,")), "{csv}");

    // The dictionary fixed, the retry loads the same content: the error is made good.
    let retry = load_sales(&db, &dirs, &["--retry-errors"]);
    assert_eq!(retry.code, 0, "{}", retry.stderr);
    let v = json_of(&status(&db, &dirs, &real_now_plus(60), &["--format", "json", "--shop", "8"]));
    assert_eq!(states(&v)[&30], "ok");
    assert_eq!(states(&v)[&17], "duplicate");
}

/// The healthy fixture: every register sent a good file just now, every directory exists,
/// nothing waits, every shift exported.
async fn healthy() -> (TestDb, Dirs) {
    let db = TestDb::cashserver().await;
    let dirs = dirs();
    dirs.put("a.json", &file_from(8, 17, 1, "pos-8-17", "10.8.0.17", "10.00"), 1);
    dirs.put("b.json", &file_from(8, 18, 1, "pos-8-18", "10.8.0.18", "20.00"), 2);
    dirs.put("c.json", &file_from(9, 21, 1, "pos-9-21", "10.9.0.21", "30.00"), 3);
    let r = load_sales(&db, &dirs, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    (db, dirs)
}

#[tokio::test]
async fn a_healthy_cash_server_exits_0_and_each_condition_makes_it_unhealthy() {
    let (db, dirs) = healthy().await;
    let now_s = real_now_plus(60);
    let now = DateTime::parse_from_rfc3339(&now_s).unwrap();
    let ok = status(&db, &dirs, &now_s, &["--format", "json"]);
    let v = json_of(&ok);
    assert_eq!(ok.code, 0, "{:#?}", problems(&v));
    assert_eq!((v["format"].as_str(), v["healthy"].as_bool()), (Some("csjobs-status/1"), Some(true)));
    assert_eq!(v["connections"][0]["state"], "ok");
    assert_eq!(v["connections"][1]["state"], "not_configured");
    assert_eq!(v["errors_3d"], 0);
    assert!(v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|j| j["job"] == "load-sales" && j["last_run"]["exit_code"] == 0));
    let table = status(&db, &dirs, &now_s, &["--format", "table"]);
    assert_eq!(table.code, 0);
    assert!(table.stdout.lines().next().unwrap().ends_with("healthy"), "{}", table.stdout);
    for section in ["CONNECTIONS", "QUEUES", "JOBS", "REGISTERS"] {
        assert!(table.stdout.contains(section), "{section}: {}", table.stdout);
    }

    // Each condition alone: exit 3, its sentence; undone, healthy again.
    let check = |what: &str, want: &str| {
        let r = status(&db, &dirs, &now_s, &["--format", "json"]);
        let p = problems(&json_of(&r));
        assert_eq!(r.code, 3, "{what}: {p:#?}");
        assert!(p.iter().any(|s| s.contains(want)), "{what}: no sentence with {want:?} in {p:#?}");
        assert_eq!(json_of(&r)["healthy"], false);
    };
    let healthy_again = |what: &str| {
        let r = status(&db, &dirs, &now_s, &["--format", "json"]);
        assert_eq!(r.code, 0, "{what}: {:#?}", problems(&json_of(&r)));
    };

    // A queued file older than status.queue_max_age (15m); exactly 15m is not older.
    let f = dirs.queue.join("late.json");
    fs::write(&f, file_from(8, 17, 9, "pos-8-17", "10.8.0.17", "1.00")).unwrap();
    let mtime = |secs: i64| SystemTime::from(now - TimeDelta::seconds(secs));
    fs::File::options().write(true).open(&f).unwrap().set_modified(mtime(15 * 60)).unwrap();
    healthy_again("a file queued exactly 15m");
    fs::File::options().write(true).open(&f).unwrap().set_modified(mtime(15 * 60 + 1)).unwrap();
    check("a file queued 15m 1s", "the oldest sales file in the queue");
    fs::remove_file(&f).unwrap();

    // A staged row waiting longer than status.staged_max_age, then refused rows.
    let at = |secs: i64| before(now, secs);
    db.client
        .execute(
            "insert into changeaccountbalancetemp (accountnumber, amount, created_at) values ('A1', 5, $1::text::timestamptz)",
            &[&at(16 * 60)],
        )
        .await
        .unwrap();
    check("a staged row of 16m", "changeaccountbalancetemp: 1 staged rows wait");
    db.client
        .execute(
            "update changeaccountbalancetemp set transferred_at = $1::text::timestamptz, transfer_error = 'no such account'",
            &[&at(3600)],
        )
        .await
        .unwrap();
    check("a refused row", "changeaccountbalancetemp: 1 rows were refused by the bonus DB");
    db.client.batch_execute("delete from changeaccountbalancetemp").await.unwrap();
    healthy_again("staged rows gone");

    // A closed shift owed its ASTU file for longer than status.astu_max_age (1h).
    db.client
        .execute(
            "update workshift set time_end = '2026-11-20T20:00:00', astu_exported_at = null, \
             loaded_at = $1::text::timestamptz where cashcode = 18",
            &[&at(3601)],
        )
        .await
        .unwrap();
    check("a shift owed 1h 1s", "1 closed shifts are owed their ASTU file");
    db.client
        .batch_execute("update workshift set astu_exported_at = now() where cashcode = 18")
        .await
        .unwrap();
    healthy_again("the shift exported");

    // The last run of a job failed; then killed (no end, its process gone, on this host).
    db.client
        .batch_execute(
            "insert into job_run (job, host, pid, started_at, finished_at, outcome, exit_code) \
             values ('transfer', 'somewhere', 1, now(), now(), 'failed', 1)",
        )
        .await
        .unwrap();
    check("transfer failed", "the last run of transfer");
    db.client
        .execute(
            "insert into job_run (job, host, pid, started_at) values ('transfer', $1, 2147483646, now() + interval '1 second')",
            &[&csjobs::core::runlog::host_name()],
        )
        .await
        .unwrap();
    check("transfer killed", "was killed");
    let v = json_of(&status(&db, &dirs, &now_s, &["--format", "json"]));
    let transfer = v["jobs"].as_array().unwrap().iter().find(|j| j["job"] == "transfer").unwrap().clone();
    assert_eq!(
        (transfer["last_run"]["outcome"].as_str(), transfer["unfinished"]["outcome"].as_str()),
        (Some("killed"), Some("killed"))
    );
    db.client
        .batch_execute(
            "insert into job_run (job, host, pid, started_at, finished_at, outcome, exit_code) \
             values ('transfer', 'somewhere', 1, now() + interval '2 seconds', now(), 'done', 0)",
        )
        .await
        .unwrap();
    healthy_again("transfer ran fine afterwards");

    // A missing data directory, named with its setting.
    let aside = dirs.tmp.path().join("processed.aside");
    fs::rename(&dirs.processed, &aside).unwrap();
    check(
        "processed/ missing",
        &format!(
            "paths.processed (CSJOBS_PROCESSED_DIR) {}: the directory is missing",
            dirs.processed.display()
        ),
    );
    fs::rename(&aside, &dirs.processed).unwrap();
    // The dictionary directory named by the cash server setting is missing.
    db.client
        .batch_execute("insert into settings values ('SEND_DICTS_ON_CASHES_BY_URL_LOCAL_DIRECTORY', '/nonexistent/dicts')")
        .await
        .unwrap();
    check(
        "dictionary directory missing",
        "SEND_DICTS_ON_CASHES_BY_URL_LOCAL_DIRECTORY /nonexistent/dicts: the directory is missing",
    );
    db.client.batch_execute("delete from settings").await.unwrap();

    // A configured bonus DB that cannot be reached.
    let mut c = status_cmd(&db.url, &dirs, &now_s, &["--format", "json"]);
    c.env("CSJOBS_BONUS_DATABASE_URL", "host=127.0.0.1 port=1 user=postgres dbname=bonus connect_timeout=5");
    let r = run(c);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let v = json_of(&r);
    assert_eq!(v["connections"][1]["state"], "unreachable");
    assert!(problems(&v).iter().any(|p| p.starts_with("the bonus DB cannot be used")), "{:#?}", problems(&v));

    // A register not heard from: stale, once the clock moves on 3 hours.
    let later = (now + TimeDelta::hours(3)).to_rfc3339();
    let r = status(&db, &dirs, &later, &["--format", "json"]);
    assert_eq!(r.code, 3);
    assert_eq!(states(&json_of(&r)).values().collect::<Vec<_>>(), ["stale"; 3]);
    healthy_again("all undone");
}

#[tokio::test]
async fn the_bonus_db_ok_and_the_schema_behind() {
    let (db, dirs) = healthy().await;
    let bonus = TestDb::bonus().await;
    let now_s = real_now_plus(60);
    let mut c = status_cmd(&db.url, &dirs, &now_s, &["--format", "prometheus"]);
    c.env("CSJOBS_BONUS_DATABASE_URL", &bonus.url);
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("csjobs_up{database=\"bonus\"} 1\n"));
    assert!(r.stdout.contains("csjobs_database_latency_seconds{database=\"bonus\"} "));
    // A database a migration behind this binary is a problem with the command that fixes it.
    bonus.client.batch_execute("delete from csjobs_schema_migrations where version = (select max(version) from csjobs_schema_migrations)").await.unwrap();
    let mut c = status_cmd(&db.url, &dirs, &now_s, &["--format", "json"]);
    c.env("CSJOBS_BONUS_DATABASE_URL", &bonus.url);
    let r = run(c);
    assert_eq!(r.code, 3);
    assert!(problems(&json_of(&r))
        .iter()
        .any(|p| p.contains("bonus DB is at migration") && p.contains("csjobs migrate")));
}

#[tokio::test]
async fn cash_server_db_down_exits_1_and_still_writes_the_textfile() {
    let dirs = dirs();
    fs::write(dirs.queue.join("waiting.json"), b"{}").unwrap();
    fs::write(dirs.broken.join("bad.json"), b"x").unwrap();
    let textfile = dirs.tmp.path().join("csjobs.prom");
    let down = "host=127.0.0.1 port=1 user=postgres dbname=cs connect_timeout=5";
    let r = run(status_cmd(down, &dirs, NOW, &["--output", textfile.to_str().unwrap()]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("cash server DB"), "{}", r.stderr);
    let text = fs::read_to_string(&textfile).unwrap();
    assert!(text.contains("csjobs_up{database=\"cashserver\"} 0\n"), "{text}");
    assert!(
        text.contains("csjobs_files{dir=\"queue\"} 1\n") && text.contains("csjobs_files{dir=\"broken\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("csjobs_status_healthy 0\n"));
    assert!(!text.contains("csjobs_register_state"), "nothing that needs the database: {text}");
    promtool_check(&textfile);
    // JSON says the same, with the reason.
    let r = run(status_cmd(down, &dirs, NOW, &["--format", "json"]));
    assert_eq!(r.code, 1);
    let v = json_of(&r);
    assert_eq!(v["connections"][0]["state"], "unreachable");
    assert!(problems(&v)[0].starts_with("the cash server DB cannot be used"), "{:#?}", problems(&v));
    assert_eq!(v["queues"]["queue"]["files"], 1);
    assert_eq!(v["errors_3d"], Value::Null);
    // Not configured at all: a configuration error, and still the textfile.
    let mut c = status_cmd("", &dirs, NOW, &["--output", textfile.to_str().unwrap()]);
    c.env_remove("CSJOBS_CASHSERVER_DATABASE_URL");
    let r = run(c);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("CSJOBS_CASHSERVER_DATABASE_URL"));
    assert!(!fs::read_to_string(&textfile).unwrap().contains("csjobs_up{database=\"cashserver\"} 1"));
}

// ---- the real clients ---------------------------------------------------------------------

/// A free loopback port below the ephemeral range (see scripts/lib/pg.sh for why). Each
/// call starts from another place, so two tests of one process do not race for one port.
fn free_port() -> u16 {
    static CALLS: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let base = 21_000 + (std::process::id() % 4000) as u16 + call * 97;
    (0..400u16)
        .map(|i| base + i * 7 % 4000)
        .find(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        .expect("a free port")
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn prometheus_textfile_passes_promtool_and_node_exporter_serves_it() {
    let (db, dirs) = healthy().await;
    // A register of a shop whose name needs escaping nowhere (labels are numbers), and one
    // that is never heard from.
    db.client.batch_execute("insert into cash values (19, 8, 'Касса \"19\"')").await.unwrap();
    let collector = dirs.tmp.path().join("textfile");
    fs::create_dir(&collector).unwrap();
    let textfile = collector.join("csjobs.prom");
    let r = status(
        &db,
        &dirs,
        &real_now_plus(60),
        &["--format", "prometheus", "--output", textfile.to_str().unwrap()],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    promtool_check(&textfile);
    let text = fs::read_to_string(&textfile).unwrap();
    for line in [
        "csjobs_up{database=\"cashserver\"} 1",
        "csjobs_register_state{shop=\"8\",cash=\"19\",state=\"never\"} 1",
        "csjobs_register_state{shop=\"8\",cash=\"19\",state=\"ok\"} 0",
        "csjobs_register_state{shop=\"8\",cash=\"17\",state=\"ok\"} 1",
        "csjobs_register_senders{shop=\"8\",cash=\"17\"} 1",
        "csjobs_job_last_exit_code{job=\"load-sales\"} 0",
        "csjobs_astu_due_shifts 0",
        "csjobs_status_healthy 0",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    // Every metric has its HELP and TYPE; nothing else is in the file but samples.
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    for name in families.iter() {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}");
    }
    assert!(text.ends_with('\n'));
    // No temporary file left beside it for the collector to trip over.
    assert_eq!(Dirs::names(&collector), vec!["csjobs.prom"]);

    // The real collector.
    let port = free_port();
    let exporter = Command::new("prometheus-node-exporter")
        .args([
            &format!("--web.listen-address=127.0.0.1:{port}"),
            "--collector.disable-defaults",
            "--collector.textfile",
            &format!("--collector.textfile.directory={}", collector.display()),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus-node-exporter (Debian package; scripts/test.sh installs it)");
    let _guard = Killed(exporter);
    let mut metrics = None;
    // Up to a minute: a loaded machine starts it slowly.
    for _ in 0..600 {
        if let Some(body) = http_get(port, "/metrics").filter(|b| b.contains("node_textfile_scrape_error")) {
            metrics = Some(body);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let metrics = metrics.expect("node_exporter answered on its port");
    assert!(metrics.lines().any(|l| l == "node_textfile_scrape_error 0"), "{metrics}");
    assert!(
        metrics.lines().any(|l| l == "csjobs_register_state{cash=\"19\",shop=\"8\",state=\"never\"} 1"),
        "{metrics}"
    );
    assert!(metrics.lines().any(|l| l == "csjobs_up{database=\"cashserver\"} 1"));
}

#[tokio::test]
async fn the_checklist_is_the_same_in_csv_xlsx_and_html() {
    let (db, dirs) = healthy().await;
    // A second city, a register never heard from, a name with a comma and a quote.
    db.client
        .batch_execute(
            "insert into shop values (5, 'Магазин №5', 'Анапа', 'ул. Морская, \"7\"'); \
             insert into cash values (51, 5, 'Касса, 51'), (19, 8, 'Касса 19')",
        )
        .await
        .unwrap();
    let now = real_now_plus(60);
    let csv = status(&db, &dirs, &now, &["--format", "csv"]);
    assert_eq!(csv.code, 3);
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(lines[0], "city,address,shop,cash,cash_name,state,last_contact,ip,last_sale");
    // By city, address, cash; ip "-" for a register never heard from.
    let rows: Vec<Vec<String>> = lines[1..].iter().map(|l| parse_csv_line(l)).collect();
    let cash_col: Vec<&str> = rows.iter().map(|r| r[3].as_str()).collect();
    assert_eq!(cash_col, ["51", "21", "17", "18", "19"]);
    assert_eq!(rows[0][..8], ["Анапа", "ул. Морская, \"7\"", "5", "51", "Касса, 51", "never", "", "-"]);
    assert_eq!(rows[4][5..8], ["never", "", "-"]);
    assert_eq!(rows[2][7], "10.8.0.17");

    // The workbook read back equals the CSV: text as text, numbers as numbers, times as date cells.
    let out = dirs.tmp.path().join("checklist.xlsx");
    assert_eq!(status(&db, &dirs, &now, &["--output", out.to_str().unwrap()]).code, 3);
    use calamine::{open_workbook, Data, Reader, Xlsx};
    let mut wb: Xlsx<_> = open_workbook(&out).unwrap();
    let range = wb.worksheet_range("registers").unwrap();
    let offset = DateTime::parse_from_rfc3339(&now).unwrap().offset().to_owned();
    let cells: Vec<Vec<String>> = range
        .rows()
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    Data::String(s) => s.clone(),
                    Data::Float(f) => format!("{f}"),
                    Data::Int(i) => i.to_string(),
                    Data::Empty => String::new(),
                    Data::DateTime(d) => {
                        // Excel's serial date: days since 1899-12-30, the time of day as a fraction.
                        assert!(d.is_datetime());
                        let epoch = chrono::NaiveDate::from_ymd_opt(1899, 12, 30)
                            .unwrap()
                            .and_hms_opt(0, 0, 0)
                            .unwrap();
                        let t = epoch + TimeDelta::seconds((d.as_f64() * 86_400.0).round() as i64);
                        chrono::TimeZone::from_local_datetime(&offset, &t)
                            .single()
                            .unwrap()
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
                    }
                    other => panic!("unexpected cell {other:?}"),
                })
                .collect()
        })
        .collect();
    let mut from_csv = vec![lines[0].split(',').map(String::from).collect::<Vec<_>>()];
    from_csv.extend(rows.clone());
    assert_eq!(cells, from_csv);
    assert!(matches!(range.get((1, 6)), Some(Data::Empty)), "never heard from: no contact time");
    assert!(matches!(range.get((2, 6)), Some(Data::DateTime(_))), "times are real date cells");

    // The page: self-contained, one row per register, coloured by state.
    let page = dirs.tmp.path().join("checklist.html");
    assert_eq!(status(&db, &dirs, &now, &["--output", page.to_str().unwrap()]).code, 3);
    let html = fs::read_to_string(&page).unwrap();
    for external in ["<script", "<link", "src=", "url(", "@import"] {
        assert!(!html.contains(external), "{external} in the page");
    }
    let parsed = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, html.parser, json\n\
             class P(html.parser.HTMLParser):\n\
             \x20   def __init__(s): super().__init__(); s.rows=[]; s.cell=None\n\
             \x20   def handle_starttag(s, t, a):\n\
             \x20       if t == 'tr': s.rows.append({'class': dict(a).get('class'), 'cells': []})\n\
             \x20       if t in ('td', 'th'): s.cell = ''\n\
             \x20   def handle_endtag(s, t):\n\
             \x20       if t in ('td', 'th'): s.rows[-1]['cells'].append(s.cell); s.cell = None\n\
             \x20   def handle_data(s, d):\n\
             \x20       if s.cell is not None: s.cell += d\n\
             p = P(); p.feed(open(sys.argv[1], encoding='utf-8').read()); print(json.dumps(p.rows))",
        )
        .arg(&page)
        .output()
        .unwrap();
    assert!(parsed.status.success(), "{}", String::from_utf8_lossy(&parsed.stderr));
    let trs: Vec<Value> = serde_json::from_slice(&parsed.stdout).unwrap();
    assert_eq!(trs.len(), 1 + 5, "a header and one row per register");
    let cells: Vec<Vec<String>> = trs
        .iter()
        .map(|t| t["cells"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect())
        .collect();
    // The checklist's nine columns, then each register's checks and revenue of today, as the
    // JSON document has them (monitoring.md: the html also has checks_today, revenue_today).
    let nine: Vec<Vec<String>> = cells.iter().map(|c| c[..9].to_vec()).collect();
    assert_eq!(nine, from_csv);
    assert_eq!(cells[0][9..], ["checks_today", "revenue_today"]);
    let v = json_of(&status(&db, &dirs, &now, &["--format", "json"]));
    let today: Vec<Vec<String>> = v["registers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| vec![r["checks_today"].to_string(), r["revenue_today"].as_str().unwrap().to_string()])
        .collect();
    let shown: Vec<Vec<String>> =
        cells[1..].iter().map(|c| vec![c[9].clone(), c[10].replace('\u{202f}', "")]).collect();
    assert_eq!(shown, today);
    let classes: Vec<&str> = trs[1..].iter().map(|t| t["class"].as_str().unwrap()).collect();
    assert_eq!(classes, ["state-never", "state-ok", "state-ok", "state-ok", "state-never"]);
}

/// A CSV line split by RFC 4180 (quoted fields, doubled quotes).
fn parse_csv_line(l: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let (mut quoted, mut chars) = (false, l.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(String::new()),
            (c, _) => out.last_mut().unwrap().push(c),
        }
    }
    out
}

#[tokio::test]
async fn bad_input_is_refused_naming_it_and_leaves_no_partial_file() {
    let (db, dirs) = healthy().await;
    let r = status(&db, &dirs, NOW, &["--since", "2 hours"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--since"), "{}", r.stderr);
    let r = status(&db, &dirs, NOW, &["--format", "yaml"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--format"), "{}", r.stderr);
    let mut c = status_cmd(&db.url, &dirs, NOW, &["--format", "json"]);
    c.env("CSJOBS_STATUS_QUEUE_MAX_AGE", "15");
    let r = run(c);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("status.queue_max_age") && r.stderr.contains("CSJOBS_STATUS_QUEUE_MAX_AGE"),
        "{}",
        r.stderr
    );

    let missing = dirs.tmp.path().join("no-such-dir").join("csjobs.prom");
    let r = status(&db, &dirs, NOW, &["--format", "prometheus", "--output", missing.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains(&missing.display().to_string()), "{}", r.stderr);
    assert!(!missing.parent().unwrap().exists());

    // An existing file is replaced whole; nothing else is left in its directory.
    let out_dir = dirs.tmp.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("status.json");
    fs::write(&out, b"old").unwrap();
    // Just after the healthy fixture's load: healthy, whatever the wall clock.
    let r = status(&db, &dirs, &real_now_plus(60), &["--output", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        json_of(&Run { code: 0, stdout: fs::read_to_string(&out).unwrap(), stderr: String::new() })["format"],
        "csjobs-status/1"
    );
    assert_eq!(Dirs::names(&out_dir), vec!["status.json"]);
}

// ---- a real standby --------------------------------------------------------------------------

/// A private PostgreSQL primary and a standby made from it with pg_basebackup, stopped and
/// removed on drop. Built from the distribution's binaries, as scripts/lib/pg.sh does.
struct Standby {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    primary_port: u16,
    standby_port: u16,
}

fn pg_bindir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries in /usr/lib/postgresql (scripts/test.sh installs them)")
        .map(|e| e.unwrap().path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort_by_key(|p| {
        p.parent().unwrap().file_name().unwrap().to_string_lossy().parse::<u32>().unwrap_or(0)
    });
    dirs.pop().expect("initdb")
}

impl Standby {
    /// Starts the cluster in `data` on a free port, trying another port when one is taken
    /// between the check and the bind; panics with the server's log when it cannot.
    fn start_node(&self, data: &str, after: u16) -> u16 {
        let d = self.dir.path().display().to_string();
        let log = format!("{d}/{data}.log");
        for port in (after + 1..after + 400)
            .filter(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
            .take(3)
        {
            let opts = format!("-p {port} -k {d} -c listen_addresses=127.0.0.1 -c fsync=off");
            if self
                .try_pg(
                    "pg_ctl",
                    &["-D", &format!("{d}/{data}"), "-l", &log, "-w", "-t", "180", "-o", &opts, "start"],
                )
                .is_ok()
            {
                return port;
            }
        }
        panic!("cannot start the {data} cluster: {}", fs::read_to_string(&log).unwrap_or_default());
    }

    /// Runs a PostgreSQL program as the `postgres` user when we are root (initdb refuses root).
    fn pg(&self, program: &str, args: &[&str]) {
        if let Err(e) = self.try_pg(program, args) {
            panic!("{e}");
        }
    }

    fn try_pg(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let bin = self.bindir.join(program);
        let mut c = if rustix::process::geteuid().is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        let out = c.args(args).output().map_err(|e| format!("{program}: {e}"))?;
        if !out.status.success() {
            let (o, e) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            return Err(format!("{program} {args:?}: {o}{e}"));
        }
        Ok(())
    }

    fn start() -> Standby {
        let dir = tempfile::tempdir().unwrap();
        if rustix::process::geteuid().is_root() {
            let ok = Command::new("chown").arg("postgres").arg(dir.path()).status().unwrap();
            assert!(ok.success(), "chown to postgres (the user the PostgreSQL package creates)");
        }
        let mut s = Standby { bindir: pg_bindir(), primary_port: 0, standby_port: 0, dir };
        let d = s.dir.path().display().to_string();
        let initdb = [
            "-D",
            &format!("{d}/primary"),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ];
        s.pg("initdb", &initdb);
        s.primary_port = s.start_node("primary", free_port() - 1);
        let port = s.primary_port.to_string();
        let standby = format!("{d}/standby");
        s.pg(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                &standby,
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
        );
        s.standby_port = s.start_node("standby", s.primary_port);
        s
    }

    fn url(&self, port: u16, db: &str) -> String {
        format!("host=127.0.0.1 port={port} user=postgres dbname={db}")
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        let d = self.dir.path().display().to_string();
        for node in ["standby", "primary"] {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.pg("pg_ctl", &["-D", &format!("{d}/{node}"), "-m", "immediate", "stop"])
            }));
        }
    }
}

#[tokio::test]
async fn a_standby_in_recovery_is_read_only_and_still_read() {
    let pg = Standby::start();
    // The schema and a register, made on the primary, replicated to the standby.
    let dirs = dirs();
    let admin = pg.url(pg.primary_port, "postgres");
    let (c, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    c.batch_execute("create database cs").await.unwrap();
    let primary = pg.url(pg.primary_port, "cs");
    let mut m = csjobs(&primary, &dirs);
    m.arg("migrate");
    assert_eq!(run(m).code, 0);
    let (p, conn) = tokio_postgres::connect(&primary, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    p.batch_execute(DICTIONARY).await.unwrap();
    // Wait until the standby has replayed it.
    let standby = pg.url(pg.standby_port, "cs");
    let mut replayed = false;
    for _ in 0..600 {
        if let Ok((s, conn)) = tokio_postgres::connect(&standby, tokio_postgres::NoTls).await {
            tokio::spawn(conn);
            if s.query_one("select count(*) from cash", &[])
                .await
                .map(|r| r.get::<_, i64>(0) == 3)
                .unwrap_or(false)
            {
                replayed = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(replayed, "the standby replayed the primary");

    let r = run(status_cmd(&standby, &dirs, NOW, &["--format", "json"]));
    assert_eq!(r.code, 3, "{}", r.stderr);
    let v = json_of(&r);
    assert_eq!(v["connections"][0]["state"], "read_only");
    assert!(
        problems(&v).iter().any(|p| p.starts_with("the cash server DB is read-only")),
        "{:#?}",
        problems(&v)
    );
    assert_eq!(states(&v).len(), 3, "a standby is still read");
    let prom = run(status_cmd(&standby, &dirs, NOW, &["--format", "prometheus"]));
    assert!(prom.stdout.contains("csjobs_up{database=\"cashserver\"} 1\n"));
    // The primary is ok.
    let r = run(status_cmd(&primary, &dirs, NOW, &["--format", "json"]));
    assert_eq!(json_of(&r)["connections"][0]["state"], "ok");
}

/// A job that really runs (here a transfer waiting for a table lock the test holds in the
/// bonus DB, its run log open) is `running` — not killed, not a problem — with its own pid;
/// once SIGKILLed it is `killed` and the state is unhealthy.
#[tokio::test]
async fn a_job_that_really_runs_is_running_and_killed_once_its_process_is_gone() {
    use std::time::Instant;
    let (db, bonus, dirs) = (TestDb::cashserver().await, TestDb::bonus().await, Dirs::new());
    db.client
        .batch_execute("insert into changeaccountbalancetemp (accountnumber, amount) values ('A', 1)")
        .await
        .unwrap();
    let (holder, conn) = tokio_postgres::connect(&bonus.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    holder.batch_execute("begin; lock table asset in access exclusive mode").await.unwrap();
    let mut c = csjobs(&db.url, &dirs);
    c.env("CSJOBS_BONUS_DATABASE_URL", &bonus.url)
        .arg("transfer")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let waiting = "select count(*) from pg_stat_activity
                    where datname = current_database() and wait_event_type = 'Lock' and query ilike '%asset%'";
    let deadline = Instant::now() + Duration::from_secs(30);
    while bonus.scalar_i64(waiting).await == 0 {
        assert!(Instant::now() < deadline, "the transfer never reached the lock");
        assert!(child.try_wait().unwrap().is_none(), "the transfer ended before the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let now = chrono::Local::now().fixed_offset().to_rfc3339();
    let transfer_of = |r: &Run| {
        let v = json_of(r);
        v["jobs"].as_array().unwrap().iter().find(|j| j["job"] == "transfer").unwrap().clone()
    };
    let r = status(&db, &dirs, &now, &["--format", "json"]);
    let t = transfer_of(&r);
    assert_eq!(t["unfinished"]["outcome"], "running", "{t}");
    assert_eq!(t["unfinished"]["pid"], child.id(), "{t}");
    assert_eq!(t["last_run"]["outcome"], "running", "{t}");
    assert!(t["unfinished"]["finished_at"].is_null(), "{t}");
    let problems = json_of(&r)["problems"].clone();
    assert!(!problems.to_string().contains("transfer"), "a running job is no problem: {problems}");

    child.kill().unwrap();
    child.wait().unwrap();
    holder.batch_execute("rollback").await.unwrap();
    let r = status(&db, &dirs, &now, &["--format", "json"]);
    let t = transfer_of(&r);
    assert_eq!(t["unfinished"]["outcome"], "killed", "{t}");
    let problems = json_of(&r)["problems"].clone();
    assert!(problems.to_string().contains("was killed"), "a killed run is a problem: {problems}");
    assert_eq!(r.code, 3, "{problems}");
}
