//! Crash safety of `load-sales`: a run SIGKILLed at random moments, then run again, ends
//! in the same database state and the same file placement as a run never interrupted.

mod common;

use std::{
    fs,
    process::Stdio,
    time::{Duration, Instant},
};

use common::*;
use csjobs::sales::synth::{Layout, SplitMix};

/// A few hundred files: fragments of many shifts, a later re-send of some fragments with a
/// changed document, broken files, files for an unknown cash, some gzip.
fn queue_files() -> (Layout, Vec<(String, Vec<u8>)>) {
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
    for (i, (name, content)) in layout.files().enumerate() {
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
        // Now and then the register re-sends an earlier fragment (a replaced document).
        if i % 17 == 16 {
            let j = rng.range(0, i as u64) as usize;
            let (n, c) = files[j].clone();
            files.push((format!("resend-{i}-{n}"), c));
        }
    }
    (layout, files)
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
    let (layout, files) = queue_files();
    assert!(files.len() >= 250, "a few hundred files: {}", files.len());

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

    // The same queue, loaded by runs killed at random moments.
    let db = prepared_db(&layout).await;
    let dirs = Dirs::new();
    put_all(&dirs, &files);
    let mut rng = SplitMix(7);
    let mut partial_kills = 0;
    // 40 runs, each killed at most a third into a whole run (one that empties the queue
    // before its kill is harmless: the next ones find nothing to do).
    for _ in 0..40 {
        let mut child = loader(&db, &dirs).spawn().unwrap();
        // From process start-up to a third of a whole run: many runs, each cut short.
        let finished = kill_after(&mut child, Duration::from_millis(rng.range(1, (full_run_ms / 3).max(15))));
        if !finished {
            let left = Dirs::names(&dirs.queue).len();
            if left > 0 && left < files.len() {
                partial_kills += 1;
            }
        }
        // Let the server notice the dead session (its advisory lock goes with it).
        std::thread::sleep(Duration::from_millis(30));
    }
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
    assert!(partial_kills >= 3, "the kills must land mid-run to prove anything: {partial_kills}");

    assert_eq!(placement(&dirs), expected_files);
    assert_eq!(db.sales_state().await, expected_state);
    assert_eq!(db.load_log().await, expected_log);
    assert_eq!(db.scalar_i64("select count(*) from load_log where disposed_at is null").await, 0);
    assert_eq!(db.astu_flags().await, expected_flags);
    assert_eq!(db.astu_outbox(&dirs.astu).await, expected_outbox);
    assert_eq!(db.scalar_i64("select count(*) from workshift where astu_export_due").await, 0);
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
}
