//! `csjobs archive` through the binary on real files: naming, what the archives hold (read
//! back with GNU tar), retention at its boundary, dry run, failures (missing directory,
//! unreadable file, disk full), the lock, and crash safety under SIGKILL.

mod common;
#[path = "support/synth.rs"]
mod synth;

use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::*;
use csjobs::archive::tgz;
use sha2::{Digest, Sha256};
use synth::SplitMix;

/// 2026-11-23 in Moscow, 2026-11-22 in UTC: archives take the date of "now" as given.
const NOW: &str = "2026-11-23T01:30:00+03:00";

fn backup(dirs: &Dirs) -> PathBuf {
    dirs.tmp.path().join("backup")
}

fn archive(dirs: &Dirs, args: &[&str]) -> Run {
    let mut c = csjobs("postgres://unused.invalid/none", dirs);
    c.args(["--now", NOW, "archive"]).args(args);
    run(c)
}

fn write(path: &Path, content: &[u8], secs: u64, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    set_mtime(path, secs);
}

/// Every regular file under `dir`: relative path → content hash.
fn tree(dir: &Path) -> BTreeMap<String, [u8; 32]> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).min_depth(1) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(dir).unwrap().to_str().unwrap().to_string();
            out.insert(rel, Sha256::digest(fs::read(e.path()).unwrap()).into());
        }
    }
    out
}

fn tar(args: &[&str]) -> String {
    let out = Command::new("tar").args(args).output().unwrap();
    assert!(out.status.success(), "tar {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn packs_each_directory_with_paths_mtimes_and_modes_then_deletes_the_sources() {
    let dirs = Dirs::new();
    write(&dirs.processed.join("a.json"), b"{\"a\":1}", 100, 0o644);
    write(&dirs.processed.join("2026/11/b.json.gz"), &[0x1f, 0x8b, 1, 2, 3], 200, 0o600);
    write(&dirs.processed.join("notes.txt"), b"any regular file goes", 300, 0o640);
    write(&dirs.error.join("e.json"), b"{\"e\":1}", 400, 0o644);
    write(&dirs.broken.join("x.json"), b"\x00\xff not json", 500, 0o644);
    let other = dirs.tmp.path().join("outside.txt");
    fs::write(&other, "target").unwrap();
    std::os::unix::fs::symlink(&other, dirs.processed.join("link.json")).unwrap();
    let before: Vec<_> = [&dirs.processed, &dirs.error, &dirs.broken].iter().map(|d| tree(d)).collect();
    // A loader's move across file systems in flight: not ours to archive or delete.
    let in_flight = dirs.processed.join(".c.json.csjobs-tmp-4242");
    fs::write(&in_flight, "moving").unwrap();

    let r = archive(&dirs, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);

    for (i, (name, dir)) in [("processed", &dirs.processed), ("error", &dirs.error), ("broken", &dirs.broken)]
        .into_iter()
        .enumerate()
    {
        let archive_dir = backup(&dirs).join(format!("{name}_archive"));
        assert_eq!(Dirs::names(&archive_dir), [format!("{name}-26-11-23.tgz")], "{name}");
        let path = archive_dir.join(format!("{name}-26-11-23.tgz"));
        // GNU tar reads it, and extracting gives back the very files, mtimes and modes.
        let out = dirs.tmp.path().join(format!("x-{name}"));
        fs::create_dir_all(&out).unwrap();
        tar(&["xzf", path.to_str().unwrap(), "-C", out.to_str().unwrap()]);
        assert_eq!(tree(&out), before[i], "{name}");
        for rel in before[i].keys() {
            let meta = fs::metadata(out.join(rel)).unwrap();
            let expect = match rel.as_str() {
                "a.json" => (100, 0o644),
                "2026/11/b.json.gz" => (200, 0o600),
                "notes.txt" => (300, 0o640),
                "e.json" => (400, 0o644),
                "x.json" => (500, 0o644),
                other => panic!("unexpected entry {other}"),
            };
            assert_eq!(meta.mtime() as u64 - 1_790_000_000, expect.0, "{rel} mtime");
            assert_eq!(meta.mode() & 0o7777, expect.1, "{rel} mode");
        }
        // Relative paths only.
        for line in tar(&["tzf", path.to_str().unwrap()]).lines() {
            assert!(!line.starts_with('/') && !line.contains(".."), "{line}");
        }
        // Sources gone, directories kept.
        let left: Vec<String> = tree(dir).into_keys().collect();
        let expect_left: &[&str] = if name == "processed" { &[".c.json.csjobs-tmp-4242"] } else { &[] };
        assert_eq!(left, expect_left, "{name}");
    }
    assert!(dirs.processed.join("2026/11").is_dir());
    // A link is not a regular file: neither archived nor deleted, its target untouched.
    assert!(fs::symlink_metadata(dirs.processed.join("link.json")).unwrap().file_type().is_symlink());
    assert_eq!(fs::read_to_string(&other).unwrap(), "target");
}

#[test]
fn later_runs_of_the_day_never_overwrite() {
    let dirs = Dirs::new();
    let archive_dir = backup(&dirs).join("processed_archive");
    for run_no in 1..=3 {
        write(&dirs.processed.join(format!("f{run_no}.json")), format!("{run_no}").as_bytes(), 10, 0o644);
        let r = archive(&dirs, &[]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    assert_eq!(
        Dirs::names(&archive_dir),
        ["processed-26-11-23.2.tgz", "processed-26-11-23.3.tgz", "processed-26-11-23.tgz"]
    );
    let list = |n: &str| tar(&["tzf", archive_dir.join(n).to_str().unwrap()]);
    assert_eq!(list("processed-26-11-23.tgz").trim(), "f1.json");
    assert_eq!(list("processed-26-11-23.2.tgz").trim(), "f2.json");
    assert_eq!(list("processed-26-11-23.3.tgz").trim(), "f3.json");
    // Nothing to pack: no empty archive.
    let r = archive(&dirs, &[]);
    assert_eq!(r.code, 0);
    assert_eq!(Dirs::names(&archive_dir).len(), 3);
}

#[test]
fn retention_deletes_only_our_archives_older_than_30_days() {
    let dirs = Dirs::new();
    let pa = backup(&dirs).join("processed_archive");
    let ea = backup(&dirs).join("error_archive");
    fs::create_dir_all(&pa).unwrap();
    fs::create_dir_all(&ea).unwrap();
    let keep = [
        "processed-26-10-24.tgz",   // 30 days before now: kept
        "processed-26-10-24.2.tgz", // 30 days
        "processed-26-11-22.tgz",
        "processed-26-10-01.tgz.bak", // not our naming
        "processed-2026-10-01.tgz",
        "error-26-10-01.tgz", // our naming for another directory
        "notes.txt",
    ];
    let gone = ["processed-26-10-23.tgz", "processed-26-10-23.2.tgz", "processed-25-11-23.tgz"];
    for n in keep.iter().chain(&gone) {
        fs::write(pa.join(n), "old").unwrap();
    }
    fs::write(ea.join("error-26-10-24.tgz"), "old").unwrap();
    fs::write(ea.join("error-26-10-23.9.tgz"), "old").unwrap();
    fs::write(backup(&dirs).join("processed-20-01-01.tgz"), "outside the archive dirs").unwrap();

    // The dry run lists and deletes nothing.
    let r = archive(&dirs, &["--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for n in gone {
        assert!(r.stdout.contains(&format!("delete\t{}", pa.join(n).display())), "{n}: {}", r.stdout);
    }
    assert!(!r.stdout.contains("processed-26-10-24"), "{}", r.stdout);
    assert_eq!(Dirs::names(&pa).len(), keep.len() + gone.len());

    let r = archive(&dirs, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut expect: Vec<String> = keep.iter().map(|s| s.to_string()).collect();
    expect.sort();
    assert_eq!(Dirs::names(&pa), expect);
    assert_eq!(Dirs::names(&ea), ["error-26-10-24.tgz"]);
    assert!(backup(&dirs).join("processed-20-01-01.tgz").exists());

    // The retention is a setting.
    let mut c = csjobs("postgres://unused.invalid/none", &dirs);
    c.env("CSJOBS_ARCHIVE_RETENTION_DAYS", "1").args(["--now", NOW, "archive"]);
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut expect = [
        "notes.txt",
        "processed-2026-10-01.tgz",
        "processed-26-10-01.tgz.bak",
        "processed-26-11-22.tgz",
        "error-26-10-01.tgz",
    ];
    expect.sort();
    assert_eq!(Dirs::names(&pa), expect);
}

#[test]
fn dry_run_lists_what_would_be_packed_and_changes_nothing() {
    let dirs = Dirs::new();
    write(&dirs.processed.join("a.json"), b"a", 1, 0o644);
    write(&dirs.broken.join("sub/b.json"), b"b", 2, 0o644);
    let r = archive(&dirs, &["--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let pa = backup(&dirs).join("processed_archive/processed-26-11-23.tgz");
    assert!(r.stdout.contains(&format!(
        "pack\t{}\t{}",
        dirs.processed.join("a.json").display(),
        pa.display()
    )));
    assert!(
        r.stdout.contains(&format!("pack\t{}", dirs.broken.join("sub/b.json").display())),
        "{}",
        r.stdout
    );
    assert!(dirs.processed.join("a.json").exists() && dirs.broken.join("sub/b.json").exists());
    assert!(!backup(&dirs).exists(), "a dry run creates nothing");
}

#[test]
fn a_missing_source_directory_fails_with_its_name_and_the_others_are_archived() {
    let dirs = Dirs::new();
    write(&dirs.processed.join("a.json"), b"a", 1, 0o644);
    fs::remove_dir(&dirs.error).unwrap();
    let r = archive(&dirs, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains(&dirs.error.display().to_string()), "{}", r.stderr);
    assert!(r.stderr.contains("CSJOBS_ERROR_DIR"), "{}", r.stderr);
    assert!(!dirs.processed.join("a.json").exists());
    assert_eq!(Dirs::names(&backup(&dirs).join("processed_archive")), ["processed-26-11-23.tgz"]);
}

#[test]
fn an_unreadable_file_stays_where_it_is_and_fails_the_run() {
    let dirs = Dirs::new();
    for d in [dirs.tmp.path(), &dirs.processed, &dirs.error, &dirs.broken] {
        fs::set_permissions(d, fs::Permissions::from_mode(0o777)).unwrap();
    }
    write(&dirs.processed.join("a.json"), b"a", 1, 0o644);
    write(&dirs.processed.join("secret.json"), b"s", 2, 0o000);
    write(&dirs.processed.join("c.json"), b"c", 3, 0o644);
    let mut c = csjobs("postgres://unused.invalid/none", &dirs);
    c.args(["--now", NOW, "archive"]);
    let r = run(as_nobody(c));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("secret.json"), "{}", r.stderr);
    assert_eq!(Dirs::names(&dirs.processed), ["secret.json"]);
    let listed =
        tar(&["tzf", backup(&dirs).join("processed_archive/processed-26-11-23.tgz").to_str().unwrap()]);
    assert_eq!(listed.lines().collect::<Vec<_>>(), ["a.json", "c.json"]);
}

#[test]
fn a_full_disk_fails_the_run_and_deletes_nothing() {
    let dirs = Dirs::new();
    let mut rng = SplitMix(7);
    for i in 0..20 {
        let data: Vec<u8> = (0..100_000).map(|_| rng.next_u64() as u8).collect(); // incompressible
        write(&dirs.processed.join(format!("f{i:02}.json")), &data, i, 0o644);
    }
    let before = tree(&dirs.processed);
    fs::create_dir_all(backup(&dirs)).unwrap();
    // A 256 KiB tmpfs over the backup directory, in a mount namespace of its own: the
    // archive (2 MB, incompressible) cannot fit.
    let mut c = csjobs("postgres://unused.invalid/none", &dirs);
    c.args(["--now", NOW, "archive"]);
    let listing = dirs.tmp.path().join("full-disk.txt");
    let r = run(with_small_disk_listed(&backup(&dirs), "256k", &c, &listing));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("No space left on device"), "{}", r.stderr);
    assert!(r.stderr.contains("nothing was deleted"), "{}", r.stderr);
    assert_eq!(tree(&dirs.processed), before);
    // The full disk itself, as the run left it (seen inside the namespace, before the tmpfs
    // vanished): the lock file and the archive directory, but no archive, no half-written
    // temporary archive, no journal.
    let full = fs::read_to_string(&listing).unwrap();
    let files: Vec<&str> = full.lines().filter(|l| l.starts_with("f ")).collect();
    assert!(full.lines().any(|l| l.starts_with("d ") && l.ends_with(" processed_archive")), "{full}");
    // The lock file names its holder (core::lock::acquire_archive_lock), whatever its size.
    assert!(
        files.len() == 1 && files[0].ends_with(" .csjobs-archive.lock"),
        "what the full disk held at the end:\n{full}"
    );
    // And the real backup directory, under the tmpfs, got nothing.
    assert!(!backup(&dirs).join("processed_archive").exists());
}

#[test]
fn a_second_run_waits_for_the_lock() {
    let dirs = Dirs::new();
    write(&dirs.processed.join("a.json"), b"a", 1, 0o644);
    fs::create_dir_all(backup(&dirs)).unwrap();
    let lock = fs::File::create(backup(&dirs).join(".csjobs-archive.lock")).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let r = archive(&dirs, &[]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(dirs.processed.join("a.json").exists());
    drop(lock);
    assert_eq!(archive(&dirs, &[]).code, 0);
}

// ---- crash safety ---------------------------------------------------------------------------

/// A few hundred files, some of several MB, in the three directories.
fn crash_tree(root: &Path) -> BTreeMap<String, [u8; 32]> {
    let mut rng = SplitMix(99);
    for i in 0..300u64 {
        let (dir, sub) = match i % 10 {
            0 => ("error", ""),
            1 => ("broken", "sub/"),
            _ => ("processed", if i % 3 == 0 { "2026/" } else { "" }),
        };
        let size = if i % 50 == 7 {
            3_000_000 + rng.range(0, 1_000_000) as usize
        } else {
            rng.range(10, 20_000) as usize
        };
        let text: Vec<u8> =
            (0..size).map(|_| b"0123456789{}\":,abcdef \n"[rng.range(0, 22) as usize]).collect();
        write(&root.join(dir).join(format!("{sub}f{i:03}.json")), &text, i, 0o644);
    }
    let mut all = BTreeMap::new();
    for d in ["processed", "error", "broken"] {
        for (rel, h) in tree(&root.join(d)) {
            all.insert(format!("{d}/{rel}"), h);
        }
    }
    all
}

/// Every entry of every archive of our naming: "dir/rel" → hashes (one per copy).
fn archived(backup: &Path) -> BTreeMap<String, Vec<[u8; 32]>> {
    let mut out: BTreeMap<String, Vec<[u8; 32]>> = BTreeMap::new();
    for kind in csjobs::archive::Kind::ALL {
        let dir = kind.archive_dir(backup);
        let Ok(names) = fs::read_dir(&dir) else { continue };
        for n in names {
            let n = n.unwrap().file_name().into_string().unwrap();
            if kind.parse_archive_name(&n).is_none() {
                continue;
            }
            let entries = tgz::read_entries(&dir.join(&n), |_, _| Ok(()), |_, _| false)
                .unwrap_or_else(|e| panic!("archive {n} is not readable: {e}"));
            for e in entries {
                out.entry(format!("{}/{}", kind.name(), e.rel.display())).or_default().push(e.sha256);
            }
        }
    }
    out
}

#[test]
fn sigkill_at_random_moments_loses_nothing_and_a_final_run_archives_each_file_once() {
    let dirs = Dirs::new();
    let root = dirs.tmp.path();
    let files = crash_tree(root);
    assert!(files.len() >= 290);
    let spawn = || {
        let mut c = csjobs("postgres://unused.invalid/none", &dirs);
        c.args(["--now", NOW, "archive"]).stdout(Stdio::null()).stderr(Stdio::null());
        c.spawn().unwrap()
    };

    // How long an uninterrupted run takes here, on a copy of the same tree.
    let copy = Dirs::new();
    for d in ["processed", "error", "broken"] {
        fs::remove_dir_all(copy.tmp.path().join(d)).unwrap();
        let ok = Command::new("cp").arg("-a").arg(root.join(d)).arg(copy.tmp.path()).status().unwrap();
        assert!(ok.success());
    }
    let started = Instant::now();
    let mut c = csjobs("postgres://unused.invalid/none", &copy);
    c.args(["--now", NOW, "archive"]);
    assert_eq!(run(c).code, 0);
    let full = started.elapsed();

    let mut rng = SplitMix(2026);
    let mut kills = 0;
    let mut mid_run = 0;
    let mut mid_archive = 0;
    // Kills that left a journal: the run was deleting the sources of an archive it had
    // renamed into place, the window the journal protects. At least 3 must land there.
    let mut in_journal = 0;
    // Kills during deletion: that run deleted sources (of an archive complete and checked)
    // and stopped with sources still to delete.
    let mut mid_delete = 0;
    let mut cycles = 0;
    // Each kill is judged against the state just before its run: (sources, archived entries,
    // journals). A run killed before it did anything counts for nothing.
    let journal_texts = || -> Vec<Option<Vec<u8>>> {
        csjobs::archive::Kind::ALL
            .iter()
            .map(|k| fs::read(k.archive_dir(&backup(&dirs)).join(csjobs::archive::job::JOURNAL_NAME)).ok())
            .collect()
    };
    let sources_now = || {
        let mut in_sources = BTreeMap::new();
        for d in ["processed", "error", "broken"] {
            for (rel, h) in tree(&root.join(d)) {
                in_sources.insert(format!("{d}/{rel}"), h);
            }
        }
        in_sources
    };
    let entries = |a: &BTreeMap<String, Vec<[u8; 32]>>| a.values().map(Vec::len).sum::<usize>();
    let mut prev = (sources_now(), 0usize, journal_texts());
    // It goes on until each kind of kill has landed (at most 200 kills): a run that starts on
    // a tree a killed run left half done has less to do and often finishes before its kill,
    // so how many of the first 12 land mid-run depends on the machine's speed.
    let enough = |mid_run, mid_archive, mid_delete, in_journal| {
        mid_run >= 6 && mid_archive >= 3 && mid_delete >= 1 && in_journal >= 3
    };
    while kills < 12 || (!enough(mid_run, mid_archive, mid_delete, in_journal) && kills < 200) {
        let mut child = spawn();
        let killed =
            !kill_after(&mut child, Duration::from_micros(rng.range(0, full.as_micros() as u64 + 1000)));
        if killed {
            mid_run += 1;
        }
        kills += 1;
        let journal_now = journal_texts();
        let journals = journal_now.iter().filter(|j| j.is_some()).count();
        // A journal this very run wrote (or rewrote): it was killed in the window it guards.
        in_journal += usize::from(killed && journals > 0 && journal_now != prev.2);

        // Every file is in its directory, intact, or in an archive, intact (or both).
        let in_archives = archived(&backup(&dirs));
        let in_sources = sources_now();
        for (name, hash) in &files {
            let src = in_sources.get(name) == Some(hash);
            let arc = in_archives.get(name).is_some_and(|v| v.contains(hash));
            assert!(src || arc, "kill {kills}: {name} is lost");
        }
        let unfinished = !in_sources.is_empty() || journals > 0;
        // This run wrote archive entries or deleted sources, and work was left.
        let did_something = entries(&in_archives) != prev.1 || in_sources.len() != prev.0.len();
        if killed && did_something && unfinished {
            mid_archive += 1;
        }
        if killed && in_sources.len() < prev.0.len() && unfinished {
            mid_delete += 1;
        }
        prev = (in_sources.clone(), entries(&in_archives), journal_now);
        for (name, hashes) in &in_archives {
            for h in hashes {
                assert_eq!(files.get(name), Some(h), "kill {kills}: the archives hold a wrong {name}");
            }
        }
        if in_sources.is_empty() && journals == 0 {
            // All archived, the cycle over: each file in exactly one archive, then start over
            // with the same tree for more kills.
            assert_eq!(in_archives.len(), files.len(), "cycle {cycles}");
            for (name, hash) in &files {
                assert_eq!(
                    in_archives.get(name),
                    Some(&vec![*hash]),
                    "cycle {cycles}: {name} not exactly once"
                );
            }
            cycles += 1;
            fs::remove_dir_all(backup(&dirs)).unwrap();
            crash_tree(root);
            prev = (sources_now(), 0, journal_texts());
        }
    }
    eprintln!(
        "{kills} kills: {mid_run} mid-run, {mid_archive} mid-archive, {mid_delete} mid-deletion, \
         {in_journal} in the journal window"
    );
    assert!(mid_run >= 6, "the kills must land mid-run to prove anything: {mid_run} of {kills}");
    assert!(mid_archive >= 3, "the kills must land while archiving: {mid_archive} of {kills}");
    // The deletions themselves are quick (3 of 90 kills landed there in one run): one is asked.
    assert!(mid_delete >= 1, "the kills must land while deleting sources: {mid_delete} of {kills}");
    assert!(in_journal >= 3, "the kills must land in the journal window: {in_journal} of {kills}");

    // A final run finishes the job: no source left, each file exactly once in the archives.
    let mut c = csjobs("postgres://unused.invalid/none", &dirs);
    c.args(["--now", NOW, "archive"]);
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for d in ["processed", "error", "broken"] {
        assert!(tree(&root.join(d)).is_empty(), "{d} not emptied");
    }
    let in_archives = archived(&backup(&dirs));
    assert_eq!(in_archives.len(), files.len());
    for (name, hash) in &files {
        assert_eq!(in_archives.get(name), Some(&vec![*hash]), "{name} must be archived exactly once");
    }
    for kind in csjobs::archive::Kind::ALL {
        let dir = kind.archive_dir(&backup(&dirs));
        for n in Dirs::names(&dir) {
            assert!(kind.parse_archive_name(&n).is_some(), "leftover {n} in {}", dir.display());
        }
    }
    eprintln!("{cycles} whole cycles checked");
}

// ---- what allows deleting a source ------------------------------------------------------------

/// A file changed after the run listed it (here: grown while the run packs the directory)
/// is not what was archived: it is kept, with its new content, and the next run archives
/// that.
#[test]
fn a_file_changed_while_being_archived_is_kept_for_the_next_run() {
    let dirs = Dirs::new();
    let mut rng = SplitMix(17);
    // Enough incompressible data that packing takes a while; a.json is packed first.
    write(&dirs.processed.join("a.json"), b"{\"old\":1}", 1, 0o644);
    for i in 0..12 {
        let data: Vec<u8> = (0..4_000_000).map(|_| rng.next_u64() as u8).collect();
        write(&dirs.processed.join(format!("f{i:02}.json")), &data, 2 + i, 0o644);
    }
    let mut c = csjobs("postgres://unused.invalid/none", &dirs);
    c.args(["--now", NOW, "archive"]).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    // The temporary archive exists: the run has listed its files and is packing them; it
    // deletes sources only after the archive is complete and read back.
    let temp = backup(&dirs).join("processed_archive").join(csjobs::archive::job::TEMP_NAME);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !temp.exists() {
        assert!(Instant::now() < deadline, "the run never began packing");
        std::thread::sleep(Duration::from_micros(200));
    }
    write(&dirs.processed.join("a.json"), b"{\"new\":2, \"longer\": true}", 100, 0o644);
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("1 kept because they changed while being archived"), "{stdout}");
    assert!(stderr.contains("changed while being archived: kept for the next run"), "{stderr}");
    assert_eq!(Dirs::names(&dirs.processed), ["a.json"], "the others were archived and deleted");
    assert_eq!(fs::read(dirs.processed.join("a.json")).unwrap(), b"{\"new\":2, \"longer\": true}");

    // The next run archives the new content and deletes it.
    let r = archive(&dirs, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(Dirs::names(&dirs.processed).is_empty());
    let new: [u8; 32] = Sha256::digest(b"{\"new\":2, \"longer\": true}").into();
    let a = archived(&backup(&dirs)).remove("processed/a.json").unwrap();
    assert_eq!(a.len(), 2, "a.json in both archives");
    assert!(a.contains(&new), "the new content is archived");
}

/// An interrupted run's journal names an archive; the recovery deletes a source only when the
/// archive's entry is that very file. Here one entry differs from its source (same name,
/// size and mtime, other bytes): that source is kept — and then archived by this run — while
/// the identical one is deleted and archived only once.
#[test]
fn recovery_keeps_a_source_that_differs_from_its_archived_entry() {
    let dirs = Dirs::new();
    let scratch = dirs.tmp.path().join("scratch");
    write(&scratch.join("a.json"), b"{\"v\":1}", 5, 0o644);
    write(&scratch.join("b.json"), b"{\"b\":0}", 6, 0o644);
    let srcs: Vec<tgz::SourceFile> = ["a.json", "b.json"]
        .iter()
        .map(|n| {
            let p = scratch.join(n);
            let meta = fs::metadata(&p).unwrap();
            tgz::SourceFile::new(p, PathBuf::from(n), &meta)
        })
        .collect();
    let archive_dir = backup(&dirs).join("processed_archive");
    fs::create_dir_all(&archive_dir).unwrap();
    let name = "processed-26-11-22.tgz";
    tgz::write(fs_err::File::create(archive_dir.join(name)).unwrap(), &srcs, 1, &|_| {}).unwrap();
    fs::write(archive_dir.join(csjobs::archive::job::JOURNAL_NAME), format!("{name}\n")).unwrap();
    // The sources as the interrupted run left them: b.json the same, a.json other bytes of
    // the same size with the same mtime.
    write(&dirs.processed.join("a.json"), b"{\"v\":2}", 5, 0o644);
    write(&dirs.processed.join("b.json"), b"{\"b\":0}", 6, 0o644);

    let r = archive(&dirs, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("finished an interrupted run: 1 archived source files deleted"),
        "{}",
        r.stdout
    );
    assert!(!archive_dir.join(csjobs::archive::job::JOURNAL_NAME).exists());
    let got = archived(&backup(&dirs));
    let h = |b: &[u8]| -> [u8; 32] { Sha256::digest(b).into() };
    assert_eq!(
        got["processed/b.json"],
        vec![h(b"{\"b\":0}")],
        "b.json deleted by the recovery, archived once"
    );
    let mut a = got["processed/a.json"].clone();
    a.sort();
    let mut both = vec![h(b"{\"v\":1}"), h(b"{\"v\":2}")];
    both.sort();
    assert_eq!(a, both, "a.json's new bytes were kept and archived by this run");
    assert!(Dirs::names(&dirs.processed).is_empty());
}
