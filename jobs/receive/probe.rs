//! What the broker of `receive.amqp_url` says, for `status` (shared/spec/receive.md,
//! "Monitoring"): whether it answers, its product and version, a round trip, and the queues
//! `receive.queue` (messages ready, consumers) and `<queue>.rejected` (messages). The queues
//! are looked at with a passive declare, which never creates or changes anything: a queue
//! that is not there is reported as missing. The probe never fails: what went wrong is in
//! the facts, with the URL's password scrubbed.

use std::time::{Duration, Instant};

use amqprs::{
    channel::{Channel, QueueDeclareArguments},
    connection::Connection,
};

use super::job::{connect, tls_connector, Broker, ChannelClosed};
use crate::core::config::{shown_url, ReceiveSettings};

/// The longest a probe takes for one request after the connection (a channel, a declare).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the broker answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerState {
    /// No `receive.amqp_url`: nothing to probe.
    NotConfigured,
    Ok,
    /// It could not be reached (or the URL is not valid): see [`BrokerFacts::error`].
    Unreachable,
}

impl BrokerState {
    /// As status shows it: `not configured`, `ok`, `unreachable`.
    pub fn as_str(self) -> &'static str {
        match self {
            BrokerState::NotConfigured => "not configured",
            BrokerState::Ok => "ok",
            BrokerState::Unreachable => "unreachable",
        }
    }
}

/// One queue as a passive declare sees it (status shows it as it is, `queues.broker` and
/// `queues.broker_rejected`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QueueFacts {
    #[serde(rename = "queue")]
    pub name: String,
    /// Whether the queue exists (`receive` declares it at its first connection).
    pub present: bool,
    /// Messages ready (not handed to a consumer), as the queue counts them.
    pub messages: Option<u64>,
    pub consumers: Option<u64>,
    /// Why it could not be looked at, when it could not (the connection went away, say).
    pub error: Option<String>,
}

impl QueueFacts {
    fn unknown(name: &str) -> QueueFacts {
        QueueFacts { name: name.to_string(), present: false, messages: None, consumers: None, error: None }
    }
}

/// What [`probe`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerFacts {
    /// The broker as it may be shown: `amqp://host:port/…` (never its user or password).
    pub broker: String,
    pub state: BrokerState,
    /// Why it is unreachable, the password scrubbed.
    pub error: Option<String>,
    /// The server's `product` and `version` properties (`RabbitMQ`, `3.10.8`).
    pub product: Option<String>,
    pub version: Option<String>,
    /// The round trip of one request (opening a channel) once connected.
    pub round_trip: Option<Duration>,
    /// `receive.queue`: messages ready and consumers.
    pub queue: QueueFacts,
    /// `<queue>.rejected`: the messages receive could not turn into a sales file.
    pub rejected: QueueFacts,
}

/// Probes the broker of `settings` (`receive.amqp_url`, `receive.queue`).
pub async fn probe(settings: &ReceiveSettings) -> BrokerFacts {
    let rejected_name = format!("{}.rejected", settings.queue);
    let mut facts = BrokerFacts {
        broker: settings.amqp_url.as_deref().map(|u| shown_url(u.trim())).unwrap_or_default(),
        state: BrokerState::NotConfigured,
        error: None,
        product: None,
        version: None,
        round_trip: None,
        queue: QueueFacts::unknown(&settings.queue),
        rejected: QueueFacts::unknown(&rejected_name),
    };
    let Some(text) = settings.amqp_url.as_deref() else { return facts };
    facts.state = BrokerState::Unreachable;
    let broker = match Broker::parse(text) {
        Ok(b) => b,
        Err(reason) => {
            facts.error = Some(format!("receive.amqp_url is not a valid AMQP URL: {reason}"));
            return facts;
        }
    };
    let tls = match broker.tls {
        true => match tls_connector(&broker) {
            Ok(c) => Some(c),
            Err(e) => {
                facts.error = Some(broker.scrub(&format!("receive.amqp_url: {e:#}")));
                return facts;
            }
        },
        false => None,
    };
    let conn = match connect(&broker, tls.as_ref(), "csjobs status").await {
        Ok(conn) => conn,
        Err(why) => {
            facts.error = Some(why);
            return facts;
        }
    };
    let server = conn.server_properties();
    facts.product = Some(server.product().to_string()).filter(|s| !s.is_empty());
    facts.version = Some(server.version().to_string()).filter(|s| !s.is_empty());
    let started = Instant::now();
    match tokio::time::timeout(REQUEST_TIMEOUT, conn.open_channel(None)).await {
        Ok(Ok(ch)) => {
            facts.round_trip = Some(started.elapsed());
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, ch.close()).await;
            facts.state = BrokerState::Ok;
        }
        Ok(Err(e)) => facts.error = Some(broker.scrub(&format!("cannot open a channel: {e}"))),
        Err(_) => facts.error = Some(format!("no channel within {} s", REQUEST_TIMEOUT.as_secs())),
    }
    if facts.state == BrokerState::Ok {
        facts.queue = queue_facts(&conn, &settings.queue).await;
        facts.rejected = queue_facts(&conn, &rejected_name).await;
        for q in [&mut facts.queue, &mut facts.rejected] {
            q.error = q.error.take().map(|e| broker.scrub(&e));
        }
    }
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, conn.close()).await;
    facts
}

/// The queue `name` as a passive declare on a channel of its own sees it (a missing queue
/// closes the channel with 404, which is the answer, not an error).
pub(super) async fn queue_facts(conn: &Connection, name: &str) -> QueueFacts {
    let mut q = QueueFacts::unknown(name);
    if name.is_empty() || name.len() > 255 {
        q.error = Some(format!("{name:?} is not a queue name (1 to 255 bytes)"));
        return q;
    }
    match passive_declare(conn, name).await {
        Ok(Some((messages, consumers))) => {
            q.present = true;
            q.messages = Some(messages);
            q.consumers = Some(consumers);
        }
        Ok(None) => {}
        Err(e) => q.error = Some(e),
    }
    q
}

/// A passive declare of `name`: its messages ready and consumers, or `None` when it does not
/// exist.
pub(super) async fn passive_declare(conn: &Connection, name: &str) -> Result<Option<(u64, u64)>, String> {
    let ch: Channel = match tokio::time::timeout(REQUEST_TIMEOUT, conn.open_channel(None)).await {
        Ok(Ok(ch)) => ch,
        Ok(Err(e)) => return Err(format!("cannot open a channel: {e}")),
        Err(_) => return Err(format!("no channel within {} s", REQUEST_TIMEOUT.as_secs())),
    };
    let closed = ChannelClosed::default();
    let _ = ch.register_callback(closed.clone()).await;
    let args = QueueDeclareArguments::new(name).passive(true).finish();
    let result = match tokio::time::timeout(REQUEST_TIMEOUT, ch.queue_declare(args)).await {
        Err(_) => Err(format!("the queue {name}: no answer within {} s", REQUEST_TIMEOUT.as_secs())),
        Ok(Ok(Some((_, messages, consumers)))) => Ok(Some((u64::from(messages), u64::from(consumers)))),
        Ok(Ok(None)) => Err(format!("the queue {name}: the broker's answer had no counts")),
        Ok(Err(e)) => match closed.take() {
            Some((404, _)) => Ok(None),
            Some((code, text)) => Err(format!("the queue {name}: {text} ({code})")),
            // The close may be on its way: a 404 names the queue as not found.
            None if e.to_string().contains("NOT_FOUND") => Ok(None),
            None => Err(format!("the queue {name}: {e}")),
        },
    };
    if ch.is_open() {
        let _ = tokio::time::timeout(REQUEST_TIMEOUT, ch.close()).await;
    }
    result
}
