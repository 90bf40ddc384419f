//! `csjobs load-sales` against real PostgreSQL and real files: every rule of
//! shared/spec/rules.md §1 and the placement of every kind of file.

mod common;

use std::fs;

use common::*;
use serde_json::json;

/// Puts a file of one closed sale into the queue: shift `(cash, number, opened_at)`,
/// sale `(docnum, price)`, modification time `secs`.
fn put_sale(dirs: &Dirs, name: &str, shift: (i64, i64, Option<&str>), sale_: (i64, &str), secs: u64) {
    let (cash, num, opened) = shift;
    dirs.put(name, &file_of_shift(cash, num, opened, vec![sale(sale_.0, sale_.1)]), secs);
}

fn file_of_shift(cash: i64, num: i64, opened: Option<&str>, docs: Vec<serde_json::Value>) -> Vec<u8> {
    let shop = if cash == 21 { 9 } else { 8 };
    sales_file(shop, cash, num, opened, None, docs)
}

#[tokio::test]
async fn fixtures_end_in_processed_error_and_broken_with_their_reasons() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/sales");
    let mut secs = 0;
    for kind in ["good", "error", "broken"] {
        for e in fs::read_dir(format!("{root}/{kind}")).unwrap() {
            let e = e.unwrap();
            secs += 1;
            dirs.put(e.file_name().to_str().unwrap(), &fs::read(e.path()).unwrap(), secs);
        }
    }
    // a-fragment before b-fragment of shift 412
    set_mtime(&dirs.queue.join("8-17-412-a.json"), 0);
    let r = load_sales(&db, &dirs, &[]);
    assert_eq!(r.code, 3, "some files were rejected: {}", r.stderr);
    assert_eq!(
        Dirs::names(&dirs.processed),
        ["8-17-412-a.json", "8-17-412-b.json", "8-18-7.json.gz", "9-21-100.json"]
    );
    assert_eq!(Dirs::names(&dirs.error), ["cash-21-not-in-shop-8.json", "unknown-cash-99.json"]);
    assert_eq!(Dirs::names(&dirs.broken), ["payment-mismatch.json", "truncated.json", "wrong-format.json"]);
    assert!(Dirs::names(&dirs.queue).is_empty());
    assert!(r.stdout.contains("processed         4"), "{}", r.stdout);
    assert!(r.stdout.contains("error             2"), "{}", r.stdout);
    assert!(r.stdout.contains("broken            3"), "{}", r.stdout);

    // Shift 412: document 2 replaced whole by the later fragment (2 items, card).
    assert_eq!(
        db.rows(
            "select d.docnum, d.doctype, d.total, count(g.posnum)
               from workshift w join document d using (workshiftid)
               left join goodsitem g using (documentid)
              where w.cashcode = 17 and w.shiftnum = 412
              group by 1, 2, 3 order by 1"
        )
        .await,
        [
            "(1,sale,169.80,1)",
            "(2,sale,356.50,2)",
            "(3,return,84.90,1)",
            "(4,cash_in,5000.00,0)",
            "(5,cash_out,4000.00,0)"
        ]
    );
    assert_eq!(
        db.rows("select time_beg, time_end from workshift where cashcode = 17").await,
        ["(\"2026-11-20 08:59:12\",\"2026-11-20 21:02:00\")"]
    );
    // Rounding half away from zero: 0.335 × 3.00 = 1.005 → 1.01.
    assert_eq!(
        db.rows("select quantity, price, total from goodsitem where ware = '2000000000015'").await,
        ["(0.335,3.00,1.01)"]
    );
    // Reasons in the load log, in words an operator can act on.
    let log = db.load_log().await;
    assert!(
        log.iter()
            .any(|l| l.contains("unknown-cash-99.json,error")
                && l.contains("cash 99 is not in the dictionary")),
        "{log:?}"
    );
    assert!(
        log.iter().any(|l| l.contains("cash-21-not-in-shop-8.json,error") && l.contains("belongs to shop 9")),
        "{log:?}"
    );
    assert!(
        log.iter().any(|l| l.contains("payment-mismatch.json,broken") && l.contains("rule 6")),
        "{log:?}"
    );
    assert!(log.iter().all(|l| l.ends_with(",t)")), "every file's move is recorded: {log:?}");
    assert_eq!(db.scalar_i64("select count(*) from error_message where job = 'load-sales'").await, 5);
    // The run log.
    assert_eq!(
        db.rows("select job, outcome, exit_code, counters->>'processed' from job_run").await,
        ["(load-sales,rejected,3,4)"]
    );
    // The source of each file is kept for monitoring.
    assert_eq!(
        db.rows("select source_host, source_ip, source_software from load_log where file_name = '8-17-412-a.json'").await,
        ["(pos-8-17,10.8.0.17,4.6.120)"]
    );
}

#[tokio::test]
async fn shift_numbers_exactly_two_days_apart_get_a_new_workshiftid() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    put_sale(&dirs, "a.json", (17, 5, Some("2026-11-18T09:00:00")), (1, "10.00"), 1);
    put_sale(&dirs, "b.json", (17, 5, Some("2026-11-20T09:00:00")), (1, "20.00"), 2);
    assert_eq!(load_sales(&db, &dirs, &[]).code, 0);
    assert_eq!(
        db.rows("select w.time_beg, d.total from workshift w join document d using (workshiftid) order by 1")
            .await,
        ["(\"2026-11-18 09:00:00\",10.00)", "(\"2026-11-20 09:00:00\",20.00)"]
    );
}

#[tokio::test]
async fn open_time_within_two_days_merges_into_the_closest_shift() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    put_sale(&dirs, "a.json", (17, 5, Some("2026-11-10T09:00:00")), (1, "10.00"), 1);
    put_sale(&dirs, "b.json", (17, 5, Some("2026-11-20T09:00:00")), (1, "20.00"), 2);
    // 47:59:59 after the second shift's open time: the same shift.
    put_sale(&dirs, "c.json", (17, 5, Some("2026-11-22T08:59:59")), (2, "30.00"), 3);
    assert_eq!(load_sales(&db, &dirs, &[]).code, 0);
    assert_eq!(
        db.rows(
            "select w.time_beg, string_agg(d.docnum || ':' || d.total, ',' order by d.docnum)
                   from workshift w join document d using (workshiftid) group by 1 order by 1"
        )
        .await,
        ["(\"2026-11-10 09:00:00\",1:10.00)", "(\"2026-11-20 09:00:00\",\"1:20.00,2:30.00\")"]
    );
}

#[tokio::test]
async fn open_date_null_in_file_and_database_goes_to_error_with_the_spec_reason() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    put_sale(&dirs, "a.json", (17, 9, None), (1, "10.00"), 1);
    put_sale(&dirs, "b.json", (17, 9, None), (2, "20.00"), 2);
    let r = load_sales(&db, &dirs, &[]);
    assert_eq!(r.code, 3);
    assert_eq!(Dirs::names(&dirs.processed), ["a.json"]);
    assert_eq!(Dirs::names(&dirs.error), ["b.json"]);
    assert_eq!(
        db.rows("select reason from load_log where file_name = 'b.json'").await,
        ["(\"shift 9 of cash 17: open date is NULL both in the file and in the database\")"]
    );
    assert!(r.stderr.contains("open date is NULL both in the file and in the database"));
    assert_eq!(db.scalar_i64("select count(*) from document").await, 1, "nothing of b.json is loaded");
}

#[tokio::test]
async fn far_open_time_merges_into_the_shift_without_date_and_sets_it() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    put_sale(&dirs, "a.json", (17, 9, Some("2026-10-01T09:00:00")), (1, "10.00"), 1);
    put_sale(&dirs, "b.json", (17, 9, None), (1, "20.00"), 2);
    assert_eq!(load_sales(&db, &dirs, &[]).code, 0);
    // b merged into the latest dated row (case "T null, every row dated").
    assert_eq!(db.scalar_i64("select count(*) from workshift").await, 1);
    assert_eq!(db.rows("select total from document").await, ["(20.00)"]);

    // A dateless shift of another number, then a dated fragment far from any dated row.
    put_sale(&dirs, "c.json", (18, 3, Some("2026-10-01T09:00:00")), (1, "1.00"), 3);
    put_sale(&dirs, "d.json", (18, 3, Some("2026-10-20T09:00:00")), (1, "2.00"), 4);
    assert_eq!(load_sales(&db, &dirs, &[]).code, 0);
    let client = &db.client;
    client.batch_execute("insert into workshift (cashcode, shopcode, shiftnum, time_beg, loaded_at) values (18, 8, 3, null, now())").await.unwrap();
    put_sale(&dirs, "e.json", (18, 3, Some("2026-11-20T09:00:00")), (7, "3.00"), 5);
    assert_eq!(load_sales(&db, &dirs, &[]).code, 0);
    assert_eq!(
        db.rows("select w.time_beg, string_agg(d.total::text, ',') from workshift w left join document d using (workshiftid)
                  where cashcode = 18 group by w.workshiftid, w.time_beg order by w.workshiftid").await,
        ["(\"2026-10-01 09:00:00\",1.00)", "(\"2026-10-20 09:00:00\",2.00)", "(\"2026-11-20 09:00:00\",3.00)"]
    );
}

#[tokio::test]
async fn a_later_fragment_replaces_a_document_whole_and_leaves_the_others() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    let opened = Some("2026-11-20T08:00:00");
    let mut two_items = sale(2, "30.00");
    two_items["items"] = json!([
        { "pos": 1, "ware": "1", "dept": 1, "quantity": "1", "price": "10.00", "sum": "10.00" },
        { "pos": 2, "ware": "2", "dept": 1, "quantity": "1", "price": "20.00", "sum": "20.00" }
    ]);
    dirs.put("a.json", &sales_file(8, 17, 1, opened, None, vec![sale(1, "10.00"), two_items]), 1);
    let closed = sales_file(8, 17, 1, opened, Some("2026-11-20T20:00:00"), vec![sale(2, "5.00")]);
    dirs.put("b.json", &closed, 2);
    // A later fragment without close time does not reopen the shift.
    dirs.put("c.json", &sales_file(8, 17, 1, opened, None, vec![sale(3, "7.00")]), 3);
    assert_eq!(load_sales(&db, &dirs, &["--limit", "1"]).code, 0);
    assert_eq!(Dirs::names(&dirs.queue), ["b.json", "c.json"], "--limit 1 handles one file");
    assert_eq!(load_sales(&db, &dirs, &[]).code, 0);
    assert_eq!(
        db.rows(
            "select d.docnum, d.total, (select count(*) from goodsitem g where g.documentid = d.documentid),
                        (select count(*) from payment p where p.documentid = d.documentid)
                   from document d order by 1"
        )
        .await,
        ["(1,10.00,1,1)", "(2,5.00,1,1)", "(3,7.00,1,1)"]
    );
    assert_eq!(db.rows("select time_end from workshift").await, ["(\"2026-11-20 20:00:00\")"]);
    assert_eq!(
        db.scalar_i64("select count(*) from workshift where loaded_at > now() - interval '1 hour'").await,
        1
    );
}

#[tokio::test]
async fn loading_the_same_content_twice_changes_nothing() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    let content = file_of_shift(17, 1, Some("2026-11-20T08:00:00"), vec![sale(1, "10.00"), sale(2, "99.99")]);
    dirs.put("a.json", &content, 1);
    assert_eq!(load_sales(&db, &dirs, &[]).code, 0);
    let once = db.sales_state().await;
    dirs.put("copy.json", &content, 2);
    dirs.put("a.json", &content, 3); // the same name again
    assert_eq!(load_sales(&db, &dirs, &[]).code, 0);
    assert_eq!(db.sales_state().await, once);
    assert_eq!(db.scalar_i64("select count(*) from goodsitem").await, 2);
    // The name already in processed/ is not overwritten: the moved file gets a suffix.
    assert_eq!(Dirs::names(&dirs.processed), ["a.1.json", "a.json", "copy.json"]);
}

#[tokio::test]
async fn files_are_taken_in_order_of_modification_time_then_name() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    let opened = Some("2026-11-20T08:00:00");
    // z.json is older than a.json: a.json's version of document 1 wins.
    put_sale(&dirs, "z.json", (17, 1, opened), (1, "1.00"), 1);
    put_sale(&dirs, "a.json", (17, 1, opened), (1, "2.00"), 2);
    // Same time: by name, m.json before n.json.
    put_sale(&dirs, "n.json", (17, 2, opened), (1, "4.00"), 3);
    put_sale(&dirs, "m.json", (17, 2, opened), (1, "3.00"), 3);
    assert_eq!(load_sales(&db, &dirs, &["-q"]).code, 0);
    assert_eq!(
        db.rows("select w.shiftnum, d.total from workshift w join document d using (workshiftid) order by 1")
            .await,
        ["(1,2.00)", "(2,4.00)"]
    );
    let order = db.rows("select file_name from load_log order by load_id").await;
    assert_eq!(order, ["(z.json)", "(a.json)", "(m.json)", "(n.json)"]);
}

#[tokio::test]
async fn other_names_in_the_queue_are_left_where_they_are() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    dirs.put("writing.json.tmp", b"{", 1);
    dirs.put("notes.txt", b"hello", 1);
    dirs.put("x.JSON", b"{}", 1);
    fs::create_dir(dirs.queue.join("sub.json")).unwrap();
    dirs.put(
        "ok.json.gz",
        &gzip(&file_of_shift(17, 1, Some("2026-11-20T08:00:00"), vec![sale(1, "1.00")])),
        2,
    );
    let r = load_sales(&db, &dirs, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(Dirs::names(&dirs.queue), ["notes.txt", "sub.json", "writing.json.tmp", "x.JSON"]);
    assert_eq!(Dirs::names(&dirs.processed), ["ok.json.gz"]);
}

fn gzip(b: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// Every rule of sales-file.md "When a file is broken", each file alone, with the rule
/// number and the JSON path the load log names.
#[tokio::test]
async fn every_broken_rule_sends_the_file_to_broken_with_rule_and_path() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    let good = || -> serde_json::Value {
        serde_json::from_slice(&file_of_shift(17, 1, Some("2026-11-20T08:00:00"), vec![sale(1, "10.00")]))
            .unwrap()
    };
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = good();
        f(&mut v);
        serde_json::to_vec(&v).unwrap()
    };
    let mut cases: Vec<(&str, Vec<u8>, i16, &str)> = vec![
        ("r1-not-json", b"not json at all".to_vec(), 1, "."),
        ("r1-bad-utf8", b"{\"format\": \"csjobs-sales/1\", \"shop\": \"\xff\xfe\"}".to_vec(), 1, "."),
        ("r1-array", b"[1, 2]".to_vec(), 1, "."),
        ("r1-two-objects", [good().to_string(), good().to_string()].concat().into_bytes(), 1, "."),
        (
            "r2-missing",
            with(&|v| {
                v.as_object_mut().unwrap().remove("format");
            }),
            2,
            "format",
        ),
        ("r2-other", with(&|v| v["format"] = json!("csjobs-sales/0")), 2, "format"),
        (
            "r3-missing-cash",
            with(&|v| {
                v.as_object_mut().unwrap().remove("cash");
            }),
            3,
            ".",
        ),
        ("r3-shop-string", with(&|v| v["shop"] = json!("8")), 3, "shop"),
        ("r3-shop-zero", with(&|v| v["shop"] = json!(0)), 3, "shop"),
        (
            "r3-opened-missing",
            with(&|v| {
                v["shift"].as_object_mut().unwrap().remove("opened_at");
            }),
            3,
            "shift",
        ),
        (
            "r3-bad-time",
            with(&|v| v["shift"]["opened_at"] = json!("2026-11-20 08:00:00")),
            3,
            "shift.opened_at",
        ),
        (
            "r3-zoned-time",
            with(&|v| v["documents"][0]["opened_at"] = json!("2026-11-20T08:00:00+03:00")),
            3,
            "documents[0].opened_at",
        ),
        ("r3-doc-type", with(&|v| v["documents"][0]["type"] = json!("refund")), 3, "documents[0].type"),
        (
            "r3-ware-long",
            with(&|v| v["documents"][0]["items"][0]["ware"] = json!("x".repeat(65))),
            3,
            "documents[0].items[0].ware",
        ),
        (
            "r3-dept-negative",
            with(&|v| v["documents"][0]["items"][0]["dept"] = json!(-1)),
            3,
            "documents[0].items[0].dept",
        ),
        (
            "r3-quantity-zero",
            with(&|v| {
                let it = &mut v["documents"][0]["items"][0];
                it["quantity"] = json!("0");
                it["sum"] = json!("0.00");
            }),
            3,
            "documents[0].items[0].quantity",
        ),
        (
            "r3-change-on-card",
            with(&|v| {
                v["documents"][0]["payments"] =
                    json!([{ "type": "card", "amount": "10.00", "change": "1.00" }])
            }),
            3,
            "documents[0].payments[0].change",
        ),
        (
            "r4-money-digits",
            with(&|v| v["documents"][0]["items"][0]["price"] = json!("10.001")),
            4,
            "documents[0].items[0].price",
        ),
        (
            "r4-quantity-digits",
            with(&|v| v["documents"][0]["items"][0]["quantity"] = json!("1.0001")),
            4,
            "documents[0].items[0].quantity",
        ),
        (
            "r4-not-finite",
            with(&|v| v["documents"][0]["payments"][0]["amount"] = json!("NaN")),
            4,
            "documents[0].payments[0].amount",
        ),
        (
            "r5-doc-twice",
            with(&|v| {
                let d = v["documents"][0].clone();
                v["documents"].as_array_mut().unwrap().push(d);
            }),
            5,
            "documents[1].number",
        ),
        (
            "r5-pos-twice",
            with(&|v| {
                let it = v["documents"][0]["items"][0].clone();
                v["documents"][0]["items"].as_array_mut().unwrap().push(it);
                v["documents"][0]["payments"][0]["amount"] = json!("20.00");
            }),
            5,
            "documents[0].items[1].pos",
        ),
        (
            "r6-unbalanced",
            with(&|v| v["documents"][0]["payments"][0]["amount"] = json!("10.01")),
            6,
            "documents[0].payments",
        ),
        (
            "r7-item-sum",
            with(&|v| {
                let it = &mut v["documents"][0]["items"][0];
                it["quantity"] = json!("3");
                it["price"] = json!("3.35");
                it["sum"] = json!("10.04");
                v["documents"][0]["payments"][0]["amount"] = json!("10.04");
            }),
            7,
            "documents[0].items[0].sum",
        ),
        (
            "r8-cash-in-items",
            with(&|v| v["documents"][0]["type"] = json!("cash_in")),
            8,
            "documents[0].items",
        ),
        (
            "r8-cash-out-card",
            with(&|v| {
                v["documents"][0] = json!({
            "number": 1, "type": "cash_out", "opened_at": "2026-11-20T10:00:00", "closed_at": "2026-11-20T10:00:01",
            "payments": [{ "type": "card", "amount": "5.00" }] })
            }),
            8,
            "documents[0].payments",
        ),
    ];
    // Rule 9: over the size limit (set to 2000 bytes below), plain and inflated.
    let big = with(&|v| v["padding"] = json!("x".repeat(3000)));
    cases.push(("r9-too-large", big.clone(), 9, "."));
    let mut gz_bomb = gzip(&big);
    assert!(gz_bomb.len() < 2000);
    cases.push(("r9-inflates-too-large.json.gz", std::mem::take(&mut gz_bomb), 9, "."));
    cases.push(("r1-corrupt-gzip.json.gz", b"\x1f\x8b\x08\x00garbage".to_vec(), 1, "."));

    for (i, (name, content, _, _)) in cases.iter().enumerate() {
        let name = if name.ends_with(".gz") { name.to_string() } else { format!("{name}.json") };
        dirs.put(&name, content, i as u64);
    }
    let mut c = csjobs(&db.url, &dirs);
    c.env("CSJOBS_SALES_MAX_FILE_BYTES", "2000").arg("load-sales");
    let r = run(c);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(Dirs::names(&dirs.broken).len(), cases.len(), "{:?}", Dirs::names(&dirs.processed));
    assert_eq!(db.scalar_i64("select count(*) from document").await, 0);
    for (name, _, rule, path) in &cases {
        let row = db
            .client
            .query_one(
                "select broken_rule, json_path, reason from load_log where file_name like $1 || '%'",
                &[name],
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (got_rule, got_path, reason): (i16, String, String) = (row.get(0), row.get(1), row.get(2));
        assert_eq!((got_rule, got_path.as_str()), (*rule, *path), "{name}: {reason}");
        assert!(!reason.is_empty());
    }
}

#[tokio::test]
async fn retry_errors_loads_files_again_after_the_dictionary_is_fixed() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    dirs.put(
        "new-cash.json",
        &sales_file(8, 30, 1, Some("2026-11-20T08:00:00"), None, vec![sale(1, "1.00")]),
        1,
    );
    assert_eq!(load_sales(&db, &dirs, &[]).code, 3);
    assert_eq!(Dirs::names(&dirs.error), ["new-cash.json"]);
    db.client.batch_execute("insert into cash values (30, 8, 'Касса 30')").await.unwrap();
    assert_eq!(load_sales(&db, &dirs, &[]).code, 0, "without --retry-errors error/ is left alone");
    assert_eq!(Dirs::names(&dirs.error), ["new-cash.json"]);
    assert_eq!(load_sales(&db, &dirs, &["--retry-errors"]).code, 0);
    assert!(Dirs::names(&dirs.error).is_empty());
    assert_eq!(Dirs::names(&dirs.processed), ["new-cash.json"]);
    assert_eq!(db.scalar_i64("select count(*) from document").await, 1);
}

#[tokio::test]
async fn dry_run_plans_and_writes_and_moves_nothing() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    let opened = Some("2026-11-20T08:00:00");
    put_sale(&dirs, "a.json", (17, 1, opened), (1, "1.00"), 1);
    put_sale(&dirs, "b.json", (17, 1, opened), (2, "1.00"), 2);
    dirs.put("c.json", &file_of_shift(99, 1, opened, vec![]), 3);
    dirs.put("d.json", b"{", 4);
    let before = db.rows("select count(*) from job_run union all select count(*) from load_log").await;
    let r = load_sales(&db, &dirs, &["--dry-run"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().take(4).collect();
    assert!(lines[0].starts_with("a.json\tprocessed\tnew shift 1 of cash 17"), "{lines:?}");
    assert!(lines[1].starts_with("b.json\tprocessed\tmerged into"), "{lines:?}");
    assert!(lines[2].starts_with("c.json\terror\tcash 99"), "{lines:?}");
    assert!(lines[3].starts_with("d.json\tbroken\tbroken (rule 1)"), "{lines:?}");
    assert_eq!(Dirs::names(&dirs.queue).len(), 4);
    assert_eq!(db.scalar_i64("select count(*) from workshift").await, 0);
    assert_eq!(db.rows("select count(*) from job_run union all select count(*) from load_log").await, before);
}

#[tokio::test]
async fn a_value_the_database_refuses_sends_only_that_file_to_error() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    let opened = Some("2026-11-20T08:00:00");
    put_sale(&dirs, "a.json", (17, 1, opened), (1, "1.00"), 1);
    // 10^13 does not fit numeric(15,2): the database refuses it.
    put_sale(&dirs, "huge.json", (17, 2, opened), (1, "10000000000000.00"), 2);
    put_sale(&dirs, "c.json", (18, 1, opened), (1, "3.00"), 3);
    let r = load_sales(&db, &dirs, &[]);
    assert_eq!(r.code, 3);
    assert_eq!(Dirs::names(&dirs.processed), ["a.json", "c.json"]);
    assert_eq!(Dirs::names(&dirs.error), ["huge.json"]);
    let reason = db.rows("select reason from load_log where file_name = 'huge.json'").await;
    assert!(reason[0].contains("numeric field overflow"), "{reason:?}");
    assert_eq!(db.scalar_i64("select count(*) from workshift where shiftnum = 2").await, 0);
}

#[tokio::test]
async fn the_database_going_away_stops_the_run_and_leaves_files_queued() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    // The backend kills itself when shift 666 is inserted: the connection is lost mid-run.
    db.client
        .batch_execute(
            "create function die() returns trigger language plpgsql as $$
             begin
               if new.shiftnum = 666 then perform pg_terminate_backend(pg_backend_pid()); end if;
               return new;
             end $$;
             create trigger die before insert on workshift for each row execute function die();",
        )
        .await
        .unwrap();
    let opened = Some("2026-11-20T08:00:00");
    put_sale(&dirs, "1.json", (17, 1, opened), (1, "1.00"), 1);
    put_sale(&dirs, "2.json", (17, 666, opened), (1, "2.00"), 2);
    put_sale(&dirs, "3.json", (17, 3, opened), (1, "3.00"), 3);
    let mut c = csjobs(&db.url, &dirs);
    c.env("CSJOBS_SALES_BATCH_FILES", "1").arg("load-sales");
    let r = run(c);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("2.json"), "the message names the file: {}", r.stderr);
    assert_eq!(Dirs::names(&dirs.processed), ["1.json"]);
    assert_eq!(Dirs::names(&dirs.queue), ["2.json", "3.json"]);
    assert!(Dirs::names(&dirs.error).is_empty());
}

#[tokio::test]
async fn unreachable_database_exits_1_with_masked_password_and_moves_nothing() {
    let dirs = Dirs::new();
    dirs.put("a.json", b"{}", 1);
    let mut c = csjobs("postgres://cs:TopSecret@127.0.0.1:1/nowhere", &dirs);
    c.arg("load-sales");
    let r = run(c);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("cs@127.0.0.1:1/nowhere"), "{}", r.stderr);
    assert!(!r.stderr.contains("TopSecret") && !r.stdout.contains("TopSecret"));
    assert_eq!(Dirs::names(&dirs.queue), ["a.json"]);
}

#[tokio::test]
async fn second_run_while_the_lock_is_held_exits_4_and_does_nothing() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    put_sale(&dirs, "a.json", (17, 1, Some("2026-11-20T08:00:00")), (1, "1.00"), 1);
    let key = csjobs::core::db::lock_key("csjobs job lock: load-sales");
    // Another session of the same cash server DB holds the lock (as a run on another
    // machine would).
    let (other, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    other.execute("select pg_advisory_lock($1)", &[&key]).await.unwrap();
    let r = load_sales(&db, &dirs, &[]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("holds its lock"));
    assert_eq!(Dirs::names(&dirs.queue), ["a.json"]);
    let held = "select count(*) from pg_locks l join pg_database d on d.oid = l.database
                 where l.locktype = 'advisory' and d.datname = current_database()";
    assert_eq!(db.scalar_i64(held).await, 1, "the other session's lock, as pg_locks shows it");
    drop(other);
    // The server releases the lock when it notices the session gone: wait for that (and no
    // longer), not for a guessed while.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while db.scalar_i64(held).await > 0 {
        assert!(std::time::Instant::now() < deadline, "the lock of a closed session was never released");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(load_sales(&db, &dirs, &[]).code, 0);
}

#[tokio::test]
async fn configuration_errors_exit_2_and_name_the_setting() {
    let dirs = Dirs::new();
    let mut c = csjobs("postgres://cs@127.0.0.1:1/none", &dirs);
    c.env_remove("CSJOBS_CASHSERVER_DATABASE_URL").arg("load-sales");
    let r = run(c);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("CSJOBS_CASHSERVER_DATABASE_URL"), "{}", r.stderr);

    let mut c = csjobs("postgres://cs@127.0.0.1:1/none", &dirs);
    c.env("CSJOBS_SALES_MAX_FILE_BYTES", "lots").arg("load-sales");
    let r = run(c);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("CSJOBS_SALES_MAX_FILE_BYTES"), "{}", r.stderr);

    let cfg = dirs.tmp.path().join("bad.toml");
    fs::write(&cfg, "[sales]\nmax_file_byte = 1\n").unwrap();
    let mut c = csjobs("postgres://cs@127.0.0.1:1/none", &dirs);
    c.arg("--config").arg(&cfg).arg("load-sales");
    let r = run(c);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("max_file_byte"), "{}", r.stderr);

    let mut c = csjobs("postgres://cs@127.0.0.1:1/none", &dirs);
    c.args(["load-sales", "--no-such-option"]);
    assert_eq!(run(c).code, 2);

    let mut c = csjobs("postgres://cs@127.0.0.1:1/none", &dirs);
    c.args(["--now", "yesterday", "load-sales"]);
    let r = run(c);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--now"), "{}", r.stderr);
}

#[tokio::test]
async fn config_file_supplies_what_env_does_not() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    put_sale(&dirs, "a.json", (17, 1, Some("2026-11-20T08:00:00")), (1, "1.00"), 1);
    let cfg = dirs.tmp.path().join("csjobs.toml");
    fs::write(
        &cfg,
        format!(
            "[cashserver]\ndatabase_url = \"{}\"\n[paths]\nqueue = \"{}\"\nprocessed = \"{}\"\n",
            db.url.replace('"', "\\\""),
            dirs.queue.display(),
            dirs.tmp.path().join("done").display()
        ),
    )
    .unwrap();
    let mut c = csjobs(&db.url, &dirs);
    c.env_remove("CSJOBS_CASHSERVER_DATABASE_URL")
        .env_remove("CSJOBS_PROCESSED_DIR")
        .arg("--config")
        .arg(&cfg)
        .arg("load-sales");
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(Dirs::names(&dirs.tmp.path().join("done")), ["a.json"]);
}

#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    dirs.put("bad.json", b"[]", 1);
    let r = load_sales(&db, &dirs, &[]);
    assert_eq!(r.code, 3);
    let mut saw_refusal = false;
    for line in r.stderr.lines().filter(|l| !l.starts_with("csjobs:")) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        saw_refusal |= v["file"] == "bad.json" && v["disposition"] == "broken";
    }
    assert!(saw_refusal, "{}", r.stderr);
}

#[tokio::test]
async fn migrate_is_idempotent_and_detects_a_changed_migration() {
    let db = TestDb::empty("mig").await;
    let dirs = Dirs::new();
    let mut c = csjobs(&db.url, &dirs);
    c.arg("migrate");
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("applied 0001_init"));
    let mut c = csjobs(&db.url, &dirs);
    c.args(["migrate", "--cashserver"]);
    let r = run(c);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("up to date"));
    db.client.batch_execute("update csjobs_schema_migrations set checksum = 'x'").await.unwrap();
    let mut c = csjobs(&db.url, &dirs);
    c.arg("migrate");
    let r = run(c);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("was changed after it was applied"), "{}", r.stderr);
    let mut c = csjobs(&db.url, &dirs);
    c.args(["migrate", "--bonus"]);
    assert_eq!(run(c).code, 2, "no bonus URL configured");
}

#[tokio::test]
async fn bonus_migrations_create_the_bonus_tables() {
    let db = TestDb::empty("bonus").await;
    let dirs = Dirs::new();
    let mut c = csjobs(&db.url, &dirs);
    c.env_remove("CSJOBS_CASHSERVER_DATABASE_URL").env("CSJOBS_BONUS_DATABASE_URL", &db.url).arg("migrate");
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        db.rows("select string_agg(table_name, ',' order by table_name) from information_schema.tables where table_schema = 'public'").await,
        ["(\"account,asset,card,cardaccounting,csjobs_schema_migrations,pincode,transfer_claim,transfer_source\")"]
    );
}

/// A file that makes reading panic (an injected fault, debug builds only; in the field a bug
/// some input reaches, like the decimal overflow of issue #20) goes to broken/ with the
/// internal error as its reason and a load log row, and the run goes on with the files
/// behind it (exit 3). Before, the run died on it (exit 1), the file stayed first in the
/// queue, and every later run died on it too: one file stopped the store.
#[tokio::test]
async fn a_file_that_makes_reading_panic_is_broken_and_the_queue_goes_on() {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    put_sale(&dirs, "a.json", (17, 501, Some("2026-11-20T08:00:00")), (1, "10.00"), 1);
    put_sale(&dirs, "b.json", (17, 502, Some("2026-11-20T08:00:00")), (1, "20.00"), 2);
    put_sale(&dirs, "c.json", (17, 503, Some("2026-11-20T08:00:00")), (1, "30.00"), 3);
    let with_fault = |args: &[&str]| {
        let mut c = csjobs(&db.url, &dirs);
        c.env("CSJOBS_TEST_READER_PANIC_AT", "b.json").arg("load-sales").args(args);
        let r = run(c);
        let errors: Vec<serde_json::Value> = r
            .stderr
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a JSON line ({e}): {l}")))
            .filter(|v: &serde_json::Value| v["level"] == "ERROR")
            .collect();
        let text: Vec<String> =
            errors.iter().filter_map(|v| v["message"].as_str().map(str::to_string)).collect();
        assert!(text.iter().any(|m| m.contains("injected fault")), "the panic is logged: {text:?}");
        assert!(text.iter().any(|m| m.contains("internal error while reading b.json")), "{text:?}");
        r
    };
    let dry = with_fault(&["--dry-run"]);
    assert_eq!(dry.code, 3, "{}{}", dry.stdout, dry.stderr);
    assert!(
        dry.stdout.contains("b.json\tbroken\tinternal error while reading: injected fault"),
        "{}",
        dry.stdout
    );
    assert_eq!(Dirs::names(&dirs.queue), ["a.json", "b.json", "c.json"], "a dry run moves nothing");

    let r = with_fault(&[]);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert_eq!(Dirs::names(&dirs.processed), ["a.json", "c.json"], "the files behind it are loaded");
    assert_eq!(Dirs::names(&dirs.broken), ["b.json"]);
    assert!(Dirs::names(&dirs.queue).is_empty());
    assert_eq!(
        db.rows("select disposition || '|' || coalesce(broken_rule::text, '-') || '|' || reason from load_log where file_name = 'b.json'").await,
        ["(\"broken|-|internal error while reading: injected fault: the reader panics at b.json\")"]
    );
    assert_eq!(db.scalar_i64("select count(*) from workshift where shiftnum between 501 and 503").await, 2);
}

/// A file load-sales cannot read stays in the queue and fails the run (exit 1), and its dry
/// run says the same instead of passing (the tests run as root, who reads everything: the
/// runs are made as nobody).
#[tokio::test]
async fn an_unreadable_file_fails_the_run_and_its_dry_run_alike() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    for d in [dirs.tmp.path(), &dirs.queue, &dirs.processed, &dirs.error, &dirs.broken, &dirs.astu] {
        fs::create_dir_all(d).unwrap();
        fs::set_permissions(d, fs::Permissions::from_mode(0o777)).unwrap();
    }
    put_sale(&dirs, "a.json", (17, 601, Some("2026-11-20T08:00:00")), (1, "10.00"), 1);
    put_sale(&dirs, "secret.json", (17, 602, Some("2026-11-20T08:00:00")), (1, "20.00"), 2);
    fs::set_permissions(dirs.queue.join("secret.json"), fs::Permissions::from_mode(0o000)).unwrap();
    let as_nobody = |args: &[&str]| {
        let mut c = csjobs(&db.url, &dirs);
        c.arg("load-sales").args(args);
        run(as_nobody(c))
    };
    let dry = as_nobody(&["--dry-run"]);
    assert_eq!(dry.code, 1, "{}{}", dry.stdout, dry.stderr);
    assert!(dry.stdout.contains("secret.json\tunreadable"), "{}", dry.stdout);
    assert!(dry.stderr.contains("1 files cannot be read"), "{}", dry.stderr);
    assert_eq!(Dirs::names(&dirs.queue), ["a.json", "secret.json"], "a dry run moves nothing");
    let r = as_nobody(&[]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("secret.json"), "{}", r.stderr);
    assert_eq!(Dirs::names(&dirs.processed), ["a.json"]);
    assert_eq!(Dirs::names(&dirs.queue), ["secret.json"]);
}

/// Issue #20: each file a faulty register can send ends in broken/ with the rule and the
/// JSON path, and the good file behind them is loaded: a decimal exponent that once
/// overflowed, U+0000 in `source.host` (it once failed the load log insert and stopped the
/// run) and in an item's name (it once sent the file to error/, where no retry can make it
/// good), an unpaired surrogate, and a gzip bomb (broken by its decompressed size, never
/// inflated whole).
#[tokio::test]
async fn hostile_files_end_in_broken_with_rule_and_path_and_the_queue_goes_on() {
    use std::io::Write;
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    let base = || -> serde_json::Value {
        serde_json::from_slice(&file_of_shift(17, 700, Some("2026-11-20T08:00:00"), vec![sale(1, "10.00")]))
            .unwrap()
    };
    let put = |name: &str, v: serde_json::Value, secs| dirs.put(name, v.to_string().as_bytes(), secs);
    let mut v = base();
    v["documents"][0]["items"][0]["quantity"] = "1e9223372036854775807".into();
    put("1-exponent.json", v, 1);
    let mut v = base();
    v["source"] = serde_json::json!({"host": "pos\u{0}8"});
    put("2-nul-host.json", v, 2);
    let mut v = base();
    v["documents"][0]["items"][0]["name"] = "Молоко\u{0}".into();
    put("3-nul-name.json", v, 3);
    let text = base().to_string().replacen("\"ware\":\"", "\"ware\":\"\\ud800", 1);
    dirs.put("4-surrogate.json", text.as_bytes(), 4);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(b"{\"format\":\"csjobs-sales/1\",\"pad\":\"").unwrap();
    gz.write_all(&vec![b' '; 64 << 20]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 1 << 20, "the bomb is small on disk: {}", bomb.len());
    dirs.put("5-bomb.json.gz", &bomb, 5);
    put_sale(&dirs, "6-good.json", (17, 701, Some("2026-11-20T08:00:00")), (1, "30.00"), 6);

    let mut c = csjobs(&db.url, &dirs);
    c.env("CSJOBS_SALES_MAX_FILE_BYTES", (1 << 20).to_string()).arg("load-sales");
    let r = run(c);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert_eq!(Dirs::names(&dirs.processed), ["6-good.json"]);
    assert_eq!(
        Dirs::names(&dirs.broken),
        ["1-exponent.json", "2-nul-host.json", "3-nul-name.json", "4-surrogate.json", "5-bomb.json.gz"]
    );
    assert!(Dirs::names(&dirs.error).is_empty(), "nothing a retry cannot mend goes to error/");
    assert_eq!(
        db.rows("select file_name || '|' || broken_rule || '|' || json_path from load_log where disposition = 'broken' order by file_name").await,
        [
            "(1-exponent.json|4|documents[0].items[0].quantity)",
            "(2-nul-host.json|3|source.host)",
            "(3-nul-name.json|3|documents[0].items[0].name)",
            "(4-surrogate.json|3|documents[0].items[0].ware)",
            "(5-bomb.json.gz|9|.)",
        ]
    );
}

/// Crash recovery (a file committed but not moved) that cannot read the queued file leaves it
/// in the queue and out of the run, loads the files behind it, and fails the run naming it:
/// before, a read error counted as "a different file now has that name" and the file was
/// loaded again as new (and a first fix stopped the whole queue on it). Once readable, the
/// next run finishes the move without loading it twice.
#[tokio::test]
async fn recovery_that_cannot_read_a_file_fails_instead_of_loading_it_again() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    for d in [dirs.tmp.path(), &dirs.queue, &dirs.processed, &dirs.error, &dirs.broken, &dirs.astu] {
        fs::create_dir_all(d).unwrap();
        fs::set_permissions(d, fs::Permissions::from_mode(0o777)).unwrap();
    }
    put_sale(&dirs, "a.json", (17, 801, Some("2026-11-20T08:00:00")), (1, "10.00"), 1);
    assert_eq!(load_sales(&db, &dirs, &[]).code, 0);
    // Back to "committed, not moved", and unreadable for the user the job runs as.
    fs::rename(dirs.processed.join("a.json"), dirs.queue.join("a.json")).unwrap();
    db.client.batch_execute("update load_log set disposed_at = null, moved_to = null").await.unwrap();
    fs::set_permissions(dirs.queue.join("a.json"), fs::Permissions::from_mode(0o000)).unwrap();
    put_sale(&dirs, "b.json", (17, 802, Some("2026-11-20T08:00:00")), (1, "20.00"), 2);
    let mut c = csjobs(&db.url, &dirs);
    c.arg("load-sales");
    let r = run(as_nobody(c));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("a.json") && r.stderr.contains("finish the move"), "{}", r.stderr);
    assert_eq!(Dirs::names(&dirs.queue), ["a.json"], "it stays in the queue");
    assert_eq!(Dirs::names(&dirs.processed), ["b.json"], "the file behind it is loaded");
    assert_eq!(
        db.scalar_i64("select count(*) from load_log where file_name = 'a.json'").await,
        1,
        "not loaded again"
    );

    fs::set_permissions(dirs.queue.join("a.json"), fs::Permissions::from_mode(0o644)).unwrap();
    let r = load_sales(&db, &dirs, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(Dirs::names(&dirs.processed), ["a.json", "b.json"]);
    assert_eq!(
        db.scalar_i64("select count(*) from load_log where file_name = 'a.json'").await,
        1,
        "the move finished, nothing loaded twice"
    );
    assert_eq!(
        db.scalar_i64(
            "select count(*) from document d join workshift w using (workshiftid) where w.shiftnum = 801"
        )
        .await,
        1
    );
}
