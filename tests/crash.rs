//! Crash safety of `load-sales`: a run SIGKILLed at random moments, then run again, ends
//! in the same database state and the same file placement as a run never interrupted.

mod common;
#[path = "support/synth.rs"]
mod synth;

use std::{
    fs,
    process::Stdio,
    time::{Duration, Instant},
};

use common::*;
use rust_decimal::{Decimal, RoundingStrategy};
use synth::{Layout, SplitMix};

/// A document a re-sent fragment changes: its shift, its number, and the values the new
/// version has (item 1's quantity and sum, the document total, payment 1's amount).
#[derive(Debug, Clone)]
struct Resent {
    file: String,
    shop: i64,
    cash: i64,
    shift: i64,
    docnum: i64,
    quantity: Decimal,
    sum: Decimal,
    total: Decimal,
    amount: Decimal,
}

/// `content` (a valid fragment) with its first document changed as a register that
/// corrected it would re-send it: item 1 sold once more, its sum recomputed by the rules of
/// sales-file.md (round(quantity × price, 2) − discount), payment 1 grown by the difference
/// so the document stays balanced.
fn changed_fragment(content: &[u8], file: String) -> (Vec<u8>, Resent) {
    let dec = |v: &serde_json::Value| v.as_str().unwrap().parse::<Decimal>().unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(content).unwrap();
    let (shop, cash, shift) =
        (v["shop"].as_i64().unwrap(), v["cash"].as_i64().unwrap(), v["shift"]["number"].as_i64().unwrap());
    let doc = &mut v["documents"][0];
    assert_eq!(doc["type"], "sale");
    assert!(!doc["closed_at"].is_null());
    let docnum = doc["number"].as_i64().unwrap();
    let item = &mut doc["items"][0];
    let (old_sum, price, discount) = (dec(&item["sum"]), dec(&item["price"]), dec(&item["discount"]));
    let quantity = dec(&item["quantity"]) + Decimal::ONE;
    let sum = (quantity * price).round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero) - discount;
    item["quantity"] = quantity.to_string().into();
    item["sum"] = sum.to_string().into();
    let delta = sum - old_sum;
    assert!(delta > Decimal::ZERO);
    let pay = &mut doc["payments"][0];
    let amount = dec(&pay["amount"]) + delta;
    pay["amount"] = amount.to_string().into();
    let total = doc["items"].as_array().unwrap().iter().map(|i| dec(&i["sum"])).sum();
    let resent = Resent { file, shop, cash, shift, docnum, quantity, sum, total, amount };
    (serde_json::to_vec(&v).unwrap(), resent)
}

/// A few hundred files: fragments of many shifts, a later re-send of some fragments with a
/// changed document, broken files, files for an unknown cash, some gzip.
fn queue_files() -> (Layout, Vec<(String, Vec<u8>)>) {
    let (layout, files, _) = queue_files_and_resends();
    (layout, files)
}

/// Queue files: (name, content) in delivery order.
type Files = Vec<(String, Vec<u8>)>;

fn queue_files_and_resends() -> (Layout, Files, Vec<Resent>) {
    let layout = Layout {
        first_shop: 100,
        shops: 2,
        cashes_per_shop: 3,
        shifts_per_cash: 5,
        fragments_per_shift: 8,
        docs_per_fragment: 4,
        items_per_doc: 3,
        seed: 42,
    };
    let mut rng = SplitMix(4242);
    let mut files = Vec::new();
    // The fragments as the registers wrote them, before this queue breaks some of them.
    let mut originals: Vec<(usize, String, Vec<u8>)> = Vec::new();
    let mut resends = Vec::new();
    for (i, (name, content)) in layout.files().enumerate() {
        if i % 29 != 7 && i % 29 != 13 {
            originals.push((i, name.clone(), content.clone()));
        }
        let mut content = content;
        let mut name = name;
        match i % 29 {
            7 => content.truncate(content.len() / 2), // broken
            13 => {
                let text = String::from_utf8(content).unwrap();
                content = text.replacen("\"cash\":", "\"cash\":9", 1).into_bytes();
                // unknown cash
            }
            _ => {}
        }
        if i % 10 == 3 {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&content).unwrap();
            content = e.finish().unwrap();
            name.push_str(".gz");
        }
        files.push((name, content));
        // Now and then the register re-sends an earlier fragment with one of its documents
        // changed: the new version replaces the old one.
        if i % 17 == 16 {
            let j = rng.range(0, originals.len() as u64) as usize;
            let (_, n, c) = &originals[j];
            let name = format!("resend-{i}-{n}");
            let (changed, resent) = changed_fragment(c, name.clone());
            assert_ne!(&changed, c);
            files.push((name, changed));
            resends.push(resent);
        }
    }
    (layout, files, resends)
}

/// Each re-sent document is in the database once, as its new version.
async fn assert_new_versions(db: &TestDb, resends: &[Resent]) {
    for r in resends {
        let doc = format!(
            "from document d join workshift w using (workshiftid)
              where w.shopcode = {} and w.cashcode = {} and w.shiftnum = {} and d.docnum = {}",
            r.shop, r.cash, r.shift, r.docnum
        );
        assert_eq!(db.scalar_i64(&format!("select count(*) {doc}")).await, 1, "{r:?}: exactly once");
        let new = format!(
            "select count(*) {doc} and d.total = {} \
               and exists (select from goodsitem g where g.documentid = d.documentid and g.posnum = 1 \
                              and g.quantity = {} and g.total = {}) \
               and exists (select from payment p where p.documentid = d.documentid and p.paynum = 1 \
                              and p.amount = {})",
            r.total, r.quantity, r.sum, r.amount
        );
        assert_eq!(
            db.scalar_i64(&new).await,
            1,
            "{r:?}: the new version, not the old one: {:?}",
            db.rows(&format!("select d.total, (select string_agg(concat_ws('/', g.posnum, g.quantity, g.total), ';') from goodsitem g where g.documentid = d.documentid) {doc}")).await
        );
    }
}

/// The load log and the directories agree: every file in processed/, error/ and broken/ was
/// moved there by a row of that disposition and name, and every row that records a move
/// points at a file that is there, in the directory of its disposition, with its content.
async fn assert_placement_agrees_with_log(db: &TestDb, dirs: &Dirs) {
    use sha2::Digest;
    let rows = db
        .client
        .query(
            "select file_name, disposition, moved_to, content_sha256 from load_log where disposed_at is not null",
            &[],
        )
        .await
        .unwrap();
    let dir_of = |d: &str| match d {
        "processed" => dirs.processed.clone(),
        "error" => dirs.error.clone(),
        _ => dirs.broken.clone(),
    };
    let mut moved_here = std::collections::BTreeSet::new();
    for r in &rows {
        let (name, disp, to, sha): (String, String, Option<String>, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let Some(to) = to else { continue };
        let to = std::path::PathBuf::from(to);
        assert_eq!(to.parent().unwrap(), dir_of(&disp), "{name}: moved to {} as {disp}", to.display());
        assert_eq!(to.file_name().unwrap().to_str().unwrap(), name, "{name} keeps its name");
        let bytes = fs::read(&to).unwrap_or_else(|e| panic!("{name}: {} is not there: {e}", to.display()));
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), sha, "{name}: the content it was loaded with");
        assert!(moved_here.insert(to.clone()), "{} recorded as moved twice", to.display());
    }
    for disp in ["processed", "error", "broken"] {
        for name in Dirs::names(&dir_of(disp)) {
            assert!(
                rows.iter().any(|r| r.get::<_, String>(0) == name && r.get::<_, String>(1) == disp),
                "{disp}/{name} has no load log row of that disposition"
            );
        }
    }
}

fn put_all(dirs: &Dirs, files: &[(String, Vec<u8>)]) {
    for (i, (name, content)) in files.iter().enumerate() {
        dirs.put(name, content, i as u64);
    }
}

fn placement(dirs: &Dirs) -> Vec<Vec<String>> {
    [&dirs.queue, &dirs.processed, &dirs.error, &dirs.broken].iter().map(|d| Dirs::names(d)).collect()
}

async fn prepared_db(layout: &Layout) -> TestDb {
    let db = TestDb::cashserver().await;
    db.client.batch_execute(&layout.dictionary_sql()).await.unwrap();
    db
}

fn loader(db: &TestDb, dirs: &Dirs) -> std::process::Command {
    let mut c = csjobs(&db.url, dirs);
    c.env("CSJOBS_SALES_BATCH_FILES", "6").arg("load-sales").stdout(Stdio::null()).stderr(Stdio::null());
    c
}

#[tokio::test]
async fn sigkill_at_random_moments_then_rerun_equals_an_uninterrupted_load() {
    let (layout, files, resends) = queue_files_and_resends();
    assert!(files.len() >= 250, "a few hundred files: {}", files.len());
    assert!(resends.len() >= 10, "re-sent fragments: {}", resends.len());

    // The reference: one uninterrupted run.
    let reference_db = prepared_db(&layout).await;
    let reference = Dirs::new();
    put_all(&reference, &files);
    let started = Instant::now();
    let r = run(loader(&reference_db, &reference));
    let full_run_ms = started.elapsed().as_millis() as u64;
    assert_eq!(r.code, 3, "broken and error files are part of the queue");
    let expected_state = reference_db.sales_state().await;
    let expected_log = reference_db.load_log().await;
    let expected_files = placement(&reference);
    // The auto export (rules.md §5) is part of the load: the closed shifts' ASTU files and
    // flags must come out the same too.
    let expected_flags = reference_db.astu_flags().await;
    let expected_outbox = reference_db.astu_outbox(&reference.astu).await;
    assert!(expected_flags.iter().any(|f| f.ends_with(",t,t)")), "some shifts exported: {expected_flags:?}");
    assert!(expected_outbox.len() >= 10, "{} ASTU files", expected_outbox.len());
    assert!(expected_files[0].is_empty());
    assert!(!expected_files[2].is_empty() && !expected_files[3].is_empty());
    // The uninterrupted run keeps the new version of each re-sent document, and every re-send
    // is processed (not a duplicate of content already seen).
    assert_new_versions(&reference_db, &resends).await;
    for r in &resends {
        assert!(expected_files[1].contains(&r.file), "{} processed", r.file);
    }
    assert_placement_agrees_with_log(&reference_db, &reference).await;

    // The same queue, loaded by runs killed at random moments.
    let db = prepared_db(&layout).await;
    let dirs = Dirs::new();
    put_all(&dirs, &files);
    let mut rng = SplitMix(7);
    // Each kill judged on its own, by what changed between just before that run and just
    // after its kill: it landed mid-work when that very run had committed or moved something
    // and work was still left; it left "committed, not moved" when rows of that run's
    // batches were in the load log with their files not yet recorded as moved.
    let (mut mid_work, mut committed_not_moved) = (0, 0);
    // Runs killed until the queue is empty (at least 40, at most 300): one that empties the
    // queue before its kill is harmless, the next ones find nothing to do.
    let mut runs = 0;
    while runs < 40 || (runs < 300 && !Dirs::names(&dirs.queue).is_empty()) {
        runs += 1;
        let before = kill_snapshot(&db, &dirs).await;
        let mut child = loader(&db, &dirs).spawn().unwrap();
        let finished = if rng.range(0, 2) == 0 {
            // From process start-up to an eighth of a whole run: many runs, each cut short.
            kill_after(&mut child, Duration::from_millis(rng.range(1, (full_run_ms / 8).max(15))))
        } else {
            // Once this run has committed a batch, a moment later: in the middle of its work.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if db.scalar_i64("select count(*) from load_log").await > before.rows
                    || Instant::now() > deadline
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            kill_after(&mut child, Duration::from_millis(rng.range(0, 8)))
        };
        let after = kill_snapshot(&db, &dirs).await;
        if std::env::var("CSJOBS_TEST_DEBUG").is_ok() {
            eprintln!(
                "run {runs}: finished {finished}, queued {} -> {}, rows {} -> {}",
                before.queued, after.queued, before.rows, after.rows
            );
        }
        if !finished && after.queued > 0 && (after.rows > before.rows || after.queued < before.queued) {
            mid_work += 1;
        }
        if !finished && after.newest_undisposed > before.rows_max_id {
            committed_not_moved += 1;
        }
        // Let the server notice the dead session (its advisory lock goes with it).
        std::thread::sleep(Duration::from_millis(30));
    }
    eprintln!("whole run {full_run_ms} ms; {runs} runs: {mid_work} killed mid-work, {committed_not_moved} left files committed but not moved");
    // One last, uninterrupted run finishes the work (a lock not yet released: try again).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = run(loader(&db, &dirs));
        if r.code != 4 || Instant::now() > deadline {
            assert!(r.code == 0 || r.code == 3, "final run: {}", r.code);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(mid_work >= MID_WORK_KILLS, "the kills must land mid-run to prove anything: {mid_work}");

    assert_eq!(placement(&dirs), expected_files);
    assert_eq!(db.sales_state().await, expected_state);
    assert_eq!(db.load_log().await, expected_log);
    assert_eq!(db.scalar_i64("select count(*) from load_log where disposed_at is null").await, 0);
    assert_eq!(db.astu_flags().await, expected_flags);
    assert_eq!(db.astu_outbox(&dirs.astu).await, expected_outbox);
    assert_eq!(db.scalar_i64("select count(*) from workshift where astu_export_due").await, 0);
    assert_new_versions(&db, &resends).await;
    assert_placement_agrees_with_log(&db, &dirs).await;
}

/// Kills that must land mid-work (25 to 31 observed in 4 runs: see the test's output).
const MID_WORK_KILLS: usize = 12;

/// What a kill is judged by: files still queued, load log rows (and the newest id), the
/// newest load log row not yet recorded as moved.
struct KillSnapshot {
    queued: usize,
    rows: i64,
    rows_max_id: i64,
    newest_undisposed: i64,
}

async fn kill_snapshot(db: &TestDb, dirs: &Dirs) -> KillSnapshot {
    KillSnapshot {
        queued: Dirs::names(&dirs.queue)
            .iter()
            .filter(|n| n.ends_with(".json") || n.ends_with(".gz"))
            .count(),
        rows: db.scalar_i64("select count(*) from load_log").await,
        rows_max_id: db.scalar_i64("select coalesce(max(load_id), 0) from load_log").await,
        newest_undisposed: db
            .scalar_i64("select coalesce(max(load_id), 0) from load_log where disposed_at is null")
            .await,
    }
}

/// The narrowest window: the batch committed, the process died before moving its files.
/// The next run moves them without loading them again.
#[tokio::test]
async fn committed_but_not_moved_files_are_moved_by_the_next_run_not_reloaded() {
    let (layout, files) = queue_files();
    let db = prepared_db(&layout).await;
    let dirs = Dirs::new();
    put_all(&dirs, &files[..20]);
    let first = run(loader(&db, &dirs));
    assert_eq!(first.code, 3, "file 7 of the first 20 is broken by design: {}", first.stderr);
    let state = db.sales_state().await;
    let loaded = db.scalar_i64("select count(*) from load_log").await;
    let placed = placement(&dirs);
    let log = db.load_log().await;
    assert!(placed[0].is_empty() && !placed[2].is_empty() && !placed[3].is_empty(), "{placed:?}");
    let moves = "select file_name, disposition, moved_to from load_log order by load_id";
    let first_moves = db.rows(moves).await;

    // Put the world back to "committed, not moved": files in the queue, rows undisposed.
    for dir in [&dirs.processed, &dirs.error, &dirs.broken] {
        for name in Dirs::names(dir) {
            fs::rename(dir.join(&name), dirs.queue.join(&name)).unwrap();
        }
    }
    db.client.batch_execute("update load_log set disposed_at = null, moved_to = null").await.unwrap();
    // And a file that a new writer dropped under a name already seen, with new content:
    // it is loaded as the new file it is.
    let (name0, _) = &files[0];
    assert!(!name0.ends_with(".gz"), "the first file is plain JSON (i % 10 == 3 are gzipped)");
    let other = sales_file(8, 17, 77, Some("2026-11-20T08:00:00"), None, vec![sale(1, "5.00")]);
    fs::write(dirs.queue.join(name0), &other).unwrap();

    let r = run(loader(&db, &dirs));
    assert_eq!(r.code, 0, "nothing is loaded again but the new file: {}", r.stderr);
    assert!(Dirs::names(&dirs.queue).is_empty());
    assert_eq!(db.scalar_i64("select count(*) from load_log").await, loaded + 1);
    // Everything as the first run left it, plus the new file's shift.
    let (new, old): (Vec<String>, Vec<String>) =
        db.sales_state().await.into_iter().partition(|r| r.starts_with("(17,8,77,"));
    assert_eq!(old, state);
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(db.scalar_i64("select count(*) from load_log where disposed_at is null").await, 0);

    // Each file back where the first run put it (processed/, error/ or broken/), the new
    // file in processed/ under the name it came with; the load log as the first run left it
    // plus the new file's row; each row's move recorded again, to the same place — but the
    // first name0's, whose file a new writer replaced: no move of it is recorded.
    assert_eq!(placement(&dirs), placed);
    let mut expected_log = log.clone();
    expected_log.push(format!("({name0},processed,\"\",t)"));
    expected_log.sort();
    assert_eq!(db.load_log().await, expected_log);
    let moves_now = db.rows(moves).await;
    assert_eq!(moves_now.len(), first_moves.len() + 1);
    for (before, now) in first_moves.iter().zip(&moves_now) {
        if before.starts_with(&format!("({name0},")) {
            assert_eq!(now, &format!("({name0},processed,)"), "the replaced file's row");
        } else {
            assert_eq!(now, before);
        }
    }
    let old0 = first_moves.iter().find(|r| r.starts_with(&format!("({name0},"))).unwrap();
    assert_eq!(moves_now.last().unwrap(), old0, "the new file went where the old one had");
    assert_placement_agrees_with_log(&db, &dirs).await;
}

/// One SIGTERM: the run finishes the batch under way, moves its files, and exits 0 (nothing
/// it handled was rejected) with the rest still queued; the next run loads the rest, and
/// the end is that of an uninterrupted run.
#[tokio::test]
async fn one_sigterm_finishes_the_batch_exits_0_and_the_rerun_completes() {
    let (layout, _) = queue_files();
    // Only files that load (the fragments as written): a stopped run's exit code then says
    // nothing was rejected.
    let files: Vec<(String, Vec<u8>)> = layout.files().collect();
    let reference_db = prepared_db(&layout).await;
    let reference = Dirs::new();
    put_all(&reference, &files);
    assert_eq!(run(loader(&reference_db, &reference)).code, 0);
    let expected_state = reference_db.sales_state().await;
    let expected_files = placement(&reference);

    let db = prepared_db(&layout).await;
    let dirs = Dirs::new();
    put_all(&dirs, &files);
    let mut c = csjobs(&db.url, &dirs);
    c.env("CSJOBS_SALES_BATCH_FILES", "6").arg("load-sales");
    // A batch committed: the run is under way.
    stop_once_under_way(
        c,
        &db,
        "select count(*) from load_log",
        |n| n > 0,
        "the run never committed a batch",
    )
    .await;
    let left = Dirs::names(&dirs.queue).len();
    assert!(left > 0 && left < files.len(), "the rest stays queued: {left} of {}", files.len());
    // What it loaded, it moved: no file committed and left behind.
    assert_eq!(db.scalar_i64("select count(*) from load_log where disposed_at is null").await, 0);
    assert_eq!(db.scalar_i64("select count(*) from load_log").await as usize, files.len() - left);

    let r = run(loader(&db, &dirs));
    assert_eq!(r.code, 0, "the rerun loads the rest");
    assert_eq!(placement(&dirs), expected_files);
    assert_eq!(db.sales_state().await, expected_state);
    assert_placement_agrees_with_log(&db, &dirs).await;
}
