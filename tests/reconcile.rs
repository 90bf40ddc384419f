//! `csjobs reconcile` (rules.md §6) against real PostgreSQL, on the report fixtures
//! (fixtures/reports/README.md). Every expected figure is computed by hand below.
//!
//! Shift 412 of cash 17 (workshiftid 1), closed documents only (the open sale 8 never counts):
//!   sale 1   items 169.80 + 150.00 = 319.80, cash 500.00 − change 180.20 = 319.80, closed 11-20
//!   sale 2   1000.00: card 600.00, cash 450.00 − 50.00 = 400.00,             closed 11-20
//!   return 3 89.90 cash,                                                    closed 11-20
//!   cash_in 4  1000.00,                                                     closed 11-20
//!   sale 5   150.00 card,                                                   closed 11-21
//!   return 6 50.00 sbp (non-cash),                                          closed 11-21
//!   cash_out 7 500.00,                                                      closed 11-21
//!   checks 5; sales cash 319.80 + 400.00 = 719.80, non-cash 600.00 + 150.00 = 750.00;
//!   returns cash 89.90, non-cash 50.00; revenue cash 629.90, non-cash 700.00;
//!   drawer 629.90 + 1000.00 − 500.00 = 1129.90.
//! Shift 413 of cash 17 (workshiftid 3), open: one card sale of 10.00, never exported.
//! Shift 7 of cash 18 (workshiftid 2), shop 8: one cash sale of 20.00 on 11-20.

mod common;

use std::{fs, path::Path};

use calamine::{open_workbook, Data, Reader, Xlsx};
use common::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/reports");

async fn loaded() -> (TestDb, Dirs) {
    let db = TestDb::cashserver().await;
    db.client.batch_execute(DICTIONARY).await.unwrap();
    let dirs = Dirs::new();
    for (i, name) in ["8-17-412.json", "8-18-7.json", "8-17-413.json"].iter().enumerate() {
        dirs.put(name, &fs::read(Path::new(FIXTURES).join(name)).unwrap(), i as u64 + 1);
    }
    let r = load_sales(&db, &dirs, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    (db, dirs)
}

fn reconcile(db: &TestDb, dirs: &Dirs, args: &[&str]) -> Run {
    let mut c = csjobs(&db.url, dirs);
    c.arg("reconcile").args(args);
    run(c)
}

const PER_SHIFT_CSV: &str = "\
workshiftid,shift,opened,closed,checks,sales_cash,sales_noncash,returns_cash,returns_noncash,revenue_cash,revenue_noncash,drawer,exported
1,412,2026-11-20T20:00:00,2026-11-21T02:00:00,5,719.80,750.00,89.90,50.00,629.90,700.00,1129.90,true
3,413,2026-11-22T09:00:00,,1,0.00,10.00,0.00,0.00,0.00,10.00,0.00,false
";

#[tokio::test]
async fn per_shift_of_a_cash() {
    let (db, dirs) = loaded().await;
    let r = reconcile(&db, &dirs, &["--cash", "17", "--format", "csv"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, PER_SHIFT_CSV);
    // csv is also the format when stdout is not a terminal.
    assert_eq!(reconcile(&db, &dirs, &["--cash", "17"]).stdout, PER_SHIFT_CSV);

    // The period is the shifts' open day, both ends included.
    let r = reconcile(&db, &dirs, &["--cash", "17", "--from", "2026-11-21", "--to", "2026-11-22"]);
    assert_eq!(r.stdout.lines().skip(1).map(|l| &l[..6]).collect::<Vec<_>>(), ["3,413,"]);
    let r = reconcile(&db, &dirs, &["--cash", "17", "--to", "2026-11-20"]);
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);

    // JSON: an array of objects, money as strings, exported as a boolean, null close time.
    let r = reconcile(&db, &dirs, &["--cash", "17", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!([
            { "workshiftid": 1, "shift": 412, "opened": "2026-11-20T20:00:00", "closed": "2026-11-21T02:00:00",
              "checks": 5, "sales_cash": "719.80", "sales_noncash": "750.00", "returns_cash": "89.90",
              "returns_noncash": "50.00", "revenue_cash": "629.90", "revenue_noncash": "700.00",
              "drawer": "1129.90", "exported": true },
            { "workshiftid": 3, "shift": 413, "opened": "2026-11-22T09:00:00", "closed": null,
              "checks": 1, "sales_cash": "0.00", "sales_noncash": "10.00", "returns_cash": "0.00",
              "returns_noncash": "0.00", "revenue_cash": "0.00", "revenue_noncash": "10.00",
              "drawer": "0.00", "exported": false }
        ])
    );
    // The keys come in column order.
    assert!(r.stdout.starts_with("[{\"workshiftid\":1,\"shift\":412,\"opened\":"), "{}", r.stdout);

    // The table marks the shift to re-export and says how.
    let r = reconcile(&db, &dirs, &["--cash", "17", "--format", "table"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let t = &r.stdout;
    assert!(t.lines().any(|l| l.starts_with("          3") && l.ends_with("NO *")), "{t}");
    assert!(
        t.contains("* 1 shifts not exported to ASTU; to export them: csjobs export-astu --shift 3"),
        "{t}"
    );
    // Totals: revenue non-cash 700.00 + 10.00, drawer 1129.90 + 0.00.
    assert!(
        t.lines()
            .any(|l| l.trim_start().starts_with("total") && l.contains(" 710.00 ") && l.contains(" 1129.90")),
        "{t}"
    );
}

#[tokio::test]
async fn per_shop_and_day_splits_a_shift_at_midnight() {
    let (db, dirs) = loaded().await;
    // 11-20: sale 1, sale 2, return 3, cash_in 4 of shift 412 and the sale of cash 18 → 5
    //        documents; sales cash 719.80 + 20.00 = 739.80, non-cash 600.00; returns cash
    //        89.90; revenue cash 649.90, non-cash 600.00; drawer 649.90 + 1000.00 = 1649.90.
    // 11-21: sale 5, return 6, cash_out 7 → 3; non-cash 150.00 − 50.00 = 100.00; drawer −500.00.
    // 11-22: the sale of the open shift 413 → 1; non-cash 10.00.
    let r = reconcile(&db, &dirs, &["--shop", "8", "--format", "csv"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "date,documents,sales_cash,sales_noncash,returns_cash,returns_noncash,revenue_cash,revenue_noncash,drawer\n\
         2026-11-20,5,739.80,600.00,89.90,0.00,649.90,600.00,1649.90\n\
         2026-11-21,3,0.00,150.00,0.00,50.00,0.00,100.00,-500.00\n\
         2026-11-22,1,0.00,10.00,0.00,0.00,0.00,10.00,0.00\n"
    );
    let r = reconcile(&db, &dirs, &["--shop", "8", "--from", "2026-11-21", "--to", "2026-11-21"]);
    assert_eq!(
        r.stdout.lines().skip(1).collect::<Vec<_>>(),
        ["2026-11-21,3,0.00,150.00,0.00,50.00,0.00,100.00,-500.00"]
    );
    // A shop without sales: just the header (and an empty JSON array).
    assert_eq!(reconcile(&db, &dirs, &["--shop", "9"]).stdout.lines().count(), 1);
    assert_eq!(reconcile(&db, &dirs, &["--shop", "9", "--format", "json"]).stdout, "[]\n");
}

#[tokio::test]
async fn per_department_of_a_shift() {
    let (db, dirs) = loaded().await;
    // dept 3: sold 2.000 (169.80) + 1.000 (1000.00), returned 1.000 (89.90): quantity 2.000,
    //         sales 1169.80, returns 89.90, revenue 1079.90 (the open sale of dept 3 is out).
    // dept 5: sold 0.500 (150.00).  dept 7: sold 3.000 (150.00), returned 1.000 (50.00).
    let r = reconcile(&db, &dirs, &["--departments", "--shift", "1", "--format", "csv"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "dept,quantity,sales,returns,revenue\n\
         3,2.000,1169.80,89.90,1079.90\n\
         5,0.500,150.00,0.00,150.00\n\
         7,2.000,150.00,50.00,100.00\n"
    );
    // The table's total line sums the money, not the quantities (kilograms and pieces).
    let t = reconcile(&db, &dirs, &["--departments", "--shift", "1", "--format", "table"]).stdout;
    let total: Vec<&str> = t.lines().find(|l| l.starts_with("total")).unwrap().split_whitespace().collect();
    assert_eq!(total, ["total", "1469.80", "139.90", "1329.90"], "{t}");
    let v: serde_json::Value = serde_json::from_str(
        &reconcile(&db, &dirs, &["--departments", "--shift", "1", "--format", "json"]).stdout,
    )
    .unwrap();
    assert_eq!(
        v[0],
        serde_json::json!({"dept": 3, "quantity": "2.000", "sales": "1169.80", "returns": "89.90", "revenue": "1079.90"})
    );
}

/// The cells of the first sheet, as text: numbers with the report's fraction digits.
fn sheet(path: &Path, digits: &[usize]) -> Vec<Vec<String>> {
    let mut wb: Xlsx<_> = open_workbook(path).unwrap();
    let range = wb.worksheet_range_at(0).unwrap().unwrap();
    range
        .rows()
        .map(|row| {
            row.iter()
                .enumerate()
                .map(|(i, c)| match c {
                    Data::Float(f) => format!("{f:.*}", digits[i]),
                    Data::Int(n) => n.to_string(),
                    Data::String(s) => s.clone(),
                    Data::Bool(b) => b.to_string(),
                    Data::Empty => String::new(),
                    other => panic!("unexpected cell {other:?}"),
                })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn xlsx_opens_with_the_same_numbers() {
    let (db, dirs) = loaded().await;
    let out = dirs.tmp.path().join("per-shift.xlsx");
    let r = reconcile(&db, &dirs, &["--cash", "17", "--format", "xlsx", "--output", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let csv: Vec<Vec<String>> =
        PER_SHIFT_CSV.lines().map(|l| l.split(',').map(str::to_string).collect()).collect();
    // workshiftid, shift, checks: integers; money: 2 digits.
    let digits = [0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 0];
    assert_eq!(sheet(&out, &digits), csv);

    // The format follows the file's extension; departments with 3-digit quantities.
    let out = dirs.tmp.path().join("departments.xlsx");
    let r = reconcile(&db, &dirs, &["--departments", "--shift", "1", "--output", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        sheet(&out, &[0, 3, 2, 2, 2])[1..],
        [
            ["3", "2.000", "1169.80", "89.90", "1079.90"].map(String::from),
            ["5", "0.500", "150.00", "0.00", "150.00"].map(String::from),
            ["7", "2.000", "150.00", "50.00", "100.00"].map(String::from),
        ]
    );
    // No temporary file is left beside the reports.
    let mut names = Dirs::names(dirs.tmp.path());
    names.retain(|n| n.ends_with(".xlsx") || n.contains("csjobs-tmp"));
    assert_eq!(names, ["departments.xlsx", "per-shift.xlsx"]);
}

#[tokio::test]
async fn bad_requests_are_usage_errors() {
    let (db, dirs) = loaded().await;
    for (args, says) in [
        (&["--format", "csv"][..], "exactly one of"),
        (&["--departments"][..], "--shift"),
        (&["--cash", "99"][..], "no cash (table cash) 99"),
        (&["--shop", "77"][..], "no shop (table shop) 77"),
        (&["--departments", "--shift", "12345"][..], "no shift (workshiftid) 12345"),
        (&["--cash", "17", "--format", "xlsx"][..], "--output"),
        (&["--cash", "17", "--from", "2026-11-22", "--to", "2026-11-21"][..], "before --from"),
        (&["--cash", "17", "--shop", "8"][..], "cannot be used with"),
    ] {
        let r = reconcile(&db, &dirs, args);
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
}

#[tokio::test]
async fn a_report_that_cannot_be_written_fails() {
    let (db, dirs) = loaded().await;
    // stdout on a full disk: a cut report must not pass for a whole one.
    let mut c = csjobs(&db.url, &dirs);
    c.args(["reconcile", "--shop", "8", "--format", "csv"]);
    c.stdout(fs::File::options().write(true).open("/dev/full").unwrap());
    let r = run(c);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("cannot write the report to stdout"), "{}", r.stderr);
    // --output into a directory that does not exist: exit 1 naming the file.
    let out = dirs.tmp.path().join("no-such-dir/report.xlsx");
    let r = reconcile(&db, &dirs, &["--cash", "17", "--output", out.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains(&out.display().to_string()), "{}", r.stderr);
    // A reader that stops early is no failure.
    let mut c = csjobs(&db.url, &dirs);
    c.args(["reconcile", "--shop", "8", "--format", "csv"]).stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    drop(child.stdout.take());
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
