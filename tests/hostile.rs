//! "Hostile input never stops a store": the guards against what the world does to a cash
//! server, through the real binary against real PostgreSQL and real files. A replay and an
//! archive never undo each other, and a file a replay cannot read fails it; every job's run
//! log, `archive` included; a register that sends only broken files is seen; every
//! `--format json` is one JSON document; errors that used to be swallowed are reported.

mod common;

use std::{
    fs,
    io::Read,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use common::*;
use serde_json::{json, Value};

/// A closed shift of cash 17 (shop 8) opened on 1 November 2026, number `n`.
fn shift_file(n: i64) -> Vec<u8> {
    let mut d = sale(1, "10.00");
    d["opened_at"] = json!("2026-11-01T10:00:00");
    d["closed_at"] = json!("2026-11-01T10:01:00");
    sales_file(8, 17, n, Some("2026-11-01T08:00:00"), Some("2026-11-01T20:00:00"), vec![d])
}

/// `count` sales files in processed/, as a queue run leaves them.
fn processed_files(dirs: &Dirs, count: i64) -> Vec<String> {
    (1..=count)
        .map(|n| {
            let name = format!("17-{n}.json");
            let p = dirs.processed.join(&name);
            fs::write(&p, shift_file(n)).unwrap();
            set_mtime(&p, n as u64);
            name
        })
        .collect()
}

/// A replay of 1–2 November that waits `pause_ms` before each file of processed/.
fn spawn_replay(db: &TestDb, dirs: &Dirs, pause_ms: u64) -> Child {
    let mut c = csjobs(&db.url, dirs);
    c.env("CSJOBS_TEST_REPLAY_PAUSE_MS", pause_ms.to_string())
        .args(["load-sales", "--replay", "--from", "2026-11-01", "--to", "2026-11-02"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c.spawn().unwrap()
}

fn finish(mut child: Child) -> Run {
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    let mut stderr = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    Run { code: status.code().unwrap_or(-1), stdout, stderr }
}

fn backup(dirs: &Dirs) -> std::path::PathBuf {
    dirs.tmp.path().join("backup")
}

/// Waits until the archive lock file names `holder` (the run has taken the lock).
fn wait_for_holder(dirs: &Dirs, holder: &str) {
    let lock = backup(dirs).join(".csjobs-archive.lock");
    let started = Instant::now();
    while !fs::read_to_string(&lock).is_ok_and(|s| s.starts_with(holder)) {
        assert!(started.elapsed() < Duration::from_secs(60), "{holder} never took the archive lock");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn archive(db_url: Option<&str>, dirs: &Dirs) -> Run {
    let mut c = csjobs(db_url.unwrap_or(""), dirs);
    if db_url.is_none() {
        c.env_remove("CSJOBS_CASHSERVER_DATABASE_URL");
    }
    c.arg("archive");
    run(c)
}

/// The messages of JSON log lines.
fn messages(stderr: &str) -> String {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| format!("{} {}", v["message"].as_str().unwrap_or(""), v["error"].as_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---- 1. replay and archive -----------------------------------------------------------------

#[tokio::test]
async fn an_archive_run_waits_while_a_replay_reads_processed() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    let names = processed_files(&dirs, 5);
    let replay = spawn_replay(&db, &dirs, 1000);
    wait_for_holder(&dirs, "load-sales --replay");

    // The replay is under way: archive does not pack processed/ under it.
    let r = archive(Some(&db.url), &dirs);
    assert_eq!(r.code, 4, "archive during a replay: {}", r.stderr);
    assert!(messages(&r.stderr).contains("load-sales --replay"), "names the holder: {}", r.stderr);
    assert_eq!(Dirs::names(&dirs.processed), names, "nothing was archived");

    let r = finish(replay);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(db.scalar_i64("select count(*) from workshift").await, 5, "every file was replayed");
    assert_eq!(db.scalar_i64("select count(*) from load_log").await, 5);

    // The replay ended: archive runs.
    let r = archive(Some(&db.url), &dirs);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(Dirs::names(&dirs.processed).is_empty());
}

#[tokio::test]
async fn a_replay_waits_while_archive_holds_its_lock() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    processed_files(&dirs, 1);
    fs::create_dir_all(backup(&dirs)).unwrap();
    let path = backup(&dirs).join(".csjobs-archive.lock");
    fs::write(&path, "archive (pid 1 on elsewhere)\n").unwrap();
    let lock = fs::File::open(&path).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let r = finish(spawn_replay(&db, &dirs, 0));
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(messages(&r.stderr).contains("archive (pid 1 on elsewhere)"), "{}", r.stderr);
    assert_eq!(db.scalar_i64("select count(*) from load_log").await, 0, "nothing was replayed");
    drop(lock);
    assert_eq!(finish(spawn_replay(&db, &dirs, 0)).code, 0);
}

#[tokio::test]
async fn a_file_that_vanishes_under_a_replay_fails_it_by_name() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    processed_files(&dirs, 3);
    let replay = spawn_replay(&db, &dirs, 2000);
    wait_for_holder(&dirs, "load-sales --replay");
    // The first file's row in the load log: processed/ was listed before any file was read,
    // and with the reader pausing 2 s before each file (room for a loaded machine), 17-3 is
    // not read yet.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while db.scalar_i64("select count(*) from load_log").await == 0 {
        assert!(std::time::Instant::now() < deadline, "the replay loaded nothing in 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fs::remove_file(dirs.processed.join("17-3.json")).unwrap();
    let r = finish(replay);
    assert_eq!(r.code, 1, "a file the replay cannot read is a failure: {}", r.stderr);
    let m = messages(&r.stderr);
    assert!(m.contains(&dirs.processed.join("17-3.json").display().to_string()), "names the file: {m}");
    assert!(m.contains("not replayed"), "{m}");
    assert_eq!(db.scalar_i64("select count(*) from load_log").await, 2, "the others were replayed");
}

// ---- 3. archive's run log ------------------------------------------------------------------

#[tokio::test]
async fn a_failing_archive_shows_as_failed_in_status() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    processed_files(&dirs, 2);
    fs::remove_dir(&dirs.error).unwrap();
    let r = archive(Some(&db.url), &dirs);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(Dirs::names(&dirs.processed).is_empty(), "processed/ was archived all the same");

    let mut c = csjobs(&db.url, &dirs);
    c.args(["status", "--format", "json"]);
    let s = run(c);
    let v: Value = serde_json::from_str(&s.stdout).unwrap_or_else(|e| panic!("{e}: {}", s.stdout));
    let job = v["jobs"].as_array().unwrap().iter().find(|j| j["job"] == "archive").cloned();
    let job = job.unwrap_or_else(|| panic!("no archive in {}", v["jobs"]));
    assert_eq!(job["last_run"]["outcome"], "failed", "{job}");
    assert_eq!(job["last_run"]["exit_code"], 1, "{job}");
    assert_eq!(job["last_run"]["counters"]["processed"]["deleted"], 2, "{job}");
    assert!(job["last_success"].is_null(), "{job}");
    assert_eq!(s.code, 3, "a failed last run is unhealthy: {}", s.stdout);
    let problems = v["problems"].to_string();
    assert!(problems.contains("archive"), "{problems}");
    // Its reason is in the error messages too.
    assert_eq!(db.scalar_i64("select count(*) from error_message where job = 'archive'").await, 1);

    // Fixed: the next run is done.
    fs::create_dir(&dirs.error).unwrap();
    assert_eq!(archive(Some(&db.url), &dirs).code, 0);
    assert_eq!(
        db.rows("select outcome, exit_code from job_run where job = 'archive' order by run_id").await,
        ["(failed,1)", "(done,0)"]
    );
}

#[test]
fn archive_without_a_database_or_with_it_down_still_archives() {
    for url in [None, Some("postgres://postgres@127.0.0.1:1/none?connect_timeout=2")] {
        let dirs = Dirs::new();
        processed_files(&dirs, 2);
        let r = archive(url, &dirs);
        assert_eq!(r.code, 0, "{url:?}: {}", r.stderr);
        assert!(Dirs::names(&dirs.processed).is_empty(), "{url:?}");
        assert_eq!(Dirs::names(&backup(&dirs).join("processed_archive")).len(), 1);
        assert!(messages(&r.stderr).contains("run log"), "the missing run log is a warning: {}", r.stderr);
    }
}

#[tokio::test]
async fn trim_db_removes_killed_runs_past_the_retention() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    db.client
        .batch_execute(
            "insert into job_run (job, host, pid, started_at, finished_at, outcome, exit_code)
             values ('archive', 'h', 1, now() - interval '200 days', null, null, null),
                    ('archive', 'h', 2, now() - interval '200 days', now() - interval '200 days', 'done', 0),
                    ('archive', 'h', 3, now() - interval '1 day', null, null, null)",
        )
        .await
        .unwrap();
    let mut c = csjobs(&db.url, &dirs);
    c.args(["trim-db", "--keep-days", "180"]);
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The killed run of 200 days ago went with the finished one; the recent one stays (and
    // trim-db's own run).
    assert_eq!(
        db.rows("select pid from job_run where job = 'archive' order by pid").await,
        ["(3)"],
        "killed runs are trimmed like the rest"
    );
}

// ---- 4. a register that sends only broken files -------------------------------------------

#[tokio::test]
async fn a_register_that_sends_only_broken_files_is_in_errors() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    // Rule 7: the item's sum is not quantity × price − discount. Shop and cash are readable.
    let mut d = sale(1, "10.00");
    d["items"][0]["sum"] = json!("11.00");
    d["payments"][0]["amount"] = json!("11.00");
    dirs.put("17-1.json", &sales_file(8, 17, 1, Some("2026-11-20T08:00:00"), None, vec![d]), 1);
    // Not even JSON: no register to count it for.
    dirs.put("junk.json", b"{ not json", 2);
    let r = load_sales(&db, &dirs, &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(Dirs::names(&dirs.broken), ["17-1.json", "junk.json"]);
    assert_eq!(
        db.rows("select file_name, shopcode, cashcode from load_log order by 1").await,
        ["(17-1.json,8,17)", "(junk.json,,)"]
    );

    let mut c = csjobs(&db.url, &dirs);
    c.args(["status", "--format", "json"]);
    let s = run(c);
    let v: Value = serde_json::from_str(&s.stdout).unwrap_or_else(|e| panic!("{e}: {}", s.stdout));
    let reg = v["registers"].as_array().unwrap().iter().find(|r| r["cash"] == 17).cloned().unwrap();
    assert_eq!(reg["state"], "errors", "{reg}");
    assert_eq!(reg["broken"], 1, "{reg}");
    assert_eq!(reg["files"], 0, "{reg}");
    assert!(reg["last_contact"].is_string(), "{reg}");
    // Its neighbour sent nothing at all.
    let other = v["registers"].as_array().unwrap().iter().find(|r| r["cash"] == 18).cloned().unwrap();
    assert_eq!(other["state"], "never", "{other}");
}

// ---- 5. every --format json is one JSON document -------------------------------------------

/// stdout is exactly one JSON value (serde_json refuses anything after it but whitespace).
fn one_document(what: &str, r: &Run) -> Value {
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("{what}: stdout is not one JSON document ({e}):\n{}", r.stdout))
}

#[tokio::test]
async fn every_format_json_prints_exactly_one_document() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    // Some sales, so the reports have rows; the register's last contact is old by --now.
    dirs.put(
        "17-1.json",
        &sales_file(
            8,
            17,
            1,
            Some("2026-11-20T08:00:00"),
            Some("2026-11-20T20:00:00"),
            vec![sale(1, "10.00")],
        ),
        1,
    );
    assert_eq!(load_sales(&db, &dirs, &[]).code, 0);
    // Its last contact five hours before --now: silent by then (watch.silent_after 1h).
    db.client.batch_execute("update load_log set finished_at = '2026-11-24T10:00:00+03'").await.unwrap();
    let shift = db.scalar_i64("select workshiftid from workshift").await.to_string();
    let hook = HttpReceiver::start(200);
    let now = "2026-11-24T15:00:00+03:00";
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("status", vec!["status", "--format", "json"]),
        ("status --problems", vec!["status", "--problems", "--format", "json"]),
        ("revenue-watch --dry-run", vec!["revenue-watch", "--dry-run", "--format", "json"]),
        ("revenue-watch", vec!["revenue-watch", "--format", "json"]),
        ("reconcile --cash", vec!["reconcile", "--cash", "17", "--format", "json"]),
        ("reconcile --shop", vec!["reconcile", "--shop", "8", "--format", "json"]),
        (
            "reconcile --departments",
            vec!["reconcile", "--departments", "--shift", &shift, "--format", "json"],
        ),
        ("reconcile, no rows", vec!["reconcile", "--cash", "18", "--format", "json"]),
    ];
    for (what, args) in cases {
        let mut c = csjobs(&db.url, &dirs);
        c.env("CSJOBS_NOW", now).env("CSJOBS_ALERTS_WEBHOOK_URL", hook.url("/hook")).args(&args);
        let r = run(c);
        assert!([0, 3].contains(&r.code), "{what}: {}", r.stderr);
        let v = one_document(what, &r);
        if what == "revenue-watch --dry-run" {
            // Cash 17 is silent by now: the message that would be sent is in the document.
            let m = &v["would_send"];
            assert!(m["subject"].is_string() && m["text"].as_str().is_some_and(|t| t.contains("17")), "{v}");
        }
    }
    // Sent by the run without --dry-run; a second dry run has nothing due: `would_send` null.
    let mut c = csjobs(&db.url, &dirs);
    c.env("CSJOBS_NOW", now).args(["revenue-watch", "--dry-run", "--format", "json"]);
    let r = run(c);
    let v = one_document("revenue-watch --dry-run, nothing due", &r);
    assert!(v.get("would_send").is_some_and(Value::is_null), "{v}");
}

// ---- 6. errors that were swallowed ---------------------------------------------------------

#[tokio::test]
async fn a_run_log_failure_that_cannot_be_recorded_is_logged() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    // The error message list refuses every row (a full table space would do the same).
    db.client
        .batch_execute(
            "create function refuse() returns trigger language plpgsql as
               $$ begin raise exception 'error_message is read-only today'; end $$;
             create trigger refuse before insert on error_message for each row execute function refuse();",
        )
        .await
        .unwrap();
    fs::remove_dir(&dirs.error).unwrap();
    let r = archive(Some(&db.url), &dirs);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = messages(&r.stderr);
    assert!(m.contains("could not record this run's failure"), "{m}");
    assert!(m.contains("error_message"), "with the reason: {m}");
    assert_eq!(db.rows("select outcome from job_run where job = 'archive'").await, ["(failed)"]);
}

#[tokio::test]
async fn an_unknown_disposition_in_the_load_log_is_an_error_naming_it() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    dirs.put("17-1.json", &shift_file(1), 1);
    // A hand-made row of a value csjobs never writes (the check constraint dropped first).
    db.client
        .batch_execute(
            "alter table load_log drop constraint load_log_disposition_check;
             insert into load_log (file_name, file_size, content_sha256, disposition, started_at, finished_at)
             values ('17-1.json', 1, 'x', 'lost', now(), now())",
        )
        .await
        .unwrap();
    let r = load_sales(&db, &dirs, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let m = messages(&r.stderr);
    assert!(m.contains("\"lost\""), "names the value: {m}");
    assert_eq!(Dirs::names(&dirs.queue), ["17-1.json"], "the file stays where it is");
    assert!(Dirs::names(&dirs.broken).is_empty());
}
