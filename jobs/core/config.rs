//! The one typed configuration of csjobs (shared/spec/cli.md, "Configuration keys").
//!
//! Sources, strongest first: command-line options, environment variables, the TOML file,
//! defaults. Everything is merged here, before any job starts; a job receives a [`Config`]
//! and never reads the environment or raw strings itself.

use fs_err as fs;
use std::{
    fmt,
    path::{Path, PathBuf},
};

use chrono::{DateTime, FixedOffset, Local};
use rust_decimal::Decimal;
use serde::Deserialize;

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

/// The directories csjobs works with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// Sales queue (очередь): where registers drop sales files.
    pub queue: PathBuf,
    pub processed: PathBuf,
    pub error: PathBuf,
    pub broken: PathBuf,
    /// Holds `processed_archive/`, `error_archive/`, `broken_archive/`.
    pub backup: PathBuf,
    pub astu_outbox: PathBuf,
}

/// Tuning of the sales loader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesSettings {
    /// A file larger than this (or a `.gz` that decompresses to more) is broken (rule 9).
    pub max_file_bytes: u64,
    /// At most this many files are committed in one transaction.
    pub batch_files: usize,
    /// A batch is closed once it holds this many goods items.
    pub batch_items: usize,
}

/// The thresholds of `csjobs status` (shared/spec/monitoring.md, "Settings").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSettings {
    /// A register of an open shop silent longer than this is `stale`.
    pub stale_after: Span,
    /// The oldest queued sales file may wait this long.
    pub queue_max_age: Span,
    /// The oldest staged row not yet transferred may wait this long.
    pub staged_max_age: Span,
    /// A closed shift may be owed its ASTU file this long.
    pub astu_max_age: Span,
}

/// The settings of `revenue-watch` (shared/spec/monitoring.md, "Settings").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSettings {
    /// A shop's revenue is low when (profile − today) / profile is above this (0.40).
    pub threshold: Decimal,
    /// Same weekdays looked back for the profile.
    pub weeks: u32,
    /// Fewer days with revenue than this: no profile, no verdict.
    pub min_weeks: u32,
    /// A profile below this (money) gives no alert.
    pub min_profile: Decimal,
    /// A shop must have been open this long today before it is judged.
    pub start_after: Span,
    /// A register of an open shop silent longer than this raises `register_silent`; zero: off.
    pub silent_after: Span,
}

/// Where and how often alerts go (shared/spec/monitoring.md, "Settings").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSettings {
    /// `smtp://[user:password@]host[:port]` or `smtps://…`; checked by revenue-watch.
    pub smtp_url: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    pub webhook_url: Option<String>,
    /// An alert that holds is sent again this often.
    pub repeat_after: Span,
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
    /// Staged rows per transaction of `transfer`.
    pub transfer_batch_rows: usize,
    pub astu_auto_export: bool,
    pub status: StatusSettings,
    pub watch: WatchSettings,
    pub alerts: AlertSettings,
    /// Dead man's switch (`notify.ping_url`): `<url>/start` and `<url>/<exit code>` around
    /// every job; `{job}` in it is the job's name.
    pub notify_ping_url: Option<String>,
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

// ---- the TOML file -------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    cashserver: Option<DbSection>,
    bonus: Option<DbSection>,
    paths: Option<PathsSection>,
    archive: Option<ArchiveSection>,
    trim: Option<TrimSection>,
    sales: Option<SalesSection>,
    transfer: Option<TransferSection>,
    astu: Option<AstuSection>,
    status: Option<StatusSection>,
    watch: Option<WatchSection>,
    alerts: Option<AlertsSection>,
    notify: Option<NotifySection>,
}

/// A number the file may write as a TOML number or as a string ("0.40").
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Number {
    Float(f64),
    Int(i64),
    Text(String),
}

impl Number {
    fn text(&self) -> String {
        match self {
            Number::Float(f) => f.to_string(),
            Number::Int(i) => i.to_string(),
            Number::Text(t) => t.clone(),
        }
    }
}

/// A list the file may write as a TOML array or as one comma-separated string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum List {
    Many(Vec<String>),
    One(String),
}

impl List {
    fn items(self) -> Vec<String> {
        match self {
            List::Many(v) => v,
            List::One(s) => split_list(&s),
        }
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WatchSection {
    threshold: Option<Number>,
    weeks: Option<u32>,
    min_weeks: Option<u32>,
    min_profile: Option<Number>,
    start_after: Option<String>,
    silent_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsSection {
    smtp_url: Option<String>,
    from: Option<String>,
    to: Option<List>,
    webhook_url: Option<String>,
    repeat_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifySection {
    ping_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusSection {
    stale_after: Option<String>,
    queue_max_age: Option<String>,
    staged_max_age: Option<String>,
    astu_max_age: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferSection {
    batch_rows: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DbSection {
    database_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PathsSection {
    queue: Option<PathBuf>,
    processed: Option<PathBuf>,
    error: Option<PathBuf>,
    broken: Option<PathBuf>,
    backup: Option<PathBuf>,
    astu_outbox: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArchiveSection {
    retention_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrimSection {
    keep_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SalesSection {
    max_file_bytes: Option<u64>,
    batch_files: Option<usize>,
    batch_items: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AstuSection {
    auto_export: Option<bool>,
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

/// The layers of one load: environment over file over defaults, each value's origin noted.
struct Layers<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    file: PathBuf,
    settings: Vec<Setting>,
}

impl Layers<'_> {
    /// The value of `key`: the env variable `var` when set (and not empty), else the file's,
    /// else `default`. `parse` reads the env text; `show` prints the value (masking secrets).
    fn take<T>(
        &mut self,
        key: &'static str,
        var: &'static str,
        from_file: Option<T>,
        default: Option<T>,
        parse: impl Fn(&str) -> Result<T, ConfigError>,
        show: impl Fn(&T) -> String,
    ) -> Result<Option<T>, ConfigError> {
        let (value, origin) = match (self.env)(var).filter(|v| !v.is_empty()) {
            Some(text) => (Some(parse(&text)?), Origin::Env(var)),
            None => match from_file {
                Some(v) => (Some(v), Origin::File(self.file.clone())),
                None => (default, Origin::Default),
            },
        };
        self.settings.push(Setting {
            key,
            env: Some(var),
            value: value.as_ref().map_or_else(|| "-".to_string(), show),
            origin,
        });
        Ok(value)
    }

    fn path(
        &mut self,
        key: &'static str,
        var: &'static str,
        from_file: Option<PathBuf>,
        default: &str,
    ) -> PathBuf {
        self.take(
            key,
            var,
            from_file,
            Some(PathBuf::from(default)),
            |s| Ok(PathBuf::from(s)),
            |p| p.display().to_string(),
        )
        .ok()
        .flatten()
        .unwrap_or_default()
    }

    fn number<T: std::str::FromStr + fmt::Display>(
        &mut self,
        key: &'static str,
        var: &'static str,
        from_file: Option<T>,
        default: T,
        expected: &'static str,
    ) -> Result<T, ConfigError> {
        let parse =
            |v: &str| v.trim().parse().map_err(|_| ConfigError::Env { var, value: v.to_string(), expected });
        Ok(self.take(key, var, from_file, Some(default), parse, |n| n.to_string())?.expect("a default"))
    }

    /// A duration (`30m`, `2h`, `1d`); with `zero_is_off`, also `0` (off).
    fn span(
        &mut self,
        key: &'static str,
        var: &'static str,
        from_file: Option<String>,
        default: Span,
        zero_is_off: bool,
    ) -> Result<Span, ConfigError> {
        let read = |v: &str| {
            if zero_is_off && v.trim() == "0" {
                Ok(Span::minutes(0))
            } else {
                v.parse::<Span>().map_err(|source| ConfigError::Duration { key, var, source })
            }
        };
        let from_file = from_file.map(|t| read(&t)).transpose()?;
        let show = |s: &Span| if s.is_zero() { "0".to_string() } else { s.to_string() };
        Ok(self.take(key, var, from_file, Some(default), read, show)?.expect("a default"))
    }

    /// A decimal (money, a ratio) within `range`, written as a number or a string.
    fn decimal(
        &mut self,
        key: &'static str,
        var: &'static str,
        from_file: Option<Number>,
        default: &str,
        range: (Decimal, Decimal),
    ) -> Result<Decimal, ConfigError> {
        let expected = "a decimal number (e.g. 0.40, 1000.00)";
        let read = |text: &str, bad: &dyn Fn() -> ConfigError| -> Result<Decimal, ConfigError> {
            let d: Decimal = text.trim().parse().map_err(|_| bad())?;
            if d < range.0 || d > range.1 {
                return Err(ConfigError::Range {
                    key,
                    value: text.to_string(),
                    expected: "within its range (see csjobs config --example)",
                });
            }
            Ok(d.normalize())
        };
        let from_file = match from_file {
            None => None,
            Some(n) => {
                let t = n.text();
                Some(read(&t, &|| ConfigError::Range { key, value: t.clone(), expected })?)
            }
        };
        let parse = |v: &str| read(v, &|| ConfigError::Env { var, value: v.to_string(), expected });
        let default = Some(default.parse().expect("a valid default"));
        Ok(self.take(key, var, from_file, default, parse, |d| d.to_string())?.expect("a default"))
    }

    /// A URL holding a secret (SMTP, webhook, ping): printed with its password masked.
    fn secret_url(
        &mut self,
        key: &'static str,
        var: &'static str,
        from_file: Option<String>,
    ) -> Option<String> {
        let from_file = from_file.filter(|u| !u.trim().is_empty());
        self.take(key, var, from_file, None, |s| Ok(s.to_string()), |u| shown_url(u)).ok().flatten()
    }

    /// A database's connection string, parsed (a bad one is an error naming `key`).
    fn db_url(
        &mut self,
        key: &'static str,
        var: &'static str,
        from_file: Option<String>,
    ) -> Result<Option<DbUrl>, ConfigError> {
        let from_file =
            from_file.filter(|u| !u.trim().is_empty()).map(|t| DbUrl::parse(key, &t)).transpose()?;
        self.take(key, var, from_file, None, |s| DbUrl::parse(key, s), |u| u.to_string())
    }
}

impl Config {
    /// Merges file, environment (through `env`) and defaults. Command-line overrides of
    /// single keys (e.g. `trim-db --keep-days`) are applied by the job's options on top.
    pub fn load(source: &ConfigSource, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let (file, file_path, file_origin) = match &source.file {
            Some(path) => (
                read_file(path)?,
                path.clone(),
                source.file_origin.clone().unwrap_or(Origin::Flag("--config")),
            ),
            None => {
                let path = PathBuf::from(DEFAULT_CONFIG_FILE);
                let f = if path.exists() { read_file(&path)? } else { FileConfig::default() };
                (f, path, Origin::Default)
            }
        };
        Config::build(file, file_path, file_origin, source, env)
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
        Config::build(
            FileConfig::default(),
            DEFAULT_CONFIG_FILE.into(),
            Origin::Default,
            &ConfigSource::default(),
            &|_| None,
        )
        .expect("the defaults are valid")
    }

    fn build(
        file: FileConfig,
        file_path: PathBuf,
        file_origin: Origin,
        source: &ConfigSource,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut l = Layers { env, file: file_path.clone(), settings: Vec::new() };
        l.settings.push(Setting {
            key: "config",
            env: Some("CSJOBS_CONFIG"),
            value: if file_path.exists() {
                file_path.display().to_string()
            } else {
                format!("{} (absent)", file_path.display())
            },
            origin: file_origin,
        });
        let paths = file.paths.unwrap_or_default();
        let sales = file.sales.unwrap_or_default();
        let status = file.status.unwrap_or_default();

        let cashserver_url = l.db_url(
            "cashserver.database_url",
            "CSJOBS_CASHSERVER_DATABASE_URL",
            file.cashserver.and_then(|s| s.database_url),
        )?;
        let bonus_url = l.db_url(
            "bonus.database_url",
            "CSJOBS_BONUS_DATABASE_URL",
            file.bonus.and_then(|s| s.database_url),
        )?;
        let paths = Paths {
            queue: l.path("paths.queue", "CSJOBS_QUEUE_DIR", paths.queue, "/opt/cashserver/queue"),
            processed: l.path(
                "paths.processed",
                "CSJOBS_PROCESSED_DIR",
                paths.processed,
                "/opt/cashserver/processed",
            ),
            error: l.path("paths.error", "CSJOBS_ERROR_DIR", paths.error, "/opt/cashserver/error"),
            broken: l.path("paths.broken", "CSJOBS_BROKEN_DIR", paths.broken, "/opt/cashserver/broken"),
            backup: l.path("paths.backup", "CSJOBS_BACKUP_DIR", paths.backup, "/opt/backup"),
            astu_outbox: l.path(
                "paths.astu_outbox",
                "CSJOBS_ASTU_OUTBOX",
                paths.astu_outbox,
                "/opt/cashserver/astu",
            ),
        };
        let days = "a whole number of days";
        let archive_retention_days = l.number(
            "archive.retention_days",
            "CSJOBS_ARCHIVE_RETENTION_DAYS",
            file.archive.and_then(|a| a.retention_days),
            30,
            days,
        )?;
        let trim_keep_days = l.number(
            "trim.keep_days",
            "CSJOBS_TRIM_KEEP_DAYS",
            file.trim.and_then(|t| t.keep_days),
            180,
            days,
        )?;
        let sales = SalesSettings {
            max_file_bytes: l.number(
                "sales.max_file_bytes",
                "CSJOBS_SALES_MAX_FILE_BYTES",
                sales.max_file_bytes,
                268_435_456,
                "a whole number of bytes",
            )?,
            batch_files: l.number(
                "sales.batch_files",
                "CSJOBS_SALES_BATCH_FILES",
                sales.batch_files,
                1000,
                "a whole number",
            )?,
            batch_items: l.number(
                "sales.batch_items",
                "CSJOBS_SALES_BATCH_ITEMS",
                sales.batch_items,
                50_000,
                "a whole number",
            )?,
        };
        let transfer_batch_rows = l.number(
            "transfer.batch_rows",
            "CSJOBS_TRANSFER_BATCH_ROWS",
            file.transfer.and_then(|t| t.batch_rows),
            10_000,
            "a whole number",
        )?;
        let astu_auto_export = l
            .take(
                "astu.auto_export",
                "CSJOBS_ASTU_AUTO_EXPORT",
                file.astu.and_then(|a| a.auto_export),
                Some(true),
                |v| parse_bool("CSJOBS_ASTU_AUTO_EXPORT", v),
                |b| b.to_string(),
            )?
            .expect("a default");
        let status = StatusSettings {
            stale_after: l.span(
                "status.stale_after",
                "CSJOBS_STATUS_STALE_AFTER",
                status.stale_after,
                Span::hours(2),
                false,
            )?,
            queue_max_age: l.span(
                "status.queue_max_age",
                "CSJOBS_STATUS_QUEUE_MAX_AGE",
                status.queue_max_age,
                Span::minutes(15),
                false,
            )?,
            staged_max_age: l.span(
                "status.staged_max_age",
                "CSJOBS_STATUS_STAGED_MAX_AGE",
                status.staged_max_age,
                Span::minutes(15),
                false,
            )?,
            astu_max_age: l.span(
                "status.astu_max_age",
                "CSJOBS_STATUS_ASTU_MAX_AGE",
                status.astu_max_age,
                Span::hours(1),
                false,
            )?,
        };
        let watch = file.watch.unwrap_or_default();
        let watch = WatchSettings {
            threshold: l.decimal(
                "watch.threshold",
                "CSJOBS_WATCH_THRESHOLD",
                watch.threshold,
                "0.40",
                (Decimal::ZERO, Decimal::ONE),
            )?,
            weeks: l.number(
                "watch.weeks",
                "CSJOBS_WATCH_WEEKS",
                watch.weeks,
                4,
                "a whole number of weeks",
            )?,
            min_weeks: l.number(
                "watch.min_weeks",
                "CSJOBS_WATCH_MIN_WEEKS",
                watch.min_weeks,
                2,
                "a whole number of weeks",
            )?,
            min_profile: l.decimal(
                "watch.min_profile",
                "CSJOBS_WATCH_MIN_PROFILE",
                watch.min_profile,
                "1000.00",
                (Decimal::ZERO, Decimal::MAX),
            )?,
            start_after: l.span(
                "watch.start_after",
                "CSJOBS_WATCH_START_AFTER",
                watch.start_after,
                Span::hours(1),
                false,
            )?,
            silent_after: l.span(
                "watch.silent_after",
                "CSJOBS_WATCH_SILENT_AFTER",
                watch.silent_after,
                Span::hours(1),
                true,
            )?,
        };
        if watch.weeks == 0 || watch.min_weeks == 0 || watch.min_weeks > watch.weeks {
            return Err(ConfigError::Range {
                key: "watch.min_weeks",
                value: format!("{} (watch.weeks {})", watch.min_weeks, watch.weeks),
                expected: "at least 1 and at most watch.weeks",
            });
        }
        let alerts = file.alerts.unwrap_or_default();
        let alerts = AlertSettings {
            smtp_url: l.secret_url("alerts.smtp_url", "CSJOBS_ALERTS_SMTP_URL", alerts.smtp_url),
            from: l
                .take(
                    "alerts.from",
                    "CSJOBS_ALERTS_FROM",
                    alerts.from.filter(|f| !f.trim().is_empty()),
                    Some(format!("csjobs@{}", super::runlog::host_name())),
                    |v| Ok(v.trim().to_string()),
                    |v| v.clone(),
                )?
                .expect("a default"),
            to: l
                .take(
                    "alerts.to",
                    "CSJOBS_ALERTS_TO",
                    alerts.to.map(List::items),
                    Some(Vec::new()),
                    |v| Ok(split_list(v)),
                    |v| if v.is_empty() { "-".into() } else { v.join(", ") },
                )?
                .expect("a default"),
            webhook_url: l.secret_url("alerts.webhook_url", "CSJOBS_ALERTS_WEBHOOK_URL", alerts.webhook_url),
            repeat_after: l.span(
                "alerts.repeat_after",
                "CSJOBS_ALERTS_REPEAT_AFTER",
                alerts.repeat_after,
                Span::hours(4),
                false,
            )?,
        };
        let notify_ping_url =
            l.secret_url("notify.ping_url", "CSJOBS_NOTIFY_PING_URL", file.notify.and_then(|n| n.ping_url));

        // --now: the flag (or its env twin, as clap read them), else the env here, else the clock.
        let (now_text, now_origin) = match (&source.now, &source.now_origin) {
            (Some(t), Some(o)) => (Some(t.clone()), o.clone()),
            (Some(t), None) => (Some(t.clone()), Origin::Flag("--now")),
            (None, _) => match env("CSJOBS_NOW").filter(|v| !v.is_empty()) {
                Some(t) => (Some(t), Origin::Env("CSJOBS_NOW")),
                None => (None, Origin::Default),
            },
        };
        let now = match &now_text {
            Some(text) => DateTime::parse_from_rfc3339(text.trim())
                .map_err(|_| ConfigError::Now { value: text.clone() })?,
            None => Local::now().fixed_offset(),
        };
        l.settings.push(Setting {
            key: "now",
            env: Some("CSJOBS_NOW"),
            value: now_text.unwrap_or_else(|| "the real clock".into()),
            origin: now_origin,
        });
        l.settings.extend(source.extra.iter().cloned());

        for (key, value) in [
            ("sales.batch_files", sales.batch_files),
            ("sales.batch_items", sales.batch_items),
            ("transfer.batch_rows", transfer_batch_rows),
        ] {
            if value == 0 {
                return Err(ConfigError::Range { key, value: "0".into(), expected: "at least 1" });
            }
        }
        Ok(Config {
            cashserver_url,
            bonus_url,
            paths,
            archive_retention_days,
            trim_keep_days,
            sales,
            transfer_batch_rows,
            astu_auto_export,
            status,
            watch,
            alerts,
            notify_ping_url,
            now,
            settings: l.settings,
        })
    }
}

fn read_file(path: &PathBuf) -> Result<FileConfig, ConfigError> {
    let text = fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
    parse_file(&text, path)
}

fn parse_file(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })
}

/// What each section of the config file is for, in the order of the file.
const SECTIONS: [(&str, &str); 13] = [
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
        "notify",
        "Dead man's switch: GET <url>/start and <url>/<exit code> around every job; {job} is the job's name.",
    ),
    ("", ""),
];

/// A commented config file with every key at its default and its environment variable: the
/// package's `/etc/csjobs/csjobs.toml`, made from the same definitions as the loader.
pub fn example() -> String {
    let cfg = Config::defaults();
    let mut out = String::from(
        "# csjobs configuration (csjobs config --example). Every key is shown at its default,\n\
         # commented out; the environment variable beside each one wins over this file, and\n\
         # command-line options win over both. `csjobs config` shows what is in effect.\n",
    );
    for (section, about) in SECTIONS.iter().filter(|(s, _)| !s.is_empty()) {
        let keys: Vec<&Setting> =
            cfg.settings.iter().filter(|s| s.key.split_once('.').map(|(a, _)| a) == Some(section)).collect();
        out.push_str(&format!("\n# {about}\n[{section}]\n"));
        for k in keys {
            let name = k.key.split_once('.').map_or(k.key, |(_, n)| n);
            let env = k.env.map(|e| format!("  # {e}")).unwrap_or_default();
            let value = if k.value == "-" {
                "\"\"".to_string()
            } else if k.value.parse::<i64>().is_ok() || k.value == "true" || k.value == "false" {
                k.value.clone()
            } else {
                format!("{:?}", k.value)
            };
            // The sender's default names the host it runs on, not the one that wrote this file.
            let value = if k.key == "alerts.from" { "\"csjobs@<hostname>\"".to_string() } else { value };
            let default = match (k.key, k.value.as_str()) {
                ("alerts.from", _) => " (default: csjobs@ and this host's name)",
                (_, "-") => " (no default)",
                _ => "",
            };
            out.push_str(&format!("#{name} = {value}{env}{default}\n"));
        }
    }
    out
}

fn parse_bool(var: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::Env { var, value: v.to_string(), expected: "true or false" }),
    }
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
}
