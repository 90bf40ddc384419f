//! `csjobs load-sales --replay --from DATE --to DATE [--cash N]... [--yes]`: loads again the
//! sales files whose shift opened in a period, from processed/ and from the processed
//! archives (read straight from the `.tgz`, nothing unpacked to disk), through the same
//! validate → plan → apply path as the queue. The duplicate-shift rules and idempotency
//! therefore hold as they do for the queue: replaying data already loaded changes nothing.
//!
//! Order: the archives oldest first (by their date, then sequence number), each in the
//! order it was packed (modification time, path), then processed/ in queue order. This is
//! the order the files were loaded in the first place, as far as the archives can tell.
//!
//! A replay holds the archive lock (`core::lock::acquire_archive_lock`, through
//! `core::runner::Frame::archive_lock`) besides the job lock,
//! so `archive` cannot move files of processed/ into an archive under it; a file it listed
//! and cannot read anyway (gone, unreadable, a corrupt archive) fails the run (exit 1, the
//! file named), never passes as skipped.

use std::{
    collections::BTreeSet,
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime},
};

use chrono::{NaiveDate, Utc};
use tokio::sync::mpsc;

use super::{
    engine::{self, AfterCommit, FromReader, Summary},
    format::{self, SalesFile},
    types::JOB,
};
use crate::{
    archive::{self, tgz, Kind},
    core::{
        prelude::*,
        queue::{self, QueuedFile},
    },
};

/// A period this long or longer needs `--yes` (or a "yes" typed at a terminal).
pub const CONFIRM_DAYS: i64 = 7;

/// The options of `csjobs load-sales --replay`.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Only these cash registers (all when empty).
    pub cashes: BTreeSet<i32>,
    pub yes: bool,
}

impl ReplayOptions {
    /// Days in the period, both ends included.
    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    /// Whether a file belongs to the replay: its shift opened in the period (the shift's
    /// open time; when the register sent none, its earliest document's) on a chosen cash.
    pub fn wants(&self, file: &SalesFile) -> Option<bool> {
        let opened = file.shift.opened_at.or_else(|| file.documents.iter().map(|d| d.opened_at).min())?;
        let day = opened.date();
        Some(
            day >= self.from
                && day <= self.to
                && (self.cashes.is_empty() || self.cashes.contains(&file.cash)),
        )
    }
}

/// Where replayed files are read from, in replay order.
#[derive(Debug, Clone)]
enum Source {
    Archive(PathBuf),
    Processed(Vec<QueuedFile>),
}

fn sources(cfg: &Config) -> anyhow::Result<Vec<Source>> {
    let dir = Kind::Processed.archive_dir(&cfg.paths.backup);
    let archives = archive::list_archives(Kind::Processed, &dir)
        .map_err(|e| anyhow::Error::new(e).context(format!("cannot list {}", dir.display())))?;
    let mut out: Vec<Source> = archives.into_iter().map(|a| Source::Archive(a.path)).collect();
    match queue::list(&cfg.paths.processed, format::is_sales_file_name) {
        Ok(files) => out.push(Source::Processed(files)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context(format!("cannot list {}", cfg.paths.processed.display()))
            )
        }
    }
    Ok(out)
}

/// Counts of what the reader saw but did not hand on.
#[derive(Debug, Default, Clone, Copy)]
struct Skipped {
    outside_period: u64,
    undated: u64,
}

/// Reads every source in order on its own thread and sends on the files of the period.
fn spawn_reader(
    sources: Vec<Source>,
    opts: ReplayOptions,
    max_bytes: u64,
) -> (mpsc::Receiver<FromReader>, std::thread::JoinHandle<Skipped>) {
    engine::spawn_reader("replay-reader", move |tx, budget| {
        let mut skipped = Skipped::default();
        // Returns false when the loading side has stopped.
        let send = |item: Option<FromReader>, skipped: &mut Skipped| -> bool {
            let Some(item) = item else { return true };
            if let FromReader::File(f) = &item {
                match f.content.as_ref().ok().map(|sf| opts.wants(sf)) {
                    Some(Some(true)) => {}
                    Some(Some(false)) => {
                        skipped.outside_period += 1;
                        return true;
                    }
                    _ => {
                        skipped.undated += 1;
                        tracing::warn!(file = %f.entry.name, "not replayed: its shift open date is unknown");
                        return true;
                    }
                }
            }
            tx.blocking_send(item).is_ok()
        };
        for source in sources {
            match source {
                Source::Processed(files) => {
                    for entry in files {
                        test_pause();
                        let path = entry.path.clone();
                        let read = || format::read_file(&path, max_bytes);
                        let mut entry = entry;
                        entry.name = entry.path.display().to_string();
                        // A file listed in processed/ that is gone when it is read was not
                        // replayed: a failure naming it, never a silent skip.
                        let item = FromReader::from_reading(entry, read, Utc::now(), budget)
                            .unwrap_or_else(|| FromReader::Failed(vanished(&path)));
                        if !send(Some(item), &mut skipped) {
                            return skipped;
                        }
                    }
                }
                Source::Archive(path) => {
                    let mut stopped = false;
                    let result = tgz::read_entries(
                        &path,
                        |e, content| {
                            let Some(name) = e.rel.file_name().and_then(|n| n.to_str()) else {
                                return Ok(());
                            };
                            if !format::is_sales_file_name(name) || e.size > max_bytes {
                                return Ok(());
                            }
                            let entry = QueuedFile {
                                path: path.join(&e.rel),
                                name: format!("{}#{}", path.display(), e.rel.display()),
                                size: e.size,
                                mtime: SystemTime::UNIX_EPOCH + Duration::from_secs(e.mtime),
                            };
                            let read = || format::read_bytes(content, name.ends_with(".gz"), max_bytes);
                            if !send(FromReader::from_reading(entry, read, Utc::now(), budget), &mut skipped)
                            {
                                stopped = true;
                                return Err(std::io::Error::other("stopped"));
                            }
                            Ok(())
                        },
                        |rel, size| {
                            size <= max_bytes
                                && rel
                                    .file_name()
                                    .and_then(|n| n.to_str())
                                    .is_some_and(format::is_sales_file_name)
                        },
                    );
                    if stopped {
                        return skipped;
                    }
                    if let Err(e) = result {
                        let msg = format!(
                            "cannot read the archive {}: {e}; the files of it read so far were \
                                 replayed, the rest were not",
                            path.display()
                        );
                        if tx.blocking_send(FromReader::Failed(msg)).is_err() {
                            return skipped;
                        }
                    }
                }
            }
        }
        skipped
    })
}

/// The failure of a file of processed/ that was listed but is gone when read.
fn vanished(path: &Path) -> String {
    format!(
        "cannot read {}: it was in processed/ when the replay started and is gone now (moved or \
         deleted by something else than csjobs archive, which waits for the replay); it was not \
         replayed: find it (e.g. in an archive of {}) and run the replay again",
        path.display(),
        path.parent().map(|p| p.display().to_string()).unwrap_or_default()
    )
}

/// Tests only (debug builds): `CSJOBS_TEST_REPLAY_PAUSE_MS` makes the reader wait that long
/// before each file of processed/, so a test can act while a replay is under way.
fn test_pause() {
    if cfg!(debug_assertions) {
        if let Some(ms) = std::env::var("CSJOBS_TEST_REPLAY_PAUSE_MS").ok().and_then(|v| v.parse().ok()) {
            std::thread::sleep(Duration::from_millis(ms));
        }
    }
}

/// Asks for confirmation of a long period: `--yes`, or "yes" typed at a terminal.
fn confirm(opts: &ReplayOptions) -> Result<(), JobError> {
    if opts.days() < CONFIRM_DAYS || opts.yes {
        return Ok(());
    }
    let what = format!(
        "replaying {} days of sales ({} to {}) reloads every sales file of the period into the \
         cash server DB",
        opts.days(),
        opts.from,
        opts.to
    );
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(JobError::NeedsConfirmation(format!(
            "{what}; a period of {CONFIRM_DAYS} days or more needs confirmation: run again with --yes \
             (nothing was loaded)"
        )));
    }
    let mut err = std::io::stderr();
    let _ = write!(err, "{what}. Type yes to go on: ");
    let _ = err.flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    if answer.trim().eq_ignore_ascii_case("yes") {
        Ok(())
    } else {
        Err(JobError::NeedsConfirmation("not confirmed; nothing was loaded".into()))
    }
}

/// Runs `csjobs load-sales --replay`.
pub async fn run(cfg: &Config, opts: &ReplayOptions) -> Result<Outcome, JobError> {
    if opts.to < opts.from {
        return Err(JobError::usage(format!("--to {} is before --from {}", opts.to, opts.from)));
    }
    let url = cfg.cashserver_url()?;
    confirm(opts)?;
    let mut client = db::connect(url, Database::CashServer, "csjobs load-sales --replay").await?;
    // `archive` moves processed/ files into the archives this run reads: the two never work
    // at once (an archive run started meanwhile waits for its next turn, exit 4).
    let frame = Frame::new(JOB)
        .job_lock(url)
        .await?
        .archive_lock(&cfg.paths.backup, "load-sales --replay")?
        .stops_on_signals();
    frame.run(cfg, &mut client, async |ctx| work(ctx, opts).await).await
}

/// A replay under its frame: sources → reader → engine → summary and counters.
async fn work(mut ctx: Ctx<'_>, opts: &ReplayOptions) -> Ran {
    let cfg = ctx.cfg;
    let started = Instant::now();
    let mut summary = Summary::default();
    let result = async {
        let sources = sources(cfg)?;
        let archives = sources.iter().filter(|s| matches!(s, Source::Archive(_))).count();
        tracing::info!(archives, from = %opts.from, to = %opts.to, "replay: reading processed/ and the archives");
        let (rx, reader) = spawn_reader(sources, opts.clone(), cfg.sales.max_file_bytes);
        let loaded =
            engine::consume(&mut ctx, rx, None, AfterCommit::Stay, &mut summary)
                .await;
        let skipped = tokio::task::spawn_blocking(move || reader.join())
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default();
        summary.outside_period = skipped.outside_period;
        summary.undated = skipped.undated;
        loaded
    }
    .await;
    summary.elapsed_s = started.elapsed().as_secs_f64();
    output::say(&render(opts, &summary, &cfg.paths.backup));
    let counters = serde_json::to_value(&summary).expect("summary serializes");
    Ran::new(result.map(|()| Outcome::rejected(summary.rejected())), counters)
}

fn render(opts: &ReplayOptions, s: &Summary, backup: &Path) -> String {
    let cashes = if opts.cashes.is_empty() {
        "all cashes".to_string()
    } else {
        format!("cashes {}", opts.cashes.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", "))
    };
    format!(
        "load-sales --replay {} to {} ({cashes}), from processed/ and {}: {} files in {:.2} s\n  \
         processed  {:>8}\n  error      {:>8}\n  broken     {:>8}\n  documents  {:>8}\n  items      \
         {:>8}\n  outside    {:>8}   (other period or cash)\n  undated    {:>8}\n",
        opts.from,
        opts.to,
        Kind::Processed.archive_dir(backup).display(),
        s.processed + s.error + s.broken,
        s.elapsed_s,
        s.processed,
        s.error,
        s.broken,
        s.documents,
        s.items,
        s.outside_period,
        s.undated,
    )
}
