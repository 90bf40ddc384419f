//! `csjobs receive [--follow] [--limit N]` (shared/spec/receive.md): consumes the queue
//! `receive.queue` of the broker `receive.amqp_url` and turns each message into one file of
//! the queue directory, acknowledged only once durable.
//!
//! Per message: the body decoded (`super::decode`) and written as a file without a name
//! (`O_TMPFILE`: nothing in the directory, gone with the process if it never gets one), or,
//! where the file system has no such files, under a temporary name that load-sales ignores
//! (`.amqp-….json.csjobs-tmp-<pid>-<n>`); its modification time set (strictly increasing in
//! delivery order). What the broker has handed over and is already waiting is taken the same
//! way, a batch (at most a third of the prefetch), handed to the durability thread
//! ([`Durability`]) while the next one is written. Each of its rounds puts in place (links,
//! or renames) the batch whose data the round before made durable, then one `syncfs(2)` of
//! the queue directory's file system makes those names durable and, in the same journal
//! commit, the data and inodes of the next batch (what an fsync of each file would do); then
//! that batch is acknowledged with one `basic.ack` with `multiple`. So a name never appears
//! before its data is durable, names appear in delivery order, and batches are acknowledged
//! in that order, each only once its names are durable (at most [`IN_FLIGHT_MAX`] handed
//! and not yet acknowledged). A message that cannot become a sales file is rejected at once
//! (`requeue=false`: dead-lettered to `<queue>.rejected`); an ack with `multiple` never
//! covers it, since it is no longer outstanding. A kill at any moment leaves at worst
//! complete files in place whose messages are delivered again and written again under the
//! same names (and, with temporary names, temporary files that the next run removes).

use std::{
    collections::VecDeque,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use amqprs::{
    callbacks::{ChannelCallback, ConnectionCallback},
    channel::{
        BasicAckArguments, BasicCancelArguments, BasicConsumeArguments, BasicQosArguments,
        BasicRejectArguments, Channel, ConsumerMessage, ExchangeDeclareArguments, QueueBindArguments,
        QueueDeclareArguments,
    },
    connection::{Connection, OpenConnectionArguments},
    tls::TlsAdaptor,
    Ack, BasicProperties, Cancel, Close, CloseChannel, FieldTable, FieldValue, Nack, Return,
};
use anyhow::{anyhow, Context};
use fs_err as fs;
use tokio::sync::mpsc::{error::TryRecvError, UnboundedReceiver};

use super::{compression, decode, file_name, FILE_PREFIX};
use crate::core::{
    config::{shown_url, Config},
    queue::TEMP_MARK,
    runner::{Frame, Ran},
    stop::StopFlag,
    JobError, Outcome,
};

/// The job's name in `job_run` and `error_message` (and its subcommand).
pub const JOB: &str = "receive";

/// The options of `csjobs receive` (its `--help` is these doc comments).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReceiveOptions {
    /// Run until SIGTERM or SIGINT (then make durable and acknowledge what is held, exit 0);
    /// when the broker goes away, log it and reconnect with backoff
    #[arg(long)]
    pub follow: bool,
    /// Take at most N messages, then exit
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
}

/// The most messages one batch (one syncfs, one ack) holds.
const BATCH_MAX: usize = 1000;
/// How many batches may be handed to the durability thread and not yet acknowledged: the
/// one whose data is durable and the next one, whose data the same syncfs makes durable.
/// A batch is at most the prefetch divided by this plus one, so that the one being written
/// still has room under the prefetch.
const IN_FLIGHT_MAX: usize = 2;
/// How often a batch lets the client's tasks run before it takes an empty channel as the
/// end of what the broker has handed over.
const YIELDS_BEFORE_FLUSH: u32 = 4;
/// The longest wait between two connection attempts of `--follow`.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a wait looks at the stop flag and the channel.
const TICK: Duration = Duration::from_millis(50);

/// The broker of `receive.amqp_url`, parsed: `amqp://user:password@host[:port]/vhost` or
/// `amqps://` (TLS, verified against the system's CAs, `SSL_CERT_FILE`, or the query's
/// `cacertfile=PATH`, as the databases are against theirs; with a client certificate when
/// the query gives `certfile=PATH&keyfile=PATH`, as `sslcert`/`sslkey` do for a database).
#[derive(Clone)]
pub struct Broker {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub user: String,
    password: String,
    pub vhost: String,
    pub ca_file: Option<PathBuf>,
    /// The client certificate (PEM, with its chain) and its key (PEM), when the broker asks
    /// for one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// As it may be shown: `scheme://host[:port]/…` (`core::config::shown_url`).
    pub shown: String,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Broker({})", self.shown)
    }
}

impl Broker {
    /// Parses `text`. No reason quotes the text (it holds the password). A missing user is
    /// RabbitMQ's `guest` (password `guest`); no path, or `/`, is the vhost `/`, written
    /// `%2F` otherwise.
    pub fn parse(text: &str) -> Result<Broker, String> {
        let u = url::Url::parse(text.trim()).map_err(|e| format!("not a URL ({e})"))?;
        let tls = match u.scheme() {
            "amqp" => false,
            "amqps" => true,
            other => return Err(format!("the scheme is {other}, expected amqp or amqps")),
        };
        let host = match u.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            _ => return Err("it names no host".into()),
        };
        let decoded = |s: &str, what: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| format!("its {what} is not UTF-8 once percent-decoded"))
        };
        let (user, password) = match u.username() {
            "" => ("guest".to_string(), "guest".to_string()),
            name => (decoded(name, "user")?, decoded(u.password().unwrap_or(""), "password")?),
        };
        // The path as written: the URL parser takes `.`, `..` and their %2E spellings as dot
        // segments and drops them, which would connect to the vhost `/` (or the one before)
        // instead of the one named.
        let written = text.trim().split_once("://").and_then(|(_, rest)| rest.split_once('/'));
        let written = written.map_or("", |(_, path)| path.split(['?', '#']).next().unwrap_or(""));
        if written.contains('/') {
            return Err("its path holds more than one segment: write a vhost with / as %2F".into());
        }
        if matches!(decoded(written, "vhost")?.as_str(), "." | "..") {
            return Err("its vhost is . or .., which a URL cannot name (they are dot segments)".into());
        }
        let vhost = match u.path() {
            "" | "/" => "/".to_string(),
            path => {
                let v = decoded(&path[1..], "vhost")?;
                if path[1..].contains('/') {
                    return Err("its path holds more than one segment: write a vhost with / as %2F".into());
                }
                v
            }
        };
        let (mut ca_file, mut cert_file, mut key_file) = (None, None, None);
        for (key, value) in u.query_pairs() {
            let path = Some(PathBuf::from(value.as_ref()));
            match key.as_ref() {
                "cacertfile" if tls => ca_file = path,
                "certfile" if tls => cert_file = path,
                "keyfile" if tls => key_file = path,
                other => {
                    return Err(format!(
                        "unknown query parameter {other:?} (amqps:// takes cacertfile=PATH, \
                         certfile=PATH and keyfile=PATH, nothing else)"
                    ))
                }
            }
        }
        let client_cert = match (cert_file, key_file) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err("certfile and keyfile go together: the client certificate and its key".into()),
        };
        let port = u.port().unwrap_or(if tls { 5671 } else { 5672 });
        let shown = shown_url(text.trim());
        Ok(Broker { tls, host, port, user, password, vhost, ca_file, client_cert, shown })
    }

    /// The password, for the one place that hands it on: the shovel of `receive-chain`,
    /// which the store's broker runs with the central broker's URL.
    pub(super) fn password(&self) -> &str {
        &self.password
    }

    /// `text` with this URL's password replaced by `…` (a client's message may quote it).
    pub(super) fn scrub(&self, text: &str) -> String {
        if self.password.len() > 1 {
            text.replace(&self.password, "…")
        } else {
            text.to_string()
        }
    }
}

/// The rustls connector of an `amqps://` broker: verified against `cacertfile` when given,
/// else the system store (which `SSL_CERT_FILE` overrides), as `core::db` verifies databases.
pub(super) fn tls_connector(broker: &Broker) -> anyhow::Result<tokio_rustls::TlsConnector> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    match &broker.ca_file {
        Some(file) => {
            let certs = CertificateDer::pem_file_iter(file)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    anyhow!("cacertfile {}: cannot read the CA certificates: {e}", file.display())
                })?;
            if roots.add_parsable_certificates(certs).0 == 0 {
                anyhow::bail!("cacertfile {}: no CA certificate in it", file.display());
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            if roots.add_parsable_certificates(found.certs).0 == 0 {
                anyhow::bail!(
                    "amqps://, but no trusted CA certificate was found (the system store, or the file \
                     SSL_CERT_FILE names; or give ?cacertfile=PATH)"
                );
            }
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS setup")?
        .with_root_certificates(roots);
    let config = match &broker.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    anyhow!("certfile {}: cannot read the client certificate: {e}", cert.display())
                })?;
            if chain.is_empty() {
                anyhow::bail!("certfile {}: no certificate in it", cert.display());
            }
            let private = rustls::pki_types::PrivateKeyDer::from_pem_file(key)
                .map_err(|e| anyhow!("keyfile {}: cannot read the client key: {e}", key.display()))?;
            builder.with_client_auth_cert(chain, private).map_err(|e| {
                anyhow!("certfile {} and keyfile {}: not a usable pair: {e}", cert.display(), key.display())
            })?
        }
    };
    Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)))
}

/// Opens a connection to `broker` (through TLS when `tls` is given) within
/// [`CONNECT_TIMEOUT`], named `<name> <host name>` on the broker. The error is a sentence
/// naming the broker as it may be shown, the client's reason with the password scrubbed.
pub async fn connect(
    broker: &Broker,
    tls: Option<&tokio_rustls::TlsConnector>,
    name: &str,
) -> Result<Connection, String> {
    let b = broker;
    let mut args = OpenConnectionArguments::new(&b.host, b.port, &b.user, &b.password);
    args.virtual_host(&b.vhost)
        .heartbeat(30)
        .connection_name(&format!("{name} {}", crate::core::runlog::host_name()));
    if let Some(connector) = tls {
        args.scheme("amqps").tls_adaptor(TlsAdaptor::new(connector.clone(), b.host.clone()));
    } else {
        args.scheme("amqp");
    }
    let cannot = |e: String| {
        format!("cannot connect to the broker at {} (vhost {}): {}", b.shown, b.vhost, b.scrub(&e))
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, Connection::open(&args)).await {
        Err(_) => Err(cannot(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))),
        Ok(Err(e)) => Err(cannot(e.to_string())),
        Ok(Ok(conn)) => Ok(conn),
    }
}

/// Runs `csjobs receive`.
pub async fn run(cfg: &Config, opts: &ReceiveOptions) -> Result<Outcome, JobError> {
    let text = cfg.receive.amqp_url.as_deref().ok_or_else(|| {
        JobError::usage(
            "the broker is not configured: set receive.amqp_url in the config file or \
             CSJOBS_RECEIVE_AMQP_URL (amqp://user:password@host[:port]/vhost or amqps://)",
        )
    })?;
    let broker = Broker::parse(text).map_err(|reason| {
        JobError::usage(format!(
            "receive.amqp_url (CSJOBS_RECEIVE_AMQP_URL) is not a valid AMQP URL: {reason}"
        ))
    })?;
    let prefetch = u16::try_from(cfg.receive.prefetch).map_err(|_| {
        JobError::usage(format!(
            "receive.prefetch (CSJOBS_RECEIVE_PREFETCH) must be at most 65535, got {}",
            cfg.receive.prefetch
        ))
    })?;
    for (key, name) in [("receive.exchange", &cfg.receive.exchange), ("receive.queue", &cfg.receive.queue)] {
        if name.is_empty() || name.len() > 200 || name.starts_with("amq.") {
            return Err(JobError::usage(format!(
                "{key} must be a name of 1 to 200 bytes not starting with amq., got {name:?}"
            )));
        }
    }
    let tls = match broker.tls {
        true => {
            Some(tls_connector(&broker).map_err(|e| JobError::usage(format!("receive.amqp_url: {e:#}")))?)
        }
        false => None,
    };
    let queue_dir = cfg.paths.queue.clone();
    let dir = match queue_dir.is_dir() {
        true => std::fs::File::open(&queue_dir).ok(),
        false => None,
    };
    let Some(dir) = dir else {
        return Err(JobError::Failed(anyhow!(
            "the queue directory {} (paths.queue) does not exist, is not a directory or cannot be opened: \
             nothing received",
            queue_dir.display()
        )));
    };
    let frame = Frame::new(JOB).stops_on_signals();
    frame
        .run_logged_if_db(cfg, "receiving", async |stop| {
            let mut r = Receiver {
                cfg,
                opts,
                broker,
                tls,
                prefetch,
                queue_dir,
                dir: std::sync::Arc::new(dir),
                pid: std::process::id(),
                stop: stop.flag(),
                taken: 0,
                received: 0,
                rejected: 0,
                bytes: 0,
                last_mtime: SystemTime::UNIX_EPOCH,
                seq: 0,
                unnamed: false,
            };
            let result = r.receive().await;
            let counters =
                serde_json::json!({ "received": r.received, "rejected": r.rejected, "bytes": r.bytes });
            tracing::info!(received = r.received, rejected = r.rejected, bytes = r.bytes, "receive done");
            Ran::new(result, counters)
        })
        .await
}

/// How a session with the broker ended.
pub(super) enum End {
    /// Done: the limit, the idle time, or a stop.
    Done,
    /// The connection went away (or could not be made): reconnect with --follow, else exit 1.
    Lost(String),
}

/// A session that cannot go on for a reason reconnecting does not cure.
pub(super) enum Fatal {
    /// A broker object exists with other arguments (exit 2).
    Mismatch(String),
    /// The queue directory cannot be written (exit 1).
    Disk(anyhow::Error),
}

impl From<Fatal> for JobError {
    fn from(f: Fatal) -> JobError {
        match f {
            Fatal::Mismatch(m) => JobError::Usage(m),
            Fatal::Disk(e) => JobError::Failed(e),
        }
    }
}

struct Receiver<'a> {
    cfg: &'a Config,
    opts: &'a ReceiveOptions,
    broker: Broker,
    tls: Option<tokio_rustls::TlsConnector>,
    prefetch: u16,
    queue_dir: PathBuf,
    /// The queue directory, open: files are created and renamed relative to it.
    dir: std::sync::Arc<std::fs::File>,
    pid: u32,
    stop: StopFlag,
    /// Messages taken (written or rejected), for --limit.
    taken: u64,
    received: u64,
    rejected: u64,
    bytes: u64,
    /// The modification time of the last file written: the next one gets a later one.
    last_mtime: SystemTime,
    /// Numbers the temporary files of this process.
    seq: u64,
    /// Whether files are written unnamed (`O_TMPFILE`) and linked into place, rather than
    /// written under a temporary name and renamed (see [`unnamed_files_work`]).
    unnamed: bool,
}

/// The messages of a batch written under their temporary names, not yet durable, renamed
/// or acknowledged: in delivery order.
#[derive(Default)]
struct Batch {
    last_tag: Option<u64>,
    files: Vec<Written>,
}

/// One file of a batch: the file not yet in place, and its name in the queue directory.
struct Written {
    tmp: Temp,
    name: String,
    tag: u64,
    /// Its modification time (in delivery order).
    mtime: SystemTime,
}

/// A file written but not yet in place.
enum Temp {
    /// Unnamed (`O_TMPFILE`, open): nothing in the directory until it is linked; gone with
    /// the process if it never is.
    Unnamed(std::os::fd::OwnedFd),
    /// Under a temporary name that load-sales ignores (`.amqp-….json.csjobs-tmp-<pid>-<n>`),
    /// where the file system has no unnamed files.
    Named(String),
}

impl Temp {
    /// Removes it (an unnamed file goes when its descriptor is closed).
    fn remove(self, dir: &std::fs::File) {
        if let Temp::Named(tmp) = self {
            let _ = rustix::fs::unlinkat(dir, &tmp, rustix::fs::AtFlags::empty());
        }
    }

    /// Gives it its name in `dir`: linked, or renamed over a file of the same name (the
    /// same content). An unnamed file whose name is already there (a message delivered
    /// again, the same content) leaves that file and gives it `mtime`, as the rename of a
    /// temporary file over it would: the file takes its place in delivery order again.
    fn place(&self, dir: &std::fs::File, name: &str, mtime: SystemTime) -> std::io::Result<()> {
        use rustix::fs::{AtFlags, Timespec, Timestamps, UTIME_OMIT};
        match self {
            Temp::Unnamed(fd) => {
                let path = proc_path(fd);
                let since = mtime.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
                let times = Timestamps {
                    last_access: Timespec { tv_sec: 0, tv_nsec: UTIME_OMIT },
                    last_modification: Timespec {
                        tv_sec: since.as_secs() as _,
                        tv_nsec: since.subsec_nanos() as _,
                    },
                };
                // The file of that name may be taken away (load-sales moves it) between the
                // two calls: then link again.
                for _ in 0..3 {
                    match rustix::fs::linkat(rustix::fs::CWD, &path, dir, name, AtFlags::SYMLINK_FOLLOW) {
                        Err(rustix::io::Errno::EXIST) => {
                            match rustix::fs::utimensat(dir, name, &times, AtFlags::empty()) {
                                Err(rustix::io::Errno::NOENT) => continue,
                                done => return done.map_err(Into::into),
                            }
                        }
                        done => return done.map_err(Into::into),
                    }
                }
                Err(std::io::Error::other(format!("{name} keeps appearing and going while it is linked")))
            }
            Temp::Named(tmp) => rustix::fs::renameat(dir, tmp, dir, name).map_err(Into::into),
        }
    }
}

/// The path through which an open unnamed file is linked (open(2), O_TMPFILE: linkat with
/// AT_SYMLINK_FOLLOW, which needs no capability, unlike AT_EMPTY_PATH).
fn proc_path(fd: &std::os::fd::OwnedFd) -> String {
    use std::os::fd::AsRawFd;
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Whether unnamed files can be made in `dir` and linked into place (the file system has
/// O_TMPFILE, /proc is there): tried once with a file of a temporary name, removed at once.
/// Why not, when not.
fn unnamed_files_work(dir: &std::fs::File, pid: u32) -> Result<(), String> {
    let probe = format!(".{FILE_PREFIX}probe{TEMP_MARK}{pid}-0");
    let fd =
        open_unnamed(dir).map_err(|e| format!("an unnamed file (O_TMPFILE) cannot be made there: {e}"))?;
    Temp::Unnamed(fd)
        .place(dir, &probe, SystemTime::now())
        .map_err(|e| format!("an unnamed file cannot be linked into place through /proc/self/fd: {e}"))?;
    rustix::fs::unlinkat(dir, &probe, rustix::fs::AtFlags::empty())
        .map_err(|e| format!("the test file {probe} cannot be removed: {e}"))
}

fn open_unnamed(dir: &std::fs::File) -> rustix::io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    rustix::fs::openat(
        dir,
        ".",
        OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o666),
    )
}

/// The most messages of one batch under `prefetch`: with the batches handed to the
/// durability thread and the one being written, the prefetch.
fn batch_most(prefetch: u16) -> usize {
    (usize::from(prefetch) / (IN_FLIGHT_MAX + 1)).clamp(1, BATCH_MAX)
}

/// Whether `open` more descriptors fit: the soft limit on open files raised to the hard
/// one first (each unnamed file of the batches in flight is an open descriptor). Why not,
/// when not.
fn descriptors_for(open: usize) -> Result<(), String> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
        limit = getrlimit(Resource::Nofile);
    }
    // The connection, the database, the runtime and the logs: room to spare.
    match limit.current {
        Some(n) if n < open as u64 + 256 => Err(format!(
            "the limit on open files ({n}: ulimit -n, LimitNOFILE= of the unit) is below the {} the \
             unnamed files of the prefetch need",
            open + 256
        )),
        _ => Ok(()),
    }
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Removes the files not yet in place (the connection went away: their messages come
    /// again).
    fn discard(&mut self, dir: &std::fs::File) {
        remove_all(dir, std::mem::take(&mut self.files));
        self.last_tag = None;
    }
}

/// Removes files not in place ([`Temp::remove`]).
fn remove_all(dir: &std::fs::File, files: impl IntoIterator<Item = Written>) {
    for w in files {
        w.tmp.remove(dir);
    }
}

impl Receiver<'_> {
    async fn receive(&mut self) -> Result<Outcome, JobError> {
        remove_stale_temps(&self.queue_dir);
        let in_flight = (IN_FLIGHT_MAX + 1) * batch_most(self.prefetch);
        match unnamed_files_work(&self.dir, self.pid).and_then(|()| descriptors_for(in_flight)) {
            Ok(()) => {
                self.unnamed = true;
                tracing::debug!("files are written unnamed (O_TMPFILE) and linked into place");
            }
            Err(why) => tracing::info!(
                queue_dir = %self.queue_dir.display(),
                "files are written under temporary names and renamed into place: {why}"
            ),
        }
        let mut backoff = Duration::from_secs(1);
        loop {
            if self.stop.requested() {
                break;
            }
            let taken_before = self.taken;
            match self.session().await {
                Ok(End::Done) => break,
                Err(fatal) => return Err(fatal.into()),
                Ok(End::Lost(why)) if self.opts.follow => {
                    if self.taken > taken_before {
                        backoff = Duration::from_secs(1);
                    }
                    tracing::warn!(
                        broker = %self.broker.shown,
                        "{why}; reconnecting in {} s (unacknowledged messages went back to the queue)",
                        backoff.as_secs()
                    );
                    if !self.sleep_unless_stopped(backoff).await {
                        break;
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                Ok(End::Lost(why)) if self.taken == 0 => {
                    return Err(JobError::Failed(anyhow!("{why}; nothing was received")))
                }
                Ok(End::Lost(why)) => {
                    return Err(JobError::Failed(anyhow!(
                        "{why}; the messages not acknowledged go back to the queue, nothing is lost \
                         (receive --follow reconnects)"
                    )))
                }
            }
        }
        if self.opts.follow && self.stop.requested() {
            // receive.md: a stopped --follow run exits 0; what it rejected is in the log, the
            // run log's counters and <queue>.rejected.
            return Ok(Outcome::default());
        }
        Ok(Outcome::rejected(self.rejected))
    }

    /// Sleeps `d`, or less when a stop is requested: whether it slept it all.
    async fn sleep_unless_stopped(&self, d: Duration) -> bool {
        let until = tokio::time::Instant::now() + d;
        while tokio::time::Instant::now() < until {
            if self.stop.requested() {
                return false;
            }
            tokio::time::sleep(TICK.min(until - tokio::time::Instant::now())).await;
        }
        !self.stop.requested()
    }

    fn limit_reached(&self) -> bool {
        self.opts.limit.is_some_and(|l| self.taken >= l)
    }

    /// One connection: declare, consume, write and acknowledge until done or lost.
    async fn session(&mut self) -> Result<End, Fatal> {
        let b = &self.broker;
        let conn = match connect(b, self.tls.as_ref(), "csjobs receive").await {
            Err(why) => return Ok(End::Lost(why)),
            Ok(conn) => conn,
        };
        let _ = conn.register_callback(LogClose { shown: b.shown.clone() }).await;
        let server = conn.server_properties();
        tracing::info!(
            broker = %b.shown,
            vhost = %b.vhost,
            product = %server.product(),
            version = %server.version(),
            "connected to the broker"
        );
        let ended = self.consume(&conn).await;
        if conn.is_open() {
            // Unacknowledged messages (past --limit, say) go back to the queue with the channel.
            let _ = tokio::time::timeout(Duration::from_secs(5), conn.close()).await;
        }
        ended
    }

    async fn consume(&mut self, conn: &Connection) -> Result<End, Fatal> {
        let lost = |what: &str, e: amqprs::error::Error| End::Lost(format!("{what}: {e}"));
        let ch = match conn.open_channel(None).await {
            Ok(ch) => ch,
            Err(e) => return Ok(lost("cannot open a channel", e)),
        };
        let closed = ChannelClosed::default();
        let _ = ch.register_callback(closed.clone()).await;
        if let Some(end) = declare(&ch, &closed, &self.cfg.receive.exchange, &self.cfg.receive.queue).await? {
            return Ok(end);
        }
        let prefetch = match self.opts.limit {
            Some(l) => u64::from(self.prefetch).min(l.saturating_sub(self.taken)).max(1) as u16,
            None => self.prefetch,
        };
        if let Err(e) = ch.basic_qos(BasicQosArguments::new(0, prefetch, false)).await {
            return Ok(lost("cannot set the prefetch (basic.qos)", e));
        }
        let queue = &self.cfg.receive.queue;
        let consume = BasicConsumeArguments::new(queue, "").manual_ack(true).finish();
        let (tag, mut rx) = match ch.basic_consume_rx(consume).await {
            Ok(x) => x,
            Err(e) => return Ok(lost(&format!("cannot consume the queue {queue}"), e)),
        };
        tracing::info!(queue = %queue, prefetch, follow = self.opts.follow, "receiving");
        let end = self.take(&ch, &mut rx, prefetch).await;
        if matches!(end, Ok(End::Done)) {
            let _ = ch.basic_cancel(BasicCancelArguments::new(&tag)).await;
            let _ = ch.close().await;
        }
        end
    }

    /// Takes messages until done (limit, idle, stop) or the connection is lost. A batch is
    /// handed to the durability thread ([`durability_thread`]) while the next one is written
    /// (at most [`IN_FLIGHT_MAX`] handed and not yet acknowledged): a batch ends when the
    /// channel is empty and the thread has room for it, or at a third of the prefetch, so
    /// that the broker has room to hand over the next one meanwhile.
    async fn take(
        &mut self,
        ch: &Channel,
        rx: &mut UnboundedReceiver<ConsumerMessage>,
        prefetch: u16,
    ) -> Result<End, Fatal> {
        let mut batch = Batch::default();
        let mut in_flight = InFlight::start(self.dir.clone());
        let result = self.take_batches(ch, rx, prefetch, &mut batch, &mut in_flight).await;
        if !matches!(result, Ok(End::Done)) {
            // Lost or failed: what is not acknowledged comes again.
            batch.discard(&self.dir);
        }
        // The thread's links (renames) end before the session does.
        in_flight.close();
        let _ = in_flight.thread.await;
        result
    }

    async fn take_batches(
        &mut self,
        ch: &Channel,
        rx: &mut UnboundedReceiver<ConsumerMessage>,
        prefetch: u16,
        batch: &mut Batch,
        in_flight: &mut InFlight,
    ) -> Result<End, Fatal> {
        let most = batch_most(prefetch);
        let mut yields = 0;
        loop {
            if self.limit_reached() || self.stop.requested() {
                return self.flush(ch, batch, in_flight).await.map(|lost| lost.unwrap_or(End::Done));
            }
            let next = if batch.is_empty() && in_flight.tags.is_empty() {
                match self.wait(ch, rx).await {
                    Waited::Message(m) => Some(*m),
                    Waited::Idle => return Ok(End::Done),
                    Waited::Stop => continue,
                    Waited::Closed => None,
                }
            } else {
                match rx.try_recv() {
                    Ok(m) => {
                        yields = 0;
                        Some(m)
                    }
                    Err(TryRecvError::Empty) if yields < YIELDS_BEFORE_FLUSH => {
                        // What the broker has sent may still be in the socket or the client's
                        // tasks (which run only while this one waits): let them hand it over.
                        yields += 1;
                        tokio::task::yield_now().await;
                        continue;
                    }
                    Err(TryRecvError::Empty) if !batch.is_empty() && in_flight.has_room() => {
                        yields = 0;
                        if let Some(lost) = self.hand_off(ch, batch, in_flight).await? {
                            return Ok(lost);
                        }
                        continue;
                    }
                    Err(TryRecvError::Empty) => {
                        // Nothing new, and batches handed that are not yet durable (with no
                        // room for another, the batch being written waits): a message or the
                        // oldest batch durable, whichever comes first.
                        yields = 0;
                        tokio::select! {
                            m = rx.recv() => m,
                            done = in_flight.said.recv() => {
                                if let Some(lost) = self.acknowledge(ch, in_flight, done).await? {
                                    return Ok(lost);
                                }
                                continue;
                            }
                        }
                    }
                    Err(TryRecvError::Disconnected) => None,
                }
            };
            let Some(message) = next else {
                return Ok(End::Lost("the broker closed the connection".into()));
            };
            if let Some(lost) = self.handle(ch, message, batch).await? {
                return Ok(lost);
            }
            if batch.files.len() >= most {
                if let Some(lost) = self.hand_off(ch, batch, in_flight).await? {
                    return Ok(lost);
                }
            }
        }
    }

    /// Waits for the next message, the idle time (without --follow and when nothing came),
    /// a stop, or the channel's end.
    async fn wait(&self, ch: &Channel, rx: &mut UnboundedReceiver<ConsumerMessage>) -> Waited {
        let idle = tokio::time::sleep(self.cfg.receive.idle_exit);
        tokio::pin!(idle);
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                m = rx.recv() => return m.map_or(Waited::Closed, |m| Waited::Message(Box::new(m))),
                _ = &mut idle, if !self.opts.follow => return Waited::Idle,
                _ = tick.tick() => {
                    if self.stop.requested() {
                        return Waited::Stop;
                    }
                    if !ch.is_open() || !ch.is_connection_open() {
                        return Waited::Closed;
                    }
                }
            }
        }
    }

    fn disk(&self, e: std::io::Error) -> Fatal {
        Fatal::Disk(anyhow!(
            "the queue directory {} cannot be written: {e}; the messages not acknowledged go back to \
             the queue",
            self.queue_dir.display()
        ))
    }

    /// One message: written under its temporary name (made durable, renamed into place and
    /// acknowledged with its batch), or rejected at once with its reason. `Some`: the
    /// connection was lost.
    async fn handle(
        &mut self,
        ch: &Channel,
        m: ConsumerMessage,
        batch: &mut Batch,
    ) -> Result<Option<End>, Fatal> {
        let Some(deliver) = m.deliver else { return Ok(None) };
        let tag = deliver.delivery_tag();
        let props = m.basic_properties.unwrap_or_default();
        let body = m.content.unwrap_or_default();
        let headers = props.headers();
        let header = |name: &str| headers.and_then(|h| header_text(h, name));
        let (cash_code, sales_id, method) = (header("cashCode"), header("salesId"), header("compressMethod"));
        let message_id = props.message_id().cloned();
        let field = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        self.taken += 1;
        let content = compression(props.content_encoding().map(String::as_str), method.as_deref())
            .and_then(|how| decode(&body, how, self.cfg.sales.max_file_bytes));
        match content {
            Ok(content) => {
                let name = file_name(&content);
                let tmp = self.write(&name, &content).map_err(|e| self.disk(e))?;
                self.received += 1;
                self.bytes += content.len() as u64;
                batch.last_tag = Some(tag);
                batch.files.push(Written { tmp, name: name.clone(), tag, mtime: self.last_mtime });
                tracing::debug!(
                    file = %name,
                    delivery_tag = tag,
                    redelivered = deliver.redelivered(),
                    cash_code = %field(&cash_code),
                    sales_id = %field(&sales_id),
                    message_id = %field(&message_id),
                    bytes = content.len(),
                    "written"
                );
                Ok(None)
            }
            Err(rejection) => {
                if let Err(e) = ch.basic_reject(BasicRejectArguments::new(tag, false)).await {
                    return Ok(Some(End::Lost(format!("cannot reject a message: {e}"))));
                }
                self.rejected += 1;
                tracing::warn!(
                    reason = %rejection,
                    delivery_tag = tag,
                    cash_code = %field(&cash_code),
                    sales_id = %field(&sales_id),
                    message_id = %field(&message_id),
                    body_bytes = body.len(),
                    "message rejected, dead-lettered to {}.rejected: {rejection}",
                    self.cfg.receive.queue
                );
                Ok(None)
            }
        }
    }

    /// Hands over the batch and waits until every batch handed is durable and acknowledged
    /// (the thread is told that no batch follows: the last one is put in place at once).
    /// `Some`: the connection was lost (the files in place stay; their messages come again
    /// and are written again under the same names).
    async fn flush(
        &mut self,
        ch: &Channel,
        batch: &mut Batch,
        in_flight: &mut InFlight,
    ) -> Result<Option<End>, Fatal> {
        if let Some(lost) = self.hand_off(ch, batch, in_flight).await? {
            return Ok(Some(lost));
        }
        in_flight.close();
        while !in_flight.tags.is_empty() {
            if let Some(lost) = self.settle_oldest(ch, in_flight).await? {
                return Ok(Some(lost));
            }
        }
        Ok(None)
    }

    /// Hands `batch` to the durability thread, once there is room for it (at most
    /// [`IN_FLIGHT_MAX`] handed and not yet acknowledged: else the oldest is waited for and
    /// acknowledged first).
    async fn hand_off(
        &mut self,
        ch: &Channel,
        batch: &mut Batch,
        in_flight: &mut InFlight,
    ) -> Result<Option<End>, Fatal> {
        if batch.is_empty() {
            return Ok(None);
        }
        while !in_flight.has_room() {
            if let Some(lost) = self.settle_oldest(ch, in_flight).await? {
                return Ok(Some(lost));
            }
        }
        let Some(last_tag) = batch.last_tag.take() else { return Ok(None) };
        let files = std::mem::take(&mut batch.files);
        let handed = match &in_flight.jobs {
            Some(jobs) => jobs.send(files).map_err(|gone| gone.0),
            None => Err(files),
        };
        if let Err(files) = handed {
            remove_all(&self.dir, files);
            return Err(self.thread_ended());
        }
        in_flight.tags.push_back(last_tag);
        Ok(None)
    }

    /// Waits for what the durability thread says of the oldest batch handed, and
    /// acknowledges it.
    async fn settle_oldest(&mut self, ch: &Channel, in_flight: &mut InFlight) -> Result<Option<End>, Fatal> {
        let done = in_flight.said.recv().await;
        self.acknowledge(ch, in_flight, done).await
    }

    fn thread_ended(&self) -> Fatal {
        self.disk(std::io::Error::other("the thread that makes files durable has ended"))
    }

    /// One ack with `multiple` up to the oldest batch handed, now that the durability
    /// thread says it is durable (`done`: what it said; none: it has ended).
    async fn acknowledge(
        &mut self,
        ch: &Channel,
        in_flight: &mut InFlight,
        done: Option<std::io::Result<usize>>,
    ) -> Result<Option<End>, Fatal> {
        let Some(last_tag) = in_flight.tags.pop_front() else { return Ok(None) };
        let files = match done {
            Some(Ok(files)) => files,
            Some(Err(e)) => return Err(self.disk(e)),
            None => return Err(self.thread_ended()),
        };
        if let Err(e) = ch.basic_ack(BasicAckArguments::new(last_tag, true)).await {
            return Ok(Some(End::Lost(format!("cannot acknowledge: {e}"))));
        }
        tracing::debug!(up_to = last_tag, files, "acknowledged");
        Ok(None)
    }

    /// Writes `content`, the file to be `name` in the queue directory, unnamed or under a
    /// temporary name, with a modification time later than the last file's. Not yet
    /// durable (the batch's syncfs makes it so).
    fn write(&mut self, name: &str, content: &[u8]) -> std::io::Result<Temp> {
        use rustix::fs::{Mode, OFlags};
        let mtime = SystemTime::now().max(self.last_mtime + Duration::from_micros(1));
        let (fd, tmp) = if self.unnamed {
            (open_unnamed(&self.dir)?, None)
        } else {
            self.seq += 1;
            let tmp = format!(".{name}{TEMP_MARK}{}-{}", self.pid, self.seq);
            let flags = OFlags::CREATE | OFlags::TRUNC | OFlags::WRONLY | OFlags::CLOEXEC;
            (rustix::fs::openat(&self.dir, &tmp, flags, Mode::from_raw_mode(0o666))?, Some(tmp))
        };
        let mut f = std::fs::File::from(fd);
        let result = std::io::Write::write_all(&mut f, content).and_then(|()| f.set_modified(mtime));
        let temp = match tmp {
            None => Temp::Unnamed(f.into()),
            Some(tmp) => {
                drop(f);
                Temp::Named(tmp)
            }
        };
        if let Err(e) = result {
            temp.remove(&self.dir);
            return Err(e);
        }
        self.last_mtime = mtime;
        Ok(temp)
    }
}

/// The batches handed to the durability thread and not yet acknowledged, and the way to it.
struct InFlight {
    /// Where batches go, in delivery order; closed (none) when no batch follows.
    jobs: Option<std::sync::mpsc::Sender<Vec<Written>>>,
    /// What the thread says of each batch handed, in the same order.
    said: UnboundedReceiver<std::io::Result<usize>>,
    /// The last delivery tag of each batch handed and not yet acknowledged, oldest first.
    tags: VecDeque<u64>,
    thread: tokio::task::JoinHandle<()>,
}

impl InFlight {
    fn start(dir: std::sync::Arc<std::fs::File>) -> InFlight {
        let (jobs, batches) = std::sync::mpsc::channel();
        let (says, said) = tokio::sync::mpsc::unbounded_channel();
        let thread =
            tokio::task::spawn_blocking(move || durability_thread(Durability::new(dir), batches, says));
        InFlight { jobs: Some(jobs), said, tags: VecDeque::new(), thread }
    }

    fn has_room(&self) -> bool {
        self.tags.len() < IN_FLIGHT_MAX
    }

    /// No batch follows: the thread puts the one it holds in place at once, then ends.
    fn close(&mut self) {
        self.jobs = None;
    }
}

/// How long the durability thread waits for the next batch before it puts the batch it
/// holds in place alone (a syncfs of its own): while messages come, the next batch comes
/// sooner, and the two share one journal commit.
const NEXT_BATCH_WAIT: Duration = Duration::from_millis(2);

/// The thread that makes batches durable, in the order handed ([`Durability::round`]),
/// and says so of each on `says`. It waits up to [`NEXT_BATCH_WAIT`] for the next batch
/// while it holds one; it ends when `batches` is closed and what it holds is settled.
fn durability_thread(
    mut d: Durability,
    batches: std::sync::mpsc::Receiver<Vec<Written>>,
    says: tokio::sync::mpsc::UnboundedSender<std::io::Result<usize>>,
) {
    loop {
        let next = if d.holds() {
            // None: timed out, or closed (then settled at once).
            batches.recv_timeout(NEXT_BATCH_WAIT).ok()
        } else {
            match batches.recv() {
                Ok(files) => Some(files),
                Err(_) => return,
            }
        };
        for said in d.round(next) {
            let _ = says.send(said);
        }
    }
}

/// Makes batches durable under their names, one journal commit per batch while batches
/// follow each other (a batch settled alone pays two): a round puts in place the batch
/// whose data the round before made durable, then one `syncfs(2)` of the queue directory's
/// file system makes its names durable and, with them, the data and inodes of the next
/// batch (what an fsync of each file would do). A name therefore never appears before its
/// file's data is on disk, names appear in delivery order (load-sales never sees a later
/// file before an earlier one), and a batch is said durable only once its names are. The syncfs covers a rename (the fallback without unnamed files) as it
/// covers a link, and a link's change to the file's own inode (its link count), which a
/// directory fsync does not write on every file system (ext4 without a journal).
struct Durability {
    dir: std::sync::Arc<std::fs::File>,
    /// The batch whose data is durable, not yet in place.
    ready: Option<Vec<Written>>,
    /// A round failed: every batch after it fails too (their messages come again, after
    /// the failed batch's).
    failed: bool,
    /// What makes the file system's changes durable: `syncfs(2)` (a test counts the calls
    /// or makes one fail).
    sync: SyncFs,
}

/// Makes every change to the file system of a directory durable.
type SyncFs = Box<dyn FnMut(&std::fs::File) -> std::io::Result<()> + Send>;

impl Durability {
    fn new(dir: std::sync::Arc<std::fs::File>) -> Durability {
        let sync: SyncFs = Box::new(|dir| rustix::fs::syncfs(dir).map_err(std::io::Error::from));
        Durability { dir, ready: None, failed: false, sync }
    }

    /// Whether it holds a batch that waits for the next round.
    fn holds(&self) -> bool {
        self.ready.is_some()
    }

    /// One round: the batch it holds put in place, one syncfs, `next` (none: no batch
    /// follows now) held for the next round. What it says of the batches settled, in the
    /// order handed: the number of files of each, or why not. On a failure the files of
    /// the failed batch not yet in place and those of `next` are removed; a file already
    /// in place stays (its message is not acknowledged: it comes again and is written
    /// again under that name).
    fn round(&mut self, next: Option<Vec<Written>>) -> Vec<std::io::Result<usize>> {
        let dir = &*self.dir;
        if self.failed {
            let held = self.ready.take().into_iter().chain(next);
            return held.map(|files| discard_after_failure(dir, files)).collect();
        }
        let placed = self.ready.take().map(|files| place_in_order(dir, files));
        let synced = match (&placed, &next) {
            (Some(Err(_)), _) | (None, None) => Ok(()),
            _ => (self.sync)(dir),
        };
        let mut said = Vec::new();
        let mut why_next = None;
        match (placed, synced) {
            (Some(Ok(n)), Ok(())) => said.push(Ok(n)),
            (Some(Err(e)), _) | (Some(Ok(_)), Err(e)) => {
                said.push(Err(e));
                self.failed = true;
            }
            (None, Err(e)) => {
                why_next = Some(e);
                self.failed = true;
            }
            (None, Ok(())) => {}
        }
        match next {
            Some(files) if self.failed => {
                let removed = discard_after_failure(dir, files);
                said.push(why_next.map_or(removed, Err));
            }
            next => self.ready = next,
        }
        said
    }
}

/// Puts a batch's files in place in delivery order ([`Temp::place`]): their number, or the
/// first failure (then that file and those after it are removed).
fn place_in_order(dir: &std::fs::File, files: Vec<Written>) -> std::io::Result<usize> {
    let n = files.len();
    let mut left = files.into_iter();
    while let Some(w) = left.next() {
        if let Err(e) = w.tmp.place(dir, &w.name, w.mtime) {
            w.tmp.remove(dir);
            remove_all(dir, left);
            return Err(e);
        }
        tracing::debug!(file = %w.name, delivery_tag = w.tag, "in place");
    }
    Ok(n)
}

/// A batch that cannot be made durable since one before it was not: its files removed.
fn discard_after_failure(dir: &std::fs::File, files: Vec<Written>) -> std::io::Result<usize> {
    remove_all(dir, files);
    Err(std::io::Error::other("a batch before it could not be made durable"))
}

enum Waited {
    Message(Box<ConsumerMessage>),
    Idle,
    Stop,
    Closed,
}

/// A header's value as text: a string as it is, a number as written; another type: none.
fn header_text(headers: &FieldTable, name: &str) -> Option<String> {
    let key = name.try_into().ok()?;
    match headers.get(&key)? {
        FieldValue::S(s) => Some(s.to_string()),
        FieldValue::x(bytes) => Some(String::from_utf8_lossy(&Vec::<u8>::from(bytes.clone())).into_owned()),
        v @ (FieldValue::b(_)
        | FieldValue::B(_)
        | FieldValue::s(_)
        | FieldValue::u(_)
        | FieldValue::I(_)
        | FieldValue::i(_)
        | FieldValue::l(_)) => Some(v.to_string()),
        _ => None,
    }
}

/// Declares the objects of receive.md, idempotently: `<queue>.rejected` (fanout exchange, a
/// durable quorum queue bound to it), the exchange (fanout, durable) and the queue (a durable
/// quorum queue dead-lettering to `<queue>.rejected`) bound to it. An object that exists with
/// other arguments is a mismatch naming it (exit 2); nothing existing is ever changed.
pub(super) async fn declare(
    ch: &Channel,
    closed: &ChannelClosed,
    exchange: &str,
    queue: &str,
) -> Result<Option<End>, Fatal> {
    let rejected = format!("{queue}.rejected");
    let text = |s: &str| FieldValue::S(s.try_into().expect("a short name"));
    let quorum = |dead_letter: Option<&str>| {
        let mut t = FieldTable::new();
        t.insert("x-queue-type".try_into().expect("a short key"), text("quorum"));
        if let Some(dlx) = dead_letter {
            t.insert("x-dead-letter-exchange".try_into().expect("a short key"), text(dlx));
        }
        t
    };
    let steps: [(String, &str); 6] = [
        (format!("the exchange {rejected}"), "fanout, durable"),
        (format!("the queue {rejected}"), "a durable quorum queue"),
        (format!("the binding of the queue {rejected} to the exchange {rejected}"), ""),
        (format!("the exchange {exchange}"), "fanout, durable"),
        (
            format!("the queue {queue}"),
            "a durable quorum queue dead-lettering to the exchange <queue>.rejected",
        ),
        (format!("the binding of the queue {queue} to the exchange {exchange}"), ""),
    ];
    for (i, (object, wanted)) in steps.iter().enumerate() {
        let result = match i {
            0 => {
                ch.exchange_declare(ExchangeDeclareArguments::new(&rejected, "fanout").durable(true).finish())
                    .await
            }
            1 => {
                let mut a = QueueDeclareArguments::durable_client_named(&rejected);
                ch.queue_declare(a.arguments(quorum(None)).finish()).await.map(|_| ())
            }
            2 => ch.queue_bind(QueueBindArguments::new(&rejected, &rejected, "")).await,
            3 => {
                ch.exchange_declare(ExchangeDeclareArguments::new(exchange, "fanout").durable(true).finish())
                    .await
            }
            4 => {
                let mut a = QueueDeclareArguments::durable_client_named(queue);
                ch.queue_declare(a.arguments(quorum(Some(&rejected))).finish()).await.map(|_| ())
            }
            _ => ch.queue_bind(QueueBindArguments::new(queue, exchange, "")).await,
        };
        if let Err(e) = result {
            // The broker's reason came with its channel.close (the callback saw it first).
            let (code, e) = match closed.take() {
                Some((code, text)) => (code, text),
                None => (0, e.to_string()),
            };
            if code == 406 || e.contains("PRECONDITION_FAILED") {
                return Err(Fatal::Mismatch(format!(
                    "{object} exists on the broker with other arguments than receive declares ({wanted}); \
                     receive never changes an existing object: remove it or fix receive.exchange / \
                     receive.queue. The broker said: {e}"
                )));
            }
            return Ok(Some(End::Lost(format!("cannot declare {object}: {e}"))));
        }
    }
    Ok(None)
}

/// The reply code and text of the broker's `channel.close`, kept for the error it ends in.
#[derive(Clone, Default)]
pub(super) struct ChannelClosed(std::sync::Arc<std::sync::Mutex<Option<(u16, String)>>>);

impl ChannelClosed {
    pub(super) fn take(&self) -> Option<(u16, String)> {
        self.0.lock().ok()?.take()
    }
}

#[async_trait::async_trait]
impl ChannelCallback for ChannelClosed {
    async fn close(&mut self, _: &Channel, close: CloseChannel) -> Result<(), amqprs::error::Error> {
        tracing::debug!(
            reply_code = close.reply_code(),
            "the broker closed the channel: {}",
            close.reply_text()
        );
        if let Ok(mut kept) = self.0.lock() {
            *kept = Some((close.reply_code(), close.reply_text().clone()));
        }
        Ok(())
    }
    async fn cancel(&mut self, _: &Channel, _: Cancel) -> Result<(), amqprs::error::Error> {
        tracing::warn!("the broker cancelled the consumer (the queue was deleted?)");
        Ok(())
    }
    async fn flow(&mut self, _: &Channel, active: bool) -> Result<bool, amqprs::error::Error> {
        Ok(active)
    }
    async fn publish_ack(&mut self, _: &Channel, _: Ack) {}
    async fn publish_nack(&mut self, _: &Channel, _: Nack) {}
    async fn publish_return(&mut self, _: &Channel, _: Return, _: BasicProperties, _: Vec<u8>) {}
}

/// Logs why the broker closed the connection (`rabbitmqctl close_connection`, a shutdown).
struct LogClose {
    shown: String,
}

#[async_trait::async_trait]
impl ConnectionCallback for LogClose {
    async fn close(&mut self, _: &Connection, close: Close) -> Result<(), amqprs::error::Error> {
        tracing::warn!(
            broker = %self.shown,
            reply_code = close.reply_code(),
            "the broker closed the connection: {}",
            close.reply_text()
        );
        Ok(())
    }
    async fn blocked(&mut self, _: &Connection, reason: String) {
        tracing::warn!(broker = %self.shown, "the broker blocks this connection: {reason}");
    }
    async fn unblocked(&mut self, _: &Connection) {
        tracing::info!(broker = %self.shown, "the broker unblocked this connection");
    }
    async fn secret_updated(&mut self, _: &Connection) {}
}

/// Removes the temporary files of receive runs that are gone (killed between write and
/// rename); those of live runs (several may consume at once) stay.
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((_, tail)) =
            name.strip_prefix(&format!(".{FILE_PREFIX}")).and_then(|n| n.split_once(TEMP_MARK))
        else {
            continue;
        };
        let pid = tail.split('-').next().and_then(|p| p.parse::<i32>().ok());
        let alive = pid.and_then(rustix::process::Pid::from_raw).is_some_and(|p| {
            // EPERM: it exists, as another user's.
            rustix::process::test_kill_process(p).map_or_else(|e| e != rustix::io::Errno::SRCH, |()| true)
        });
        if !alive {
            match fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::info!(file = %name, "removed the temporary file of a receive run that was killed")
                }
                Err(e) => tracing::warn!("cannot remove the stale temporary file {name}: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            atomic::{AtomicUsize, Ordering},
            Arc,
        },
        time::Instant,
    };

    use super::*;

    #[test]
    fn broker_urls_parse_and_never_show_the_password() {
        let b = Broker::parse("amqp://cs:s3cr%40t@mq.local:5673/cash").unwrap();
        assert_eq!((b.tls, b.host.as_str(), b.port, b.user.as_str()), (false, "mq.local", 5673, "cs"));
        assert_eq!((b.password.as_str(), b.vhost.as_str()), ("s3cr@t", "cash"));
        assert_eq!(b.shown, "amqp://mq.local:5673/…");
        assert!(!format!("{b:?}").contains("s3cr"));
        let b = Broker::parse("amqps://h/%2F?cacertfile=/etc/ca.pem").unwrap();
        assert_eq!((b.tls, b.port, b.vhost.as_str(), b.user.as_str()), (true, 5671, "/", "guest"));
        assert_eq!(b.ca_file.as_deref(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(b.client_cert, None);
        let b = Broker::parse("amqps://h/v?certfile=/etc/c.pem&keyfile=/etc/c.key").unwrap();
        let pair = (PathBuf::from("/etc/c.pem"), PathBuf::from("/etc/c.key"));
        assert_eq!(b.client_cert, Some(pair));
        for half in ["amqps://h/v?certfile=/etc/c.pem", "amqps://h/v?keyfile=/etc/c.key"] {
            assert!(Broker::parse(half).unwrap_err().contains("certfile and keyfile go together"), "{half}");
        }
        assert!(Broker::parse("amqp://h/v?certfile=/c&keyfile=/k").unwrap_err().contains("unknown query"));
        assert_eq!(Broker::parse("amqp://h").unwrap().vhost, "/");
        // Dot segments, which the URL parser would drop (found by fuzz/fuzz_targets/amqp_url.rs).
        for dots in ["amqp://h/%2E", "amqp://h/..", "amqp://h/%2e%2E?x", "amqp://h/a/..", "amqp://h/./"] {
            assert!(Broker::parse(dots).is_err(), "{dots}");
        }
        assert_eq!(Broker::parse("amqp://h/%2E%2E%2E").unwrap().vhost, "...");
        for bad in ["http://h/", "amqp:///v", "amqp://u:s3cret@h/a/b", "amqp://h/?heartbeat=1", "s3cret"] {
            let e = Broker::parse(bad).expect_err(bad);
            assert!(!e.contains("s3cret"), "{e}");
        }
    }

    /// The files of `dir`, each with its content.
    fn listing(dir: &Path) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        v.sort();
        v
    }

    fn unnamed(dir: &std::fs::File, content: &str) -> Temp {
        let mut f = std::fs::File::from(open_unnamed(dir).unwrap());
        std::io::Write::write_all(&mut f, content.as_bytes()).unwrap();
        Temp::Unnamed(f.into())
    }

    fn named(path: &Path, tmp: &str, content: &str) -> Temp {
        std::fs::write(path.join(tmp), content).unwrap();
        Temp::Named(tmp.to_string())
    }

    fn written(tmp: Temp, name: &str, tag: u64) -> Written {
        let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + tag);
        Written { tmp, name: name.to_string(), tag, mtime }
    }

    /// A batch with no batch before or after it, through the rounds: what is said of it.
    fn durable_alone(dir: &std::fs::File, files: Vec<Written>) -> std::io::Result<usize> {
        let mut d = Durability::new(std::sync::Arc::new(dir.try_clone().unwrap()));
        assert!(d.round(Some(files)).is_empty(), "nothing is said of a batch before its names are durable");
        let mut said = d.round(None);
        assert_eq!(said.len(), 1);
        said.pop().unwrap()
    }

    fn mtime_of(path: &Path) -> SystemTime {
        std::fs::metadata(path).unwrap().modified().unwrap()
    }

    #[test]
    fn a_batch_of_unnamed_and_named_files_is_in_place_once_durable() {
        let d = tempfile::tempdir().unwrap();
        let dir = std::fs::File::open(d.path()).unwrap();
        assert_eq!(unnamed_files_work(&dir, 7), Ok(()), "this machine's file system has O_TMPFILE");
        assert_eq!(listing(d.path()), [], "the probe leaves nothing");
        // Delivered again: a file of that name is already in place (the same content), from
        // an earlier delivery.
        std::fs::write(d.path().join("amqp-c.json"), "c").unwrap();
        let old = std::fs::File::options().write(true).open(d.path().join("amqp-c.json")).unwrap();
        old.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000)).unwrap();
        let files = vec![
            written(unnamed(&dir, "a"), "amqp-a.json", 1),
            written(named(d.path(), ".amqp-b.json.csjobs-tmp-7-1", "b"), "amqp-b.json", 2),
            written(unnamed(&dir, "c"), "amqp-c.json", 3),
        ];
        assert_eq!(durable_alone(&dir, files).unwrap(), 3);
        let want = [("amqp-a.json", "a"), ("amqp-b.json", "b"), ("amqp-c.json", "c")];
        assert_eq!(listing(d.path()), want.map(|(n, c)| (n.to_string(), c.to_string())));
        // The one there before takes its place in delivery order again, as a rename over it
        // would give it.
        let at = |tag: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + tag);
        assert_eq!(mtime_of(&d.path().join("amqp-c.json")), at(3));
        assert_ne!(
            mtime_of(&d.path().join("amqp-a.json")),
            at(1),
            "a new file keeps the time it was written with"
        );
    }

    #[test]
    fn a_file_that_cannot_be_put_in_place_fails_the_batch_and_the_rest_is_removed() {
        let d = tempfile::tempdir().unwrap();
        let dir = std::fs::File::open(d.path()).unwrap();
        let files = vec![
            written(named(d.path(), ".amqp-a.json.csjobs-tmp-7-1", "a"), "amqp-a.json", 1),
            written(unnamed(&dir, "b"), "no-such-directory/amqp-b.json", 2),
            written(named(d.path(), ".amqp-c.json.csjobs-tmp-7-3", "c"), "amqp-c.json", 3),
        ];
        let e = durable_alone(&dir, files).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
        // The file before the failure is in place (its message is not acknowledged: it comes
        // again and is written again under that name); the others leave nothing behind.
        assert_eq!(listing(d.path()), [("amqp-a.json".to_string(), "a".to_string())]);
    }

    #[test]
    fn the_open_file_limit_is_raised_for_the_unnamed_files_in_flight() {
        use rustix::process::{getrlimit, Resource};
        assert_eq!(descriptors_for((IN_FLIGHT_MAX + 1) * batch_most(500)), Ok(()));
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(limit.current, limit.maximum, "the soft limit is the hard one now");
        if let Some(n) = limit.current {
            let e = descriptors_for(n as usize).unwrap_err();
            assert!(e.contains("the limit on open files"), "{e}");
        }
    }

    #[test]
    fn a_name_appears_only_after_a_round_made_its_data_durable_and_is_said_durable_after_it() {
        let d = tempfile::tempdir().unwrap();
        let dir = std::sync::Arc::new(std::fs::File::open(d.path()).unwrap());
        let mut rounds = Durability::new(dir.clone());
        let pair = |n: &str, c: &str| (n.to_string(), c.to_string());
        // The first round makes the data of the first batch durable; its name waits.
        assert!(rounds.round(Some(vec![written(unnamed(&dir, "a"), "amqp-a.json", 1)])).is_empty());
        assert_eq!(listing(d.path()), [], "no name in the round that makes its data durable");
        // The next round puts it in place, and one syncfs makes its name and the second
        // batch's data durable: only then is it said durable.
        let second = vec![
            written(unnamed(&dir, "b"), "amqp-b.json", 2),
            written(named(d.path(), ".amqp-c.json.csjobs-tmp-7-3", "c"), "amqp-c.json", 3),
        ];
        let said = rounds.round(Some(second));
        assert_eq!(said.into_iter().map(Result::unwrap).collect::<Vec<_>>(), [1]);
        let tmp = pair(".amqp-c.json.csjobs-tmp-7-3", "c");
        assert_eq!(listing(d.path()), [tmp, pair("amqp-a.json", "a")]);
        // No batch follows: the second is put in place alone.
        assert_eq!(rounds.round(None).into_iter().map(Result::unwrap).collect::<Vec<_>>(), [2]);
        assert_eq!(
            listing(d.path()),
            [pair("amqp-a.json", "a"), pair("amqp-b.json", "b"), pair("amqp-c.json", "c")]
        );
        assert!(rounds.round(None).is_empty(), "nothing held, nothing said");
    }

    #[test]
    fn the_batches_after_one_that_failed_fail_and_leave_nothing() {
        let d = tempfile::tempdir().unwrap();
        let dir = std::sync::Arc::new(std::fs::File::open(d.path()).unwrap());
        let mut rounds = Durability::new(dir.clone());
        let failing = vec![written(unnamed(&dir, "a"), "no-such-directory/amqp-a.json", 1)];
        assert!(rounds.round(Some(failing)).is_empty());
        let next = vec![
            written(unnamed(&dir, "b"), "amqp-b.json", 2),
            written(named(d.path(), ".amqp-c.json.csjobs-tmp-7-3", "c"), "amqp-c.json", 3),
        ];
        let said = rounds.round(Some(next));
        assert_eq!(said.len(), 2, "the failed batch and the one handed after it");
        assert!(said.iter().all(Result::is_err));
        assert!(said[1].as_ref().unwrap_err().to_string().contains("a batch before it"));
        let later = vec![written(named(d.path(), ".amqp-d.json.csjobs-tmp-7-4", "d"), "amqp-d.json", 4)];
        assert!(rounds.round(Some(later)).pop().unwrap().is_err(), "and every one after");
        assert_eq!(listing(d.path()), [], "their messages come again: nothing is left");
    }

    /// Rounds whose syncfs is counted, and fails at the calls (counted from 1) in `fail_at`.
    fn counted(
        dir: &std::sync::Arc<std::fs::File>,
        fail_at: &'static [usize],
    ) -> (Durability, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut d = Durability::new(dir.clone());
        let counter = calls.clone();
        d.sync = Box::new(move |dir| {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            match fail_at.contains(&n) {
                true => Err(std::io::Error::other("the disk is gone")),
                false => rustix::fs::syncfs(dir).map_err(std::io::Error::from),
            }
        });
        (d, calls)
    }

    #[test]
    fn each_round_makes_one_syncfs_and_none_without_data_or_after_a_failure() {
        let d = tempfile::tempdir().unwrap();
        let dir = std::sync::Arc::new(std::fs::File::open(d.path()).unwrap());
        let (mut rounds, calls) = counted(&dir, &[]);
        let one =
            |name: &str, tag: u64| vec![written(unnamed(&dir, name), &format!("amqp-{name}.json"), tag)];
        // The first batch's data: a syncfs before anything can be put in place after it.
        assert!(rounds.round(Some(one("a", 1))).is_empty());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the round that makes a batch's data durable syncs");
        assert_eq!(rounds.round(Some(one("b", 2))).len(), 1);
        assert_eq!(rounds.round(None).len(), 1);
        assert_eq!(calls.load(Ordering::SeqCst), 3, "one syncfs a round");
        assert!(rounds.round(None).is_empty());
        assert_eq!(calls.load(Ordering::SeqCst), 3, "nothing held, nothing to sync");
        // A batch that cannot be put in place: no syncfs for it, none after it.
        let (mut rounds, calls) = counted(&dir, &[]);
        let bad = vec![written(unnamed(&dir, "x"), "no-such-directory/amqp-x.json", 3)];
        assert!(rounds.round(Some(bad)).is_empty());
        assert!(rounds.round(Some(one("c", 4))).iter().all(Result::is_err));
        assert!(rounds.round(Some(one("d", 5))).pop().unwrap().is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "only the first batch's data was synced");
    }

    #[test]
    fn a_syncfs_that_fails_fails_the_batches_it_was_for_and_leaves_no_file_not_in_place() {
        let d = tempfile::tempdir().unwrap();
        let dir = std::sync::Arc::new(std::fs::File::open(d.path()).unwrap());
        // The syncfs for the first batch's data fails: it is said failed, nothing held.
        let (mut rounds, _) = counted(&dir, &[1]);
        let said = rounds.round(Some(vec![written(unnamed(&dir, "a"), "amqp-a.json", 1)]));
        assert_eq!(said.len(), 1);
        assert!(said[0].as_ref().unwrap_err().to_string().contains("the disk is gone"));
        assert!(!rounds.holds());
        assert_eq!(listing(d.path()), []);
        // The syncfs for the second batch's names (and the third's data) fails: both said
        // failed, the second's names stay (their messages come again), the third leaves
        // nothing.
        let (mut rounds, _) = counted(&dir, &[2]);
        assert!(rounds.round(Some(vec![written(unnamed(&dir, "b"), "amqp-b.json", 2)])).is_empty());
        let third = vec![written(named(d.path(), ".amqp-c.json.csjobs-tmp-7-3", "c"), "amqp-c.json", 3)];
        let said = rounds.round(Some(third));
        assert_eq!(said.len(), 2);
        assert!(said.iter().all(Result::is_err));
        assert!(said[0].as_ref().unwrap_err().to_string().contains("the disk is gone"));
        assert_eq!(listing(d.path()), [("amqp-b.json".to_string(), "b".to_string())]);
    }

    #[test]
    fn the_durability_thread_says_each_batch_durable_in_order_and_settles_what_it_holds() {
        let d = tempfile::tempdir().unwrap();
        let dir = std::sync::Arc::new(std::fs::File::open(d.path()).unwrap());
        let (jobs, batches) = std::sync::mpsc::channel();
        let (says, mut said) = tokio::sync::mpsc::unbounded_channel();
        let thread = {
            let dir = dir.clone();
            std::thread::spawn(move || durability_thread(Durability::new(dir), batches, says))
        };
        let batch = |first: u64, n: u64| -> Vec<Written> {
            (first..first + n)
                .map(|tag| written(unnamed(&dir, &tag.to_string()), &format!("amqp-{tag}.json"), tag))
                .collect()
        };
        // One batch, and no other after it for a while: it is put in place alone (the
        // thread does not wait for a batch that does not come).
        jobs.send(batch(1, 1)).unwrap();
        let waited = Instant::now();
        let first = loop {
            match said.try_recv() {
                Ok(first) => break first,
                Err(_) if waited.elapsed() < Duration::from_secs(60) => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(_) => panic!("a batch with none after it is never settled"),
            }
        };
        assert_eq!(first.unwrap(), 1);
        assert_eq!(listing(d.path()).len(), 1);
        // Batches of 2, 3 and 4 files: said in the order handed.
        for (first, n) in [(2, 2), (4, 3), (7, 4)] {
            jobs.send(batch(first, n)).unwrap();
        }
        // Closed: what it holds is put in place, then it ends.
        drop(jobs);
        thread.join().unwrap();
        let all: Vec<usize> = std::iter::from_fn(|| said.try_recv().ok()).map(Result::unwrap).collect();
        assert_eq!(all, [2, 3, 4]);
        assert_eq!(listing(d.path()).len(), 10);
    }
}
