//! `status` and the broker of `receive` (receive.md, "Monitoring"), against the machine's real
//! RabbitMQ (a vhost of the test's own, removed afterwards) and real PostgreSQL: the
//! connection `broker`, the queues `broker` and `broker_rejected`, the problem sentences for a
//! broker down and for rejected messages, and the Prometheus metrics, checked by promtool.
//! Messages are published by pika as the register agent does; `csjobs receive` consumes them.

mod common;
#[path = "support/rabbit.rs"]
mod rabbit;

use common::*;
use rabbit::*;
use serde_json::Value;

fn status(db: &TestDb, dirs: &Dirs, amqp: &str, format: &str) -> Run {
    let mut c = csjobs(&db.url, dirs);
    c.env("CSJOBS_RECEIVE_AMQP_URL", amqp).args(["status", "--format", format]);
    run(c)
}

fn problems(v: &Value) -> Vec<String> {
    v["problems"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect()
}

/// promtool's verdict on a textfile's text.
fn promtool_check_text(text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("csjobs.prom");
    std::fs::write(&file, text).unwrap();
    promtool_check(&file);
}

#[tokio::test]
async fn status_shows_the_broker_its_queues_and_rejected_messages() {
    let vhost = Vhost::new("status");
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    let url = vhost.url();

    // Before receive ever ran: the broker answers, its queues are not there yet.
    let v: Value = serde_json::from_str(&status(&db, &dirs, &url, "json").stdout).unwrap();
    let broker =
        v["connections"].as_array().unwrap().iter().find(|c| c["database"] == "broker").unwrap().clone();
    assert_eq!(broker["state"], "ok", "{broker}");
    assert!(broker["server_version"].as_str().unwrap().starts_with("RabbitMQ "), "{broker}");
    assert!(broker["latency_seconds"].as_f64().is_some());
    assert_eq!(broker["expected_migration"], Value::Null);
    assert_eq!(v["queues"]["broker"]["present"], false);
    assert_eq!(v["queues"]["broker"]["queue"], "csjobs.sales");
    assert!(!problems(&v).iter().any(|p| p.contains("broker")), "{:#?}", problems(&v));

    // receive declares the exchange and its queues; then two good messages and one that
    // cannot be a sales file are published, and receive takes them.
    let receive = || {
        let mut r = csjobs(&db.url, &dirs);
        r.env("CSJOBS_RECEIVE_AMQP_URL", &url).env("CSJOBS_RECEIVE_IDLE_EXIT", "1s").arg("receive");
        run(r)
    };
    let first = receive();
    assert_eq!(first.code, 0, "{}", first.stderr);
    let good = |n: i64| sales_file(8, 17, n, Some("2026-11-23T08:00:00"), None, vec![]);
    // A compressMethod the agent never sends: rejected, never a file.
    let mut unknown_compression = message(&good(3), None, 17, 3);
    unknown_compression["headers"]["compressMethod"] = "lzma".into();
    vhost.publish(&[
        message(&good(1), Some("zip"), 17, 1),
        message(&good(2), None, 17, 2),
        unknown_compression,
    ]);
    let r = receive();
    assert!(r.code == 0 || r.code == 3, "{}", r.stderr);
    wait_until("the rejected message", std::time::Duration::from_secs(60), || {
        vhost.ready_if_there("csjobs.sales.rejected") == Some(1)
    });

    let st = status(&db, &dirs, &url, "json");
    let v: Value = serde_json::from_str(&st.stdout).unwrap();
    assert_eq!(st.code, 3, "{}", st.stderr);
    let q = &v["queues"];
    assert_eq!(
        (&q["broker"]["present"], &q["broker"]["messages"], &q["broker"]["consumers"]),
        (&Value::Bool(true), &Value::from(0), &Value::from(0))
    );
    assert_eq!(
        (&q["broker_rejected"]["queue"], &q["broker_rejected"]["messages"]),
        (&Value::from("csjobs.sales.rejected"), &Value::from(1))
    );
    let p = problems(&v);
    assert!(
        p.iter()
            .any(|s| s.starts_with("1 messages on the broker were rejected (queue csjobs.sales.rejected)")),
        "{p:#?}"
    );

    // Prometheus: the broker's link and both queues, a file promtool accepts.
    let prom = status(&db, &dirs, &url, "prometheus").stdout;
    for want in [
        "csjobs_up{database=\"broker\"} 1",
        "csjobs_broker_messages{queue=\"csjobs.sales\"} 0",
        "csjobs_broker_messages{queue=\"csjobs.sales.rejected\"} 1",
        "csjobs_broker_consumers{queue=\"csjobs.sales\"} 0",
    ] {
        assert!(prom.lines().any(|l| l == want), "{want} not in\n{prom}");
    }
    assert!(prom.lines().any(|l| l.starts_with("csjobs_database_latency_seconds{database=\"broker\"} ")));
    promtool_check_text(&prom);
    // The table names both queues.
    let table = status(&db, &dirs, &url, "table").stdout;
    assert!(
        table.lines().any(|l| l.trim_start().starts_with("broker_rejected") && l.contains("1 messages")),
        "{table}"
    );

    // Purged, the problem goes.
    rabbitmqctl(&["-q", "purge_queue", "-p", &vhost.name, "csjobs.sales.rejected"]);
    let v: Value = serde_json::from_str(&status(&db, &dirs, &url, "json").stdout).unwrap();
    assert!(!problems(&v).iter().any(|p| p.contains("broker")), "{:#?}", problems(&v));
}

#[tokio::test]
async fn a_broker_down_is_a_problem_and_csjobs_up_0_and_its_password_is_never_shown() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    let url = format!("amqp://guest:Sup3r-s3cret@127.0.0.1:{}/csjobs", free_port());
    let st = status(&db, &dirs, &url, "json");
    assert_eq!(st.code, 3, "the cash server DB answers, the broker does not: problems\n{}", st.stderr);
    let v: Value = serde_json::from_str(&st.stdout).unwrap();
    let broker =
        v["connections"].as_array().unwrap().iter().find(|c| c["database"] == "broker").unwrap().clone();
    assert_eq!(broker["state"], "unreachable");
    assert!(
        problems(&v).iter().any(|p| p.starts_with("the broker (receive.amqp_url) cannot be used: ")),
        "{:#?}",
        problems(&v)
    );
    assert_eq!(v["queues"]["broker"]["messages"], Value::Null);
    let prom = status(&db, &dirs, &url, "prometheus");
    assert!(prom.stdout.lines().any(|l| l == "csjobs_up{database=\"broker\"} 0"), "{}", prom.stdout);
    assert!(!prom.stdout.contains("csjobs_broker_messages{"), "no figure of a broker that did not answer");
    promtool_check_text(&prom.stdout);
    let table = status(&db, &dirs, &url, "table");
    for out in [&st.stdout, &st.stderr, &prom.stdout, &prom.stderr, &table.stdout, &table.stderr] {
        assert!(!out.contains("Sup3r-s3cret"), "the password is shown: {out}");
    }
    // Without receive.amqp_url there is no broker at all.
    let mut c = csjobs(&db.url, &dirs);
    c.args(["status", "--format", "json"]);
    let v: Value = serde_json::from_str(&run(c).stdout).unwrap();
    assert!(!v["connections"].as_array().unwrap().iter().any(|c| c["database"] == "broker"));
    assert!(v["queues"].get("broker").is_none());
}
