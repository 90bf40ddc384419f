//! `csjobs receive-chain` (shared/spec/receive.md, "A chain: store servers to a central
//! server"): sets up, checks or removes a store server's path to the central server on the
//! store's RabbitMQ.
//!
//! The store's broker (`receive.amqp_url`) gets a second durable queue, `<queue>.central`,
//! bound to `receive.exchange` beside `receive.queue`, and a dynamic shovel (a runtime
//! parameter of the rabbitmq_shovel plugin) of the same name that moves it to the central
//! broker's `receive.exchange` with `ack-mode` `on-confirm`: a message leaves the store only
//! once the central broker has confirmed it, so while the link is down every message stays
//! in the store's queue. Before anything changes on the store, the central broker's own
//! objects are declared as its `receive` declares them (a fanout exchange with no queue
//! bound would confirm and drop what the shovel delivers).
//!
//! The queue is declared over AMQP (as `receive` declares its own); the shovel is a runtime
//! parameter, which only the broker's own tool sets without the management plugin: it is
//! handed to `rabbitmqctl import_definitions` on its standard input, so the central URL's
//! password is on no command line. It is never printed; the broker keeps it in its
//! parameter, as it must to connect.

use std::{
    io::{Read, Write},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use amqprs::{
    channel::{
        Channel, ExchangeDeclareArguments, QueueBindArguments, QueueDeclareArguments, QueueDeleteArguments,
        QueueUnbindArguments,
    },
    connection::Connection,
    FieldTable, FieldValue,
};
use anyhow::anyhow;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};

use super::{
    job::{connect, declare, tls_connector, Broker, ChannelClosed, End, Fatal},
    probe::passive_declare,
};
use crate::core::{config::Config, output, JobError, Outcome};

/// The options of `csjobs receive-chain` (its `--help` is these doc comments).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ChainOptions {
    /// The central server's broker, where the shovel delivers:
    /// amqp://user:password@host[:port]/vhost, or amqps://…?cacertfile=PATH (a CA file the
    /// store's RabbitMQ can read). Better given as the env variable: a command line is
    /// visible to every local user
    #[arg(long, env = "CSJOBS_CHAIN_CENTRAL_URL", hide_env_values = true, value_name = "URL")]
    pub central_url: Option<String>,
    /// Only show the chain: the shovel (its destination and state) and the store's queue for
    /// the central server (messages, consumers); exit code 3 when it is not running
    #[arg(long, conflicts_with = "remove")]
    pub check: bool,
    /// Remove the shovel and the store's queue for the central server (which must be empty,
    /// else --yes)
    #[arg(long)]
    pub remove: bool,
    /// With --remove: delete the queue even when it still holds messages for the central
    /// server (they are lost)
    #[arg(long, requires = "remove")]
    pub yes: bool,
}

/// The suffix of the store's queue (and shovel) for the central server.
pub const CENTRAL_SUFFIX: &str = ".central";

/// How long a `rabbitmqctl` call may take.
const CTL_TIMEOUT: Duration = Duration::from_secs(120);
/// How long an imported parameter may take to show (the import is asynchronous).
const IMPORT_WAIT: Duration = Duration::from_secs(30);
/// How long setting up waits for the shovel to run.
const RUNNING_WAIT: Duration = Duration::from_secs(15);

/// The store's queue for the central server, and its shovel's name: `<queue>.central`.
pub fn central_queue(queue: &str) -> String {
    format!("{queue}{CENTRAL_SUFFIX}")
}

/// What may stand unencoded in a URI's user, password or vhost (RFC 3986's unreserved).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The shovel's source: the store's own node, straight (`amqp://` with no host is a direct
/// connection inside the node), in the vhost of `receive.amqp_url`.
pub fn source_uri(vhost: &str) -> String {
    match vhost {
        "/" => "amqp://".to_string(),
        v => format!("amqp:///{}", utf8_percent_encode(v, COMPONENT)),
    }
}

/// The shovel's destination: the central broker as the Erlang client reads a URI. TLS
/// (`amqps://`) needs the CA file, verified with `verify_peer` against the host name
/// (Erlang's default would verify nothing); the file's path must need no encoding.
pub fn destination_uri(central: &Broker) -> Result<String, String> {
    let enc = |s: &str| utf8_percent_encode(s, COMPONENT).to_string();
    let host = match central.host.contains(':') {
        true => format!("[{}]", central.host),
        false => central.host.clone(),
    };
    let mut uri = format!(
        "{}://{}:{}@{host}:{}/{}",
        if central.tls { "amqps" } else { "amqp" },
        enc(&central.user),
        enc(central.password()),
        central.port,
        enc(&central.vhost)
    );
    if central.tls {
        let Some(ca) = &central.ca_file else {
            return Err("an amqps:// central URL needs ?cacertfile=PATH: the shovel runs in the store's \
                        RabbitMQ, which does not read the system's CA store"
                .into());
        };
        let plain = |what: &str, file: &Path| {
            let path = file.to_str().unwrap_or_default();
            match path.starts_with('/')
                && path.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-~+".contains(&b))
            {
                true => Ok(path.to_string()),
                false => Err(format!(
                    "{what} {}: the shovel needs an absolute path of letters, digits and / . _ - ~ +",
                    file.display()
                )),
            }
        };
        uri.push_str(&format!(
            "?cacertfile={}&verify=verify_peer&server_name_indication={}",
            plain("cacertfile", ca)?,
            enc(&central.host)
        ));
        if let Some((cert, key)) = &central.client_cert {
            uri.push_str(&format!(
                "&certfile={}&keyfile={}",
                plain("certfile", cert)?,
                plain("keyfile", key)?
            ));
        }
    }
    Ok(uri)
}

/// The shovel's definition: `<queue>.central` of the store to the central `exchange`,
/// `on-confirm`, for good (never deleted after a number of messages).
pub fn shovel_value(
    store_vhost: &str,
    central: &Broker,
    exchange: &str,
    queue: &str,
) -> Result<Value, String> {
    Ok(json!({
        "src-protocol": "amqp091",
        "src-uri": source_uri(store_vhost),
        "src-queue": central_queue(queue),
        "src-delete-after": "never",
        "dest-protocol": "amqp091",
        "dest-uri": destination_uri(central)?,
        "dest-exchange": exchange,
        "ack-mode": "on-confirm",
        "reconnect-delay": 5,
    }))
}

/// Whether two URLs name the same broker and vhost (a shovel from a queue back into the
/// exchange it is bound to would go round for ever). Loopback names count as one host.
fn same_broker(a: &Broker, b: &Broker) -> bool {
    let host = |h: &str| {
        let h = h.to_ascii_lowercase();
        let loopback =
            h == "localhost" || h == "::1" || h.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.is_loopback());
        if loopback {
            "loopback".to_string()
        } else {
            h
        }
    };
    host(&a.host) == host(&b.host) && a.port == b.port && a.vhost == b.vhost
}

/// `text` with the password of `broker` in it, plain or percent-encoded, replaced by `…`.
fn scrub(broker: Option<&Broker>, text: &str) -> String {
    let Some(b) = broker else { return text.to_string() };
    let encoded = utf8_percent_encode(b.password(), COMPONENT).to_string();
    let text = b.scrub(text);
    if encoded.len() > 1 {
        text.replace(&encoded, "…")
    } else {
        text
    }
}

/// Runs `csjobs receive-chain`.
pub async fn run(cfg: &Config, opts: &ChainOptions) -> Result<Outcome, JobError> {
    let text = cfg.receive.amqp_url.as_deref().ok_or_else(|| {
        JobError::usage(
            "the store's broker is not configured: set receive.amqp_url in the config file or \
             CSJOBS_RECEIVE_AMQP_URL (the broker the registers publish to)",
        )
    })?;
    let store = Broker::parse(text).map_err(|reason| {
        JobError::usage(format!(
            "receive.amqp_url (CSJOBS_RECEIVE_AMQP_URL) is not a valid AMQP URL: {reason}"
        ))
    })?;
    for (key, name) in [("receive.exchange", &cfg.receive.exchange), ("receive.queue", &cfg.receive.queue)] {
        if name.is_empty() || name.len() > 200 || name.starts_with("amq.") {
            return Err(JobError::usage(format!(
                "{key} must be a name of 1 to 200 bytes not starting with amq., got {name:?}"
            )));
        }
    }
    let chain = Chain { cfg, store, ctl: Rabbitmqctl };
    if opts.check {
        return chain.check().await;
    }
    if opts.remove {
        return chain.remove(opts.yes).await;
    }
    let text = opts.central_url.as_deref().filter(|u| !u.trim().is_empty()).ok_or_else(|| {
        JobError::usage(
            "the central broker is not given: set CSJOBS_CHAIN_CENTRAL_URL (or --central-url) to \
             amqp://user:password@host[:port]/vhost or amqps://…?cacertfile=PATH",
        )
    })?;
    let central = Broker::parse(text).map_err(|reason| {
        JobError::usage(format!(
            "the central URL (CSJOBS_CHAIN_CENTRAL_URL) is not a valid AMQP URL: {reason}"
        ))
    })?;
    chain.set_up(&central).await
}

struct Chain<'a> {
    cfg: &'a Config,
    store: Broker,
    ctl: Rabbitmqctl,
}

/// A broker object declared, an existing one with other arguments (exit 2), or the broker
/// lost (exit 1), as a job error naming the broker.
fn declared(broker: &Broker, result: Result<Option<End>, Fatal>) -> Result<(), JobError> {
    match result {
        Ok(None | Some(End::Done)) => Ok(()),
        Ok(Some(End::Lost(why))) => Err(JobError::Failed(anyhow!("the broker at {}: {why}", broker.shown))),
        Err(Fatal::Mismatch(m)) => Err(JobError::Usage(format!("the broker at {}: {m}", broker.shown))),
        Err(Fatal::Disk(e)) => Err(JobError::Failed(e)),
    }
}

impl Chain<'_> {
    fn queue(&self) -> String {
        central_queue(&self.cfg.receive.queue)
    }

    async fn open(&self, broker: &Broker) -> Result<(Connection, Channel, ChannelClosed), JobError> {
        let tls = match broker.tls {
            true => {
                Some(tls_connector(broker).map_err(|e| JobError::usage(format!("{}: {e:#}", broker.shown)))?)
            }
            false => None,
        };
        let conn = connect(broker, tls.as_ref(), "csjobs receive-chain")
            .await
            .map_err(|why| JobError::Failed(anyhow!("{why}")))?;
        let ch = conn.open_channel(None).await.map_err(|e| {
            JobError::Failed(anyhow!("the broker at {}: cannot open a channel: {e}", broker.shown))
        })?;
        let closed = ChannelClosed::default();
        let _ = ch.register_callback(closed.clone()).await;
        Ok((conn, ch, closed))
    }

    /// Sets up (or brings back to its definition) the chain of this store to `central`.
    async fn set_up(&self, central: &Broker) -> Result<Outcome, JobError> {
        let store = &self.store;
        if same_broker(store, central) {
            return Err(JobError::usage(format!(
                "the central URL names the store's own broker and vhost ({}, vhost {}): the shovel \
                 would deliver to the exchange it takes from, for ever",
                store.shown, store.vhost
            )));
        }
        let (exchange, queue) = (&self.cfg.receive.exchange, &self.cfg.receive.queue);
        let chain_queue = self.queue();
        let wanted = shovel_value(&store.vhost, central, exchange, queue).map_err(JobError::Usage)?;
        // The store's node first: rabbitmqctl must reach it, with the shovel plugin on and the
        // vhost of receive.amqp_url on it. Nothing has changed anywhere yet.
        self.ctl.shovels(Some(central)).await?;
        let before = self.ctl.parameter(&store.vhost, &chain_queue, Some(central)).await?;

        // The central broker's objects, as its receive declares them.
        let (conn, ch, closed) = self.open(central).await?;
        declared(central, declare(&ch, &closed, exchange, queue).await)?;
        let _ = conn.close().await;
        output::line(&format!(
            "central broker {} (vhost {}): exchange {exchange}, queues {queue} and {queue}.rejected declared",
            central.shown, central.vhost
        ));

        // The store's: receive's own objects, then the queue for the central server.
        let (conn, ch, closed) = self.open(store).await?;
        declared(store, declare(&ch, &closed, exchange, queue).await)?;
        declared(store, declare_central_queue(&ch, &closed, exchange, &chain_queue).await)?;
        let _ = conn.close().await;
        output::line(&format!(
            "store broker {} (vhost {}): exchange {exchange}, queues {queue}, {queue}.rejected and \
             {chain_queue} (bound to {exchange}) declared",
            store.shown, store.vhost
        ));

        let what = match &before {
            Some(v) if *v == wanted => "unchanged",
            Some(_) => "updated",
            None => "created",
        };
        if before.as_ref() != Some(&wanted) {
            let definitions = json!({ "parameters": [
                { "vhost": store.vhost, "component": "shovel", "name": chain_queue, "value": wanted }
            ]});
            self.ctl.import(&definitions, Some(central)).await?;
            let deadline = Instant::now() + IMPORT_WAIT;
            while self.ctl.parameter(&store.vhost, &chain_queue, Some(central)).await?.as_ref()
                != Some(&wanted)
            {
                if Instant::now() > deadline {
                    return Err(JobError::Failed(anyhow!(
                        "rabbitmqctl import_definitions was accepted, but the shovel {chain_queue} did not \
                         show its definition within {} s: see the store broker's log",
                        IMPORT_WAIT.as_secs()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let deadline = Instant::now() + RUNNING_WAIT;
        let state = loop {
            let state = self.shovel_state(Some(central)).await?;
            if state.as_ref().is_some_and(|s| s.state == "running") || Instant::now() > deadline {
                break state;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let state = state.map_or_else(|| "not reported yet".to_string(), |s| s.describe());
        output::line(&format!(
            "shovel {chain_queue} (vhost {}): {what}: {chain_queue} → {} exchange {exchange}, ack-mode \
             on-confirm; {state}",
            store.vhost, central.shown
        ));
        Ok(Outcome::default())
    }

    /// The shovel's state as the store's node reports it.
    async fn shovel_state(&self, secret: Option<&Broker>) -> Result<Option<ShovelState>, JobError> {
        let name = self.queue();
        let all = self.ctl.shovels(secret).await?;
        Ok(all.into_iter().find(|s| s.name == name && s.vhost == self.store.vhost))
    }

    /// Shows the chain; problems: no shovel, not on-confirm, not running, no queue.
    async fn check(&self) -> Result<Outcome, JobError> {
        let store = &self.store;
        let chain_queue = self.queue();
        let mut problems = Vec::new();
        let parameter = self.ctl.parameter(&store.vhost, &chain_queue, None).await?;
        // The destination's password, to scrub what the broker says of the shovel.
        let central = parameter
            .as_ref()
            .and_then(|v| v["dest-uri"].as_str())
            .and_then(|u| Broker::parse(u.split('?').next().unwrap_or(u)).ok());
        match &parameter {
            None => problems.push(format!(
                "there is no shovel {chain_queue} in the vhost {} of the store's broker: sales do not go to \
                 the central server (set it up: receive-chain with CSJOBS_CHAIN_CENTRAL_URL)",
                store.vhost
            )),
            Some(v) => {
                let dest = central
                    .as_ref()
                    .map_or("(a destination that is not an AMQP URL)".to_string(), |c| c.shown.clone());
                output::line(&format!(
                    "shovel {chain_queue} (vhost {}): {} → {dest} exchange {}, ack-mode {}",
                    store.vhost,
                    v["src-queue"].as_str().unwrap_or("?"),
                    v["dest-exchange"].as_str().unwrap_or("?"),
                    v["ack-mode"].as_str().unwrap_or("on-confirm (the default)"),
                ));
                if v.get("ack-mode").is_some_and(|m| m != "on-confirm") {
                    problems.push(format!(
                        "the shovel {chain_queue} does not use ack-mode on-confirm: a message may leave the store \
                         before the central broker holds it"
                    ));
                }
                match self.shovel_state(central.as_ref()).await? {
                    Some(s) => {
                        output::line(&format!("shovel {chain_queue}: {}", s.describe()));
                        if s.state != "running" {
                            problems.push(format!(
                                "the shovel {chain_queue} is {}: the sales wait in the store's queue until it runs \
                                 again",
                                s.state
                            ));
                        }
                    }
                    None => problems
                        .push(format!("the store's node reports no state for the shovel {chain_queue}")),
                }
            }
        }
        let (conn, _, _) = self.open(store).await?;
        let counts = passive_declare(&conn, &chain_queue).await;
        let _ = conn.close().await;
        match counts.map_err(|e| JobError::Failed(anyhow!("the broker at {}: {e}", store.shown)))? {
            Some((messages, consumers)) => output::line(&format!(
                "queue {chain_queue} (vhost {}): {messages} messages ready, {consumers} consumers",
                store.vhost
            )),
            None => problems.push(format!("the store's broker has no queue {chain_queue}")),
        }
        for p in &problems {
            output::line(&format!("problem: {p}"));
        }
        Ok(Outcome { rejected: 0, problems: problems.len() as u64 })
    }

    /// Removes the shovel, then the queue: at once when it is empty, with `yes` in any case.
    async fn remove(&self, yes: bool) -> Result<Outcome, JobError> {
        let store = &self.store;
        let chain_queue = self.queue();
        let parameter = self.ctl.parameter(&store.vhost, &chain_queue, None).await?;
        let (conn, _, _) = self.open(store).await?;
        let counts = passive_declare(&conn, &chain_queue)
            .await
            .map_err(|e| JobError::Failed(anyhow!("the broker at {}: {e}", store.shown)))?;
        if let Some((messages, _)) = counts.filter(|&(m, _)| m > 0 && !yes) {
            let _ = conn.close().await;
            return Err(JobError::NeedsConfirmation(format!(
                "the queue {chain_queue} still holds {messages} messages for the central server: nothing was \
                 removed (wait for the shovel to deliver them, or remove with --yes, which loses them)"
            )));
        }
        match parameter {
            Some(_) => {
                self.ctl.clear(&store.vhost, &chain_queue).await?;
                output::line(&format!("shovel {chain_queue} (vhost {}): removed", store.vhost));
            }
            None => output::line(&format!("shovel {chain_queue} (vhost {}): not there", store.vhost)),
        }
        if counts.is_none() {
            let _ = conn.close().await;
            output::line(&format!("queue {chain_queue} (vhost {}): not there", store.vhost));
            return Ok(Outcome::default());
        }
        // Unbound first, so that nothing comes in between the last count and the delete (a
        // quorum queue has no delete if-empty).
        let exchange = &self.cfg.receive.exchange;
        let failed = |what: &str, e: String| {
            JobError::Failed(anyhow!(
                "the broker at {}: cannot {what} the queue {chain_queue}: {e}",
                store.shown
            ))
        };
        let ch = conn.open_channel(None).await.map_err(|e| failed("open a channel for", e.to_string()))?;
        ch.queue_unbind(QueueUnbindArguments::new(&chain_queue, exchange, ""))
            .await
            .map_err(|e| failed("unbind", e.to_string()))?;
        let left = passive_declare(&conn, &chain_queue).await.map_err(|e| failed("count", e))?;
        if let Some((messages, _)) = left.filter(|&(m, _)| m > 0 && !yes) {
            let _ = ch.queue_bind(QueueBindArguments::new(&chain_queue, exchange, "")).await;
            let _ = conn.close().await;
            return Err(JobError::NeedsConfirmation(format!(
                "the shovel {chain_queue} is removed, but {messages} messages came into the queue {chain_queue} \
                 meanwhile: it is kept (remove again with --yes, which loses them, or set the chain up again)"
            )));
        }
        let deleted = ch.queue_delete(QueueDeleteArguments::new(&chain_queue)).await;
        let _ = conn.close().await;
        let n = deleted.map_err(|e| failed("delete", e.to_string()))?;
        output::line(&format!(
            "queue {chain_queue} (vhost {}): deleted ({} messages in it)",
            store.vhost,
            n.unwrap_or(0)
        ));
        Ok(Outcome::default())
    }
}

/// The store's queue for the central server: a durable quorum queue (as `receive.queue`)
/// bound to `exchange`. An existing one with other arguments is a mismatch (exit 2).
async fn declare_central_queue(
    ch: &Channel,
    closed: &ChannelClosed,
    exchange: &str,
    queue: &str,
) -> Result<Option<End>, Fatal> {
    let mut args = FieldTable::new();
    args.insert(
        "x-queue-type".try_into().expect("a short key"),
        FieldValue::S("quorum".try_into().expect("a short value")),
    );
    let steps = [
        format!("the queue {queue}"),
        format!("the binding of the queue {queue} to the exchange {exchange}"),
    ];
    for (i, object) in steps.iter().enumerate() {
        let result = match i {
            0 => {
                let mut a = QueueDeclareArguments::durable_client_named(queue);
                ch.queue_declare(a.arguments(args.clone()).finish()).await.map(|_| ())
            }
            _ => {
                let declared = ch
                    .exchange_declare(
                        ExchangeDeclareArguments::new(exchange, "fanout").durable(true).finish(),
                    )
                    .await;
                match declared {
                    Ok(()) => ch.queue_bind(QueueBindArguments::new(queue, exchange, "")).await,
                    Err(e) => Err(e),
                }
            }
        };
        if let Err(e) = result {
            let (code, e) = closed.take().unwrap_or((0, e.to_string()));
            if code == 406 {
                return Err(Fatal::Mismatch(format!(
                    "{object} exists on the broker with other arguments than receive-chain declares (a durable \
                     quorum queue); nothing existing is changed: remove it or fix receive.queue. The broker \
                     said: {e}"
                )));
            }
            return Ok(Some(End::Lost(format!("cannot declare {object}: {e}"))));
        }
    }
    Ok(None)
}

/// A shovel as `rabbitmqctl shovel_status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ShovelState {
    name: String,
    vhost: String,
    state: String,
    /// Why it stopped, scrubbed and cut to a line.
    reason: String,
}

impl ShovelState {
    fn describe(&self) -> String {
        match self.reason.is_empty() {
            true => format!("state {}", self.state),
            false => format!("state {} ({})", self.state, self.reason),
        }
    }
}

/// The broker's command-line tool on this host: `rabbitmqctl` from PATH (Debian's runs as
/// the rabbitmq user when root calls it).
struct Rabbitmqctl;

struct CtlOutput {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Rabbitmqctl {
    /// Runs `rabbitmqctl ARGS` (with `stdin`), within [`CTL_TIMEOUT`]: what it says as it
    /// says it (a parameter's value holds the password: scrub before showing any of it).
    async fn call(&self, args: &[&str], stdin: Option<Vec<u8>>) -> Result<CtlOutput, JobError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let shown = format!("rabbitmqctl {}", args.join(" "));
        tokio::task::spawn_blocking(move || call_blocking(&args, stdin))
            .await
            .map_err(|e| JobError::Failed(anyhow!("{shown}: {e}")))?
            .map_err(|e| JobError::Failed(anyhow!("{shown}: {e}")))
    }

    /// A failed call as an error: what rabbitmqctl said, its first lines, scrubbed of the
    /// password of `secret`.
    fn failed(what: &str, out: &CtlOutput, secret: Option<&Broker>) -> JobError {
        let said: Vec<&str> = out
            .stderr
            .lines()
            .chain(out.stdout.lines())
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(4)
            .collect();
        JobError::Failed(anyhow!("{what}: rabbitmqctl says: {}", scrub(secret, &said.join(" / "))))
    }

    /// Every shovel of the node with its state; the shovel plugin must be on.
    async fn shovels(&self, secret: Option<&Broker>) -> Result<Vec<ShovelState>, JobError> {
        let out = self.call(&["-q", "shovel_status", "--formatter", "json"], None).await?;
        if !out.success {
            // With the plugin off, rabbitmqctl either lacks the command, or (3.10, the
            // plugin's CLI commands found on disk) has it but finds no shovel process.
            let said = format!("{}\n{}", out.stderr, out.stdout);
            if said.contains("'shovel_status' not found")
                || (said.contains("noproc") && said.contains("rabbit_shovel_status"))
            {
                return Err(JobError::Failed(anyhow!(
                    "the store's RabbitMQ does not have the shovel plugin enabled: run \
                     `rabbitmq-plugins enable rabbitmq_shovel` there, then receive-chain again"
                )));
            }
            return Err(Rabbitmqctl::failed(
                "cannot ask the store's RabbitMQ node for its shovels (receive-chain runs on the store broker's \
                 host, as root or the rabbitmq user)",
                &out,
                secret,
            ));
        }
        let list: Vec<Value> = serde_json::from_str(out.stdout.trim()).map_err(|e| {
            JobError::Failed(anyhow!("rabbitmqctl shovel_status: not the JSON expected ({e})"))
        })?;
        Ok(list
            .iter()
            .map(|s| {
                let text = |k: &str| match &s[k] {
                    Value::String(v) => v.clone(),
                    Value::Null => String::new(),
                    v => v.to_string(),
                };
                let reason = text("termination_reason");
                let reason = match reason.char_indices().nth(200) {
                    Some((at, _)) => format!("{}…", &reason[..at]),
                    None => reason,
                };
                ShovelState {
                    name: text("name"),
                    vhost: text("vhost"),
                    state: text("state"),
                    reason: scrub(secret, &reason.replace('\n', " ")),
                }
            })
            .collect())
    }

    /// The shovel parameter `name` of `vhost`, its value as JSON, or `None`.
    async fn parameter(
        &self,
        vhost: &str,
        name: &str,
        secret: Option<&Broker>,
    ) -> Result<Option<Value>, JobError> {
        let out = self.call(&["-q", "list_parameters", "-p", vhost, "--formatter", "json"], None).await?;
        if !out.success {
            if out.stderr.contains("does not exist") {
                return Err(JobError::Failed(anyhow!(
                    "the vhost {vhost} of receive.amqp_url is not on the RabbitMQ node of this host: receive-chain \
                     runs on the store broker's host"
                )));
            }
            return Err(Rabbitmqctl::failed(
                "cannot list the runtime parameters of the store's broker",
                &out,
                secret,
            ));
        }
        let list: Vec<Value> = serde_json::from_str(out.stdout.trim())
            .map_err(|_| JobError::Failed(anyhow!("rabbitmqctl list_parameters: not the JSON expected")))?;
        let found = list.into_iter().find(|p| p["component"] == "shovel" && p["name"] == name);
        Ok(found.map(|p| match &p["value"] {
            Value::String(s) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
            v => v.clone(),
        }))
    }

    /// Imports `definitions` (the shovel parameter) from standard input.
    async fn import(&self, definitions: &Value, secret: Option<&Broker>) -> Result<(), JobError> {
        let body = serde_json::to_vec(definitions).expect("JSON");
        let out = self.call(&["-q", "import_definitions", "--format", "json"], Some(body)).await?;
        if !out.success {
            return Err(Rabbitmqctl::failed("cannot set the shovel on the store's broker", &out, secret));
        }
        Ok(())
    }

    /// Clears the shovel parameter `name` of `vhost` (which stops the shovel).
    async fn clear(&self, vhost: &str, name: &str) -> Result<(), JobError> {
        let out = self.call(&["-q", "clear_parameter", "-p", vhost, "shovel", name], None).await?;
        if !out.success && !out.stderr.contains("does not exist") && !out.stdout.contains("does not exist") {
            return Err(Rabbitmqctl::failed(&format!("cannot remove the shovel {name}"), &out, None));
        }
        Ok(())
    }
}

fn call_blocking(args: &[String], stdin: Option<Vec<u8>>) -> Result<CtlOutput, String> {
    let mut child = Command::new("rabbitmqctl")
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot run it ({e}): receive-chain runs on the store broker's host, where RabbitMQ's rabbitmqctl is \
                 (as root or the rabbitmq user)"
            )
        })?;
    let writer = stdin.map(|data| {
        let mut pipe = child.stdin.take().expect("piped");
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })
    });
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("piped")));
    let err = reader(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + CTL_TIMEOUT;
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {} s (stopped)", CTL_TIMEOUT.as_secs()));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    Ok(CtlOutput {
        success: status.success(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shovel_goes_from_the_store_queue_to_the_central_exchange_on_confirm() {
        let central = Broker::parse("amqp://chain:p%40ss%20w@central.example:5673/cash%2Fhq").unwrap();
        let v = shovel_value("store 8", &central, "csjobs.sales", "csjobs.sales").unwrap();
        assert_eq!(v["src-uri"], "amqp:///store%208");
        assert_eq!(v["src-queue"], "csjobs.sales.central");
        assert_eq!(v["dest-uri"], "amqp://chain:p%40ss%20w@central.example:5673/cash%2Fhq");
        assert_eq!((&v["dest-exchange"], &v["ack-mode"]), (&json!("csjobs.sales"), &json!("on-confirm")));
        assert_eq!(source_uri("/"), "amqp://");
        let v6 = Broker::parse("amqp://u:p@[::1]/").unwrap();
        assert_eq!(destination_uri(&v6).unwrap(), "amqp://u:p@[::1]:5672/%2F");
    }

    #[test]
    fn amqps_to_the_central_broker_is_verified_against_a_ca_file() {
        let tls =
            Broker::parse("amqps://u:p@central.example/hq?cacertfile=/etc/csjobs/central-ca.pem").unwrap();
        assert_eq!(
            destination_uri(&tls).unwrap(),
            "amqps://u:p@central.example:5671/hq?cacertfile=/etc/csjobs/central-ca.pem&verify=verify_peer\
             &server_name_indication=central.example"
        );
        let no_ca = Broker::parse("amqps://u:s3cret@central.example/hq").unwrap();
        assert!(destination_uri(&no_ca).unwrap_err().contains("cacertfile"));
        let odd = Broker::parse("amqps://u:s3cret@central.example/hq?cacertfile=/etc/a%26b.pem").unwrap();
        let e = destination_uri(&odd).unwrap_err();
        assert!(e.contains("absolute path") && !e.contains("s3cret"), "{e}");
        // With a client certificate: the shovel presents it.
        let mtls = Broker::parse(
            "amqps://u:p@central.example/hq?cacertfile=/etc/ca.pem&certfile=/etc/s.pem&keyfile=/etc/s.key",
        )
        .unwrap();
        let uri = destination_uri(&mtls).unwrap();
        assert!(
            uri.ends_with("&server_name_indication=central.example&certfile=/etc/s.pem&keyfile=/etc/s.key"),
            "{uri}"
        );
        let odd_key = Broker::parse(
            "amqps://u:p@central.example/hq?cacertfile=/etc/ca.pem&certfile=/etc/s.pem&keyfile=s.key",
        )
        .unwrap();
        assert!(destination_uri(&odd_key).unwrap_err().starts_with("keyfile s.key: "));
    }

    #[test]
    fn a_central_url_of_the_store_itself_is_refused_and_passwords_are_scrubbed() {
        let store = Broker::parse("amqp://guest:guest@127.0.0.1:5672/store").unwrap();
        for same in ["amqp://c:x@localhost/store", "amqp://127.0.0.2:5672/store"] {
            assert!(same_broker(&store, &Broker::parse(same).unwrap()), "{same}");
        }
        for other in ["amqp://127.0.0.1:5673/store", "amqp://127.0.0.1/central", "amqp://central/store"] {
            assert!(!same_broker(&store, &Broker::parse(other).unwrap()), "{other}");
        }
        let b = Broker::parse("amqp://u:s3cr%40t@h/").unwrap();
        assert_eq!(scrub(Some(&b), "a s3cr@t and s3cr%40t"), "a … and …");
    }
}
