//! Operations (shared/spec/operations.md) through the real binary: JSON logs on every failure
//! path, journald priorities, dead man's switch pings against a local HTTP server,
//! `csjobs config` and `--version`.

mod common;

use std::{fs, net::TcpListener, process::Command};

use common::*;
use serde_json::Value;

/// Every stderr line of `r` is one JSON object; their levels.
fn json_lines(what: &str, r: &Run) -> Vec<Value> {
    assert!(!r.stderr.is_empty(), "{what}: nothing on stderr");
    r.stderr
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("{what}: not a JSON line ({e}): {l:?}"))
        })
        .inspect(|v| assert!(v.is_object(), "{what}: {v}"))
        .collect()
}

/// csjobs with a cash server DB that refuses connections.
fn bare(dirs: &Dirs) -> Command {
    csjobs("host=127.0.0.1 port=1 user=postgres dbname=nothing connect_timeout=3", dirs)
}

/// A failure path: what, the arguments, extra environment, the exit code.
type FailurePath<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>, i32);

#[test]
fn every_failure_path_logs_json_lines_only() {
    let dirs = Dirs::new();
    let cases: Vec<FailurePath> = vec![
        ("migrate, database down", vec!["migrate", "--cashserver"], vec![], 1),
        ("load-sales, database down", vec!["load-sales"], vec![], 1),
        (
            "load-sales --replay, database down",
            vec!["load-sales", "--replay", "--from", "2026-11-01", "--to", "2026-11-02"],
            vec![],
            1,
        ),
        ("transfer, no bonus DB", vec!["transfer"], vec![], 2),
        (
            "archive, no source directories",
            vec!["archive"],
            vec![("CSJOBS_PROCESSED_DIR", "/nonexistent/p")],
            1,
        ),
        ("trim-dicts, database down", vec!["trim-dicts"], vec![], 1),
        ("trim-db, database down", vec!["trim-db"], vec![], 1),
        ("export-astu, database down", vec!["export-astu"], vec![], 1),
        ("reconcile, no report chosen", vec!["reconcile"], vec![], 2),
        ("status, database down", vec!["status", "--format", "json"], vec![], 1),
        ("an unknown option", vec!["load-sales", "--bogus"], vec![], 2),
        ("an unknown command", vec!["bogus"], vec![], 2),
        ("a bad setting", vec!["load-sales"], vec![("CSJOBS_SALES_BATCH_FILES", "many")], 2),
        ("a bad --now", vec!["--now", "yesterday", "trim-db"], vec![], 2),
        ("a missing config file", vec!["--config", "/nonexistent/csjobs.toml", "config"], vec![], 2),
    ];
    for (what, args, env, code) in cases {
        let mut c = bare(&dirs);
        c.args(&args);
        for (k, v) in env {
            c.env(k, v);
        }
        let r = run(c);
        assert_eq!(r.code, code, "{what}: {}", r.stderr);
        let lines = json_lines(what, &r);
        let last = lines.last().unwrap();
        assert_eq!(last["level"], "ERROR", "{what}: the last line is the error: {last}");
        assert!(
            !r.stderr.contains("\ncsjobs: ") && !r.stderr.starts_with("csjobs: "),
            "{what}: a plain line beside the JSON"
        );
    }
    // The human format keeps the plain line for people.
    let mut c = bare(&dirs);
    c.args(["--log-format", "human", "trim-db"]);
    let r = run(c);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.lines().any(|l| l.starts_with("csjobs: cannot connect to the cash server DB")),
        "{}",
        r.stderr
    );
}

/// `c` run with JOURNAL_STREAM naming its own stderr, as systemd sets it for a unit.
fn under_journal(c: &Command) -> Command {
    through(&["sh", "-c", "JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec \"$0\" \"$@\""], c)
}

#[tokio::test]
async fn under_journald_every_line_carries_its_priority() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    dirs.put("bad.json", b"{ not json", 1);
    dirs.put("good.json", &sales_file(8, 17, 1, Some("2026-11-20T09:00:00"), None, vec![sale(1, "1.00")]), 2);
    for format in ["json", "human"] {
        fs::rename(dirs.broken.join("bad.json"), dirs.queue.join("bad.json")).ok();
        let mut c = csjobs(&db.url, &dirs);
        c.args(["--log-format", format, "load-sales"]);
        let r = run(under_journal(&c));
        assert_eq!(r.code, 3, "{}", r.stderr);
        let mut seen = std::collections::BTreeSet::new();
        for line in r.stderr.lines() {
            let (prio, rest) = line
                .strip_prefix('<')
                .and_then(|l| l.split_once('>'))
                .unwrap_or_else(|| panic!("{format}: a line without its priority: {line:?}"));
            seen.insert(prio.to_string());
            if format == "json" {
                let v: Value = serde_json::from_str(rest).unwrap_or_else(|e| panic!("{e}: {rest}"));
                let want = match v["level"].as_str().unwrap() {
                    "ERROR" => "3",
                    "WARN" => "4",
                    "INFO" => "6",
                    _ => "7",
                };
                assert_eq!(prio, want, "{line}");
            }
        }
        assert!(
            seen.contains("4") && seen.contains("6"),
            "{format}: a warning (the broken file) and info: {seen:?}"
        );
    }
    // A JOURNAL_STREAM that is not stderr (a child whose stderr was redirected) is ignored.
    let mut c = csjobs(&db.url, &dirs);
    c.env("JOURNAL_STREAM", "1:2").arg("load-sales");
    let r = run(c);
    assert!(r.stderr.lines().all(|l| l.starts_with('{')), "{}", r.stderr);
}

#[tokio::test]
async fn pings_start_and_the_exit_code_and_never_change_it() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    let server = HttpReceiver::start(200);
    let url = server.url("/ping/{job}");
    let with_ping = |c: &mut Command, url: &str| {
        c.env("CSJOBS_NOTIFY_PING_URL", url);
    };
    // A success: an empty queue.
    let mut c = csjobs(&db.url, &dirs);
    with_ping(&mut c, &url);
    c.arg("load-sales");
    assert_eq!(run(c).code, 0);
    assert_eq!(server.take_paths(), ["/ping/load-sales/start", "/ping/load-sales/0"]);
    // A rejected run: a broken file.
    dirs.put("bad.json", b"{", 1);
    let mut c = csjobs(&db.url, &dirs);
    with_ping(&mut c, &url);
    c.arg("load-sales");
    assert_eq!(run(c).code, 3);
    assert_eq!(server.take_paths(), ["/ping/load-sales/start", "/ping/load-sales/3"]);
    // A failure: the database is down; another job's name in the URL.
    let mut c = bare(&dirs);
    with_ping(&mut c, &url);
    c.arg("trim-db");
    assert_eq!(run(c).code, 1);
    assert_eq!(server.take_paths(), ["/ping/trim-db/start", "/ping/trim-db/1"]);
    // From the config file too, and not for `csjobs config`.
    let file = dirs.tmp.path().join("csjobs.toml");
    fs::write(&file, format!("[notify]\nping_url = \"http://127.0.0.1:{}/hc/\"\n", server.port)).unwrap();
    let mut c = csjobs(&db.url, &dirs);
    c.args(["--config", file.to_str().unwrap(), "export-astu"]);
    assert_eq!(run(c).code, 0);
    let mut c = csjobs(&db.url, &dirs);
    c.args(["--config", file.to_str().unwrap(), "config"]);
    assert_eq!(run(c).code, 0);
    assert_eq!(server.take_paths(), ["/hc/start", "/hc/0"]);

    // A ping server that refuses, or answers 500: a warning, the same exit codes.
    let refused = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let failing = HttpReceiver::start(500);
    for (what, url) in [
        ("refused", format!("http://127.0.0.1:{refused}/x")),
        ("500", format!("http://127.0.0.1:{}/x", failing.port)),
    ] {
        for (args, code) in [(vec!["load-sales"], 3), (vec!["reconcile"], 2)] {
            dirs.put(&format!("bad-{what}.json"), b"{", 9);
            let mut c = csjobs(&db.url, &dirs);
            with_ping(&mut c, &url);
            c.args(&args);
            let r = run(c);
            assert_eq!(r.code, code, "{what} {args:?}: {}", r.stderr);
            let warnings: Vec<Value> = json_lines(what, &r)
                .into_iter()
                .filter(|v| v["level"] == "WARN" && v["message"].as_str().unwrap().contains("ping"))
                .collect();
            assert_eq!(
                warnings.len(),
                2,
                "{what} {args:?}: a warning for /start and for the end: {}",
                r.stderr
            );
        }
    }
    assert_eq!(failing.take_paths().len(), 4);
}

#[test]
fn config_shows_each_value_with_its_origin_and_no_password() {
    let dirs = Dirs::new();
    let file = dirs.tmp.path().join("csjobs.toml");
    fs::write(
        &file,
        "[cashserver]\ndatabase_url = \"postgres://cs:file-s3cret@db.local/cash\"\n\
         [bonus]\ndatabase_url = \"host=bonus password='se cret' dbname=bonus\"\n\
         [paths]\nqueue = \"/from/file/queue\"\n[trim]\nkeep_days = 10\n",
    )
    .unwrap();
    let mut c = Command::new(csjobs_bin());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("CSJOBS_")) {
        c.env_remove(k);
    }
    c.env("CSJOBS_CONFIG", &file)
        .env("CSJOBS_TRIM_KEEP_DAYS", "20")
        .env("CSJOBS_NOTIFY_PING_URL", "https://hc:ping-s3cret@hc.local/abc")
        .args(["--now", "2026-11-24T12:00:00+03:00", "--log-format", "json", "config"]);
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = |key: &str| {
        r.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no {key} in\n{}", r.stdout))
            .to_string()
    };
    assert!(
        line("paths.queue").contains("/from/file/queue")
            && line("paths.queue").ends_with(&format!("file {}", file.display()))
    );
    assert!(
        line("trim.keep_days").contains(" 20 ")
            && line("trim.keep_days").ends_with("env CSJOBS_TRIM_KEEP_DAYS")
    );
    assert!(line("paths.processed").ends_with("default"));
    assert!(line("now").ends_with("flag --now"));
    assert!(line("log_format").ends_with("flag --log-format"));
    assert!(line("config").ends_with("env CSJOBS_CONFIG"));
    assert!(line("cashserver.database_url").contains("cs@db.local:5432/cash"));
    for secret in ["file-s3cret", "se cret", "cret'", "ping-s3cret"] {
        assert!(!r.stdout.contains(secret) && !r.stderr.contains(secret), "{secret} printed:\n{}", r.stdout);
    }
    // A bad file or value: exit 2, as every job would.
    fs::write(&file, "[paths]\nqueu = \"/x\"\n").unwrap();
    let mut c = csjobs("", &dirs);
    c.env("CSJOBS_CONFIG", &file).arg("config");
    let r = run(c);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("queu"), "{}", r.stderr);

    // --example is a commented file of every key that, uncommented, loads.
    let mut c = csjobs("", &dirs);
    c.args(["config", "--example"]);
    let example = run(c).stdout;
    for key in
        ["[status]", "#stale_after = \"2h\"", "CSJOBS_NOTIFY_PING_URL", "#queue = \"/opt/cashserver/queue\""]
    {
        assert!(example.contains(key), "{key}:\n{example}");
    }
}

#[test]
fn version_names_the_commit() {
    let out = Command::new(csjobs_bin()).arg("--version").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    let commit = text
        .trim()
        .strip_prefix(&format!("csjobs {} (commit ", env!("CARGO_PKG_VERSION")))
        .and_then(|t| t.strip_suffix(')'));
    let commit = commit.unwrap_or_else(|| panic!("{text}"));
    // Built from this checkout: the commit git names (or "unknown" outside a checkout).
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match head {
        Ok(h) if h.status.success() => assert_eq!(commit, String::from_utf8_lossy(&h.stdout).trim()),
        _ => assert_eq!(commit, "unknown"),
    }
}

/// A connection string that cannot be parsed is a configuration error (exit 2) naming its
/// key, found before anything connects, and no part of it is printed.
#[test]
fn a_malformed_connection_string_exits_2_naming_the_key_and_never_its_text() {
    let dirs = Dirs::new();
    for (var, key, text) in [
        ("CSJOBS_CASHSERVER_DATABASE_URL", "cashserver.database_url", "host=db password='se cret"),
        ("CSJOBS_BONUS_DATABASE_URL", "bonus.database_url", "postgres://b:se%20cret@db:port/bonus"),
    ] {
        let mut c = csjobs("postgres://cs@127.0.0.1:1/none", &dirs);
        c.env(var, text).arg("transfer");
        let r = run(c);
        assert_eq!(r.code, 2, "{var}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!("{key} is not a valid PostgreSQL connection string")),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("cret"), "{}", r.stderr);
    }
}
