//! `csjobs load-sales --replay` through the binary against real PostgreSQL: files found in
//! processed/ and in the `.tgz` archives, the period and cash filters, the same end state as
//! loading the files from the queue, idempotency, and the confirmation of long periods.

mod common;

use std::{fs, path::Path};

use common::*;
use serde_json::{json, Value};

/// A closed sale on `day` (YYYY-MM-DD).
fn doc(number: i64, price: &str, day: &str) -> Value {
    let mut d = sale(number, price);
    d["opened_at"] = json!(format!("{day}T10:00:00"));
    d["closed_at"] = json!(format!("{day}T10:01:00"));
    d
}

/// The files of the scenario, in the order they reach the queue: (name, content, period?).
fn scenario() -> Vec<(&'static str, Vec<u8>, bool)> {
    vec![
        // Cash 17, shift 1 opened 1 November; a second fragment re-sends document 2 changed.
        (
            "17-1-a.json",
            sales_file(
                8,
                17,
                1,
                Some("2026-11-01T08:00:00"),
                None,
                vec![doc(1, "10.00", "2026-11-01"), doc(2, "20.00", "2026-11-01")],
            ),
            true,
        ),
        (
            "17-1-b.json",
            sales_file(
                8,
                17,
                1,
                Some("2026-11-01T08:00:00"),
                Some("2026-11-01T20:00:00"),
                vec![doc(2, "25.00", "2026-11-01"), doc(3, "30.00", "2026-11-01")],
            ),
            true,
        ),
        (
            "18-5.json",
            sales_file(
                8,
                18,
                5,
                Some("2026-11-03T08:00:00"),
                Some("2026-11-03T20:00:00"),
                vec![doc(1, "5.00", "2026-11-03")],
            ),
            true,
        ),
        // Outside the period.
        (
            "21-7.json",
            sales_file(9, 21, 7, Some("2026-11-10T08:00:00"), None, vec![doc(1, "7.00", "2026-11-10")]),
            false,
        ),
        // No open time in the shift: dated by its earliest document.
        (
            "18-6.json",
            sales_file(
                8,
                18,
                6,
                None,
                None,
                vec![doc(4, "9.00", "2026-11-04"), doc(3, "8.00", "2026-11-04")],
            ),
            true,
        ),
    ]
}

/// Loaded after the archive run: stays in processed/.
fn late_file() -> (&'static str, Vec<u8>) {
    ("21-8.json", sales_file(9, 21, 8, Some("2026-11-05T23:59:00"), None, vec![doc(1, "1.00", "2026-11-05")]))
}

fn replay(db: &TestDb, dirs: &Dirs, args: &[&str]) -> Run {
    let mut c = csjobs(&db.url, dirs);
    c.args(["load-sales", "--replay"]).args(args).stdin(std::process::Stdio::null());
    run(c)
}

/// Every entry under `dir` with its size, but the archive lock (replay takes it too, and its
/// content names its last holder).
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir).min_depth(1) {
        let e = e.unwrap();
        if e.file_name() == ".csjobs-archive.lock" {
            continue;
        }
        out.push(format!("{} {}", e.path().display(), e.metadata().unwrap().len()));
    }
    out.sort();
    out
}

/// The original cash server: every file loaded from the queue, processed/ archived (with
/// `--now` 6 November), then one more file loaded that stays in processed/.
async fn original() -> (TestDb, Dirs) {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    for (i, (name, content, _)) in scenario().into_iter().enumerate() {
        dirs.put(name, &content, i as u64 * 10);
    }
    assert_eq!(load_sales(&db, &dirs, &[]).code, 0);
    let mut c = csjobs(&db.url, &dirs);
    c.args(["--now", "2026-11-06T03:00:00+03:00", "archive"]);
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(Dirs::names(&dirs.processed).is_empty());
    let (name, content) = late_file();
    dirs.put(name, &content, 100);
    assert_eq!(load_sales(&db, &dirs, &[]).code, 0);
    assert_eq!(Dirs::names(&dirs.processed), [name]);
    (db, dirs)
}

#[tokio::test]
async fn replay_rebuilds_the_period_from_archives_and_processed_like_the_queue_did() {
    let (db, dirs) = original().await;
    let backup = dirs.tmp.path().join("backup");
    let files_before = (listing(&dirs.processed), listing(&backup));

    // What loading exactly the files of the period through the queue gives.
    let expected = TestDb::cashserver().await;
    let qdirs = Dirs::new();
    let mut period: Vec<(&str, Vec<u8>)> =
        scenario().into_iter().filter(|(_, _, p)| *p).map(|(n, c, _)| (n, c)).collect();
    period.push(late_file());
    for (i, (name, content)) in period.iter().enumerate() {
        qdirs.put(name, content, i as u64 * 10);
    }
    assert_eq!(load_sales(&expected, &qdirs, &[]).code, 0);
    let want = expected.sales_state().await;
    assert!(!want.is_empty());

    // A new, empty cash server DB rebuilt from the archives and processed/.
    let rebuilt = TestDb::cashserver().await;
    let r = replay(&rebuilt, &dirs, &["--from", "2026-11-01", "--to", "2026-11-05"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(rebuilt.sales_state().await, want);
    assert!(r.stdout.contains("processed         5"), "{}", r.stdout);
    // The document re-sent in the second fragment has its newer content.
    assert_eq!(
        rebuilt.scalar_i64("select (total * 100)::bigint from document where docnum = 2 and total > 0").await,
        2500
    );
    // Files were read where they are: nothing moved, nothing unpacked.
    assert_eq!((listing(&dirs.processed), listing(&backup)), files_before);
    // The load log names where each replayed file came from, and is complete.
    let names =
        rebuilt.rows("select file_name from load_log where disposed_at is not null order by load_id").await;
    assert_eq!(names.len(), 5, "{names:?}");
    assert!(names[0].contains("processed-26-11-06.tgz#17-1-a.json"), "{names:?}");
    assert!(names[4].contains("/processed/21-8.json"), "{names:?}");
    assert_eq!(rebuilt.scalar_i64("select count(*) from load_log where disposed_at is null").await, 0);

    // Replaying again, or replaying into the original DB, changes nothing. The file whose
    // shift has no open date is refused as a second load of it from the queue would be
    // (rules.md §1: NULL both in the file and in the database): exit code 3, nothing written.
    for (target, to) in [(&rebuilt, "2026-11-05"), (&db, "2026-11-30")] {
        let before = target.sales_state().await;
        let r = replay(target, &dirs, &["--from", "2026-11-01", "--to", to, "--yes"]);
        assert_eq!(r.code, 3, "{}", r.stderr);
        assert!(r.stdout.contains("error             1"), "{}", r.stdout);
        assert!(r.stderr.contains("18-6.json") && r.stderr.contains("open date is NULL"), "{}", r.stderr);
        assert_eq!(target.sales_state().await, before);
    }
    assert_eq!(rebuilt.sales_state().await, want);
    // A later queue run moves nothing of what was replayed.
    assert_eq!(load_sales(&db, &dirs, &[]).code, 0);
    assert_eq!((listing(&dirs.processed), listing(&backup)), files_before);
}

#[tokio::test]
async fn replay_takes_only_the_chosen_cashes() {
    let (_db, dirs) = original().await;
    let fresh = TestDb::cashserver().await;
    let r = replay(
        &fresh,
        &dirs,
        &["--from", "2026-11-01", "--to", "2026-11-05", "--cash", "18", "--cash", "21"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        fresh.rows("select cashcode, shiftnum from workshift order by cashcode, shiftnum").await,
        ["(18,5)", "(18,6)", "(21,8)"]
    );
}

#[tokio::test]
async fn a_week_or_more_needs_yes_without_a_terminal() {
    let (_db, dirs) = original().await;
    let fresh = TestDb::cashserver().await;
    // 1..7 November is 7 days.
    let r = replay(&fresh, &dirs, &["--from", "2026-11-01", "--to", "2026-11-07"]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    assert_eq!(fresh.scalar_i64("select count(*) from workshift").await, 0);
    assert_eq!(fresh.scalar_i64("select count(*) from load_log").await, 0);
    // 6 days needs no confirmation; 7 days with --yes loads.
    let r = replay(&fresh, &dirs, &["--from", "2026-11-01", "--to", "2026-11-06"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = replay(&fresh, &dirs, &["--from", "2026-11-01", "--to", "2026-11-10", "--yes"]);
    assert_eq!(r.code, 3, "the shift without open date is refused the second time: {}", r.stderr);
    assert_eq!(fresh.scalar_i64("select count(*) from workshift").await, 5);
}

#[tokio::test]
async fn bad_periods_and_corrupt_archives_are_reported() {
    let (_db, dirs) = original().await;
    let fresh = TestDb::cashserver().await;
    let r = replay(&fresh, &dirs, &["--from", "2026-11-05", "--to", "2026-11-01"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = replay(&fresh, &dirs, &["--from", "2026-11-01"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let mut c = csjobs(&fresh.url, &dirs);
    c.args(["load-sales", "--from", "2026-11-01", "--to", "2026-11-02"]);
    assert_eq!(run(c).code, 2, "--from without --replay");

    // A damaged archive: the files of the others are replayed, the run fails naming it.
    let pa = dirs.tmp.path().join("backup/processed_archive");
    fs::write(pa.join("processed-26-11-02.tgz"), b"\x1f\x8b\x08\x00 not really gzip").unwrap();
    let r = replay(&fresh, &dirs, &["--from", "2026-11-01", "--to", "2026-11-05"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("processed-26-11-02.tgz"), "{}", r.stderr);
    assert_eq!(fresh.scalar_i64("select count(*) from workshift").await, 4);
}
