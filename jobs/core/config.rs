//! The one typed configuration of csjobs (shared/spec/cli.md, "Configuration keys").
//!
//! Sources, strongest first: command-line options, environment variables, the TOML file,
//! defaults. Everything is merged here, before any job starts; a job receives a [`Config`]
//! and never reads the environment or raw strings itself.

use std::{fmt, fs, path::PathBuf};

use chrono::{DateTime, FixedOffset, Local};
use serde::Deserialize;

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
}

/// A PostgreSQL connection string (URL or `key=value` form). Printing it masks the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DbUrl(String);

impl DbUrl {
    pub fn new(s: impl Into<String>) -> Self {
        DbUrl(s.into())
    }
    /// The real string, for connecting only: never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_password(&self.0))
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbUrl({self})")
    }
}

/// Replaces the password of a connection string by `***`, in both the URL form
/// (`postgres://user:secret@host/db`, `?password=secret`) and the `key=value` form.
pub fn mask_password(s: &str) -> String {
    if let Some(scheme_end) = s.find("://") {
        let rest_start = scheme_end + 3;
        let rest = &s[rest_start..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let mut out = s[..rest_start].to_string();
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        let tail = &rest[authority_end..];
        match tail.find('?') {
            Some(q) => {
                out.push_str(&tail[..q]);
                out.push_str(&mask_query_password(&tail[q..]));
            }
            None => out.push_str(tail),
        }
        out
    } else {
        mask_keyword_password(s)
    }
}

fn mask_query_password(q: &str) -> String {
    let Some(qs) = q.strip_prefix('?') else {
        return q.to_string();
    };
    let parts: Vec<String> = qs
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_string(),
        })
        .collect();
    format!("?{}", parts.join("&"))
}

fn mask_keyword_password(s: &str) -> String {
    // key = value pairs; values may be 'quoted' with \' escapes.
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        // copy whitespace
        if b[i].is_ascii_whitespace() {
            out.push(b[i] as char);
            i += 1;
            continue;
        }
        let key_start = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &s[key_start..i];
        let mut sep_end = i;
        while sep_end < b.len() && (b[sep_end].is_ascii_whitespace() || b[sep_end] == b'=') {
            sep_end += 1;
        }
        out.push_str(&s[key_start..sep_end]);
        i = sep_end;
        let val_start = i;
        if i < b.len() && b[i] == b'\'' {
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(b.len());
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
        }
        if key.eq_ignore_ascii_case("password") {
            out.push_str("***");
        } else {
            out.push_str(&s[val_start..i]);
        }
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
    /// The moment the job takes as "now" (`--now` / `CSJOBS_NOW`, else the real clock).
    pub now: DateTime<FixedOffset>,
    /// True when `now` was given explicitly.
    pub now_is_fixed: bool,
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

/// What the command line says about where the config comes from.
#[derive(Debug, Default, Clone)]
pub struct ConfigSource {
    /// `--config FILE` or `CSJOBS_CONFIG`; when given, the file must exist.
    pub file: Option<PathBuf>,
    /// `--now` or `CSJOBS_NOW`.
    pub now: Option<String>,
}

impl Config {
    /// Merges file, environment (through `env`) and defaults. Command-line overrides of
    /// single keys (e.g. `trim-db --keep-days`) are applied by the job's options on top.
    pub fn load(source: &ConfigSource, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let file = match &source.file {
            Some(path) => read_file(path)?,
            None => {
                let path = PathBuf::from(DEFAULT_CONFIG_FILE);
                if path.exists() {
                    read_file(&path)?
                } else {
                    FileConfig::default()
                }
            }
        };
        let env_str = |var: &'static str| env(var).filter(|v| !v.is_empty());
        let paths = file.paths.unwrap_or_default();
        let sales = file.sales.unwrap_or_default();
        let path = |var: &'static str, from_file: Option<PathBuf>, default: &str| {
            env_str(var).map(PathBuf::from).or(from_file).unwrap_or_else(|| default.into())
        };
        let now_text = source.now.clone().or_else(|| env_str("CSJOBS_NOW"));
        let (now, now_is_fixed) = match now_text {
            Some(text) => (
                DateTime::parse_from_rfc3339(text.trim())
                    .map_err(|_| ConfigError::Now { value: text.clone() })?,
                true,
            ),
            None => (Local::now().fixed_offset(), false),
        };
        let cfg = Config {
            cashserver_url: env_str("CSJOBS_CASHSERVER_DATABASE_URL")
                .or(file.cashserver.and_then(|s| s.database_url))
                .map(DbUrl),
            bonus_url: env_str("CSJOBS_BONUS_DATABASE_URL")
                .or(file.bonus.and_then(|s| s.database_url))
                .map(DbUrl),
            paths: Paths {
                queue: path("CSJOBS_QUEUE_DIR", paths.queue, "/opt/cashserver/queue"),
                processed: path("CSJOBS_PROCESSED_DIR", paths.processed, "/opt/cashserver/processed"),
                error: path("CSJOBS_ERROR_DIR", paths.error, "/opt/cashserver/error"),
                broken: path("CSJOBS_BROKEN_DIR", paths.broken, "/opt/cashserver/broken"),
                backup: path("CSJOBS_BACKUP_DIR", paths.backup, "/opt/backup"),
                astu_outbox: path("CSJOBS_ASTU_OUTBOX", paths.astu_outbox, "/opt/cashserver/astu"),
            },
            archive_retention_days: env_parse(
                &env_str,
                "CSJOBS_ARCHIVE_RETENTION_DAYS",
                "a whole number of days",
            )?
            .or(file.archive.and_then(|a| a.retention_days))
            .unwrap_or(30),
            trim_keep_days: env_parse(&env_str, "CSJOBS_TRIM_KEEP_DAYS", "a whole number of days")?
                .or(file.trim.and_then(|t| t.keep_days))
                .unwrap_or(180),
            sales: SalesSettings {
                max_file_bytes: env_parse(
                    &env_str,
                    "CSJOBS_SALES_MAX_FILE_BYTES",
                    "a whole number of bytes",
                )?
                .or(sales.max_file_bytes)
                .unwrap_or(268_435_456),
                batch_files: env_parse(&env_str, "CSJOBS_SALES_BATCH_FILES", "a whole number")?
                    .or(sales.batch_files)
                    .unwrap_or(1000),
                batch_items: env_parse(&env_str, "CSJOBS_SALES_BATCH_ITEMS", "a whole number")?
                    .or(sales.batch_items)
                    .unwrap_or(50_000),
            },
            transfer_batch_rows: env_parse(&env_str, "CSJOBS_TRANSFER_BATCH_ROWS", "a whole number")?
                .or(file.transfer.and_then(|t| t.batch_rows))
                .unwrap_or(10_000),
            astu_auto_export: env_parse_bool(&env_str, "CSJOBS_ASTU_AUTO_EXPORT")?
                .or(file.astu.and_then(|a| a.auto_export))
                .unwrap_or(true),
            now,
            now_is_fixed,
        };
        if cfg.sales.batch_files == 0 {
            return Err(ConfigError::Range {
                key: "sales.batch_files",
                value: "0".into(),
                expected: "at least 1",
            });
        }
        if cfg.transfer_batch_rows == 0 {
            return Err(ConfigError::Range {
                key: "transfer.batch_rows",
                value: "0".into(),
                expected: "at least 1",
            });
        }
        if cfg.sales.batch_items == 0 {
            return Err(ConfigError::Range {
                key: "sales.batch_items",
                value: "0".into(),
                expected: "at least 1",
            });
        }
        Ok(cfg)
    }
}

fn read_file(path: &PathBuf) -> Result<FileConfig, ConfigError> {
    let text = fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.clone(), message: e.to_string() })
}

fn env_parse<T: std::str::FromStr>(
    env: &dyn Fn(&'static str) -> Option<String>,
    var: &'static str,
    expected: &'static str,
) -> Result<Option<T>, ConfigError> {
    match env(var) {
        None => Ok(None),
        Some(v) => v.trim().parse().map(Some).map_err(|_| ConfigError::Env { var, value: v, expected }),
    }
}

fn env_parse_bool(
    env: &dyn Fn(&'static str) -> Option<String>,
    var: &'static str,
) -> Result<Option<bool>, ConfigError> {
    match env(var) {
        None => Ok(None),
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Some(true)),
            "false" | "0" | "no" | "off" => Ok(Some(false)),
            _ => Err(ConfigError::Env { var, value: v, expected: "true or false" }),
        },
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
        Config::load(&ConfigSource { file: path, now: None }, &|k| env.get(k).cloned())
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
    fn missing_explicit_file_is_an_error() {
        let e =
            Config::load(&ConfigSource { file: Some("/nonexistent/csjobs.toml".into()), now: None }, &|_| {
                None
            })
            .unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }));
    }

    #[test]
    fn password_is_masked_in_every_form() {
        assert_eq!(
            mask_password("postgres://cs:s3cret@db.local:5432/cash"),
            "postgres://cs:***@db.local:5432/cash"
        );
        assert_eq!(mask_password("postgres://cs@db/cash"), "postgres://cs@db/cash");
        assert_eq!(
            mask_password("postgresql://db/cash?user=cs&password=s3cret"),
            "postgresql://db/cash?user=cs&password=***"
        );
        assert_eq!(
            mask_password("host=db user=cs password=s3cret dbname=cash"),
            "host=db user=cs password=*** dbname=cash"
        );
        assert_eq!(
            mask_password("host=db password = 'a b\\'c' dbname=cash"),
            "host=db password = *** dbname=cash"
        );
        assert!(!format!("{:?}", DbUrl::new("postgres://u:pw@h/d")).contains("pw@"));
    }
}
