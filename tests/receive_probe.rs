//! `receive::probe::probe`, the broker as status will show it, against the real RabbitMQ on
//! 127.0.0.1:5672 (a vhost of each test's own, removed afterwards): up, with and without the
//! queues, with messages, consumers and rejected ones; down (a closed port), a wrong
//! password, a vhost that does not exist, a bad URL, nothing configured. A passive declare
//! creates nothing, and no password is ever in the facts.

mod common;
#[path = "support/rabbit.rs"]
mod rabbit;

use std::time::Duration;

use common::*;
use csjobs::{
    core::config::ReceiveSettings,
    receive::probe::{probe, BrokerFacts, BrokerState},
};
use rabbit::*;

fn settings(url: Option<String>) -> ReceiveSettings {
    ReceiveSettings {
        amqp_url: url,
        exchange: "csjobs.sales".into(),
        queue: "csjobs.sales".into(),
        prefetch: 500,
        idle_exit: Duration::from_secs(1),
    }
}

fn receive(v: &Vhost, dirs: &Dirs, args: &[&str]) -> std::process::Command {
    let mut c = csjobs("", dirs);
    c.env("CSJOBS_RECEIVE_AMQP_URL", v.url()).env("CSJOBS_RECEIVE_IDLE_EXIT", "1s").arg("receive").args(args);
    c
}

fn counts(f: &BrokerFacts) -> (bool, Option<u64>, Option<u64>, bool, Option<u64>) {
    (f.queue.present, f.queue.messages, f.queue.consumers, f.rejected.present, f.rejected.messages)
}

fn assert_unreachable(f: &BrokerFacts, says: &str) {
    assert_eq!(f.state, BrokerState::Unreachable, "{f:?}");
    let error = f.error.as_deref().unwrap_or_default();
    assert!(error.contains(says), "{error}");
    assert!(!format!("{f:?}").contains("s3cretpw"), "a password in {f:?}");
    assert_eq!((f.product.as_deref(), f.round_trip), (None, None));
    assert_eq!(counts(f), (false, None, None, false, None));
}

#[tokio::test]
async fn a_broker_that_answers_gives_its_version_round_trip_and_queues_and_nothing_is_created() {
    let (v, dirs) = (Vhost::new("probe"), Dirs::new());
    // Before receive ever ran: it answers, the queues are missing, and stay so.
    let f = probe(&settings(Some(v.url()))).await;
    assert_eq!(f.state, BrokerState::Ok, "{f:?}");
    assert_eq!(f.broker, "amqp://127.0.0.1:5672/…");
    assert_eq!(f.product.as_deref(), Some("RabbitMQ"));
    assert!(f.version.as_deref().is_some_and(|v| v.starts_with('3') || v.starts_with('4')), "{f:?}");
    assert!(f.round_trip.is_some_and(|t| t < Duration::from_secs(10)), "{f:?}");
    assert_eq!(counts(&f), (false, None, None, false, None));
    assert_eq!((f.queue.name.as_str(), f.rejected.name.as_str()), ("csjobs.sales", "csjobs.sales.rejected"));
    assert_eq!(f.queue.error, None);
    assert_eq!(v.queues(), Vec::<String>::new(), "a passive declare creates nothing");

    // receive declared them; three messages wait.
    assert_eq!(run(receive(&v, &dirs, &[])).code, 0);
    let good: Vec<serde_json::Value> = (1..=2)
        .map(|n| {
            message(
                &sales_file(8, 17, 1, Some("2026-11-20T09:00:00"), None, vec![sale(n, "1.00")]),
                Some("zip"),
                17,
                n,
            )
        })
        .collect();
    let mut bad = message(b"{}", None, 17, 9);
    bad["headers"]["compressMethod"] = serde_json::json!("rar");
    v.publish(&[good[0].clone(), bad, good[1].clone()]);
    let f = probe(&settings(Some(v.url()))).await;
    assert_eq!(counts(&f), (true, Some(3), Some(0), true, Some(0)), "{f:?}");

    // Received: the queue is empty, one message was dead-lettered.
    assert_eq!(run(receive(&v, &dirs, &[])).code, 3);
    let f = probe(&settings(Some(v.url()))).await;
    assert_eq!(counts(&f), (true, Some(0), Some(0), true, Some(1)), "{f:?}");

    // A receive --follow consuming: one consumer.
    let child = LoggedChild::spawn(receive(&v, &dirs, &["--follow"]));
    wait_until("receiving", Duration::from_secs(20), || child.log().contains("\"message\":\"receiving\""));
    let f = probe(&settings(Some(v.url()))).await;
    assert_eq!(counts(&f), (true, Some(0), Some(1), true, Some(1)), "{f:?}");
    child.terminate();
    assert_eq!(child.wait(Duration::from_secs(20)).0, Some(0));
    assert_eq!(v.queues(), ["csjobs.sales", "csjobs.sales.rejected"]);
}

#[tokio::test]
async fn a_broker_that_cannot_be_used_is_unreachable_with_its_reason_and_no_password() {
    let v = Vhost::new("probe");
    let closed = format!("amqp://cs:s3cretpw@127.0.0.1:{}/x", free_port());
    assert_unreachable(
        &probe(&settings(Some(closed))).await,
        "cannot connect to the broker at amqp://127.0.0.1:",
    );
    let wrong_password = v.url().replace("guest:guest", "guest:s3cretpw");
    assert_unreachable(&probe(&settings(Some(wrong_password))).await, "cannot connect to the broker at");
    let no_vhost = "amqp://guest:guest@127.0.0.1:5672/csjobs_t_no_such_vhost".to_string();
    let f = probe(&settings(Some(no_vhost))).await;
    assert_eq!(f.state, BrokerState::Unreachable, "{f:?}");
    assert!(f.error.as_deref().is_some_and(|e| e.contains("(vhost csjobs_t_no_such_vhost")), "{f:?}");
    assert_unreachable(&probe(&settings(Some("http://u:s3cretpw@h/".into()))).await, "not a valid AMQP URL");
    let none = probe(&settings(None)).await;
    assert_eq!((none.state, none.error, none.broker.as_str()), (BrokerState::NotConfigured, None, ""));
}
