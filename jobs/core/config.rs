//! The one typed configuration of csjobs (shared/spec/cli.md, "Configuration keys").
//!
//! Sources, strongest first: command-line options, environment variables, the TOML file,
//! defaults. Everything is merged here, before any job starts; a job receives a [`Config`]
//! and never reads the environment or raw strings itself. Every setting is one entry of
//! [`SETTINGS`], which the loader, `csjobs config`, `--example` and `--reference` all read.

use fs_err as fs;
use std::{
    fmt,
    path::{Path, PathBuf},
};

use chrono::{DateTime, FixedOffset, Local};
use rust_decimal::Decimal;

use super::duration::Span;

/// Default location of the config file; its absence is fine when env variables are set.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/csjobs/csjobs.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}={value:?} is not valid: expected {expected}")]
    Env { var: &'static str, value: String, expected: &'static str },
    #[error("--now / CSJOBS_NOW {value:?} is not an RFC 3339 timestamp (e.g. 2026-11-23T03:33:00+03:00)")]
    Now { value: String },
    #[error("{key} must be {expected}, got {value}")]
    Range { key: &'static str, value: String, expected: &'static str },
    #[error("{key} is not a valid PostgreSQL connection string: {reason}")]
    DbUrl { key: &'static str, reason: String },
    #[error("{key} ({var}) is not valid: {source}")]
    Duration { key: &'static str, var: &'static str, source: super::duration::BadSpan },
}

/// A PostgreSQL connection string (URL or `key=value` form), parsed when the configuration
/// is loaded: a malformed one is a configuration error naming its key, never a surprise at
/// connect time. It is printed from the parsed value (`user@host:port/db`),
/// never from the text, so no part of a password can show.
#[derive(Clone)]
pub struct DbUrl {
    config: tokio_postgres::Config,
    tls: super::conninfo::Tls,
}

impl DbUrl {
    /// Parses `text`, the value of `key`, as libpq would (`super::conninfo`). `sslmode=require`
    /// (and libpq's `verify-ca`, `verify-full`) connects with TLS, verified (see
    /// `db::connect`), against `sslrootcert` when given and with `sslcert`/`sslkey` as the
    /// client certificate; `disable` and `prefer` (the default) connect without it.
    pub fn parse(key: &'static str, text: &str) -> Result<DbUrl, ConfigError> {
        let parsed =
            super::conninfo::parse(text).map_err(|e| ConfigError::DbUrl { key, reason: e.to_string() })?;
        // The keyword string holds no password: tokio-postgres' messages cannot show it.
        let mut config: tokio_postgres::Config = parsed
            .keyword_string()
            .parse()
            .map_err(|e: tokio_postgres::Error| ConfigError::DbUrl { key, reason: e.to_string() })?;
        if let Some(password) = &parsed.password {
            config.password(password);
        }
        let tls_files = parsed.tls.root_cert.is_some() || parsed.tls.client_cert.is_some();
        if tls_files && config.get_ssl_mode() != tokio_postgres::config::SslMode::Require {
            // libpq's prefer would try TLS with them; csjobs connects without TLS unless
            // required, so the certificate would be silently unused and the password sent in
            // clear: refused instead.
            return Err(ConfigError::DbUrl {
                key,
                reason: "sslrootcert, sslcert and sslkey need sslmode=require, verify-ca or verify-full"
                    .into(),
            });
        }
        if parsed.tls.client_cert.is_some() != parsed.tls.client_key.is_some() {
            return Err(ConfigError::DbUrl {
                key,
                reason: "sslcert and sslkey go together: give both or neither".into(),
            });
        }
        Ok(DbUrl { config, tls: parsed.tls })
    }

    /// The parsed configuration, for connecting.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The TLS parameters that tokio-postgres does not know (CA file, client certificate).
    pub fn tls(&self) -> &super::conninfo::Tls {
        &self.tls
    }
}

impl PartialEq for DbUrl {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use tokio_postgres::config::Host;
        let c = &self.config;
        // `user@host:port/db` (cli.md): never the password, nor whether there is one.
        if let Some(u) = c.get_user() {
            write!(f, "{}@", enc(u))?;
        }
        let ports = c.get_ports();
        for (i, h) in c.get_hosts().iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match h {
                Host::Tcp(name) => f.write_str(name)?,
                Host::Unix(path) => f.write_str(&enc(&path.display().to_string()))?,
            }
            // One port for all hosts, or one each; PostgreSQL's 5432 when none is given.
            let port = if ports.len() == 1 { ports.first() } else { ports.get(i) };
            write!(f, ":{}", port.copied().unwrap_or(5432))?;
        }
        if let Some(db) = c.get_dbname() {
            write!(f, "/{}", enc(db))?;
        }
        Ok(())
    }
}

fn enc(s: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(s, KEEP).to_string()
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbUrl({self})")
    }
}

/// A URL that may carry a secret (a ping, webhook or SMTP URL) as it may be shown in logs,
/// errors, the `error_message` table and `csjobs config`: `scheme://host[:port]/…` (cli.md).
/// Its user, password, path, query and fragment are hidden: Slack and Telegram bridges and
/// healthchecks carry their token in the path or the query. Text that is not a URL is not
/// shown at all.
pub fn shown_url(s: &str) -> String {
    match url::Url::parse(s) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}/…", u.scheme()),
            (Some(host), None) => format!("{}://{host}/…", u.scheme()),
            (None, _) => format!("{}:…", u.scheme()),
        },
        Err(_) => "(not a valid URL)".to_string(),
    }
}

/// `text` (an HTTP client's error, say) with every secret part of `url` in it replaced by
/// `…`: clients may quote the URL they failed on.
pub fn scrub_url(text: &str, url: &str) -> String {
    let mut secrets: Vec<String> = vec![url.to_string()];
    if let Ok(u) = url::Url::parse(url) {
        secrets.push(u.to_string());
        secrets.push(u.path().to_string());
        secrets.extend(u.query().map(str::to_string));
        secrets.extend(u.password().map(str::to_string));
        secrets.extend(u.path_segments().into_iter().flatten().map(str::to_string));
        if !u.username().is_empty() {
            secrets.push(u.username().to_string());
        }
    }
    // Longest first, so a part inside a longer one does not leave the rest behind.
    secrets.retain(|s| s.len() > 1);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for s in &secrets {
        out = out.replace(s.as_str(), "…");
    }
    out
}

// Each field below is the setting of its name (`paths.queue`, `transfer.batch_rows`, …):
// SETTINGS says what it means, its env variable and default; docs/configuration.md lists them.

/// The directories csjobs works with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paths {
    pub queue: PathBuf,
    pub processed: PathBuf,
    pub error: PathBuf,
    pub broken: PathBuf,
    pub backup: PathBuf,
    pub astu_outbox: PathBuf,
}

/// Tuning of the sales loader.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SalesSettings {
    pub max_file_bytes: u64,
    pub batch_files: usize,
    pub batch_items: usize,
}

/// The thresholds of `csjobs status` (shared/spec/monitoring.md, "Settings").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusSettings {
    pub stale_after: Span,
    pub queue_max_age: Span,
    pub staged_max_age: Span,
    pub astu_max_age: Span,
}

/// The settings of `revenue-watch` (shared/spec/monitoring.md, "Settings").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchSettings {
    pub threshold: Decimal,
    pub weeks: u32,
    pub min_weeks: u32,
    pub min_profile: Decimal,
    pub start_after: Span,
    pub silent_after: Span,
}

/// Where and how often alerts go (shared/spec/monitoring.md, "Settings").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertSettings {
    pub smtp_url: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    pub webhook_url: Option<String>,
    pub repeat_after: Span,
}

/// The settings of `receive` (shared/spec/receive.md, "Settings").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiveSettings {
    pub amqp_url: Option<String>,
    pub exchange: String,
    pub queue: String,
    pub prefetch: usize,
    pub idle_exit: std::time::Duration,
}

/// The merged configuration every job receives.
#[derive(Debug, Clone)]
pub struct Config {
    pub cashserver_url: Option<DbUrl>,
    pub bonus_url: Option<DbUrl>,
    pub paths: Paths,
    pub archive_retention_days: u32,
    pub trim_keep_days: u32,
    pub sales: SalesSettings,
    pub transfer_batch_rows: usize,
    pub astu_auto_export: bool,
    pub status: StatusSettings,
    pub watch: WatchSettings,
    pub alerts: AlertSettings,
    pub notify_ping_url: Option<String>,
    /// `report.url`: where the report page is served (the alerts link each shop to it).
    pub report_url: Option<String>,
    pub receive: ReceiveSettings,
    /// The moment the job takes as "now" (`--now` / `CSJOBS_NOW`, else the real clock).
    pub now: DateTime<FixedOffset>,
    /// Every key with its printed value and origin, in the order of the file's sections.
    pub settings: Vec<Setting>,
}

impl Config {
    pub fn cashserver_url(&self) -> Result<&DbUrl, super::JobError> {
        self.cashserver_url.as_ref().ok_or_else(|| {
            super::JobError::usage(
                "the cash server DB is not configured: set cashserver.database_url in the \
                 config file or CSJOBS_CASHSERVER_DATABASE_URL",
            )
        })
    }
    pub fn bonus_url(&self) -> Result<&DbUrl, super::JobError> {
        self.bonus_url.as_ref().ok_or_else(|| {
            super::JobError::usage(
                "the bonus DB is not configured: set bonus.database_url in the config file \
                 or CSJOBS_BONUS_DATABASE_URL",
            )
        })
    }
}

/// Where a value of the effective configuration came from (`csjobs config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(&'static str),
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(p) => write!(f, "file {}", p.display()),
            Origin::Env(v) => write!(f, "env {v}"),
            Origin::Flag(o) => write!(f, "flag {o}"),
        }
    }
}

/// One key of the effective configuration: its value as printed (passwords masked; `-` for
/// none) and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: &'static str,
    /// The environment variable that sets it, if any.
    pub env: Option<&'static str>,
    pub value: String,
    pub origin: Origin,
}

/// What the command line says about where the config comes from.
#[derive(Debug, Default, Clone)]
pub struct ConfigSource {
    /// `--config FILE` or `CSJOBS_CONFIG`; when given, the file must exist.
    pub file: Option<PathBuf>,
    /// Where `file` came from (flag or env; `None`: the default location).
    pub file_origin: Option<Origin>,
    /// `--now` or `CSJOBS_NOW`.
    pub now: Option<String>,
    /// Where `now` came from (the flag or env as clap saw it; `None`: look at the env here).
    pub now_origin: Option<Origin>,
    /// Settings of the command line itself (the log format), listed by `csjobs config`.
    pub extra: Vec<Setting>,
}

// ---- the table of settings -----------------------------------------------------------
//
// Every setting is one entry of SETTINGS: the loader, `csjobs config`, the example file
// (`csjobs config --example`) and docs/configuration.md (`csjobs config --reference`) are
// all made from it. Adding a setting: a field in its struct above, one entry below.

/// What each section of the config file is for, in the order of the file.
const SECTIONS: &[(&str, &str)] = &[
    (
        "cashserver",
        "The cash server DB (кассовый сервер). Passwords may also come from PGPASSWORD or ~/.pgpass.",
    ),
    ("bonus", "The bonus DB (бонусный сервер): needed by transfer; status checks it when set."),
    (
        "paths",
        "The cash server's directories. The package does not create them; csjobs status names a missing one.",
    ),
    ("archive", "archive: days an archive of processed/, error/, broken/ is kept."),
    ("trim", "trim-db: days of sales kept in the database."),
    ("sales", "load-sales: the largest sales file, and how many files and items make one transaction."),
    ("transfer", "transfer: staged rows per transaction."),
    ("astu", "load-sales writes the ASTU file of every shift a file closes or changes."),
    ("status", "csjobs status: thresholds (durations: 30m, 2h, 1d)."),
    ("watch", "revenue-watch: revenue today against the median of the same weekdays (silent_after 0: off)."),
    ("alerts", "Where alerts go: SMTP (smtp:// with STARTTLS when offered, or smtps://) and/or a webhook."),
    (
        "report",
        "Where the report page is served: the alert e-mail links each shop to <url>#shop-<N>, the webhook gives it as generatorURL.",
    ),
    (
        "notify",
        "Dead man's switch: GET <url>/start and <url>/<exit code> around every job; {job} is the job's name.",
    ),
    (
        "receive",
        "receive: sales as AMQP 0-9-1 messages (RabbitMQ) into the queue directory (durations: 2s, 30m, 2h).",
    ),
];

const DAYS: &str = "a whole number of days";
const WEEKS: &str = "a whole number of weeks";
const BYTES: &str = "a whole number of bytes";

/// Every setting, in the order of the file: key, env variable, kind, default (as the env
/// variable would write it; `None`: none), one line of doc, and the field it fills.
#[rustfmt::skip]
pub const SETTINGS: &[Entry] = &[
    Entry { key: "cashserver.database_url", env: "CSJOBS_CASHSERVER_DATABASE_URL", kind: Kind::DbUrl, default: None,
        doc: "The cash server DB; required by the jobs that use it.",
        set: |c, v| c.cashserver_url = v.into() },
    Entry { key: "bonus.database_url", env: "CSJOBS_BONUS_DATABASE_URL", kind: Kind::DbUrl, default: None,
        doc: "The bonus DB; required by transfer.",
        set: |c, v| c.bonus_url = v.into() },
    Entry { key: "paths.queue", env: "CSJOBS_QUEUE_DIR", kind: Kind::Path, default: Some("/opt/cashserver/queue"),
        doc: "Sales queue (очередь): where registers drop sales files.", set: |c, v| c.paths.queue = v.into() },
    Entry { key: "paths.processed", env: "CSJOBS_PROCESSED_DIR", kind: Kind::Path, default: Some("/opt/cashserver/processed"),
        doc: "Where load-sales moves the files it loaded.", set: |c, v| c.paths.processed = v.into() },
    Entry { key: "paths.error", env: "CSJOBS_ERROR_DIR", kind: Kind::Path, default: Some("/opt/cashserver/error"),
        doc: "Where load-sales moves the files it rejected (load-sales --retry-errors takes them back).",
        set: |c, v| c.paths.error = v.into() },
    Entry { key: "paths.broken", env: "CSJOBS_BROKEN_DIR", kind: Kind::Path, default: Some("/opt/cashserver/broken"),
        doc: "Where load-sales moves the files it cannot read at all.", set: |c, v| c.paths.broken = v.into() },
    Entry { key: "paths.backup", env: "CSJOBS_BACKUP_DIR", kind: Kind::Path, default: Some("/opt/backup"),
        doc: "Holds processed_archive/, error_archive/ and broken_archive/, written by archive.",
        set: |c, v| c.paths.backup = v.into() },
    Entry { key: "paths.astu_outbox", env: "CSJOBS_ASTU_OUTBOX", kind: Kind::Path, default: Some("/opt/cashserver/astu"),
        doc: "Where the ASTU sales files are written.", set: |c, v| c.paths.astu_outbox = v.into() },
    Entry { key: "archive.retention_days", env: "CSJOBS_ARCHIVE_RETENTION_DAYS", kind: Kind::U32(DAYS), default: Some("30"),
        doc: "Days an archive is kept before archive deletes it.", set: |c, v| c.archive_retention_days = v.into() },
    Entry { key: "trim.keep_days", env: "CSJOBS_TRIM_KEEP_DAYS", kind: Kind::U32(DAYS), default: Some("180"),
        doc: "Days of sales trim-db keeps in the database (trim-db --keep-days wins).",
        set: |c, v| c.trim_keep_days = v.into() },
    Entry { key: "sales.max_file_bytes", env: "CSJOBS_SALES_MAX_FILE_BYTES", kind: Kind::U64(BYTES), default: Some("268435456"),
        doc: "A sales file larger than this (or a .gz that decompresses to more) is broken.",
        set: |c, v| c.sales.max_file_bytes = v.into() },
    Entry { key: "sales.batch_files", env: "CSJOBS_SALES_BATCH_FILES", kind: Kind::Count, default: Some("1000"),
        doc: "At most this many files are committed in one transaction.", set: |c, v| c.sales.batch_files = v.into() },
    Entry { key: "sales.batch_items", env: "CSJOBS_SALES_BATCH_ITEMS", kind: Kind::Count, default: Some("50000"),
        doc: "A transaction is closed once it holds this many goods items.", set: |c, v| c.sales.batch_items = v.into() },
    Entry { key: "transfer.batch_rows", env: "CSJOBS_TRANSFER_BATCH_ROWS", kind: Kind::Count, default: Some("10000"),
        doc: "Staged rows per transaction of transfer.", set: |c, v| c.transfer_batch_rows = v.into() },
    Entry { key: "astu.auto_export", env: "CSJOBS_ASTU_AUTO_EXPORT", kind: Kind::Bool, default: Some("true"),
        doc: "Whether load-sales writes the ASTU file of every shift a file closes or changes.",
        set: |c, v| c.astu_auto_export = v.into() },
    Entry { key: "status.stale_after", env: "CSJOBS_STATUS_STALE_AFTER", kind: Kind::Span(false), default: Some("2h"),
        doc: "A register of an open shop silent longer than this is stale.", set: |c, v| c.status.stale_after = v.into() },
    Entry { key: "status.queue_max_age", env: "CSJOBS_STATUS_QUEUE_MAX_AGE", kind: Kind::Span(false), default: Some("15m"),
        doc: "The oldest queued sales file may wait this long.", set: |c, v| c.status.queue_max_age = v.into() },
    Entry { key: "status.staged_max_age", env: "CSJOBS_STATUS_STAGED_MAX_AGE", kind: Kind::Span(false), default: Some("15m"),
        doc: "The oldest staged row not yet transferred may wait this long.",
        set: |c, v| c.status.staged_max_age = v.into() },
    Entry { key: "status.astu_max_age", env: "CSJOBS_STATUS_ASTU_MAX_AGE", kind: Kind::Span(false), default: Some("1h"),
        doc: "A closed shift may be owed its ASTU file this long.", set: |c, v| c.status.astu_max_age = v.into() },
    Entry { key: "watch.threshold", env: "CSJOBS_WATCH_THRESHOLD", kind: Kind::Decimal(Decimal::ONE), default: Some("0.40"),
        doc: "A shop's revenue is low when (profile - today) / profile is above this.",
        set: |c, v| c.watch.threshold = v.into() },
    Entry { key: "watch.weeks", env: "CSJOBS_WATCH_WEEKS", kind: Kind::U32(WEEKS), default: Some("4"),
        doc: "Same weekdays looked back for the profile (1 to 52).", set: |c, v| c.watch.weeks = v.into() },
    Entry { key: "watch.min_weeks", env: "CSJOBS_WATCH_MIN_WEEKS", kind: Kind::U32(WEEKS), default: Some("2"),
        doc: "Fewer days with revenue than this: no profile, no verdict (at least 1, at most watch.weeks).",
        set: |c, v| c.watch.min_weeks = v.into() },
    Entry { key: "watch.min_profile", env: "CSJOBS_WATCH_MIN_PROFILE", kind: Kind::Decimal(Decimal::MAX), default: Some("1000.00"),
        doc: "A profile below this (money) gives no alert.", set: |c, v| c.watch.min_profile = v.into() },
    Entry { key: "watch.start_after", env: "CSJOBS_WATCH_START_AFTER", kind: Kind::Span(false), default: Some("1h"),
        doc: "A shop must have been open this long today before it is judged.",
        set: |c, v| c.watch.start_after = v.into() },
    Entry { key: "watch.silent_after", env: "CSJOBS_WATCH_SILENT_AFTER", kind: Kind::Span(true), default: Some("1h"),
        doc: "A register of an open shop silent longer than this raises register_silent; 0: off.",
        set: |c, v| c.watch.silent_after = v.into() },
    Entry { key: "alerts.smtp_url", env: "CSJOBS_ALERTS_SMTP_URL", kind: Kind::SecretUrl, default: None,
        doc: "smtp://[user:password@]host[:port] (STARTTLS when offered) or smtps://; checked by revenue-watch.",
        set: |c, v| c.alerts.smtp_url = v.into() },
    Entry { key: "alerts.from", env: "CSJOBS_ALERTS_FROM", kind: Kind::Text, default: Some("csjobs@<hostname>"),
        doc: "The sender of alert e-mails.", set: |c, v| c.alerts.from = v.into() },
    Entry { key: "alerts.to", env: "CSJOBS_ALERTS_TO", kind: Kind::List, default: Some(""),
        doc: "The recipients of alert e-mails.", set: |c, v| c.alerts.to = v.into() },
    Entry { key: "alerts.webhook_url", env: "CSJOBS_ALERTS_WEBHOOK_URL", kind: Kind::SecretUrl, default: None,
        doc: "An http(s) URL each run POSTs its alerts to (Alertmanager webhook JSON).", set: |c, v| c.alerts.webhook_url = v.into() },
    Entry { key: "alerts.repeat_after", env: "CSJOBS_ALERTS_REPEAT_AFTER", kind: Kind::Span(false), default: Some("4h"),
        doc: "An alert that holds is sent again this often.", set: |c, v| c.alerts.repeat_after = v.into() },
    Entry { key: "report.url", env: "CSJOBS_REPORT_URL", kind: Kind::SecretUrl, default: None,
        doc: "The http(s) address of the report page (csjobs report --output), e.g. https://cash.example/report.html.",
        set: |c, v| c.report_url = v.into() },
    Entry { key: "notify.ping_url", env: "CSJOBS_NOTIFY_PING_URL", kind: Kind::SecretUrl, default: None,
        doc: "Dead man's switch: GET <url>/start and <url>/<exit code> around every job; {job}: the job's name.",
        set: |c, v| c.notify_ping_url = v.into() },
    Entry { key: "receive.amqp_url", env: "CSJOBS_RECEIVE_AMQP_URL", kind: Kind::SecretUrl, default: None,
        doc: "amqp://user:password@host[:port]/vhost or amqps:// (TLS, verified; ?cacertfile=PATH, a client \
              certificate with &certfile=PATH&keyfile=PATH); needed by receive.",
        set: |c, v| c.receive.amqp_url = v.into() },
    Entry { key: "receive.exchange", env: "CSJOBS_RECEIVE_EXCHANGE", kind: Kind::Text, default: Some("csjobs.sales"),
        doc: "The fanout exchange publishers publish sales to (declared by receive).",
        set: |c, v| c.receive.exchange = v.into() },
    Entry { key: "receive.queue", env: "CSJOBS_RECEIVE_QUEUE", kind: Kind::Text, default: Some("csjobs.sales"),
        doc: "The durable quorum queue receive consumes; rejected messages go to <queue>.rejected.",
        set: |c, v| c.receive.queue = v.into() },
    Entry { key: "receive.prefetch", env: "CSJOBS_RECEIVE_PREFETCH", kind: Kind::Count, default: Some("500"),
        doc: "Messages the broker hands receive before their acknowledgement (at most 65535).",
        set: |c, v| c.receive.prefetch = v.into() },
    Entry { key: "receive.idle_exit", env: "CSJOBS_RECEIVE_IDLE_EXIT", kind: Kind::Wait, default: Some("2s"),
        doc: "Without --follow, receive exits once the queue has been empty this long.",
        set: |c, v| c.receive.idle_exit = v.into() },
];

/// One setting of the table.
pub struct Entry {
    /// `section.name` in the file.
    pub key: &'static str,
    pub env: &'static str,
    pub kind: Kind,
    /// The default as the env variable would write it (`<hostname>`: this host's name).
    pub default: Option<&'static str>,
    pub doc: &'static str,
    /// Stores the value in its field of [`Config`].
    set: fn(&mut Config, Val),
}

/// What a setting holds, hence how it is read and how it is shown.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A PostgreSQL connection string; a secret, shown as `user@host:port/db` ([`DbUrl`]).
    DbUrl,
    /// A URL that may carry a token; a secret, shown as `scheme://host[:port]/…` ([`shown_url`]).
    SecretUrl,
    Path,
    /// A whole number (u32, u64) of what the text says.
    U32(&'static str),
    U64(&'static str),
    /// A whole number, at least 1.
    Count,
    /// `true` or `false` (the env variable also takes 1/0, yes/no, on/off).
    Bool,
    /// A duration (`30m`, `2h`, `1d`); with `true`, also `0`: off.
    Span(bool),
    /// A duration that may also be given in seconds (`2s`, receive.md), or as a [`Kind::Span`].
    Wait,
    /// A decimal number from 0 to the given maximum, as a TOML number or a string.
    Decimal(Decimal),
    Text,
    /// A TOML array of strings or one comma-separated string.
    List,
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::DbUrl => "a PostgreSQL connection string (URL or key=value)",
            Kind::SecretUrl => "a URL",
            Kind::Path => "a path",
            Kind::U32(what) | Kind::U64(what) => what,
            Kind::Count => "a whole number",
            Kind::Bool => "true or false",
            Kind::Span(false) => "a duration: 30m, 2h or 1d",
            Kind::Span(true) => "a duration: 30m, 2h or 1d, or 0 (off)",
            Kind::Wait => "a duration: 2s, 30m, 2h or 1d",
            Kind::Decimal(_) => "a decimal number (e.g. 0.40, 1000.00)",
            Kind::Text => "a string",
            Kind::List => "a list: an array of strings or one comma-separated string",
        }
    }

    /// Whether the file may write the value as this TOML type.
    fn takes(self, v: &toml::Value) -> bool {
        use toml::Value as V;
        match self {
            Kind::Bool => v.is_bool(),
            Kind::U32(_) | Kind::U64(_) | Kind::Count => v.is_integer(),
            Kind::Decimal(_) => matches!(v, V::Float(_) | V::Integer(_) | V::String(_)),
            Kind::List => v.is_str() || v.as_array().is_some_and(|a| a.iter().all(V::is_str)),
            _ => v.is_str(),
        }
    }
}

/// A value read for an entry, before it goes into its field (and is dropped at once: the
/// size of a parsed connection string does not matter).
#[allow(clippy::large_enum_variant)]
enum Val {
    Db(Option<DbUrl>),
    Url(Option<String>),
    Path(PathBuf),
    U32(u32),
    U64(u64),
    Usize(usize),
    Bool(bool),
    Span(Span),
    Wait(std::time::Duration),
    Dec(Decimal),
    Text(String),
    List(Vec<String>),
}

macro_rules! field_of {
    ($($t:ty => $v:ident),*) => {$(
        impl From<Val> for $t {
            fn from(v: Val) -> $t {
                match v {
                    Val::$v(x) => x,
                    _ => unreachable!("an entry of SETTINGS whose kind does not fit its field"),
                }
            }
        }
    )*};
}
field_of!(Option<DbUrl> => Db, Option<String> => Url, PathBuf => Path, u32 => U32, u64 => U64,
    usize => Usize, bool => Bool, Span => Span, std::time::Duration => Wait, Decimal => Dec, String => Text, Vec<String> => List);

impl Val {
    /// As `csjobs config` prints it: secrets masked, `-` for none.
    fn shown(&self) -> String {
        match self {
            Val::Db(Some(u)) => u.to_string(),
            Val::Url(Some(u)) => shown_url(u),
            Val::Db(None) | Val::Url(None) => "-".into(),
            Val::Path(p) => p.display().to_string(),
            Val::U32(n) => n.to_string(),
            Val::U64(n) => n.to_string(),
            Val::Usize(n) => n.to_string(),
            Val::Bool(b) => b.to_string(),
            Val::Span(s) if s.is_zero() => "0".into(),
            Val::Span(s) => s.to_string(),
            Val::Wait(d) => shown_wait(*d),
            Val::Dec(d) => d.to_string(),
            Val::Text(t) => t.clone(),
            Val::List(v) if v.is_empty() => "-".into(),
            Val::List(v) => v.join(", "),
        }
    }
}

/// Where a text being read comes from; it decides the form of an error.
#[derive(Clone, Copy, PartialEq)]
enum Src<'a> {
    Default,
    Env,
    File(&'a Path),
}

impl Entry {
    fn section_and_name(&self) -> (&'static str, &'static str) {
        self.key.split_once('.').expect("every key is section.name")
    }

    /// `text`, the value of this entry from `src`, read as its kind.
    fn read(&self, text: &str, src: Src) -> Result<Val, ConfigError> {
        let (key, var) = (self.key, self.env);
        let bad = || match src {
            Src::File(path) => ConfigError::Parse {
                path: path.to_path_buf(),
                message: format!("{key} ({var}) must be {}, got {text}", self.kind.expected()),
            },
            _ => ConfigError::Env { var, value: text.to_string(), expected: self.kind.expected() },
        };
        Ok(match self.kind {
            Kind::DbUrl => Val::Db(Some(DbUrl::parse(key, text)?)),
            Kind::SecretUrl => Val::Url(Some(text.to_string())),
            Kind::Path => Val::Path(text.into()),
            Kind::U32(_) => Val::U32(text.trim().parse().map_err(|_| bad())?),
            Kind::U64(_) => Val::U64(text.trim().parse().map_err(|_| bad())?),
            Kind::Count => match text.trim().parse().map_err(|_| bad())? {
                0 => return Err(ConfigError::Range { key, value: "0".into(), expected: "at least 1" }),
                n => Val::Usize(n),
            },
            Kind::Bool => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Val::Bool(true),
                "false" | "0" | "no" | "off" => Val::Bool(false),
                _ => return Err(bad()),
            },
            Kind::Span(true) if text.trim() == "0" => Val::Span(Span::minutes(0)),
            Kind::Span(_) => {
                Val::Span(text.parse().map_err(|source| ConfigError::Duration { key, var, source })?)
            }
            Kind::Wait => Val::Wait(read_wait(text).ok_or_else(bad)?),
            Kind::Decimal(max) => {
                let d: Decimal = text.trim().parse().map_err(|_| match src {
                    Src::Env => bad(),
                    _ => ConfigError::Range { key, value: text.to_string(), expected: self.kind.expected() },
                })?;
                if d < Decimal::ZERO || d > max {
                    let expected = "within its range (see csjobs config --example)";
                    return Err(ConfigError::Range { key, value: text.to_string(), expected });
                }
                Val::Dec(if src == Src::Default { d } else { d.normalize() })
            }
            Kind::Text if src == Src::Default => {
                Val::Text(text.replace("<hostname>", &super::runlog::host_name()))
            }
            Kind::Text if src == Src::Env => Val::Text(text.trim().to_string()),
            Kind::Text => Val::Text(text.to_string()),
            Kind::List => Val::List(split_list(text)),
        })
    }

    /// The file's value `v` of this entry, if it gives one (an empty URL or text does not).
    fn read_file_value(&self, v: &toml::Value, path: &Path) -> Result<Option<Val>, ConfigError> {
        let text = match v {
            _ if !self.kind.takes(v) => {
                let (key, var, expected) = (self.key, self.env, self.kind.expected());
                let got = match v {
                    toml::Value::String(s) => format!("{s:?}"),
                    other => toml_scalar(other),
                };
                let message = format!("{key} ({var}) must be {expected}, got {got}");
                return Err(ConfigError::Parse { path: path.to_path_buf(), message });
            }
            toml::Value::Array(items) => {
                return Ok(Some(Val::List(
                    items.iter().filter_map(|i| i.as_str()).map(String::from).collect(),
                )));
            }
            toml::Value::String(s) => s.clone(),
            other => toml_scalar(other),
        };
        if text.trim().is_empty() && matches!(self.kind, Kind::DbUrl | Kind::SecretUrl | Kind::Text) {
            return Ok(None);
        }
        self.read(&text, Src::File(path)).map(Some)
    }

    /// The value when nothing sets it.
    fn default_value(&self) -> Val {
        match (self.default, self.kind) {
            (Some(d), _) => self.read(d, Src::Default).expect("the defaults are valid"),
            (None, Kind::DbUrl) => Val::Db(None),
            (None, _) => Val::Url(None),
        }
    }

    /// The default as the example file writes it.
    fn toml_default(&self) -> String {
        match (self.default, self.kind) {
            (None, _) => "\"\"".into(),
            (Some(d), Kind::U32(_) | Kind::U64(_) | Kind::Count | Kind::Bool) => d.into(),
            (Some(d), _) => format!("{d:?}"),
        }
    }
}

/// A [`Kind::Wait`]: `Ns` (seconds, at least 1), or a duration of monitoring.md (`30m`).
fn read_wait(text: &str) -> Option<std::time::Duration> {
    let t = text.trim();
    match t.strip_suffix('s') {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            let n: u64 = digits.parse().ok().filter(|&n| (1..=100 * 366 * 86_400).contains(&n))?;
            Some(std::time::Duration::from_secs(n))
        }
        Some(_) => None,
        None => {
            let span: Span = t.parse().ok().filter(|s: &Span| !s.is_zero())?;
            span.as_duration().to_std().ok()
        }
    }
}

/// A [`Kind::Wait`] as `csjobs config` shows it: in the largest whole unit.
fn shown_wait(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s % 86_400 == 0 => format!("{}d", s / 86_400),
        _ if s % 3_600 == 0 => format!("{}h", s / 3_600),
        _ if s % 60 == 0 => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// A TOML number or boolean as text (another value: its type).
fn toml_scalar(v: &toml::Value) -> String {
    match v {
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => format!("a TOML {}", other.type_str()),
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect()
}

/// The config file's text as a TOML table of known sections and keys.
fn parse_file(text: &str, path: &Path) -> Result<toml::Table, ConfigError> {
    let bad = |message: String| ConfigError::Parse { path: path.to_path_buf(), message };
    // The parser's own Display quotes the offending line, which may hold a password (an
    // unquoted `database_url = postgres://cs:secret@db/cash`): only its message and where.
    let table: toml::Table = toml::from_str(text).map_err(|e: toml::de::Error| {
        let at = e.span().map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!(" (line {line}, column {column})")
        });
        bad(format!("{}{}", e.message().trim_end(), at.unwrap_or_default()))
    })?;
    for (section, keys) in &table {
        let names: Vec<&str> = SETTINGS
            .iter()
            .map(Entry::section_and_name)
            .filter(|(s, _)| s == section)
            .map(|(_, n)| n)
            .collect();
        if names.is_empty() {
            let known: Vec<&str> = SECTIONS.iter().map(|(s, _)| *s).collect();
            return Err(bad(format!(
                "unknown section `{section}`, expected one of `{}`",
                known.join("`, `")
            )));
        }
        let Some(keys) = keys.as_table() else {
            return Err(bad(format!("`{section}` must be a table: [{section}]")));
        };
        if let Some(name) = keys.keys().find(|k| !names.contains(&k.as_str())) {
            let expected = names.join("`, `");
            return Err(bad(format!("unknown key `{name}` in [{section}], expected one of `{expected}`")));
        }
    }
    Ok(table)
}

impl Config {
    /// Merges file, environment (through `env`) and defaults. Command-line overrides of
    /// single keys (e.g. `trim-db --keep-days`) are applied by the job's options on top.
    pub fn load(source: &ConfigSource, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let (path, origin) = match &source.file {
            Some(path) => (path.clone(), source.file_origin.clone().unwrap_or(Origin::Flag("--config"))),
            None => (PathBuf::from(DEFAULT_CONFIG_FILE), Origin::Default),
        };
        let file = if source.file.is_some() || path.exists() {
            let text = fs::read_to_string(&path)
                .map_err(|source| ConfigError::Read { path: path.clone(), source })?;
            parse_file(&text, &path)?
        } else {
            toml::Table::new()
        };
        Config::build(file, path, origin, source, env)
    }

    /// The configuration that a config file's `text` gives, with `source` and `env` on top:
    /// what [`Config::load`] does once it has read the file (`path` names it in messages).
    pub fn from_toml(
        text: &str,
        path: &Path,
        source: &ConfigSource,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let file = parse_file(text, path)?;
        Config::build(file, path.to_path_buf(), Origin::Flag("--config"), source, env)
    }

    /// The configuration of nothing but the defaults.
    pub fn defaults() -> Config {
        let (file, source) = (toml::Table::new(), ConfigSource::default());
        Config::build(file, DEFAULT_CONFIG_FILE.into(), Origin::Default, &source, &|_| None)
            .expect("the defaults are valid")
    }

    fn build(
        file: toml::Table,
        path: PathBuf,
        file_origin: Origin,
        source: &ConfigSource,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let shown_path = match path.exists() {
            true => path.display().to_string(),
            false => format!("{} (absent)", path.display()),
        };
        let mut settings = vec![Setting {
            key: "config",
            env: Some("CSJOBS_CONFIG"),
            value: shown_path,
            origin: file_origin,
        }];
        let mut cfg = Config::blank();
        for e in SETTINGS {
            let (section, name) = e.section_and_name();
            // A bad value in the file is an error even when the environment overrides it.
            let in_file = file.get(section).and_then(|t| t.get(name));
            let from_file = in_file.map(|v| e.read_file_value(v, &path)).transpose()?.flatten();
            let (value, origin) = match (env(e.env).filter(|v| !v.is_empty()), from_file) {
                (Some(text), _) => (e.read(&text, Src::Env)?, Origin::Env(e.env)),
                (None, Some(v)) => (v, Origin::File(path.clone())),
                (None, None) => (e.default_value(), Origin::Default),
            };
            settings.push(Setting { key: e.key, env: Some(e.env), value: value.shown(), origin });
            (e.set)(&mut cfg, value);
        }
        let w = &cfg.watch;
        // A year of same weekdays is the most a profile looks back (a typo such as 4000
        // would read eleven years of sums every minute).
        if w.weeks == 0 || w.weeks > 52 {
            return Err(ConfigError::Range {
                key: "watch.weeks",
                value: w.weeks.to_string(),
                expected: "from 1 to 52",
            });
        }
        if w.min_weeks == 0 || w.min_weeks > w.weeks {
            return Err(ConfigError::Range {
                key: "watch.min_weeks",
                value: format!("{} (watch.weeks {})", w.min_weeks, w.weeks),
                expected: "at least 1 and at most watch.weeks",
            });
        }

        // --now: the flag (or its env twin, as clap read them), else the env here, else the clock.
        let (now_text, now_origin) = match (&source.now, &source.now_origin) {
            (Some(t), Some(o)) => (Some(t.clone()), o.clone()),
            (Some(t), None) => (Some(t.clone()), Origin::Flag("--now")),
            (None, _) => match env("CSJOBS_NOW").filter(|v| !v.is_empty()) {
                Some(t) => (Some(t), Origin::Env("CSJOBS_NOW")),
                None => (None, Origin::Default),
            },
        };
        cfg.now = match &now_text {
            Some(text) => DateTime::parse_from_rfc3339(text.trim())
                .map_err(|_| ConfigError::Now { value: text.clone() })?,
            None => Local::now().fixed_offset(),
        };
        settings.push(Setting {
            key: "now",
            env: Some("CSJOBS_NOW"),
            value: now_text.unwrap_or_else(|| "the real clock".into()),
            origin: now_origin,
        });
        settings.extend(source.extra.iter().cloned());
        cfg.settings = settings;
        Ok(cfg)
    }

    /// Empty values, for [`Config::build`] to fill in from the table.
    fn blank() -> Config {
        Config {
            cashserver_url: None,
            bonus_url: None,
            paths: Paths::default(),
            archive_retention_days: 0,
            trim_keep_days: 0,
            sales: SalesSettings::default(),
            transfer_batch_rows: 0,
            astu_auto_export: false,
            status: StatusSettings::default(),
            watch: WatchSettings::default(),
            alerts: AlertSettings::default(),
            notify_ping_url: None,
            report_url: None,
            receive: ReceiveSettings::default(),
            now: DateTime::UNIX_EPOCH.fixed_offset(),
            settings: Vec::new(),
        }
    }
}

/// A commented config file with every key at its default and its environment variable: the
/// package's `/etc/csjobs/csjobs.toml`, made from the same table as the loader.
pub fn example() -> String {
    let mut out = String::from(
        "# csjobs configuration (csjobs config --example). Every key is shown at its default,\n\
         # commented out; the environment variable beside each one wins over this file, and\n\
         # command-line options win over both. `csjobs config` shows what is in effect.\n",
    );
    for (section, about) in SECTIONS {
        out.push_str(&format!("\n# {about}\n[{section}]\n"));
        for e in SETTINGS.iter().filter(|e| e.section_and_name().0 == *section) {
            let default = match e.default {
                Some(d) if d.contains("<hostname>") => " (default: csjobs@ and this host's name)",
                None | Some("") => " (no default)",
                _ => "",
            };
            out.push_str(&format!(
                "#{} = {}  # {}{default}\n",
                e.section_and_name().1,
                e.toml_default(),
                e.env
            ));
        }
    }
    out
}

/// docs/configuration.md: the reference of every setting, made from the table
/// (`csjobs config --reference > docs/configuration.md`).
pub fn reference() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from the table of settings in jobs/core/config.rs: do not edit; run\n     \
         `cargo run -q -- config --reference > docs/configuration.md` after changing the table. -->\n\n\
         One TOML file (default `/etc/csjobs/csjobs.toml`, or `--config FILE` / `CSJOBS_CONFIG`),\n\
         optional when the environment variables are set. Sources, strongest first: command-line\n\
         options, environment variables (an empty one counts as unset), the file, the defaults. A key\n\
         the file does not know, or a value that does not read, is an error naming the key (exit 2).\n\
         `csjobs config` prints what is in effect and where each value came from; `csjobs config\n\
         --example` prints a commented file of every key at its default.\n\n\
         Secrets never show: a connection string is printed as `user@host:port/db`, any other URL\n\
         as `scheme://host[:port]/…`.\n",
    );
    for (section, about) in SECTIONS {
        let about = about.replace('<', "\\<");
        out.push_str(&format!("\n## [{section}]\n\n{about}\n\n| key | env | default | value | meaning |\n"));
        out.push_str("|---|---|---|---|---|\n");
        for e in SETTINGS.iter().filter(|e| e.section_and_name().0 == *section) {
            let default = match e.default {
                None | Some("") => "none".to_string(),
                Some(d) => format!("`{d}`"),
            };
            let value = match e.kind {
                Kind::DbUrl => format!("{}; secret: shown as `user@host:port/db`", e.kind.expected()),
                Kind::SecretUrl => {
                    format!("{}; secret: shown as `scheme://host[:port]/…`", e.kind.expected())
                }
                Kind::Count => "a whole number, at least 1".into(),
                Kind::Bool => "`true` or `false` (the env variable also takes 1/0, yes/no, on/off)".into(),
                Kind::Decimal(max) if max == Decimal::ONE => "a decimal number from 0 to 1".into(),
                Kind::Decimal(_) => "a decimal number, at least 0".into(),
                k => k.expected().to_string(),
            };
            let doc = e.doc.replace('|', "\\|").replace('<', "\\<");
            out.push_str(&format!("| `{}` | `{}` | {default} | {value} | {doc} |\n", e.key, e.env));
        }
    }
    out.push_str(
        "\n## Command line only\n\n\
         | option | env | default | value |\n|---|---|---|---|\n\
         | `--config FILE` | `CSJOBS_CONFIG` | `/etc/csjobs/csjobs.toml` | the config file; when given, it must exist |\n\
         | `--now TIME` | `CSJOBS_NOW` | the real clock | an RFC 3339 timestamp the job takes as now |\n\
         | `--log-format` | `CSJOBS_LOG_FORMAT` | human on a terminal, else json | `human` or `json` |\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(file: Option<&str>, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = file.map(|text| {
            let p = dir.path().join("csjobs.toml");
            fs::write(&p, text).unwrap();
            p
        });
        let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::load(&ConfigSource { file: path, ..Default::default() }, &|k| env.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_spec() {
        let c = load(Some(""), &[]).unwrap();
        assert_eq!(c.paths.queue, PathBuf::from("/opt/cashserver/queue"));
        assert_eq!(c.paths.backup, PathBuf::from("/opt/backup"));
        assert_eq!(c.archive_retention_days, 30);
        assert_eq!(c.trim_keep_days, 180);
        assert_eq!(c.sales.max_file_bytes, 268_435_456);
        assert!(c.astu_auto_export);
        assert!(c.cashserver_url.is_none());
        assert_eq!(c.status.stale_after, Span::hours(2));
        assert_eq!(c.status.queue_max_age, Span::minutes(15));
        assert_eq!(c.status.staged_max_age, Span::minutes(15));
        assert_eq!(c.status.astu_max_age, Span::hours(1));
        assert_eq!(c.watch.threshold, "0.40".parse::<Decimal>().unwrap());
        assert_eq!((c.watch.weeks, c.watch.min_weeks), (4, 2));
        assert_eq!(c.watch.min_profile, Decimal::from(1000));
        assert_eq!((c.watch.start_after, c.watch.silent_after), (Span::hours(1), Span::hours(1)));
        assert_eq!(c.alerts.repeat_after, Span::hours(4));
        assert!(
            c.alerts.from.starts_with("csjobs@") && c.alerts.to.is_empty() && c.alerts.smtp_url.is_none()
        );
    }

    #[test]
    fn watch_weeks_is_one_to_fifty_two() {
        assert_eq!(load(None, &[("CSJOBS_WATCH_WEEKS", "52")]).unwrap().watch.weeks, 52);
        for bad in ["0", "53", "4000"] {
            let e = load(None, &[("CSJOBS_WATCH_WEEKS", bad), ("CSJOBS_WATCH_MIN_WEEKS", "1")]).unwrap_err();
            assert!(e.to_string().contains("watch.weeks"), "{bad}: {e}");
        }
    }

    #[test]
    fn env_wins_over_file() {
        let c = load(
            Some("[paths]\nqueue = \"/from/file\"\n[trim]\nkeep_days = 10\n"),
            &[("CSJOBS_QUEUE_DIR", "/from/env")],
        )
        .unwrap();
        assert_eq!(c.paths.queue, PathBuf::from("/from/env"));
        assert_eq!(c.trim_keep_days, 10);
    }

    #[test]
    fn unknown_key_in_file_is_an_error_naming_it() {
        let e = load(Some("[paths]\nqueu = \"/x\"\n"), &[]).unwrap_err();
        assert!(e.to_string().contains("queu"), "{e}");
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let e = load(None, &[("CSJOBS_ARCHIVE_RETENTION_DAYS", "thirty")]).unwrap_err();
        assert!(e.to_string().contains("CSJOBS_ARCHIVE_RETENTION_DAYS"), "{e}");
    }

    #[test]
    fn a_bad_duration_names_the_key_and_the_variable() {
        let e = load(Some("[status]\nstale_after = \"2 hours\"\n"), &[]).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("status.stale_after") && text.contains("CSJOBS_STATUS_STALE_AFTER"), "{text}");
        let e = load(None, &[("CSJOBS_STATUS_QUEUE_MAX_AGE", "15")]).unwrap_err();
        assert!(e.to_string().contains("status.queue_max_age"), "{e}");
        let c = load(Some("[status]\nastu_max_age = \"3h\"\n"), &[("CSJOBS_STATUS_ASTU_MAX_AGE", "30m")])
            .unwrap();
        assert_eq!(c.status.astu_max_age, Span::minutes(30));
    }

    #[test]
    fn every_value_knows_where_it_came_from() {
        let c = load(
            Some("[paths]\nqueue = \"/from/file\"\n[cashserver]\ndatabase_url = \"postgres://cs:s3cret@db/cash\"\n"),
            &[("CSJOBS_TRIM_KEEP_DAYS", "90")],
        )
        .unwrap();
        let get = |k: &str| c.settings.iter().find(|s| s.key == k).unwrap().clone();
        assert!(matches!(get("paths.queue").origin, Origin::File(_)));
        assert_eq!(get("paths.queue").value, "/from/file");
        assert_eq!(get("trim.keep_days").origin, Origin::Env("CSJOBS_TRIM_KEEP_DAYS"));
        assert_eq!(get("paths.processed").origin, Origin::Default);
        assert_eq!(get("cashserver.database_url").value, "cs@db:5432/cash");
        assert_eq!(get("bonus.database_url").value, "-");
        assert!(!format!("{:?}", c.settings).contains("s3cret"));
    }

    #[test]
    fn the_example_file_names_every_key_and_loads_uncommented() {
        let text = example();
        let uncommented: String = text
            .lines()
            .map(|l| if l.starts_with('#') && l.contains(" = ") { &l[1..] } else { l })
            .map(|l| format!("{l}\n"))
            .collect();
        // Uncommented, it is a valid file equal to the defaults (but for the empty URLs).
        let c = load(Some(&uncommented), &[]).unwrap();
        assert_eq!(c.paths, Config::defaults().paths);
        assert_eq!(c.status, Config::defaults().status);
        for s in Config::defaults().settings.iter().filter(|s| s.key.contains('.')) {
            let name = s.key.split_once('.').unwrap().1;
            assert!(
                text.lines().any(|l| l.starts_with(&format!("#{name} = ")) && l.contains(s.env.unwrap())),
                "{}",
                s.key
            );
        }
    }

    #[test]
    fn watch_and_alert_settings_read_from_file_and_env() {
        let c = load(
            Some("[watch]\nthreshold = 0.5\nmin_profile = \"250.50\"\nsilent_after = \"0\"\n[alerts]\nto = [\"a@x\", \"b@x\"]\n"),
            &[("CSJOBS_ALERTS_REPEAT_AFTER", "30m")],
        )
        .unwrap();
        assert_eq!(c.watch.threshold, "0.5".parse().unwrap());
        assert_eq!(c.watch.min_profile, "250.5".parse().unwrap());
        assert!(c.watch.silent_after.is_zero());
        assert_eq!(c.alerts.to, ["a@x", "b@x"]);
        assert_eq!(c.alerts.repeat_after, Span::minutes(30));
        let c =
            load(None, &[("CSJOBS_ALERTS_TO", "ops@x, boss@x"), ("CSJOBS_WATCH_THRESHOLD", "0.25")]).unwrap();
        assert_eq!(c.alerts.to, ["ops@x", "boss@x"]);
        assert_eq!(c.watch.threshold, "0.25".parse().unwrap());
        for (var, bad) in [
            ("CSJOBS_WATCH_THRESHOLD", "1.5"),
            ("CSJOBS_WATCH_THRESHOLD", "x"),
            ("CSJOBS_WATCH_START_AFTER", "0"),
            ("CSJOBS_WATCH_MIN_WEEKS", "9"),
        ] {
            let e = load(None, &[(var, bad)]).unwrap_err().to_string();
            let key = var.trim_start_matches("CSJOBS_").to_ascii_lowercase().replacen('_', ".", 1);
            assert!(e.contains(var) || e.contains(&key), "{var}={bad}: {e}");
        }
    }

    /// Found by review: a TOML syntax error quoted the offending line, password included.
    #[test]
    fn a_syntax_error_in_the_file_names_the_place_not_the_line() {
        let text = "[cashserver]\ndatabase_url = postgres://cs:s3cret@db/cash\n";
        let e =
            Config::from_toml(text, Path::new("/etc/csjobs/csjobs.toml"), &ConfigSource::default(), &|_| {
                None
            })
            .unwrap_err()
            .to_string();
        assert!(!e.contains("s3cret"), "{e}");
        assert!(e.contains("/etc/csjobs/csjobs.toml") && e.contains("line 2"), "{e}");
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let e = Config::load(
            &ConfigSource { file: Some("/nonexistent/csjobs.toml".into()), ..Default::default() },
            &|_| None,
        )
        .unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }));
    }

    #[test]
    fn connection_strings_print_from_the_parsed_value_without_the_password() {
        let shown = |t: &str| DbUrl::parse("cashserver.database_url", t).unwrap().to_string();
        // `user@host:port/db` (cli.md): the password, and whether there is one, never shows.
        assert_eq!(shown("postgres://cs:s3cret@db.local:5432/cash"), "cs@db.local:5432/cash");
        assert_eq!(shown("postgres://cs@db/cash"), "cs@db:5432/cash");
        assert_eq!(shown("postgresql://db/cash?user=cs&password=s3cret"), "cs@db:5432/cash");
        assert_eq!(shown("host=db user=cs password=s3cret dbname=cash"), "cs@db:5432/cash");
        // The hand-written masker showed "cret'" here.
        assert_eq!(shown("host=db password='se cret' dbname=cash"), "db:5432/cash");
        assert_eq!(
            shown("host=/run/postgresql,db2 port=5433 dbname=cash"),
            "%2Frun%2Fpostgresql:5433,db2:5433/cash"
        );
        let u = DbUrl::parse("k", "postgres://u:pw@h/d").unwrap();
        assert!(!format!("{u:?}").contains("pw"));
    }

    #[test]
    fn a_malformed_connection_string_is_a_config_error_naming_its_key_not_its_text() {
        for bad in ["postgres://cs:s3cret@db:notaport/cash", "host=db password='s3cret", "nonsense s3cret"] {
            let e = DbUrl::parse("bonus.database_url", bad).expect_err(bad).to_string();
            assert!(e.starts_with("bonus.database_url is not a valid PostgreSQL connection string"), "{e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        let e =
            DbUrl::parse("bonus.database_url", "postgres://b@remote/bonus?sslmode=sometimes").unwrap_err();
        assert!(e.to_string().starts_with("bonus.database_url is not a valid"), "{e}");
    }

    #[test]
    fn libpq_verify_modes_mean_require_which_verifies() {
        use tokio_postgres::config::SslMode;
        let mode = |t: &str| DbUrl::parse("k", t).unwrap().config().get_ssl_mode();
        assert_eq!(mode("postgres://b@remote/bonus?sslmode=verify-full"), SslMode::Require);
        assert_eq!(mode("postgres://b@remote/bonus?sslmode=verify-ca&application_name=x"), SslMode::Require);
        assert_eq!(mode("host=remote sslmode = verify-full dbname=bonus"), SslMode::Require);
        assert_eq!(mode("host=remote sslmode='verify-ca'"), SslMode::Require);
        assert_eq!(mode("postgres://b@remote/bonus?sslmode=require"), SslMode::Require);
        assert_eq!(mode("postgres://b@remote/bonus?sslmode=disable"), SslMode::Disable);
        assert_eq!(mode("postgres://b@remote/bonus"), SslMode::Prefer);
        // A password that merely contains the words is left alone.
        let u = DbUrl::parse("k", "host=h password='xsslmode=verify-fullx'").unwrap();
        assert_eq!(u.config().get_password(), Some(&b"xsslmode=verify-fullx"[..]));
        // A port out of range in the env URL is refused by the parse itself, naming the key
        // and not the text. The config file exists (and is empty), so the load gets past
        // reading it to the parse; with a valid port the same load succeeds.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("csjobs.toml");
        std::fs::write(&file, "").unwrap();
        let load = |url: &'static str| {
            let env = move |v: &str| (v == "CSJOBS_CASHSERVER_DATABASE_URL").then(|| url.to_string());
            Config::load(&ConfigSource { file: Some(file.clone()), ..Default::default() }, &env)
        };
        let ok = load("postgres://x@h:5432/d?sslmode=verify-full").expect("the same load with a valid port");
        assert_eq!(ok.cashserver_url().unwrap().config().get_ssl_mode(), SslMode::Require);
        let e = load("postgres://x@h:99999/d?sslmode=verify-full").expect_err("port 99999").to_string();
        assert!(e.contains("CSJOBS_CASHSERVER_DATABASE_URL") || e.contains("cashserver.database_url"), "{e}");
        assert!(e.contains("is not a valid PostgreSQL connection string"), "{e}");
        assert!(!e.contains("99999"), "the error names the key, not the text: {e}");
    }

    #[test]
    fn other_urls_show_only_scheme_host_and_port() {
        assert_eq!(shown_url("smtp://alerts:p%40ss@mail.local:587"), "smtp://mail.local:587/…");
        assert_eq!(shown_url("https://hc.local/ping/abc-secret"), "https://hc.local/…");
        assert_eq!(
            shown_url("https://api.telegram.org/bot123:SECRET/sendMessage?chat_id=1"),
            "https://api.telegram.org/…"
        );
        assert_eq!(
            shown_url("https://hooks.slack.com/services/T0/B0/SECRET?x=1#f"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(shown_url("not a url"), "(not a valid URL)");
        let url = "https://u:pw@hooks.slack.com/services/T0/SECRET?token=TOKEN";
        let scrubbed = scrub_url(&format!("bad request for {url}: SECRET rejected, token=TOKEN"), url);
        assert!(
            !scrubbed.contains("SECRET") && !scrubbed.contains("TOKEN") && !scrubbed.contains("pw"),
            "{scrubbed}"
        );
    }

    #[test]
    fn the_table_is_whole() {
        for e in SETTINGS {
            let (section, name) = e.section_and_name();
            assert!(SECTIONS.iter().any(|(s, _)| *s == section), "{}: no section {section}", e.key);
            assert!(!name.contains('.') && e.env.starts_with("CSJOBS_"), "{}", e.key);
            assert!(!e.doc.is_empty() && !e.doc.contains('\n'), "{}", e.key);
            assert_eq!(SETTINGS.iter().filter(|o| o.key == e.key || o.env == e.env).count(), 1, "{}", e.key);
        }
        for (section, _) in SECTIONS {
            assert!(SETTINGS.iter().any(|e| e.section_and_name().0 == *section), "{section} is empty");
        }
        // Every entry's kind fits its field (a mismatch panics here) and its default reads.
        let c = Config::defaults();
        assert_eq!(c.settings.len(), SETTINGS.len() + 2);
    }

    #[test]
    fn a_bad_value_in_the_file_names_its_key_and_variable() {
        for (text, key, var) in [
            ("[trim]\nkeep_days = -1\n", "trim.keep_days", "CSJOBS_TRIM_KEEP_DAYS"),
            ("[trim]\nkeep_days = \"5\"\n", "trim.keep_days", "CSJOBS_TRIM_KEEP_DAYS"),
            ("[astu]\nauto_export = \"yes\"\n", "astu.auto_export", "CSJOBS_ASTU_AUTO_EXPORT"),
            ("[paths]\nqueue = 1\n", "paths.queue", "CSJOBS_QUEUE_DIR"),
            ("[alerts]\nto = [1]\n", "alerts.to", "CSJOBS_ALERTS_TO"),
        ] {
            let e = load(Some(text), &[]).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(var), "{text}: {e}");
        }
        for text in ["x = 1\n", "[x]\ny = 1\n", "paths = \"/p\"\n"] {
            let e = load(Some(text), &[]).unwrap_err();
            assert!(matches!(e, ConfigError::Parse { .. }), "{text}: {e}");
        }
        let e = load(Some("[sales]\nbatch_files = 0\n"), &[]).unwrap_err().to_string();
        assert!(e.contains("sales.batch_files must be at least 1"), "{e}");
    }

    #[test]
    fn receive_settings_take_seconds_and_spans() {
        let c = load(None, &[]).unwrap();
        assert_eq!((c.receive.exchange.as_str(), c.receive.queue.as_str()), ("csjobs.sales", "csjobs.sales"));
        assert_eq!((c.receive.prefetch, c.receive.idle_exit), (500, std::time::Duration::from_secs(2)));
        assert!(c.receive.amqp_url.is_none());
        let c = load(
            Some("[receive]\nidle_exit = \"5m\"\namqp_url = \"amqp://cs:s3cret@mq/cash\"\n"),
            &[("CSJOBS_RECEIVE_PREFETCH", "20")],
        )
        .unwrap();
        assert_eq!((c.receive.prefetch, c.receive.idle_exit), (20, std::time::Duration::from_secs(300)));
        let get = |k: &str| c.settings.iter().find(|s| s.key == k).unwrap().value.clone();
        assert_eq!((get("receive.idle_exit"), get("receive.amqp_url")), ("5m".into(), "amqp://mq/…".into()));
        assert_eq!(
            load(None, &[("CSJOBS_RECEIVE_IDLE_EXIT", "90s")]).unwrap().receive.idle_exit.as_secs(),
            90
        );
        for bad in ["0s", "2", "s", "1.5s", "0"] {
            let e = load(None, &[("CSJOBS_RECEIVE_IDLE_EXIT", bad)]).unwrap_err().to_string();
            assert!(e.contains("CSJOBS_RECEIVE_IDLE_EXIT"), "{bad}: {e}");
        }
    }

    /// docs/configuration.md is generated from the table; this fails when the two differ.
    #[test]
    fn docs_configuration_md_is_what_the_table_generates() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        let generated = reference();
        let first = committed.lines().zip(generated.lines()).position(|(a, b)| a != b);
        assert!(
            committed == generated,
            "docs/configuration.md is not what the table of settings in jobs/core/config.rs gives \
             (first difference at line {}); regenerate it with\n\n    \
             cargo run -q -- config --reference > docs/configuration.md\n",
            first.map_or(committed.lines().count().min(generated.lines().count()), |i| i) + 1
        );
    }
}
