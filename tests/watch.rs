//! `csjobs revenue-watch` through the binary against real PostgreSQL and a real HTTP server
//! receiving the webhook: the profile on hand-made days, the verdict, the alert life cycle
//! with `--now` moving forward (fire → hold → repeat → resolve → quiet), a delivery that fails
//! staying owed, and bad settings.

mod common;

use std::net::TcpListener;

use common::*;
use serde_json::Value;

/// Tuesday noon, Moscow time.
const NOW: &str = "2026-11-24T12:00:00+03:00";

fn at(hours_after_now: i64) -> String {
    (chrono::DateTime::parse_from_rfc3339(NOW).unwrap() + chrono::TimeDelta::minutes(hours_after_now * 60))
        .to_rfc3339()
}

/// A closed sale of `total` at `time_end` (shop wall clock) in a shift of cash 17 (shop 8).
async fn sale_at(db: &TestDb, time_end: &str, total: &str) {
    doc_at(db, time_end, "sale", total).await
}

async fn doc_at(db: &TestDb, time_end: &str, doctype: &str, total: &str) {
    db.client
        .execute(
            "with s as (insert into workshift (cashcode, shopcode, shiftnum, time_beg, loaded_at)
                        values (17, 8, (select coalesce(max(shiftnum), 0) + 1 from workshift), $1::text::timestamp, now())
                        returning workshiftid)
             insert into document (workshiftid, docnum, doctype, time_beg, time_end, total)
             select workshiftid, 1, $3, $1::text::timestamp, $1::text::timestamp, $2::text::numeric from s",
            &[&time_end, &total, &doctype],
        )
        .await
        .unwrap();
}

/// The JSON bodies a receiver got since the last look.
fn received(hook: &HttpReceiver) -> Vec<Value> {
    hook.take().iter().map(|(_, b)| serde_json::from_slice(b).expect("a JSON body")).collect()
}

fn watch(db: &TestDb, dirs: &Dirs, now: &str, hook: Option<&str>, args: &[&str]) -> Run {
    let mut c = csjobs(&db.url, dirs);
    if let Some(h) = hook {
        c.env("CSJOBS_ALERTS_WEBHOOK_URL", h);
    }
    c.args(["--now", now, "revenue-watch", "--format", "json"]).args(args);
    run(c)
}

/// (alertname, shop, cash, status) of each alert of a webhook body.
fn alerts_of(body: &Value) -> Vec<(String, String, Option<String>, String)> {
    let mut v: Vec<_> = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap().to_string(),
                a["labels"]["shop"].as_str().unwrap().to_string(),
                a["labels"]["cash"].as_str().map(String::from),
                a["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Shop 8: 10,000 by 10:00 on the two Tuesdays before (and 5,000 more at 15:00), nothing on the
/// two before those (closed), 5,000 today by 10:00. Cash 18 last heard from two hours ago.
async fn fixture() -> (TestDb, Dirs) {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    for day in ["2026-11-17", "2026-11-10"] {
        sale_at(&db, &format!("{day}T10:00:00"), "10000.00").await;
        sale_at(&db, &format!("{day}T15:00:00"), "5000.00").await;
    }
    sale_at(&db, "2026-11-24T10:00:00", "5000.00").await;
    contact(&db, 18, &at(-2)).await;
    (db, dirs)
}

async fn contact(db: &TestDb, cash: i32, at: &str) {
    db.client
        .execute(
            "insert into load_log (file_name, file_size, content_sha256, shopcode, cashcode, source_host, disposition,
                                   started_at, finished_at, disposed_at)
             select 'f-' || $2::text || '.json', 1, md5($2::text), shopcode, cashcode, 'pos', 'processed',
                    $2::text::timestamptz, $2::text::timestamptz, $2::text::timestamptz from cash where cashcode = $1",
            &[&cash, &at],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn the_profile_and_the_verdict_by_hand() {
    let (db, dirs) = fixture().await;
    let r = watch(&db, &dirs, NOW, None, &["--dry-run"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let json_end = r.stdout.find("\n--- ").unwrap_or(r.stdout.len());
    let v: Value =
        serde_json::from_str(&r.stdout[..json_end]).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    let shop = |n: i64| v["shops"].as_array().unwrap().iter().find(|s| s["shop"] == n).unwrap().clone();
    // Median of 10,000 and 10,000 (the 15:00 sales are after noon; the closed days are left out).
    assert_eq!(shop(8)["today"], "5000.00");
    assert_eq!(shop(8)["profile"], "10000.00");
    assert_eq!(shop(8)["deviation"], "0.5000");
    assert_eq!(shop(8)["verdict"], "low");
    assert_eq!(shop(9)["verdict"], "no_profile");
    assert_eq!(v["silent_registers"].as_array().unwrap().len(), 1);
    // The message that would be sent names the shop, the figures, the registers, the command.
    let msg = &r.stdout[json_end..];
    for want in [
        "Казань, ул. Баумана, 1",
        "today 5000.00 against a usual 10000.00",
        "50.0%",
        "register 18",
        "csjobs status --shop 8",
    ] {
        assert!(msg.contains(want), "{want:?} not in\n{msg}");
    }
    // --dry-run wrote nothing.
    assert_eq!(db.scalar_i64("select count(*) from alert").await, 0);
    // At the threshold (today 6,000 → deviation 0.40 exactly): no alert; a cent less: low.
    sale_at(&db, "2026-11-24T11:00:00", "1000.00").await;
    let v = watch(&db, &dirs, NOW, None, &["--dry-run", "--shop", "8"]);
    assert!(v.stdout.contains("\"verdict\": \"ok\""), "{}", v.stdout);
    doc_at(&db, "2026-11-24T11:30:00", "return", "0.01").await;
    let v = watch(&db, &dirs, NOW, None, &["--dry-run", "--shop", "8"]);
    assert!(v.stdout.contains("\"verdict\": \"low\""), "{}", v.stdout);
    // Open for less than watch.start_after (1h) today: opened 11:30, now 12:00. Then closed.
    db.client.batch_execute("insert into shop_hours values (8, 2, '11:30', '22:00')").await.unwrap();
    let v = watch(&db, &dirs, NOW, None, &["--dry-run", "--shop", "8"]);
    assert!(v.stdout.contains("\"verdict\": \"not_yet\""), "{}", v.stdout);
    let v = watch(&db, &dirs, "2026-11-24T12:31:00+03:00", None, &["--dry-run", "--shop", "8"]);
    assert!(v.stdout.contains("\"verdict\": \"low\""), "{}", v.stdout);
    let v = watch(&db, &dirs, "2026-11-24T22:30:00+03:00", None, &["--dry-run", "--shop", "8"]);
    assert!(v.stdout.contains("\"verdict\": \"not_yet\""), "after closing: {}", v.stdout);
}

#[tokio::test]
async fn fire_hold_repeat_resolve_and_quiet_by_webhook() {
    let (db, dirs) = fixture().await;
    let hook = HttpReceiver::start(200);
    let url = hook.url("/alerts");
    // Fire: one message, both alerts of shop 8.
    let r = watch(&db, &dirs, NOW, Some(&url), &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let bodies = received(&hook);
    assert_eq!(bodies.len(), 1);
    assert_eq!((bodies[0]["version"].as_str(), bodies[0]["status"].as_str()), (Some("4"), Some("firing")));
    let fired = vec![
        ("register_silent".to_string(), "8".to_string(), Some("18".to_string()), "firing".to_string()),
        ("revenue_low".to_string(), "8".to_string(), None, "firing".to_string()),
    ];
    assert_eq!(alerts_of(&bodies[0]), fired);
    for a in bodies[0]["alerts"].as_array().unwrap() {
        assert!(
            a["fingerprint"].as_str().is_some_and(|f| !f.is_empty())
                && a["startsAt"].is_string()
                && a["endsAt"].is_string()
        );
    }
    // Hold: an hour later nothing is sent, nothing opens twice.
    assert_eq!(watch(&db, &dirs, &at(1), Some(&url), &[]).code, 3);
    assert!(received(&hook).is_empty());
    assert_eq!(db.scalar_i64("select count(*) from alert").await, 2);
    // Repeat after alerts.repeat_after (4h).
    assert_eq!(watch(&db, &dirs, &at(4), Some(&url), &[]).code, 3);
    let bodies = received(&hook);
    assert_eq!(bodies.len(), 1);
    assert_eq!(alerts_of(&bodies[0]), fired);
    // Resolve: revenue catches up, register 18 speaks again.
    sale_at(&db, "2026-11-24T16:30:00", "20000.00").await;
    contact(&db, 18, &at(5)).await;
    assert_eq!(watch(&db, &dirs, &at(5), Some(&url), &[]).code, 0);
    let bodies = received(&hook);
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["status"], "resolved");
    assert!(alerts_of(&bodies[0]).iter().all(|a| a.3 == "resolved") && alerts_of(&bodies[0]).len() == 2);
    // Quiet.
    assert_eq!(watch(&db, &dirs, &at(5), Some(&url), &[]).code, 0);
    assert!(received(&hook).is_empty());
    assert_eq!(db.scalar_i64("select count(*) from alert where resolved_sent_at is null").await, 0);
}

#[tokio::test]
async fn a_failed_delivery_stays_owed_and_goes_out_once_next_run() {
    let (db, dirs) = fixture().await;
    let failing = HttpReceiver::start(500);
    let r = watch(&db, &dirs, NOW, Some(&failing.url("/alerts")), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("stay owed"), "{}", r.stderr);
    let refused = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let r = watch(&db, &dirs, &at(1), Some(&format!("http://127.0.0.1:{refused}/x")), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let good = HttpReceiver::start(200);
    assert_eq!(watch(&db, &dirs, &at(1), Some(&good.url("/alerts")), &[]).code, 3);
    let bodies = received(&good);
    assert_eq!(bodies.len(), 1);
    assert_eq!(alerts_of(&bodies[0]).len(), 2);
    assert_eq!(watch(&db, &dirs, &at(2), Some(&good.url("/alerts")), &[]).code, 3);
    assert!(received(&good).is_empty(), "sent exactly once after the failures");
}

#[tokio::test]
async fn delivery_settings_are_checked_first() {
    let (db, dirs) = fixture().await;
    let r = watch(&db, &dirs, NOW, None, &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("alerts.smtp_url") && r.stderr.contains("alerts.webhook_url"), "{}", r.stderr);
    for (var, value, key) in [
        ("CSJOBS_ALERTS_SMTP_URL", "http://mail.example", "alerts.smtp_url"),
        ("CSJOBS_ALERTS_WEBHOOK_URL", "not a url", "alerts.webhook_url"),
    ] {
        let mut c = csjobs(&db.url, &dirs);
        c.env(var, value).env("CSJOBS_ALERTS_TO", "ops@example.org").args(["--now", NOW, "revenue-watch"]);
        let r = run(c);
        assert_eq!(r.code, 2, "{var}: {}", r.stderr);
        assert!(r.stderr.contains(key), "{}", r.stderr);
    }
    let mut c = csjobs(&db.url, &dirs);
    c.env("CSJOBS_ALERTS_SMTP_URL", "smtp://127.0.0.1:1").env("CSJOBS_ALERTS_TO", "not an address");
    c.args(["--now", NOW, "revenue-watch"]);
    let r = run(c);
    assert!(r.code == 2 && r.stderr.contains("alerts.to"), "{}", r.stderr);
    assert_eq!(
        db.scalar_i64("select count(*) from alert").await,
        0,
        "nothing written before the settings are right"
    );
    // An SMTP server that is down: exit 1, owed.
    let mut c = csjobs(&db.url, &dirs);
    c.env("CSJOBS_ALERTS_SMTP_URL", "smtp://127.0.0.1:1").env("CSJOBS_ALERTS_TO", "ops@example.org");
    c.args(["--now", NOW, "revenue-watch"]);
    let r = run(c);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(db.scalar_i64("select count(*) from alert where last_sent_at is null").await, 2);
}
