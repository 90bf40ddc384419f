//! `csjobs archive`: packs processed/, error/ and broken/ into dated `.tgz` archives and
//! deletes archives past retention. Needs no database to archive; it writes its run log
//! (`job_run`) in the cash server DB when that is configured and answers, and archives
//! without one (a warning) otherwise.
//!
//! Per directory the run goes: finish an interrupted run (recover) → list the files present
//! now → delete expired archives → pack into a temporary file, fsync → rename to the final
//! name (never over an existing one), fsync the directory → read the archive back and
//! compare every entry → delete the source files that are unchanged since they were listed.
//!
//! The one invariant: a source file is deleted only when an archive that holds it, byte for
//! byte, is durable under its final name. Before the rename a journal
//! (`.csjobs-archive-pending`, the archive's name) is made durable; a run that finds it
//! finishes the deletions of the run that wrote it, after checking the archive and each
//! file's content hash. So a crash at any instant leaves every file in its directory or in
//! an archive (or both), and the next run ends with each file in exactly one archive.

use fs_err::{self as fs, os::unix::fs::OpenOptionsExt, File};
use std::{
    collections::BTreeSet,
    io::{self, IsTerminal},
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{anyhow, Context};
use chrono::NaiveDate;

use super::{
    expired,
    tgz::{self, SourceFile},
    Kind,
};
use crate::core::{
    config::Config,
    lock, output, queue,
    runner::{Frame, Ran},
    JobError, Outcome,
};

pub const JOB: &str = "archive";
/// Where a run writes an archive before its final rename (in the archive directory).
pub const TEMP_NAME: &str = ".csjobs-archive-tmp.tgz";
/// The journal: the name of the archive whose sources are being deleted.
pub const JOURNAL_NAME: &str = ".csjobs-archive-pending";
/// The lock file in the backup directory: one archive run at a time, and none while
/// `load-sales --replay` reads the archives (`core::lock::acquire_archive_lock`).
pub const LOCK_NAME: &str = lock::ARCHIVE_LOCK_NAME;

/// The options of `csjobs archive` (its `--help` is these doc comments).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ArchiveOptions {
    /// List what would be packed and which archives would be deleted; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Compressing threads [default: the number of CPUs]
    #[arg(long, value_name = "N", hide = true)]
    pub threads: Option<usize>,
}

/// What one directory's archive run did.
#[derive(Debug, Default)]
struct KindReport {
    files: usize,
    bytes: u64,
    compressed: u64,
    archive: Option<PathBuf>,
    deleted: usize,
    kept_changed: usize,
    recovered: usize,
    expired: Vec<PathBuf>,
}

fn source_dir(cfg: &Config, kind: Kind) -> (&Path, &'static str) {
    match kind {
        Kind::Processed => (&cfg.paths.processed, "paths.processed / CSJOBS_PROCESSED_DIR"),
        Kind::Error => (&cfg.paths.error, "paths.error / CSJOBS_ERROR_DIR"),
        Kind::Broken => (&cfg.paths.broken, "paths.broken / CSJOBS_BROKEN_DIR"),
    }
}

/// Runs `csjobs archive`: a dry run takes no lock and writes no run log; a run goes through
/// its frame (`core::runner`): the archive lock → the run log when the cash server DB answers
/// → [`archive`].
pub async fn run(cfg: &Config, opts: &ArchiveOptions) -> Result<Outcome, JobError> {
    let started = Instant::now();
    let threads =
        opts.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
    if opts.dry_run {
        let mut failures = Vec::new();
        for plan in &directory_runs(cfg) {
            if let Err(e) = dry_run(plan) {
                failed(&mut failures, plan.kind, e);
            }
        }
        return result(failures);
    }
    let frame = Frame::new(JOB).archive_lock(&cfg.paths.backup, JOB)?;
    let plans = directory_runs(cfg);
    // The run log (cli.md: every job writes one), so that a failed nightly archive shows in
    // `status` and Prometheus. Archiving needs no database: when the cash server DB is not
    // configured or cannot be used, the files are archived all the same, with a warning.
    frame.run_logged_if_db(cfg, "archiving", async |_| archive(&plans, threads, started)).await
}

/// What each directory's run goes by.
fn directory_runs(cfg: &Config) -> [DirectoryRun<'_>; 3] {
    let today = cfg.now.date_naive();
    Kind::ALL.map(|kind| {
        let (dir, setting) = source_dir(cfg, kind);
        DirectoryRun {
            kind,
            dir,
            setting,
            archive_dir: kind.archive_dir(&cfg.paths.backup),
            today,
            retention_days: cfg.archive_retention_days,
        }
    })
}

/// A directory that failed: logged now, reported at the end; the others go on.
fn failed(failures: &mut Vec<String>, kind: Kind, e: anyhow::Error) {
    tracing::error!(dir = kind.name(), "{e:#}");
    failures.push(format!("{}: {e:#}", kind.name()));
}

fn result(failures: Vec<String>) -> Result<Outcome, JobError> {
    if failures.is_empty() {
        Ok(Outcome::default())
    } else {
        Err(anyhow!("{}", failures.join("\n")).into())
    }
}

/// A run under its frame: finish interrupted runs and apply retention first, then list the
/// three directories at once (the files present when the run starts), then pack each.
fn archive(plans: &[DirectoryRun; 3], threads: usize, started: Instant) -> Ran {
    let mut failures = Vec::new();
    let mut reports: [KindReport; 3] = Default::default();
    let mut listed = Vec::new();
    for (plan, report) in plans.iter().zip(&mut reports) {
        if let Err(e) = prepare(plan, report) {
            failed(&mut failures, plan.kind, e);
        }
    }
    for plan in plans {
        listed.push(list_sources(plan.dir, plan.setting));
    }
    for ((plan, report), files) in plans.iter().zip(&mut reports).zip(listed) {
        if let Err(e) = files.and_then(|files| pack(plan, &files, threads, report)) {
            failed(&mut failures, plan.kind, e);
        }
    }
    let lines: String = plans.iter().zip(&reports).map(|(p, r)| render(p.kind, r)).collect();
    let elapsed = started.elapsed().as_secs_f64();
    output::say(&format!("archive: done in {elapsed:.2} s\n{lines}"));
    Ran::new(result(failures), counters(plans, &reports))
}

/// The counters kept in the run log: per directory, what was packed, deleted and expired.
fn counters(plans: &[DirectoryRun; 3], reports: &[KindReport; 3]) -> serde_json::Value {
    let per: serde_json::Map<String, serde_json::Value> = plans
        .iter()
        .zip(reports)
        .map(|(p, r)| {
            (
                p.kind.name().to_string(),
                serde_json::json!({
                    "files": r.files,
                    "bytes": r.bytes,
                    "compressed": r.compressed,
                    "archive": r.archive.as_ref().map(|a| a.display().to_string()),
                    "deleted": r.deleted,
                    "kept_changed": r.kept_changed,
                    "recovered": r.recovered,
                    "expired": r.expired.len(),
                }),
            )
        })
        .collect();
    serde_json::Value::Object(per)
}

fn render(kind: Kind, r: &KindReport) -> String {
    let mut s = String::new();
    match &r.archive {
        Some(path) => s.push_str(&format!(
            "  {}: {} files, {:.1} MB → {:.1} MB in {} (read back and checked); {} source files deleted{}\n",
            kind.name(),
            r.files,
            r.bytes as f64 / 1e6,
            r.compressed as f64 / 1e6,
            path.display(),
            r.deleted,
            if r.kept_changed > 0 {
                format!(", {} kept because they changed while being archived", r.kept_changed)
            } else {
                String::new()
            }
        )),
        None => s.push_str(&format!("  {}: no new archive\n", kind.name())),
    }
    if r.recovered > 0 {
        s.push_str(&format!(
            "  {}: finished an interrupted run: {} archived source files deleted\n",
            kind.name(),
            r.recovered
        ));
    }
    for p in &r.expired {
        s.push_str(&format!("  {}: deleted past retention: {}\n", kind.name(), p.display()));
    }
    s
}

/// A progress bar in bytes on a terminal, nothing otherwise.
fn progress(kind: Kind, bytes: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(bytes);
    pb.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{} {{elapsed_precise}} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}}",
            kind.name()
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb
}

/// The regular files under `dir` (recursively; links are not followed and not archived),
/// in (modification time, path) order. Fails when the directory is missing or a part of it
/// cannot be listed.
fn list_sources(dir: &Path, setting: &'static str) -> anyhow::Result<Vec<SourceFile>> {
    if !dir.is_dir() {
        return Err(anyhow!(
            "the source directory {} does not exist or is not a directory (setting {setting}); \
             nothing of it was archived or deleted",
            dir.display()
        ));
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false).min_depth(1) {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        if !entry.file_type().is_file() || entry.file_name().to_str().is_some_and(queue::is_move_in_flight) {
            continue;
        }
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) if e.io_error().is_some_and(|e| e.kind() == io::ErrorKind::NotFound) => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot stat {}", entry.path().display())),
        };
        let rel = entry.path().strip_prefix(dir).expect("under the walked directory").to_path_buf();
        files.push(SourceFile::new(entry.path().to_path_buf(), rel, &meta));
    }
    files.sort_by(|a, b| (a.mtime, a.mtime_nsec, &a.rel).cmp(&(b.mtime, b.mtime_nsec, &b.rel)));
    Ok(files)
}

/// Archives of our naming in `archive_dir` dated more than `retention_days` before `today`.
fn expired_archives(
    kind: Kind,
    archive_dir: &Path,
    today: NaiveDate,
    retention_days: u32,
) -> anyhow::Result<Vec<(PathBuf, NaiveDate)>> {
    Ok(super::list_archives(kind, archive_dir)
        .with_context(|| format!("cannot list {}", archive_dir.display()))?
        .into_iter()
        .filter(|a| expired(a.date, today, retention_days))
        .map(|a| (a.path, a.date))
        .collect())
}

/// The first free archive name of the day.
fn free_name(kind: Kind, archive_dir: &Path, today: NaiveDate, from: u32) -> (u32, PathBuf) {
    let mut k = from.max(1);
    loop {
        let path = archive_dir.join(kind.archive_name(today, k));
        if fs::symlink_metadata(&path).is_err() {
            return (k, path);
        }
        k += 1;
    }
}

/// One source directory and where its archives go, for one run.
struct DirectoryRun<'a> {
    kind: Kind,
    dir: &'a Path,
    /// The setting naming `dir`, for messages.
    setting: &'static str,
    archive_dir: PathBuf,
    today: NaiveDate,
    retention_days: u32,
}

fn dry_run(plan: &DirectoryRun) -> anyhow::Result<()> {
    let DirectoryRun { kind, dir, setting, ref archive_dir, today, retention_days } = *plan;
    let mut out = String::new();
    for (path, date) in expired_archives(kind, archive_dir, today, retention_days)? {
        out.push_str(&format!(
            "delete\t{}\tdated {date}, {} days before now (retention {retention_days} days)\n",
            path.display(),
            (today - date).num_days()
        ));
    }
    let listed = list_sources(dir, setting);
    let files = match listed {
        Ok(f) => f,
        Err(e) => {
            output::say(&out);
            return Err(e);
        }
    };
    let (_, target) = free_name(kind, archive_dir, today, 1);
    for f in &files {
        out.push_str(&format!("pack\t{}\t{}\n", f.path.display(), target.display()));
    }
    let bytes: u64 = files.iter().map(|f| f.size).sum();
    out.push_str(&format!(
        "{}: would pack {} files ({:.1} MB) into {} and delete them\n",
        kind.name(),
        files.len(),
        bytes as f64 / 1e6,
        if files.is_empty() { "no archive".to_string() } else { target.display().to_string() }
    ));
    output::say(&out);
    Ok(())
}

/// Finishes what a killed run left and deletes the expired archives.
fn prepare(plan: &DirectoryRun, report: &mut KindReport) -> anyhow::Result<()> {
    let DirectoryRun { kind, dir, ref archive_dir, today, retention_days, .. } = *plan;
    if archive_dir.is_dir() {
        report.recovered = recover(dir, archive_dir)?;
    }
    for (path, date) in expired_archives(kind, archive_dir, today, retention_days)? {
        fs::remove_file(&path)
            .with_context(|| format!("cannot delete the expired archive {}", path.display()))?;
        tracing::info!(archive = %path.display(), %date, "deleted past retention");
        report.expired.push(path);
    }
    if !report.expired.is_empty() {
        queue::fsync_dir(archive_dir)?;
    }
    Ok(())
}

/// Packs `files`, reads the archive back, deletes the sources.
fn pack(
    plan: &DirectoryRun,
    files: &[SourceFile],
    threads: usize,
    report: &mut KindReport,
) -> anyhow::Result<()> {
    let DirectoryRun { kind, dir, ref archive_dir, today, .. } = *plan;
    if files.is_empty() {
        return Ok(());
    }
    fs::create_dir_all(archive_dir)
        .with_context(|| format!("cannot create the archive directory {}", archive_dir.display()))?;
    let temp = archive_dir.join(TEMP_NAME);
    remove_if_exists(&temp)?;
    let out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&temp)
        .with_context(|| format!("cannot create {}", temp.display()))?;
    let started = Instant::now();
    let pb = progress(kind, files.iter().map(|f| f.size).sum());
    let packed = tgz::write(out, files, threads, &|n| pb.inc(n));
    pb.finish_and_clear();
    let packed = match packed {
        Ok(p) => p,
        Err(e) => {
            let _ = fs::remove_file(&temp);
            return Err(anyhow!(
                "{e} (archive {}); nothing was deleted from {}",
                temp.display(),
                dir.display()
            ));
        }
    };
    let mut unreadable = Vec::new();
    for (path, e) in &packed.unreadable {
        unreadable.push(format!("cannot read {}: {e}; it stays where it is, not archived", path.display()));
    }
    if packed.entries.is_empty() {
        fs::remove_file(&temp)?;
        return Err(anyhow!("{}", unreadable.join("\n")));
    }

    // Name the archive in the journal, durably, before it appears under that name.
    let journal = archive_dir.join(JOURNAL_NAME);
    let (mut k, mut target) = free_name(kind, archive_dir, today, 1);
    loop {
        write_durably(&journal, target.file_name().and_then(|n| n.to_str()).expect("utf-8 name"))?;
        match queue::rename_noreplace(&temp, &target) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                (k, target) = free_name(kind, archive_dir, today, k + 1);
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot rename {} to {}", temp.display(), target.display()))
            }
        }
    }
    queue::fsync_dir(archive_dir)?;
    let bytes: u64 = packed.entries.iter().map(|e| e.size).sum();
    tracing::info!(
        archive = %target.display(),
        files = packed.entries.len(),
        bytes,
        compressed = packed.compressed_bytes,
        mb_per_s = bytes as f64 / 1e6 / started.elapsed().as_secs_f64().max(1e-6),
        "archive written"
    );

    let verifying = Instant::now();
    let verified = tgz::verify(&target, &packed.entries);
    tracing::debug!(seconds = verifying.elapsed().as_secs_f64(), "read back");
    if let Err(why) = verified {
        fs::remove_file(&journal)?;
        return Err(anyhow!(
            "the archive {} failed its read-back check: {why}; no source file was deleted (it stays \
             for inspection; the next run archives the files again)",
            target.display()
        ));
    }

    // Delete the sources that are exactly what was archived.
    let archived: BTreeSet<&Path> = packed.entries.iter().map(|e| e.rel.as_path()).collect();
    let doomed: Vec<&SourceFile> = files.iter().filter(|f| archived.contains(f.rel.as_path())).collect();
    let shrank: BTreeSet<&Path> = packed.shrank.iter().map(PathBuf::as_path).collect();
    let deletion = delete_sources(&doomed, &shrank, dir)?;
    report.deleted = deletion.deleted;
    report.kept_changed = deletion.kept_changed;
    let dirs = deletion.dirs;
    for d in &dirs {
        queue::fsync_dir(d)?;
    }
    tracing::debug!(seconds = verifying.elapsed().as_secs_f64(), "read back and sources deleted");
    fs::remove_file(&journal)?;
    queue::fsync_dir(archive_dir)?;
    report.files = packed.entries.len();
    report.bytes = bytes;
    report.compressed = packed.compressed_bytes;
    report.archive = Some(target);
    if unreadable.is_empty() {
        Ok(())
    } else {
        Err(anyhow!("{}", unreadable.join("\n")))
    }
}

/// What deleting the archived sources did.
#[derive(Debug, Default)]
struct Deletion {
    deleted: usize,
    kept_changed: usize,
    /// Directories files were deleted from (to fsync).
    dirs: BTreeSet<PathBuf>,
}

/// Threads that unlink at once: an unlink mostly waits on the file system's journal (and on
/// block discards), so a few in parallel finish sooner than one, even on two cores.
const UNLINK_THREADS: usize = 4;

/// Deletes each file that is still the one listed (same inode, size and mtime); a file that
/// changed since, or that `shrank` while it was read (its entry is padded, not the file), is
/// kept for the next run.
fn delete_sources(files: &[&SourceFile], shrank: &BTreeSet<&Path>, dir: &Path) -> anyhow::Result<Deletion> {
    let per_thread = files.len().div_ceil(UNLINK_THREADS).max(1);
    let results: Vec<anyhow::Result<Deletion>> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(per_thread)
            .map(|chunk| {
                scope.spawn(move || {
                    let mut d = Deletion::default();
                    for f in chunk {
                        match fs::symlink_metadata(&f.path) {
                            Ok(meta) if f.unchanged(&meta) && !shrank.contains(f.path.as_path()) => {
                                fs::remove_file(&f.path).with_context(|| {
                                    format!("cannot delete the archived file {}", f.path.display())
                                })?;
                                d.deleted += 1;
                                d.dirs.insert(f.path.parent().unwrap_or(dir).to_path_buf());
                            }
                            Ok(_) => {
                                tracing::warn!(
                                    file = %f.path.display(),
                                    "changed while being archived: kept for the next run"
                                );
                                d.kept_changed += 1;
                            }
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                            Err(e) => {
                                return Err(e).with_context(|| format!("cannot stat {}", f.path.display()))
                            }
                        }
                    }
                    Ok(d)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("an unlinking thread panicked")).collect()
    });
    let mut total = Deletion::default();
    for r in results {
        let d = r?;
        total.deleted += d.deleted;
        total.kept_changed += d.kept_changed;
        total.dirs.extend(d.dirs);
    }
    Ok(total)
}

/// Finishes what an interrupted run left in `archive_dir`: removes its temporary archive and,
/// when its journal names an archive that exists and reads back whole, deletes the source
/// files that are byte for byte in it. Returns how many files it deleted.
fn recover(dir: &Path, archive_dir: &Path) -> anyhow::Result<usize> {
    remove_if_exists(&archive_dir.join(TEMP_NAME))?;
    let journal = archive_dir.join(JOURNAL_NAME);
    let name = match fs::read_to_string(&journal) {
        Ok(n) => n.trim().to_string(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", journal.display())),
    };
    let archive = archive_dir.join(&name);
    let mut deleted = 0;
    if !name.is_empty() && !name.contains('/') && archive.is_file() {
        let entries = tgz::read_entries(&archive, |_, _| Ok(()), |_, _| false).with_context(|| {
            format!("the archive {} of an interrupted run cannot be read back", archive.display())
        })?;
        for e in entries {
            let path = dir.join(&e.rel);
            let Ok(meta) = fs::symlink_metadata(&path) else { continue };
            let same_stat = meta.is_file()
                && meta.len() == e.size
                && std::os::unix::fs::MetadataExt::mtime(&meta).max(0) as u64 == e.mtime;
            if same_stat && hash_file(&path)? == e.sha256 {
                fs::remove_file(&path).with_context(|| format!("cannot delete {}", path.display()))?;
                deleted += 1;
            }
        }
        queue::fsync_dir(dir)?;
        tracing::info!(archive = %archive.display(), deleted, "finished the deletions of an interrupted run");
    }
    fs::remove_file(&journal)?;
    queue::fsync_dir(archive_dir)?;
    Ok(deleted)
}

fn hash_file(path: &Path) -> anyhow::Result<[u8; 32]> {
    let mut f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    crate::core::hash::sha256_of(&mut f).with_context(|| format!("cannot read {}", path.display()))
}

fn remove_if_exists(path: &Path) -> anyhow::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Writes `text` to `path` through a temporary file, fsynced and renamed, with the directory
/// fsynced: after it returns, `path` holds `text` whatever happens next.
fn write_durably(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path.parent().expect("a file in a directory");
    queue::replace_file(path, format!("{text}\n").as_bytes(), "journal")
        .with_context(|| format!("cannot write {}", path.display()))?;
    queue::fsync_dir(dir).with_context(|| format!("cannot fsync {}", dir.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_that_shrank_while_it_was_read_is_kept_even_when_it_looks_unchanged() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a.json"), d.path().join("b.json"));
        fs::write(&a, b"{}").unwrap();
        fs::write(&b, b"{}").unwrap();
        let listed = |p: &Path| {
            SourceFile::new(p.to_path_buf(), p.file_name().unwrap().into(), &fs::metadata(p).unwrap())
        };
        let (a_listed, b_listed) = (listed(&a), listed(&b));
        // Rewritten in place to the same size and time: only the reader saw it shrink.
        let shrank: BTreeSet<&Path> = [a.as_path()].into();
        let deletion = delete_sources(&[&a_listed, &b_listed], &shrank, d.path()).unwrap();
        assert_eq!((deletion.deleted, deletion.kept_changed), (1, 1));
        assert!(a.exists() && !b.exists());
    }
}
