//! The chain of receive.md ("A chain: store servers to a central server") across two real
//! brokers: the machine's RabbitMQ (127.0.0.1:5672) holds the store servers, one vhost each
//! (removed afterwards), and the test starts a second RabbitMQ node as the central server
//! (tests/support/rabbit.rs: its own node name, ports, config and data, stopped and removed
//! at the end; one of them with a TLS listener of RabbitMQ's own). `csjobs receive-chain`
//! sets the stores up; pika publishes as the registers' agent does. The shovel plugin must
//! be on in the machine's node (scripts/lib/rabbitmq.sh).

mod common;
#[path = "support/rabbit.rs"]
mod rabbit;

use std::{collections::BTreeSet, fs, os::unix::fs::PermissionsExt, path::Path, time::Duration};

use common::*;
use rabbit::*;

const QUEUE: &str = "csjobs.sales";
const TO_CENTRAL: &str = "csjobs.sales.central";
/// The central user's password, and as it is written in a URL.
const PASSWORD: &str = "ch4in s3cret%pw";
const PASSWORD_IN_URL: &str = "ch4in%20s3cret%25pw";

/// One store server: its broker (a vhost of the machine's RabbitMQ), its directories and its
/// cash server DB, five registers of one shop.
struct Store {
    vhost: Vhost,
    dirs: Dirs,
    db: TestDb,
    shop: i64,
    cashes: Vec<i64>,
}

impl Store {
    async fn new(shop: i64, cashes: std::ops::RangeInclusive<i64>) -> Store {
        let s = Store {
            vhost: Vhost::new("store"),
            dirs: Dirs::new(),
            db: TestDb::cashserver().await,
            shop,
            cashes: cashes.collect(),
        };
        register_cashes(&s.db, shop, &s.cashes).await;
        s
    }

    /// `csjobs receive-chain ARGS` on this store, toward `central` (a URL) when given.
    fn chain(&self, central: Option<&str>, args: &[&str]) -> Run {
        let mut c = csjobs("", &self.dirs);
        c.env("CSJOBS_RECEIVE_AMQP_URL", self.vhost.url()).arg("receive-chain").args(args);
        if let Some(url) = central {
            c.env("CSJOBS_CHAIN_CENTRAL_URL", url);
        }
        let r = run(c);
        assert_no_password(&r);
        r
    }

    /// Four sales files of each register: one check each, numbered per register.
    fn contents(&self) -> Vec<(i64, i64, Vec<u8>)> {
        let mut v = Vec::new();
        for &cash in &self.cashes {
            for n in 1..=4 {
                let sale = sale(n, &format!("{cash}.{n:02}"));
                v.push((
                    cash,
                    n,
                    sales_file(self.shop, cash, 1, Some("2026-11-20T09:00:00"), None, vec![sale]),
                ));
            }
        }
        v
    }
}

async fn register_cashes(db: &TestDb, shop: i64, cashes: &[i64]) {
    for cash in cashes {
        db.client
            .execute(
                "insert into cash (cashcode, shopcode, name) values ($1, $2, $3)",
                &[&(*cash as i32), &(shop as i32), &format!("Касса {cash}")],
            )
            .await
            .unwrap();
    }
}

fn assert_no_password(r: &Run) {
    for said in [&r.stdout, &r.stderr] {
        assert!(!said.contains("s3cret"), "the central password was printed: {said}");
    }
}

/// `csjobs receive` of `url` into `dirs`, then `load-sales` into `db`: both exit 0.
fn receive_and_load(url: &str, dirs: &Dirs, db: &TestDb) {
    let mut c = csjobs("", dirs);
    c.env("CSJOBS_RECEIVE_AMQP_URL", url).env("CSJOBS_RECEIVE_IDLE_EXIT", "1s").arg("receive");
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let load = load_sales(db, dirs, &[]);
    assert_eq!(load.code, 0, "{}", load.stderr);
}

/// Every document once: one per (register, number) of `expected`, nothing else.
async fn assert_documents(db: &TestDb, expected: &[(i64, i64, Vec<u8>)]) {
    let mut rows =
        db.rows("select w.cashcode, d.docnum from document d join workshift w using (workshiftid)").await;
    rows.sort();
    let mut want: Vec<String> = expected.iter().map(|(cash, n, _)| format!("({cash},{n})")).collect();
    want.sort();
    assert_eq!(rows, want, "every document exactly once");
}

#[tokio::test]
async fn two_stores_offline_for_a_while_deliver_every_document_once_to_the_central_server_and_their_own() {
    assert_shovel_plugin();
    let central = Node::start("central");
    central.add_user("chain", PASSWORD);
    let central_url = central.url_as("chain", PASSWORD_IN_URL);
    let stores = [Store::new(8, 1001..=1005).await, Store::new(9, 1006..=1010).await];

    // Set up, and again: the second run changes nothing.
    for s in &stores {
        let r = s.chain(Some(&central_url), &[]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        assert!(
            r.stdout.contains("shovel csjobs.sales.central") && r.stdout.contains(": created:"),
            "{}",
            r.stdout
        );
        assert!(r.stdout.contains("ack-mode on-confirm"), "{}", r.stdout);
        let again = s.chain(Some(&central_url), &[]);
        assert_eq!(again.code, 0, "{}", again.stderr);
        assert!(again.stdout.contains(": unchanged:"), "{}", again.stdout);
        assert_eq!(s.vhost.queues(), [QUEUE, TO_CENTRAL, "csjobs.sales.rejected"]);
        assert_eq!(s.vhost.parameters(), ["shovel/csjobs.sales.central"]);
        let check = s.chain(None, &["--check"]);
        assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
        assert!(check.stdout.contains("state running"), "{}", check.stdout);
    }
    // Another central URL updates the shovel; the first one again puts it back.
    let other = stores[0].chain(Some(&central.url()), &[]);
    assert_eq!(other.code, 0, "{}", other.stderr);
    assert!(other.stdout.contains(": updated:"), "{}", other.stdout);
    let back = stores[0].chain(Some(&central_url), &[]);
    assert!(back.code == 0 && back.stdout.contains(": updated:"), "{}{}", back.stdout, back.stderr);
    assert_eq!(stores[0].vhost.parameters(), ["shovel/csjobs.sales.central"]);
    // The central server's objects are there before anything is shovelled to them.
    assert_eq!(central.ready(QUEUE), 0);

    // The central server goes away; the registers go on selling.
    central.stop();
    wait_until("the shovel noticing", Duration::from_secs(90), || {
        stores[0].chain(None, &["--check"]).code == 3
    });
    let check = stores[0].chain(None, &["--check"]);
    assert!(check.stdout.contains("problem: the shovel csjobs.sales.central is"), "{}", check.stdout);
    let mut everything = Vec::new();
    for s in &stores {
        let contents = s.contents();
        let messages: Vec<serde_json::Value> = contents
            .iter()
            .enumerate()
            .map(|(i, (cash, n, c))| message(c, [Some("zip"), None, Some("gzip")][i % 3], *cash, *n))
            .collect();
        s.vhost.publish(&messages);
        everything.extend(contents);
    }
    for s in &stores {
        assert_eq!(s.vhost.ready(TO_CENTRAL), 20, "kept for the central server while it is away");
        assert_eq!(s.vhost.ready(QUEUE), 20, "and for the store's own receive");
    }
    // Removing the chain now would lose them: refused without --yes, nothing removed.
    let refused = stores[0].chain(None, &["--remove"]);
    assert_eq!(refused.code, 5, "{}", refused.stderr);
    assert!(refused.stderr.contains("still holds 20 messages"), "{}", refused.stderr);
    assert_eq!(stores[0].vhost.parameters(), ["shovel/csjobs.sales.central"]);
    assert_eq!(stores[0].vhost.ready(TO_CENTRAL), 20);

    // It comes back: the shovels deliver everything.
    central.boot();
    wait_until("the shovels delivering", Duration::from_secs(180), || {
        stores.iter().all(|s| s.vhost.ready(TO_CENTRAL) == 0) && central.ready_if_there(QUEUE) == Some(40)
    });

    // The central server receives and loads every store's sales, each document once.
    let (central_dirs, central_db) = (Dirs::new(), TestDb::cashserver().await);
    for s in &stores {
        register_cashes(&central_db, s.shop, &s.cashes).await;
    }
    receive_and_load(&central.url(), &central_dirs, &central_db);
    let expected: BTreeSet<String> = everything.iter().map(|(_, _, c)| name_of(c)).collect();
    assert_eq!(expected.len(), 40);
    let processed: BTreeSet<String> = Dirs::names(&central_dirs.processed).into_iter().collect();
    assert_eq!(processed, expected, "one file per message, by content");
    assert_documents(&central_db, &everything).await;
    assert_eq!(central.ready(QUEUE), 0);

    // Each store keeps its own: its receive and load-sales hold its documents once.
    for s in &stores {
        receive_and_load(&s.vhost.url(), &s.dirs, &s.db);
        let own: Vec<(i64, i64, Vec<u8>)> = s.contents();
        assert_documents(&s.db, &own).await;
        assert_eq!(Dirs::names(&s.dirs.processed).len(), 20);
    }

    // Removed: the shovel and the (empty) queue go; removing again finds nothing.
    let removed = stores[0].chain(None, &["--remove"]);
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    assert!(removed.stdout.contains("removed") && removed.stdout.contains("deleted"), "{}", removed.stdout);
    assert_eq!(stores[0].vhost.parameters(), Vec::<String>::new());
    assert_eq!(stores[0].vhost.queues(), [QUEUE, "csjobs.sales.rejected"]);
    let again = stores[0].chain(None, &["--remove"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("not there"), "{}", again.stdout);
    let check = stores[0].chain(None, &["--check"]);
    assert_eq!(check.code, 3, "{}", check.stdout);
    assert!(check.stdout.contains("problem: there is no shovel"), "{}", check.stdout);
}

#[tokio::test]
async fn setting_up_toward_a_bad_or_unreachable_central_broker_changes_nothing() {
    assert_shovel_plugin();
    let store = Store::new(8, 1001..=1001).await;
    // No central URL, the store's own broker, a URL that is not AMQP: exit 2.
    for (url, says) in [
        (None, "CSJOBS_CHAIN_CENTRAL_URL"),
        (
            Some(store.vhost.url().replace("guest:guest", "c:s3cret").replace("127.0.0.1", "localhost")),
            "the store's own broker",
        ),
        (Some("http://c:s3cret@central/".to_string()), "not a valid AMQP URL"),
        (Some("amqps://c:s3cret@central/hq".to_string()), "cacertfile"),
    ] {
        let r = store.chain(url.as_deref(), &[]);
        assert_eq!(r.code, 2, "{url:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{url:?}: {}", r.stderr);
    }
    // A central broker that does not answer: exit 1, before anything changed on the store.
    let closed = format!("amqp://c:s3cret@127.0.0.1:{}/hq", free_port());
    let r = store.chain(Some(&closed), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("cannot connect to the broker at amqp://127.0.0.1:"), "{}", r.stderr);
    assert_eq!(store.vhost.queues(), Vec::<String>::new());
    assert_eq!(store.vhost.parameters(), Vec::<String>::new());
    // A store vhost that is not on this host's node: exit 1, saying where to run it.
    let mut c = csjobs("", &store.dirs);
    c.env("CSJOBS_RECEIVE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/csjobs_t_no_such_vhost")
        .env("CSJOBS_CHAIN_CENTRAL_URL", &closed)
        .arg("receive-chain");
    let r = run(c);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("is not on the RabbitMQ node of this host"), "{}", r.stderr);
    assert_no_password(&r);
}

/// A CA and a server certificate (tests/common) in a directory the machine's broker (its own
/// user) may read: the shovel runs there and reads the CA file.
fn readable_certificates(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let (ca, cert, key) = certificates_naming(dir, "IP:127.0.0.1,DNS:localhost");
    fs::set_permissions(&ca, fs::Permissions::from_mode(0o644)).unwrap();
    (ca, cert, key)
}

#[tokio::test]
async fn the_shovel_reaches_a_central_broker_over_amqps_verified_against_the_given_ca() {
    assert_shovel_plugin();
    let (certs, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ca, cert, key) = readable_certificates(certs.path());
    let (untrusted, _, _) = readable_certificates(other.path());
    let central = Node::start_tls("central-tls", NodeTls { cert: &cert, key: &key, client_ca: None });
    central.add_user("chain", PASSWORD);
    let tls_port = central.tls_port.expect("the TLS listener");
    // localhost: the name the certificate holds and the shovel verifies (verify_peer).
    let url = |ca: &Path| {
        format!("amqps://chain:{PASSWORD_IN_URL}@localhost:{tls_port}/%2F?cacertfile={}", ca.display())
    };
    let store = Store::new(8, 1001..=1002).await;

    // A CA that did not sign the central broker's certificate: refused (receive-chain checks
    // the central broker first, over the same TLS), and the store is left as it was.
    let refused = store.chain(Some(&url(&untrusted)), &[]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.to_lowercase().contains("certificate"), "{}", refused.stderr);
    assert!(refused.stderr.contains(&format!("amqps://localhost:{tls_port}/")), "{}", refused.stderr);
    assert_eq!(store.vhost.queues(), Vec::<String>::new());
    assert_eq!(store.vhost.parameters(), Vec::<String>::new());

    // The CA that signed it: set up, and the shovel runs over TLS.
    let r = store.chain(Some(&url(&ca)), &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(": created:"), "{}", r.stdout);
    wait_until("the shovel running over amqps", Duration::from_secs(90), || {
        store.chain(None, &["--check"]).code == 0
    });
    let contents = store.contents();
    let messages: Vec<serde_json::Value> =
        contents.iter().map(|(cash, n, c)| message(c, Some("zip"), *cash, *n)).collect();
    store.vhost.publish(&messages);
    wait_until("the shovel delivering over amqps", Duration::from_secs(120), || {
        store.vhost.ready(TO_CENTRAL) == 0 && central.ready_if_there(QUEUE) == Some(8)
    });
    // Through the TLS listener: the central broker's connection from the shovel is ssl.
    let connections = central.ctl(&["-q", "list_connections", "user", "ssl"]).unwrap();
    assert!(
        connections.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["chain", "true"]),
        "{connections}"
    );

    // The central server receives and loads each document once.
    let (central_dirs, central_db) = (Dirs::new(), TestDb::cashserver().await);
    register_cashes(&central_db, store.shop, &store.cashes).await;
    receive_and_load(&central.url(), &central_dirs, &central_db);
    assert_documents(&central_db, &contents).await;
    assert_eq!(Dirs::names(&central_dirs.processed).len(), 8);
}

#[tokio::test]
async fn a_store_broker_without_the_shovel_plugin_is_refused_before_anything_changes() {
    // A node of the test's own stands for a store server whose RabbitMQ lacks the plugin
    // (the machine's has it, and the other tests need it on); rabbitmqctl reaches that node
    // through RABBITMQ_NODENAME, as on a host whose node has another name.
    let store = Node::start("store-noshovel");
    let central = Vhost::new("central");
    let dirs = Dirs::new();
    let mut c = csjobs("", &dirs);
    c.env("RABBITMQ_NODENAME", &store.name)
        .env("CSJOBS_RECEIVE_AMQP_URL", store.url())
        .env("CSJOBS_CHAIN_CENTRAL_URL", central.url())
        .arg("receive-chain");
    let r = run(c);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("does not have the shovel plugin enabled"), "{}", r.stderr);
    assert!(r.stderr.contains("rabbitmq-plugins enable rabbitmq_shovel"), "{}", r.stderr);
    // Nothing declared on either side.
    assert_eq!(store.ctl(&["-q", "list_queues", "name"]).unwrap().trim(), "");
    assert_eq!(central.queues(), Vec::<String>::new());
}
