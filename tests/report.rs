//! `csjobs report` through the binary against real PostgreSQL, opened in a real browser
//! (Debian's headless Chromium): every shop, register and chart is in the rendered DOM, the
//! page loads with no request to anywhere, and a screenshot is kept
//! (`target/test-artifacts/report.png`). Also: the page when the cash server DB is down,
//! `--shop`, and outputs that cannot be written.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use common::*;
use serde_json::Value;

/// Tuesday noon, Moscow time.
const NOW: &str = "2026-11-24T12:00:00+03:00";

/// Shop 8 sold 1,000 an hour from 9:00 to 21:00 on the four Tuesdays before, today only at
/// 9:00 (low: 1,000 against 4,000 by noon). Shop 9 sold 800 an hour on those days and today
/// (as usual). Registers: 17 heard from 10 minutes ago (ok), 18 three hours ago (stale, and
/// silent for revenue-watch), 21 five minutes ago (ok), 22 never.
async fn fixture() -> (TestDb, Dirs) {
    let db = TestDb::cashserver().await;
    let dirs = Dirs::new();
    db.client
        .batch_execute(
            "insert into cash (cashcode, shopcode, name) values (22, 9, 'Касса 22');
             insert into workshift (cashcode, shopcode, shiftnum, time_beg, loaded_at)
             select c.cash, c.shop, row_number() over (), d, now()
               from (values (17, 8), (21, 9)) c(cash, shop),
                    generate_series(timestamp '2026-10-27', timestamp '2026-11-24', interval '7 days') d;
             insert into document (workshiftid, docnum, doctype, time_beg, time_end, total)
             select w.workshiftid, h, 'sale', w.time_beg + h * interval '1 hour', w.time_beg + h * interval '1 hour',
                    case w.shopcode when 8 then 1000 else 800 end
               from workshift w, generate_series(9, 21) h
              where w.time_beg < date '2026-11-24'
                 or (w.shopcode = 8 and h = 9)
                 or (w.shopcode = 9 and h <= 12);
             select revenue_hour_rebuild();",
        )
        .await
        .unwrap();
    for (cash, minutes_ago) in [(17, 10), (18, 180), (21, 5)] {
        let at = (chrono::DateTime::parse_from_rfc3339(NOW).unwrap()
            - chrono::TimeDelta::minutes(minutes_ago))
        .to_rfc3339();
        db.client
            .execute(
                "insert into load_log (file_name, file_size, content_sha256, shopcode, cashcode, source_host,
                                       disposition, started_at, finished_at, disposed_at)
                 select 'f-' || $1::int || '.json', 1, md5($2::text), shopcode, cashcode, 'pos-' || $1::int,
                        'processed', $2::text::timestamptz, $2::text::timestamptz, $2::text::timestamptz
                   from cash where cashcode = $1",
                &[&cash, &at],
            )
            .await
            .unwrap();
    }
    (db, dirs)
}

fn report(db_url: &str, dirs: &Dirs, out: &Path, args: &[&str]) -> Run {
    let mut c = csjobs(db_url, dirs);
    c.args(["--now", NOW, "report", "--output"]).arg(out).args(args);
    run(c)
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Headless Chromium as this machine can run it (root, no GPU, nothing fetched in the
/// background), with a profile of its own.
fn chromium(profile: &Path) -> Command {
    let mut c = Command::new("chromium");
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// What the rendered DOM holds, read by Python's html.parser: per shop article, its charts'
/// curves (class → number of points) and its register rows (cash → class); the alert rows;
/// every URL the page refers to (src, href other than #anchors, url(…), @import).
const DOM_SUMMARY: &str = r##"
import json, re, sys
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(s):
        super().__init__(); s.shops = {}; s.shop = None; s.alerts = []; s.urls = []; s.in_style = False
        s.health = None; s.text = []
    def handle_starttag(s, tag, attrs):
        a = dict(attrs)
        for k in ("src", "href", "xlink:href", "action", "poster", "data"):
            v = a.get(k)
            if v is not None and not v.startswith("#") and not (k == "data" and tag != "object"):
                s.urls.append(v)
        if tag == "article" and "shop" in a.get("class", ""):
            s.shop = a["data-shop"]; s.shops[s.shop] = {"class": a["class"], "curves": {}, "registers": {}, "charts": 0}
        if tag == "svg" and s.shop: s.shops[s.shop]["charts"] += 1
        if tag == "polyline" and s.shop:
            s.shops[s.shop]["curves"][a["class"]] = len(a["points"].split())
        if tag == "tr" and s.shop and "data-cash" in a:
            s.shops[s.shop]["registers"][a["data-cash"]] = a["class"]
        if tag == "tr" and a.get("class") == "alert":
            s.alerts.append([a["data-kind"], a["data-shop"]])
        if tag == "span" and a.get("id") == "health": s.health = a["class"]
        if tag == "style": s.in_style = True
    def handle_endtag(s, tag):
        if tag == "article": s.shop = None
        if tag == "style": s.in_style = False
    def handle_data(s, d):
        if s.in_style: s.urls += re.findall(r"url\(([^)]*)\)|@import\s+(\S+)", d)
        else: s.text.append(d)
p = P(); p.feed(sys.stdin.read())
print(json.dumps({"shops": p.shops, "alerts": p.alerts, "urls": p.urls, "health": p.health, "text": " ".join(p.text)}))
"##;

fn dom_summary(dom: &str) -> Value {
    use std::io::Write;
    let mut py = Command::new("python3")
        .args(["-c", DOM_SUMMARY])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (scripts/test.sh installs it)");
    py.stdin.take().unwrap().write_all(dom.as_bytes()).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The URLs the page itself asked for while Chromium loaded it, from Chromium's network log:
/// the requests started on behalf of a `file://` page (the browser's own background requests
/// belong to no page and are left out). The log may end unclosed when Chromium exits.
const PAGE_REQUESTS: &str = r##"
import json, sys
t = open(sys.argv[1]).read().rstrip()
try:
    d = json.loads(t)
except ValueError:
    d = json.loads(t.rstrip(",") + "]}")
names = {v: k for k, v in d["constants"]["logEventTypes"].items()}
urls = []
for e in d["events"]:
    p = e.get("params", {})
    if names[e["type"]] == "URL_REQUEST_START_JOB" and "file://" in p.get("network_isolation_key", "") \
            and not p["url"].startswith(("file:", "data:")):
        urls.append(p["url"])
print(json.dumps(urls))
"##;

/// Loads `url` in headless Chromium with the network log on; returns the requests the page
/// made (see [`PAGE_REQUESTS`]) and the DOM as rendered.
fn load(profile: &Path, url: &str) -> (Vec<String>, String) {
    let netlog = profile.join("netlog.json");
    let _ = std::fs::remove_file(&netlog);
    let dom = chromium(profile)
        .arg(format!("--log-net-log={}", netlog.display()))
        .args(["--dump-dom", url])
        .output()
        .expect("chromium (scripts/test.sh installs it)");
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    let out = Command::new("python3").args(["-c", PAGE_REQUESTS]).arg(&netlog).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (serde_json::from_slice(&out.stdout).unwrap(), String::from_utf8(dom.stdout).unwrap())
}

#[tokio::test]
async fn the_page_in_a_real_browser_shows_every_shop_register_and_chart() {
    let (db, dirs) = fixture().await;
    // revenue-watch opens the alerts the page lists.
    let hook = HttpReceiver::start(200);
    let mut w = csjobs(&db.url, &dirs);
    w.env("CSJOBS_ALERTS_WEBHOOK_URL", hook.url("/hook")).args([
        "--now",
        NOW,
        "revenue-watch",
        "--format",
        "json",
    ]);
    let w = run(w);
    assert_eq!(w.code, 3, "{}", w.stderr);

    let page = dirs.tmp.path().join("report.html");
    let r = report(&db.url, &dirs, &page, &[]);
    assert_eq!(r.code, 3, "open alerts and a stale register: exit 3\n{}", r.stderr);
    assert!(r.stdout.is_empty(), "the page goes to the file only");
    // Written whole: no temporary file left beside it.
    assert_eq!(Dirs::names(dirs.tmp.path()).iter().filter(|n| n.contains("csjobs-tmp")).count(), 0);

    // Load it in Chromium, with the network log on: the DOM as rendered, and what it fetched.
    // The log does see a page's requests: a page with one external image shows it.
    let profile = tempfile::tempdir().unwrap();
    let bait = HttpReceiver::start(404);
    let control = dirs.tmp.path().join("control.html");
    std::fs::write(&control, format!("<html><body><img src=\"{}\"></body></html>", bait.url("/x.png")))
        .unwrap();
    let (made, _) = load(profile.path(), &format!("file://{}", control.display()));
    assert_eq!(made, [bait.url("/x.png")]);

    let url = format!("file://{}", page.display());
    let (made, dom) = load(profile.path(), &url);
    assert_eq!(made, Vec::<String>::new(), "the page must fetch nothing");
    let v = dom_summary(&dom);
    assert_eq!(v["urls"], serde_json::json!([]), "no external resource of any kind");
    assert_eq!(v["health"], "health unhealthy");

    let shops = v["shops"].as_object().unwrap();
    assert_eq!(shops.keys().collect::<Vec<_>>(), ["8", "9"]);
    let s8 = &shops["8"];
    let s9 = &shops["9"];
    assert_eq!(s8["class"], "shop verdict-low");
    assert_eq!(s9["class"], "shop verdict-ok");
    for s in [s8, s9] {
        assert_eq!(s["charts"], 1);
        // Today: 0:00 … 12:00 on the hour (13 points); the profile and its alert line through
        // the day (25 points).
        assert_eq!(s["curves"], serde_json::json!({"today": 13, "profile": 25, "alert-line": 25}));
    }
    assert_eq!(s8["registers"], serde_json::json!({"17": "state-ok", "18": "state-stale"}));
    assert_eq!(s9["registers"], serde_json::json!({"21": "state-ok", "22": "state-never"}));
    let mut alerts: Vec<(String, String)> = v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a[0].as_str().unwrap().into(), a[1].as_str().unwrap().into()))
        .collect();
    alerts.sort();
    assert_eq!(alerts, [("register_silent".into(), "8".into()), ("revenue_low".into(), "8".into())]);
    let text = v["text"].as_str().unwrap();
    for want in [
        "Shop 8 — Магазин №8 · Казань, ул. Баумана, 1",
        "1\u{202f}000.00",
        "4\u{202f}000.00",
        "75.0%",
        "Касса 22",
    ] {
        assert!(text.contains(want), "{want:?} not on the page");
    }

    // The screenshot, kept for people to look at.
    let shot = artifacts().join("report.png");
    let _ = std::fs::remove_file(&shot);
    let s = chromium(profile.path())
        .arg("--window-size=1280,2200")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    let png = std::fs::read(&shot).expect("the screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 20_000, "a blank page would be a few kB: {} bytes", png.len());
    std::fs::copy(&page, artifacts().join("report.html")).unwrap();
    drop(db);
}

#[tokio::test]
async fn only_the_shops_asked_for_and_an_unknown_shop_is_a_usage_error() {
    let (db, dirs) = fixture().await;
    // Every data directory there (a missing one is a problem of its own).
    std::fs::create_dir_all(dirs.tmp.path().join("backup")).unwrap();
    let page = dirs.tmp.path().join("nine.html");
    let r = report(&db.url, &dirs, &page, &["--shop", "9"]);
    // Shop 9 alone: its revenue is as usual and register 21 is ok, but register 22 was never
    // heard from — a register not `ok` makes the state unhealthy (monitoring.md, status):
    // exit 3, judged as status judges it.
    let html = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{e}: {}", r.stderr));
    assert!(html.contains("id=\"shop-9\"") && !html.contains("id=\"shop-8\""));
    assert!(!html.contains("Касса 17"));
    assert_eq!(r.code, 3, "register 22 of shop 9 is `never`: exit 3\n{}", r.stderr);
    assert!(html.contains("class=\"health unhealthy\""));
    let mut st = csjobs(&db.url, &dirs);
    st.args(["--now", NOW, "status", "--shop", "9", "--format", "json"]);
    let st = run(st);
    assert_eq!(st.code, r.code, "report --shop 9 exits as status --shop 9 does: {}", st.stdout);

    // Register 22 heard from: shop 9 has nothing wrong, so the page of shop 9 alone is
    // healthy (exit 0) while shop 8's stale register 18 still makes the whole page exit 3.
    db.client
        .batch_execute(
            "insert into load_log (file_name, file_size, content_sha256, shopcode, cashcode, source_host,
                                   disposition, started_at, finished_at, disposed_at)
             values ('f-22.json', 1, md5('22'), 9, 22, 'pos-22', 'processed',
                     '2026-11-24T11:55:00+03:00', '2026-11-24T11:55:00+03:00', '2026-11-24T11:55:00+03:00')",
        )
        .await
        .unwrap();
    let r = report(&db.url, &dirs, &page, &["--shop", "9"]);
    let mut st = csjobs(&db.url, &dirs);
    st.args(["--now", NOW, "status", "--shop", "9", "--format", "json"]);
    let st = run(st);
    assert_eq!(r.code, 0, "shop 9 alone is healthy once register 22 reported\n{}\n{}", r.stderr, st.stdout);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("class=\"health healthy\""), "{html}");
    let r = report(&db.url, &dirs, &page, &[]);
    assert_eq!(r.code, 3, "the whole page still has shop 8's stale register 18\n{}", r.stderr);
    let r = report(&db.url, &dirs, &dirs.tmp.path().join("x.html"), &["--shop", "99"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--shop 99: no such shop"), "{}", r.stderr);
    assert!(!dirs.tmp.path().join("x.html").exists());
}

#[tokio::test]
async fn with_the_database_down_the_page_says_so_and_the_run_fails() {
    let dirs = Dirs::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("postgres://csjobs@127.0.0.1:{port}/cashserver?connect_timeout=2");
    let page = dirs.tmp.path().join("down.html");
    let r = report(&url, &dirs, &page, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let html = std::fs::read_to_string(&page).expect("the page is written all the same");
    assert!(html.contains("revenue could not be read"), "{html}");
    assert!(html.contains("class=\"health unhealthy\""));
    assert!(html.contains("cashserver"));
    // The period view is history, not a live state: with the database down nothing is written.
    let period = dirs.tmp.path().join("period-down.html");
    let r = report(&url, &dirs, &period, &["--from", "2026-11-01", "--to", "2026-11-24"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!period.exists());
}

#[tokio::test]
async fn a_page_that_cannot_be_written_is_exit_1_and_leaves_nothing() {
    let (db, dirs) = fixture().await;
    let missing = dirs.tmp.path().join("no-such-dir").join("report.html");
    let r = report(&db.url, &dirs, &missing, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot write the page to") && r.stderr.contains("no-such-dir"),
        "{}",
        r.stderr
    );
    // --output is required.
    let mut c = csjobs(&db.url, &dirs);
    c.args(["report"]);
    let r = run(c);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

fn status_of(db: &TestDb, dirs: &Dirs, args: &[&str]) -> Run {
    let mut c = csjobs(&db.url, dirs);
    c.args(["--now", NOW, "status"]).args(args);
    run(c)
}

/// Each register's and each shop's checks and revenue of today (monitoring.md, "Today per
/// register and per shop"): the same figures in status' JSON, Prometheus, table and page, and
/// on the report page; from revenue_hour for whole hours and the documents for now's hour.
#[tokio::test]
async fn checks_and_revenue_of_today_per_register_and_shop_everywhere() {
    let (db, dirs) = fixture().await;
    // Shop 9 works Mon–Sun 09:00–21:30. Register 21 also closed a sale one second after now
    // (not yet today's), and a return at 11:30 (−50: a check that lowers the revenue).
    db.client
        .batch_execute(
            "insert into shop_hours (shopcode, weekday, opens, closes)
             select 9, d, time '09:00', time '21:30' from generate_series(1, 7) d;
             insert into document (workshiftid, docnum, doctype, time_beg, time_end, total)
             select workshiftid, n, t, e, e, a
               from workshift w,
                    (values (100, 'sale', timestamp '2026-11-24 12:00:01', 500),
                            (101, 'return', timestamp '2026-11-24 11:30:00', 50)) x(n, t, e, a)
              where w.cashcode = 21 and w.time_beg = '2026-11-24';
             select revenue_hour_rebuild();",
        )
        .await
        .unwrap();
    db.assert_revenue_hour_agrees().await;

    let v: Value = serde_json::from_str(&status_of(&db, &dirs, &["--format", "json"]).stdout).unwrap();
    let today: Vec<(i64, i64, String)> = v["registers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["cash"].as_i64().unwrap(),
                r["checks_today"].as_i64().unwrap(),
                r["revenue_today"].as_str().unwrap().into(),
            )
        })
        .collect();
    // 17: the 9:00 sale; 18: nothing; 21: 9:00 … 12:00:00 (four sales of 800, the one at 12:00:00
    // counts) and the return; 22: never.
    let mut sorted = today.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            (17, 1, "1000.00".into()),
            (18, 0, "0.00".into()),
            (21, 5, "3150.00".into()),
            (22, 0, "0.00".into())
        ]
    );
    let shops: Vec<Value> = v["shops"].as_array().unwrap().clone();
    let s9 = shops.iter().find(|s| s["shop"] == 9).unwrap();
    let s8 = shops.iter().find(|s| s["shop"] == 8).unwrap();
    assert_eq!(
        (&s9["checks_today"], &s9["revenue_today"], &s9["registers"], &s9["open_now"]),
        (
            &serde_json::json!(5),
            &serde_json::json!("3150.00"),
            &serde_json::json!(2),
            &serde_json::json!(true)
        )
    );
    assert_eq!(s9["hours"].as_array().unwrap().len(), 7);
    assert_eq!(s9["hours"][0], serde_json::json!({"weekday": 1, "opens": "09:00", "closes": "21:30"}));
    assert_eq!(
        (&s8["hours"], &s8["checks_today"], &s8["name"]),
        (&serde_json::json!([]), &serde_json::json!(1), &serde_json::json!("Магазин №8"))
    );

    // Prometheus: one sample per register of each.
    let prom = status_of(&db, &dirs, &["--format", "prometheus"]).stdout;
    for want in [
        "csjobs_register_checks_today{shop=\"9\",cash=\"21\"} 5",
        "csjobs_register_revenue_today{shop=\"9\",cash=\"21\"} 3150",
        "csjobs_register_checks_today{shop=\"8\",cash=\"18\"} 0",
    ] {
        assert!(prom.lines().any(|l| l == want), "{want} not in\n{prom}");
    }
    // The table: a line per shop with its hours, and the registers' figures.
    let table = status_of(&db, &dirs, &["--format", "table"]).stdout;
    let shops_part = table.split("\nSHOPS").nth(1).expect("a SHOPS section");
    let line9 = shops_part.lines().find(|l| l.contains("Магазин №9")).unwrap();
    assert!(
        line9.contains("Mon–Sun 09:00–21:30") && line9.contains("open") && line9.contains("3\u{202f}150.00"),
        "{line9}"
    );
    assert!(
        shops_part.lines().any(|l| l.contains("Магазин №8") && l.contains("around the clock")),
        "{shops_part}"
    );

    // The report page: the register tables and the shop headers carry them.
    let page = dirs.tmp.path().join("today.html");
    report(&db.url, &dirs, &page, &[]);
    let html = std::fs::read_to_string(&page).unwrap();
    let s9 = &html[html.find("id=\"shop-9\"").unwrap()..];
    let s9 = &s9[..s9.find("</article>").unwrap()];
    assert!(s9.contains("checks <b>5</b>"), "{s9}");
    assert!(s9.contains("hours Mon–Sun 09:00–21:30 · open now"), "{s9}");
    assert!(
        s9.contains("<td class=\"num checks\">5</td><td class=\"num revenue\">3\u{202f}150.00</td>"),
        "{s9}"
    );
}

/// `report.url`: the alert e-mail's text links each shop to its section of the page, the
/// webhook gives the same link as each alert's generatorURL, and the page has that section.
/// A report.url that is not an http(s) URL is exit 2 naming it.
#[tokio::test]
async fn alerts_link_each_shop_to_its_section_of_the_report_page() {
    let (db, dirs) = fixture().await;
    let hook = HttpReceiver::start(200);
    let watch = |url: &str, args: &[&str]| {
        let mut w = csjobs(&db.url, &dirs);
        w.env("CSJOBS_ALERTS_WEBHOOK_URL", hook.url("/hook"))
            .env("CSJOBS_REPORT_URL", url)
            .args(["--now", NOW, "revenue-watch", "--format", "json"])
            .args(args);
        run(w)
    };
    let dry = watch("https://cash.example/csjobs/report.html#top", &["--dry-run"]);
    assert_eq!(dry.code, 3, "{}", dry.stderr);
    let doc: Value = serde_json::from_str(&dry.stdout).unwrap();
    let text = doc["would_send"]["text"].as_str().unwrap();
    assert!(text.contains("on the report page: https://cash.example/csjobs/report.html#shop-8\n"), "{text}");

    let sent = watch("https://cash.example/csjobs/report.html", &[]);
    assert_eq!(sent.code, 3, "{}", sent.stderr);
    let bodies = hook.take();
    assert_eq!(bodies.len(), 1);
    let body: Value = serde_json::from_slice(&bodies[0].1).unwrap();
    let links: Vec<&str> =
        body["alerts"].as_array().unwrap().iter().map(|a| a["generatorURL"].as_str().unwrap()).collect();
    assert_eq!(links, ["https://cash.example/csjobs/report.html#shop-8"; 2]);

    let page = dirs.tmp.path().join("report.html");
    report(&db.url, &dirs, &page, &[]);
    assert!(std::fs::read_to_string(&page)
        .unwrap()
        .contains("<article class=\"shop verdict-low\" id=\"shop-8\""));

    for bad in ["ftp://cash.example/report.html", "report.html", "https://"] {
        let r = watch(bad, &["--dry-run"]);
        assert_eq!(r.code, 2, "{bad}: {}", r.stderr);
        assert!(r.stderr.contains("report.url (CSJOBS_REPORT_URL)"), "{bad}: {}", r.stderr);
    }
}

/// What the period page holds, read from the DOM Chromium rendered: per shop article its day
/// rows (date → class, deviation text) and its register-by-day cells ((date, cash) → checks,
/// revenue), and the chart's beyond-threshold dots.
const PERIOD_SUMMARY: &str = r##"
import json, sys
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(s):
        super().__init__(); s.shops = {}; s.shop = None; s.row = None; s.cells = None; s.table = None
    def handle_starttag(s, tag, attrs):
        a = dict(attrs)
        if tag == "article": s.shop = a["id"]; s.shops[s.shop] = {"days": {}, "cells": {}, "dots": []}
        if not s.shop: return
        if tag == "table": s.table = a.get("class")
        if tag == "tr" and s.table == "days" and "data-date" in a:
            s.row = a["data-date"]; s.shops[s.shop]["days"][s.row] = {"class": a["class"], "cells": []}
        if tag == "td" and s.row: s.cells = ""
        if tag == "td" and "data-cash" in a and s.table == "registers-by-day":
            s.shops[s.shop]["cells"][s.date + "/" + a["data-cash"]] = [int(a["data-checks"]), a["data-revenue"]]
        if tag == "tr" and s.table == "registers-by-day" and "data-date" in a: s.date = a["data-date"]
        if tag == "circle" and a.get("class") == "beyond": s.shops[s.shop]["dots"].append(a["data-date"])
    def handle_endtag(s, tag):
        if tag == "article": s.shop = None
        if tag == "td" and s.row and s.cells is not None:
            s.shops[s.shop]["days"][s.row]["cells"].append(s.cells); s.cells = None
        if tag == "tr": s.row = None
        if tag == "table": s.table = None
    def handle_data(s, d):
        if s.cells is not None: s.cells += d
p = P(); p.feed(sys.stdin.read())
print(json.dumps(p.shops))
"##;

/// `report --from --to`: per shop and day revenue, checks, that day's profile and the
/// deviation, the days beyond the threshold marked, a chart by day, per register and day its
/// checks and revenue; checked in the DOM Chromium renders, with a screenshot kept. Bad
/// periods are exit 2.
#[tokio::test]
async fn the_period_view_in_a_real_browser() {
    let (db, dirs) = fixture().await;
    let page = dirs.tmp.path().join("period.html");
    let r = report(&db.url, &dirs, &page, &["--from", "2026-10-27", "--to", "2026-11-30"]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page.display());
    let (made, dom) = load(profile.path(), &url);
    assert_eq!(made, Vec::<String>::new(), "the page must fetch nothing");
    let mut py = Command::new("python3")
        .args(["-c", PERIOD_SUMMARY])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        py.stdin.take().unwrap().write_all(dom.as_bytes()).unwrap();
    }
    let out = py.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s8 = &v["shop-8"];
    let s9 = &v["shop-9"];
    // 27 Oct … 24 Nov (today): 29 days; the days after today are left out.
    let days8 = s8["days"].as_object().unwrap();
    assert_eq!(days8.len(), 29);
    assert!(days8.keys().all(|d| d.as_str() <= "2026-11-24"));
    let cells = |s: &Value, d: &str| -> Vec<String> {
        s["days"][d]["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().replace('\u{202f}', ""))
            .collect()
    };
    // date, weekday, revenue, checks, profile, deviation.
    assert_eq!(
        cells(s8, "2026-10-27"),
        ["2026-10-27", "Tue", "13000.00", "13", "-", "-"],
        "no Tuesday before"
    );
    assert_eq!(
        cells(s8, "2026-11-03"),
        ["2026-11-03", "Tue", "13000.00", "13", "-", "-"],
        "one is fewer than min_weeks"
    );
    assert_eq!(cells(s8, "2026-11-17"), ["2026-11-17", "Tue", "13000.00", "13", "13000.00", "0%"]);
    assert_eq!(
        cells(s8, "2026-11-18"),
        ["2026-11-18", "Wed", "0.00", "0", "-", "-"],
        "a closed day has no profile"
    );
    // Today, judged as revenue-watch judges it: up to noon against the Tuesdays up to noon.
    assert_eq!(cells(s8, "2026-11-24"), ["2026-11-24", "Tue", "1000.00", "1", "4000.00", "75.0%"]);
    assert_eq!(cells(s9, "2026-11-24"), ["2026-11-24", "Tue", "3200.00", "4", "3200.00", "0%"]);
    let beyond = |s: &Value| -> Vec<String> {
        s["days"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, d)| d["class"] == "day beyond")
            .map(|(k, _)| k.clone())
            .collect()
    };
    assert_eq!(beyond(s8), ["2026-11-24"]);
    assert_eq!(beyond(s9), Vec::<String>::new());
    assert_eq!(s8["dots"], serde_json::json!(["2026-11-24"]), "the chart marks the same day");
    // Per register and day.
    assert_eq!(s8["cells"]["2026-11-17/17"], serde_json::json!([13, "13000.00"]));
    assert_eq!(s8["cells"]["2026-11-24/17"], serde_json::json!([1, "1000.00"]));
    assert_eq!(s8["cells"]["2026-11-24/18"], serde_json::json!([0, "0.00"]));
    assert_eq!(s9["cells"]["2026-11-10/21"], serde_json::json!([13, "10400.00"]));

    let shot = artifacts().join("report-period.png");
    let _ = std::fs::remove_file(&shot);
    let s = chromium(profile.path())
        .arg("--window-size=1280,1800")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    assert!(std::fs::read(&shot).unwrap().len() > 20_000);
    std::fs::copy(&page, artifacts().join("report-period.html")).unwrap();

    // --shop keeps one shop; bad periods and shops are usage errors, and nothing is written.
    let one = dirs.tmp.path().join("one.html");
    assert_eq!(
        report(&db.url, &dirs, &one, &["--from", "2026-11-01", "--to", "2026-11-24", "--shop", "9"]).code,
        0
    );
    let html = std::fs::read_to_string(&one).unwrap();
    assert!(html.contains("id=\"shop-9\"") && !html.contains("id=\"shop-8\""));
    // A period before today: each day whole against whole days, nothing of today read.
    let past = dirs.tmp.path().join("past.html");
    assert_eq!(report(&db.url, &dirs, &past, &["--from", "2026-11-10", "--to", "2026-11-17"]).code, 0);
    let html = std::fs::read_to_string(&past).unwrap();
    assert_eq!(html.matches("<tr class=\"day\" data-date=").count(), 2 * 8, "8 days of 2 shops, none marked");
    assert!(!html.contains("data-date=\"2026-11-24\""));
    let bad = dirs.tmp.path().join("bad.html");
    for (args, says) in [
        (vec!["--from", "2026-11-01"], "--to"),
        (vec!["--to", "2026-11-01"], "--from"),
        (vec!["--from", "2026-11-02", "--to", "2026-11-01"], "before --from"),
        (vec!["--from", "2026-08-01", "--to", "2026-11-24"], "at most 92"),
        (vec!["--from", "2026-11-31", "--to", "2026-12-01"], "--from"),
        (vec!["--from", "2026-11-01", "--to", "2026-11-24", "--shop", "99"], "--shop 99"),
    ] {
        let r = report(&db.url, &dirs, &bad, &args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
        assert!(!bad.exists(), "{args:?}");
    }
}
