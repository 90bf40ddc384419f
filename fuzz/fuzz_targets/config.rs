//! The config file and its env twins: any TOML text with any values for the env variables
//! csjobs reads goes through the same `Config::from_toml` as `Config::load`. No panic; an
//! error never shows a password given in a connection string or URL.
#![no_main]

use std::path::Path;

use arbitrary::Arbitrary;
use csjobs::core::config::{Config, ConfigSource};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    toml: String,
    env: Vec<(u8, String)>,
    now: Option<String>,
}

/// The env variables a fuzz case may set (a few of each kind: URL, path, number, duration).
const VARS: &[&str] = &[
    "CSJOBS_CASHSERVER_DATABASE_URL",
    "CSJOBS_BONUS_DATABASE_URL",
    "CSJOBS_QUEUE_DIR",
    "CSJOBS_ARCHIVE_RETENTION_DAYS",
    "CSJOBS_TRIM_KEEP_DAYS",
    "CSJOBS_SALES_MAX_FILE_BYTES",
    "CSJOBS_ASTU_AUTO_EXPORT",
    "CSJOBS_ALERTS_SMTP_URL",
    "CSJOBS_ALERTS_WEBHOOK_URL",
    "CSJOBS_NOTIFY_PING_URL",
    "CSJOBS_STATUS_STALE_AFTER",
    "CSJOBS_WATCH_SILENT_AFTER",
];

const SECRET: &str = "Fuzz5ecret";

fuzz_target!(|input: Input| {
    let env: Vec<(&str, String)> =
        input.env.iter().map(|(k, v)| (VARS[usize::from(*k) % VARS.len()], v.clone())).collect();
    let lookup = |k: &str| env.iter().rev().find(|(name, _)| *name == k).map(|(_, v)| v.clone());
    let source = ConfigSource { now: input.now.clone(), ..Default::default() };
    match Config::from_toml(&input.toml, Path::new("/fuzz/csjobs.toml"), &source, &lookup) {
        Ok(c) => {
            // What `csjobs config` shows of a URL setting (SMTP, webhook, ping) is
            // `scheme://host[:port]/…` and nothing else: no user, password, path or query,
            // however the URL was written (a host is no secret). Connection strings show
            // `user@host:port/db` from the parsed value, checked by the conninfo target.
            for s in c.settings.iter().filter(|s| s.key.ends_with("_url") && !s.key.ends_with("database_url")) {
                let v = s.value.as_str();
                if v == "-" || v == "(not a valid URL)" || v.ends_with(":…") {
                    continue;
                }
                let rest = v.split_once("://").map(|(_, r)| r).unwrap_or_else(|| panic!("{}: {v}", s.key));
                let host = rest.strip_suffix("/…").unwrap_or_else(|| panic!("{} shows more than its host: {v}", s.key));
                assert!(!host.contains('/') && !host.contains('?') && !host.contains('#'), "{}: {v}", s.key);
            }
        }
        Err(e) => {
            let shown = e.to_string();
            // A secret placed as a password of a URL setting shows in no error (a bad value
            // of another setting, a number say, is no secret and is named as given).
            let secret_in =
                |url: bool| env.iter().any(|(k, v)| k.ends_with("_URL") == url && v.contains(SECRET));
            let elsewhere = secret_in(false)
                || input.toml.contains(SECRET)
                || input.now.as_deref().is_some_and(|n| n.contains(SECRET));
            if secret_in(true) && !elsewhere {
                assert!(!shown.contains(SECRET), "{shown}");
            }
        }
    }
});
