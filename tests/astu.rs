//! ASTU export (rules.md §5) through the binary, against real PostgreSQL and real files:
//! auto export by load-sales, `export-astu`, `--shift`, re-export, and the failures that
//! must leave a shift unexported without undoing its sales.

mod common;

use std::{fs, path::Path};

use common::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/reports");

/// The ASTU file of shift 412 of cash 17 (fixtures/reports/8-17-412.json), by hand: only the
/// items of closed sale and return documents (not the cash_in 4, the cash_out 7, the open
/// sale 8), by document number then position; quantities with 3 fraction digits, money
/// with 2 (`1` → `1.000`, `1000` → `1000.00`, a missing discount → `0.00`); the close time
/// `20:05:00.250` without its fraction.
const SHIFT_412: &str = "\
shop;cash;shift;workshiftid;docnum;doctype;time_end;ware;dept;quantity;price;discount;total
8;17;412;1;1;sale;2026-11-20T20:05:00;4601;3;2.000;89.90;10.00;169.80
8;17;412;1;1;sale;2026-11-20T20:05:00;4602;5;0.500;300.00;0.00;150.00
8;17;412;1;2;sale;2026-11-20T21:00:00;4603;3;1.000;1000.00;0.00;1000.00
8;17;412;1;3;return;2026-11-20T22:00:00;4601;3;1.000;89.90;0.00;89.90
8;17;412;1;5;sale;2026-11-21T00:30:00;4604;7;3.000;50.00;0.00;150.00
8;17;412;1;6;return;2026-11-21T01:00:00;4604;7;1.000;50.00;0.00;50.00
";

/// Queues the three report fixtures in the order that gives them workshiftid 1, 2, 3.
fn queue_fixtures(dirs: &Dirs) {
    for (i, name) in ["8-17-412.json", "8-18-7.json", "8-17-413.json"].iter().enumerate() {
        dirs.put(name, &fs::read(Path::new(FIXTURES).join(name)).unwrap(), i as u64 + 1);
    }
}

async fn db() -> TestDb {
    let db = TestDb::cashserver().await;
    db.client.batch_execute(DICTIONARY).await.unwrap();
    db
}

fn export_astu(db: &TestDb, dirs: &Dirs, args: &[&str]) -> Run {
    let mut c = csjobs(&db.url, dirs);
    c.arg("export-astu").args(args);
    run(c)
}

fn load_without_auto_export(db: &TestDb, dirs: &Dirs) -> Run {
    let mut c = csjobs(&db.url, dirs);
    c.env("CSJOBS_ASTU_AUTO_EXPORT", "false").arg("load-sales");
    run(c)
}

/// Every file under the outbox, relative, sorted (temporary files included, so a leftover
/// shows).
fn outbox(dirs: &Dirs) -> Vec<String> {
    let mut v: Vec<String> = walkdir::WalkDir::new(&dirs.astu)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(&dirs.astu).unwrap().display().to_string())
        .collect();
    v.sort();
    v
}

async fn exported(db: &TestDb) -> Vec<String> {
    let rows =
        db.rows("select workshiftid || ':' || (astu_exported_at is not null) from workshift order by 1");
    rows.await.into_iter().map(|r| r.trim_matches(['(', ')']).to_string()).collect()
}

#[tokio::test]
async fn a_file_that_closes_a_shift_exports_it_byte_for_byte() {
    let db = db().await;
    let dirs = Dirs::new();
    queue_fixtures(&dirs);
    let r = load_sales(&db, &dirs, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("astu files        2"), "{}", r.stdout);
    // The open shift 413 (workshiftid 3) is not exported by the load.
    assert_eq!(outbox(&dirs), ["8/17-412-1.csv", "8/18-7-2.csv"]);
    assert_eq!(fs::read_to_string(dirs.astu.join("8/17-412-1.csv")).unwrap(), SHIFT_412);
    assert_eq!(
        fs::read_to_string(dirs.astu.join("8/18-7-2.csv")).unwrap(),
        "shop;cash;shift;workshiftid;docnum;doctype;time_end;ware;dept;quantity;price;discount;total\n\
         8;18;7;2;1;sale;2026-11-20T12:01:00;4610;2;1.000;20.00;0.00;20.00\n"
    );
    assert_eq!(exported(&db).await, ["1:true", "2:true", "3:false"]);
    // Nothing left to export; a second run writes nothing.
    let r = export_astu(&db, &dirs, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("0 shifts exported"), "{}", r.stdout);
}

#[tokio::test]
async fn export_astu_takes_the_closed_unexported_shifts_and_shift_re_exports() {
    let db = db().await;
    let dirs = Dirs::new();
    queue_fixtures(&dirs);
    assert_eq!(load_without_auto_export(&db, &dirs).code, 0);
    assert!(outbox(&dirs).is_empty());
    assert_eq!(exported(&db).await, ["1:false", "2:false", "3:false"]);

    let r = export_astu(&db, &dirs, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("2 shifts exported"), "{}", r.stdout);
    assert_eq!(outbox(&dirs), ["8/17-412-1.csv", "8/18-7-2.csv"]);
    assert_eq!(fs::read_to_string(dirs.astu.join("8/17-412-1.csv")).unwrap(), SHIFT_412);
    assert_eq!(exported(&db).await, ["1:true", "2:true", "3:false"]);

    // The open shift, on demand.
    let r = export_astu(&db, &dirs, &["--shift", "3"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        fs::read_to_string(dirs.astu.join("8/17-413-3.csv")).unwrap(),
        "shop;cash;shift;workshiftid;docnum;doctype;time_end;ware;dept;quantity;price;discount;total\n\
         8;17;413;3;1;sale;2026-11-22T10:00:00;4620;1;1.000;10.00;0.00;10.00\n"
    );
    assert_eq!(exported(&db).await, ["1:true", "2:true", "3:true"]);

    // A re-export replaces the file whole.
    fs::write(dirs.astu.join("8/17-412-1.csv"), "damaged").unwrap();
    let r = export_astu(&db, &dirs, &["--shift", "1", "--shift", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("1 shifts exported"), "{}", r.stdout);
    assert_eq!(fs::read_to_string(dirs.astu.join("8/17-412-1.csv")).unwrap(), SHIFT_412);
    assert_eq!(outbox(&dirs), ["8/17-412-1.csv", "8/17-413-3.csv", "8/18-7-2.csv"]);

    // An unknown shift is a rejected input (exit 3), named; the others are exported.
    let r = export_astu(&db, &dirs, &["--shift", "999", "--shift", "2"]);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("workshiftid 999"), "{}", r.stdout);
    assert!(r.stdout.contains("1 shifts exported"), "{}", r.stdout);
}

#[tokio::test]
async fn a_shift_without_items_gets_a_header_only_file() {
    let db = db().await;
    let dirs = Dirs::new();
    let cash_in = serde_json::json!({
        "number": 1, "type": "cash_in", "opened_at": "2026-11-20T08:00:00",
        "closed_at": "2026-11-20T08:00:00", "items": [],
        "payments": [{ "type": "cash", "amount": "100.00" }]
    });
    dirs.put(
        "a.json",
        &sales_file(9, 21, 1, Some("2026-11-20T08:00:00"), Some("2026-11-20T20:00:00"), vec![cash_in]),
        1,
    );
    assert_eq!(load_sales(&db, &dirs, &[]).code, 0);
    assert_eq!(
        fs::read_to_string(dirs.astu.join("9/21-1-1.csv")).unwrap(),
        "shop;cash;shift;workshiftid;docnum;doctype;time_end;ware;dept;quantity;price;discount;total\n"
    );
}

/// The line a late document 9 of shift 412 adds to its ASTU file.
const LATE_LINE: &str = "8;17;412;1;9;sale;2026-11-20T10:01:00;4600000000011;1;1.000;5.00;0.00;5.00\n";

fn put_late_document(dirs: &Dirs, name: &str, secs: u64) {
    let late = sale(9, "5.00");
    dirs.put(name, &sales_file(8, 17, 412, Some("2026-11-20T20:00:00"), None, vec![late]), secs);
}

#[tokio::test]
async fn a_later_fragment_of_a_closed_shift_is_exported_again() {
    let db = db().await;
    let dirs = Dirs::new();
    queue_fixtures(&dirs);
    assert_eq!(load_sales(&db, &dirs, &[]).code, 0);
    assert_eq!(exported(&db).await, ["1:true", "2:true", "3:false"]);
    // A late document of the closed shift 412, sent without close time: its ASTU file is out
    // of date, and the auto export writes it again at once.
    put_late_document(&dirs, "late.json", 10);
    let r = load_sales(&db, &dirs, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("astu files        1"), "{}", r.stdout);
    assert_eq!(exported(&db).await, ["1:true", "2:true", "3:false"]);
    assert_eq!(
        fs::read_to_string(dirs.astu.join("8/17-412-1.csv")).unwrap(),
        format!("{SHIFT_412}{LATE_LINE}")
    );
    // A file that only repeats the head of the open shift 413 (no documents) changes nothing.
    dirs.put("head.json", &sales_file(8, 17, 413, Some("2026-11-22T09:00:00"), None, vec![]), 11);
    let r = load_sales(&db, &dirs, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains("astu files"), "{}", r.stdout);
    assert_eq!(exported(&db).await, ["1:true", "2:true", "3:false"]);
}

#[tokio::test]
async fn without_auto_export_a_later_fragment_leaves_the_shift_for_export_astu() {
    let db = db().await;
    let dirs = Dirs::new();
    queue_fixtures(&dirs);
    assert_eq!(load_sales(&db, &dirs, &[]).code, 0);
    put_late_document(&dirs, "late.json", 10);
    assert_eq!(load_without_auto_export(&db, &dirs).code, 0);
    // The ASTU file no longer matches the shift: not exported, and untouched.
    assert_eq!(exported(&db).await, ["1:false", "2:true", "3:false"]);
    assert_eq!(fs::read_to_string(dirs.astu.join("8/17-412-1.csv")).unwrap(), SHIFT_412);
    let r = export_astu(&db, &dirs, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("1 shifts exported"), "{}", r.stdout);
    assert_eq!(
        fs::read_to_string(dirs.astu.join("8/17-412-1.csv")).unwrap(),
        format!("{SHIFT_412}{LATE_LINE}")
    );
    assert_eq!(exported(&db).await, ["1:true", "2:true", "3:false"]);
}

/// The end state does not depend on how the queue was cut into batches or runs: the closing
/// file and a late fragment of the same shift in one batch, or in two runs, give the same
/// ASTU file and flags.
#[tokio::test]
async fn one_batch_or_two_runs_give_the_same_astu_file() {
    let mut outcomes = Vec::new();
    for runs in [1, 2] {
        let db = db().await;
        let dirs = Dirs::new();
        queue_fixtures(&dirs);
        if runs == 2 {
            assert_eq!(load_sales(&db, &dirs, &[]).code, 0);
        }
        put_late_document(&dirs, "late.json", 10);
        assert_eq!(load_sales(&db, &dirs, &[]).code, 0);
        outcomes.push((
            exported(&db).await,
            outbox(&dirs),
            fs::read_to_string(dirs.astu.join("8/17-412-1.csv")).unwrap(),
        ));
    }
    assert_eq!(outcomes[0], outcomes[1]);
    assert_eq!(outcomes[0].2, format!("{SHIFT_412}{LATE_LINE}"));
}

/// The narrowest window of the auto export: the file is renamed into the outbox, and the
/// process dies before the transaction that marks the shift exported commits. The next
/// load-sales, with an empty queue, writes the file again and marks the shift.
#[tokio::test]
async fn an_export_killed_before_its_commit_is_done_by_the_next_load() {
    let db = db().await;
    let dirs = Dirs::new();
    queue_fixtures(&dirs);
    // The backend kills itself when a shift is marked exported.
    db.client
        .batch_execute(
            "create function die() returns trigger language plpgsql as $$
             begin perform pg_terminate_backend(pg_backend_pid()); return new; end $$;
             create trigger die before update of astu_exported_at on workshift
                for each row when (new.astu_exported_at is not null) execute function die();",
        )
        .await
        .unwrap();
    let r = load_sales(&db, &dirs, &[]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("ASTU auto export"), "{}", r.stderr);
    // The sales are committed and moved; the files are written, the flags are not.
    assert_eq!(Dirs::names(&dirs.processed), ["8-17-412.json", "8-17-413.json", "8-18-7.json"]);
    assert_eq!(outbox(&dirs), ["8/17-412-1.csv", "8/18-7-2.csv"]);
    assert_eq!(exported(&db).await, ["1:false", "2:false", "3:false"]);
    assert_eq!(db.scalar_i64("select count(*) from workshift where astu_export_due").await, 2);

    db.client.batch_execute("drop trigger die on workshift").await.unwrap();
    fs::write(dirs.astu.join("8/17-412-1.csv"), "a stale copy").unwrap();
    let r = load_sales(&db, &dirs, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("astu files        2"), "{}", r.stdout);
    assert_eq!(fs::read_to_string(dirs.astu.join("8/17-412-1.csv")).unwrap(), SHIFT_412);
    assert_eq!(outbox(&dirs), ["8/17-412-1.csv", "8/18-7-2.csv"]);
    assert_eq!(exported(&db).await, ["1:true", "2:true", "3:false"]);
    assert_eq!(db.scalar_i64("select count(*) from workshift where astu_export_due").await, 0);
}

#[tokio::test]
async fn a_missing_outbox_leaves_the_shift_unexported_and_the_sales_loaded() {
    let db = db().await;
    let dirs = Dirs::new();
    queue_fixtures(&dirs);
    let missing = dirs.tmp.path().join("no-such-outbox");
    let mut c = csjobs(&db.url, &dirs);
    c.env("CSJOBS_ASTU_OUTBOX", &missing).arg("load-sales");
    let r = run(c);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains(&missing.display().to_string()), "{}", r.stderr);
    assert!(r.stderr.contains("CSJOBS_ASTU_OUTBOX"), "{}", r.stderr);
    assert!(r.stderr.contains("workshiftid 1"), "{}", r.stderr);
    // The sales are loaded and every file is in processed/.
    assert_eq!(Dirs::names(&dirs.processed), ["8-17-412.json", "8-17-413.json", "8-18-7.json"]);
    assert_eq!(db.scalar_i64("select count(*) from document").await, 10);
    assert_eq!(exported(&db).await, ["1:false", "2:false", "3:false"]);
    assert!(!missing.exists());
    // Once the outbox is there, the next load-sales writes what the failed one owed, even
    // with nothing queued (and so would export-astu).
    let r = load_sales(&db, &dirs, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("astu files        2"), "{}", r.stdout);
    assert_eq!(fs::read_to_string(dirs.astu.join("8/17-412-1.csv")).unwrap(), SHIFT_412);
    assert_eq!(exported(&db).await, ["1:true", "2:true", "3:false"]);
    // Nothing is owed any more: a further run writes nothing.
    let r = load_sales(&db, &dirs, &[]);
    assert!(!r.stdout.contains("astu files"), "{}", r.stdout);
}

#[tokio::test]
async fn a_full_disk_leaves_no_partial_file_and_the_shift_unexported() {
    let db = db().await;
    let dirs = Dirs::new();
    // 600 items: about 40 KB of ASTU file, on a 16 KiB tmpfs.
    let docs: Vec<_> = (1..=600).map(|n| sale(n, "12.34")).collect();
    dirs.put(
        "big.json",
        &sales_file(8, 17, 1, Some("2026-11-20T08:00:00"), Some("2026-11-20T22:00:00"), docs),
        1,
    );
    let mut c = csjobs(&db.url, &dirs);
    c.arg("load-sales");
    let listing = dirs.tmp.path().join("full-outbox.txt");
    let r = run(with_small_disk_listed(&dirs.astu, "16k", &c, &listing));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("No space left on device"), "{}", r.stderr);
    // The full outbox as the run left it, seen inside the namespace: its shop directory,
    // no ASTU file and no half-written temporary one.
    let full = fs::read_to_string(&listing).unwrap();
    assert!(full.lines().any(|l| l.starts_with("d ") && l.ends_with(" 8")), "{full}");
    assert!(!full.lines().any(|l| l.starts_with("f ")), "files left on the full outbox:\n{full}");
    assert_eq!(Dirs::names(&dirs.processed), ["big.json"]);
    assert_eq!(db.scalar_i64("select count(*) from goodsitem").await, 600);
    assert_eq!(exported(&db).await, ["1:false"]);
    // export-astu on the same full disk fails the same way (exit 1) and still marks nothing.
    let mut c = csjobs(&db.url, &dirs);
    c.arg("export-astu");
    let r = run(with_small_disk_listed(&dirs.astu, "16k", &c, &listing));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("workshiftid 1"), "{}", r.stderr);
    let full = fs::read_to_string(&listing).unwrap();
    assert!(!full.lines().any(|l| l.starts_with("f ")), "files left on the full outbox:\n{full}");
    assert_eq!(exported(&db).await, ["1:false"]);
    // On the real outbox it works, and the file has all 600 lines.
    let r = export_astu(&db, &dirs, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(fs::read_to_string(dirs.astu.join("8/17-1-1.csv")).unwrap().lines().count(), 601);
    assert_eq!(outbox(&dirs), ["8/17-1-1.csv"]);
}
