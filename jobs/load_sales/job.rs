//! The `load-sales` job, the queue's adapter over [`super::engine`]: recovers what an
//! interrupted run left, lists the queue, reads and parses its files on a reader thread,
//! hands them to the engine (batches of one transaction each, each file moved only after
//! its batch committed), and prints the summary.
//!
//! Crash safety rests on one invariant: a file's load log row is written in the same
//! transaction as its sales. A file that is still in the queue but has a committed load
//! log row without `disposed_at` was loaded by a run that died before moving it; the next
//! run moves it (checking its content hash) instead of loading it again.

use std::{collections::HashMap, io::Write, time::Instant};

use anyhow::{anyhow, Context};
use chrono::Utc;
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::{
    apply,
    engine::{
        self, auto_export, consume, next_batch, target_dir, AfterCommit, Aside, FromReader, READER_DIED,
    },
    format,
    plan::Planner,
    types::Disposition,
};
pub use super::{engine::Summary, types::JOB};
use crate::core::{
    prelude::*,
    queue::{self, QueuedFile},
};

/// The options of `csjobs load-sales`.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub dry_run: bool,
    pub limit: Option<usize>,
    pub retry_errors: bool,
}

/// Reads and validates the queued files in order on the reader thread
/// ([`engine::spawn_reader`]).
fn spawn_reader(files: Vec<QueuedFile>, max_bytes: u64) -> mpsc::Receiver<FromReader> {
    let (rx, _) = engine::spawn_reader("sales-reader", move |tx, budget| {
        for entry in files {
            let started_at = Utc::now();
            let path = entry.path.clone();
            let read = || format::read_file(&path, max_bytes);
            let item = match FromReader::from_reading(entry, read, started_at, budget) {
                Some(item) => item,
                // Taken away by someone else since the listing: nothing to do.
                None => continue,
            };
            if tx.blocking_send(item).is_err() {
                return; // the run stopped
            }
        }
    });
    rx
}

fn check_queue(cfg: &Config) -> Result<(), JobError> {
    if !cfg.paths.queue.is_dir() {
        return Err(anyhow!(
            "the queue directory {} does not exist or is not a directory (setting paths.queue / \
             CSJOBS_QUEUE_DIR)",
            cfg.paths.queue.display()
        )
        .into());
    }
    Ok(())
}

fn list_queue(cfg: &Config) -> anyhow::Result<Vec<QueuedFile>> {
    queue::list(&cfg.paths.queue, format::is_sales_file_name)
        .with_context(|| format!("cannot list the queue directory {}", cfg.paths.queue.display()))
}

/// Runs `csjobs load-sales`: checks, then the frame (`core::runner`: job lock → run log →
/// stop handling → [`work`]); a dry run takes no lock and writes no run log.
pub async fn run(cfg: &Config, opts: &LoadOptions) -> Result<Outcome, JobError> {
    let url = cfg.cashserver_url()?;
    check_queue(cfg)?;
    let mut client = db::connect(url, Database::CashServer, "csjobs load-sales").await?;
    if opts.dry_run {
        return dry_run(cfg, opts, &client).await;
    }
    let frame = Frame::new(JOB).job_lock(url).await?.stops_on_signals();
    frame.run(cfg, &mut client, async |ctx| work(ctx, opts).await).await
}

/// A run under its frame: the load, then the summary (stdout, the log, the counters).
async fn work(mut ctx: Ctx<'_>, opts: &LoadOptions) -> Ran {
    let cfg = ctx.cfg;
    let started = Instant::now();
    let mut summary = Summary::default();
    let result = load(&mut ctx, opts, &mut summary).await;
    summary.elapsed_s = started.elapsed().as_secs_f64();
    let result = match list_queue(cfg) {
        Ok(files) => {
            summary.left = files.len() as u64;
            result
        }
        // Never "left 0" for a queue that cannot be listed: the run says so and fails (a run
        // that failed already keeps its first error; this one is logged beside it).
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot count the files left in the queue");
            result.and(Err(e.into()))
        }
    };

    output::say(&summary.render(false));
    tracing::info!(
        processed = summary.processed,
        error = summary.error,
        broken = summary.broken,
        left = summary.left,
        documents = summary.documents,
        items = summary.items,
        elapsed_s = summary.elapsed_s,
        "load-sales summary"
    );
    let counters = serde_json::to_value(&summary).expect("summary serializes");
    Ran::new(result.map(|()| Outcome::rejected(summary.rejected())), counters)
}

async fn load(ctx: &mut Ctx<'_>, opts: &LoadOptions, summary: &mut Summary) -> Result<(), JobError> {
    let cfg = ctx.cfg;
    let client = &mut *ctx.db;
    for dir in [&cfg.paths.processed, &cfg.paths.error, &cfg.paths.broken] {
        fs_err::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }
    let recovered = recover(cfg, client).await?;
    summary.recovered = recovered.moved;
    // Shifts an earlier run's auto export still owes a file (killed before it, or its write
    // failed) are exported first; a failure here is reported at the end, the load goes on.
    let owed = if cfg.astu_auto_export { auto_export(cfg, client, None, summary).await? } else { None };
    if opts.retry_errors {
        summary.retried_errors = retry_errors(cfg)?;
    }
    let mut files = list_queue(cfg)?;
    files.retain(|f| !recovered.unchecked.iter().any(|(name, _)| *name == f.name));
    if let Some(limit) = opts.limit {
        files.truncate(limit);
    }
    let total = files.len();
    let rx = spawn_reader(files, cfg.sales.max_file_bytes);
    let loaded = consume(ctx, rx, Some(total), AfterCommit::Move, summary).await;
    let mut failed: Vec<String> = recovered.unchecked.into_iter().map(|(_, msg)| msg).collect();
    failed.extend(owed);
    match loaded {
        Ok(()) if !failed.is_empty() => Err(anyhow!("{}", failed.join("\n")).into()),
        loaded => loaded,
    }
}

/// What [`recover`] did: the files it moved, and those it could not check (each with the
/// reason): they stay in the queue, out of this run, and the run fails at its end.
#[derive(Default)]
struct Recovered {
    moved: u64,
    unchecked: Vec<(String, String)>,
}

/// Finishes the moves an interrupted run committed but did not record.
async fn recover(cfg: &Config, client: &Client) -> anyhow::Result<Recovered> {
    let pending = apply::undisposed(client).await.context("cannot read the load log")?;
    let mut done = Recovered::default();
    if pending.is_empty() {
        return Ok(done);
    }
    let mut moved = HashMap::new();
    for u in pending {
        if u.file_name.contains('/') {
            // A replayed file (named by its full path or archive): it never moves.
            moved.insert(u.load_id, None);
            continue;
        }
        let path = cfg.paths.queue.join(&u.file_name);
        // Streamed: a file may be as large as sales.max_file_bytes, or larger (rule 9). Only
        // a file that is gone is "not this file". One that cannot be read is never taken for
        // a different file to load again: its row stays undisposed, the file stays in the
        // queue and out of this run, and the run fails at its end; the files behind it load.
        let same = match crate::core::hash::sha256_of_file(&path) {
            Ok((_, sha256)) => sha256 == u.sha256,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => {
                let msg = format!(
                    "cannot read {} to finish the move an interrupted run committed: {e}; it stays in \
                     the queue, out of this run (check its permissions)",
                    path.display()
                );
                tracing::error!(file = %u.file_name, "{msg}");
                done.unchecked.push((u.file_name.clone(), msg));
                continue;
            }
        };
        if !same {
            // Already moved, or a different file now has that name: it is loaded normally.
            moved.insert(u.load_id, None);
            continue;
        }
        let dir = target_dir(cfg, u.disposition);
        let dest = queue::move_no_overwrite(&path, dir)
            .with_context(|| format!("cannot move {} to {}", path.display(), dir.display()))?;
        tracing::info!(file = %u.file_name, to = %dest.display(), "finished the move of an interrupted run");
        moved.insert(u.load_id, Some(dest.display().to_string()));
        done.moved += 1;
    }
    for d in [&cfg.paths.queue, &cfg.paths.processed, &cfg.paths.error, &cfg.paths.broken] {
        queue::fsync_dir(d).with_context(|| format!("cannot fsync {}", d.display()))?;
    }
    apply::mark_disposed(client, &moved).await.context("cannot update the load log")?;
    Ok(done)
}

/// `--retry-errors`: puts the sales files of error/ back into the queue (keeping their
/// modification times, hence their order).
fn retry_errors(cfg: &Config) -> anyhow::Result<u64> {
    let files = queue::list(&cfg.paths.error, format::is_sales_file_name)
        .with_context(|| format!("cannot list {}", cfg.paths.error.display()))?;
    for f in &files {
        queue::move_no_overwrite(&f.path, &cfg.paths.queue)
            .with_context(|| format!("cannot move {} back to the queue", f.path.display()))?;
    }
    queue::fsync_dir(&cfg.paths.queue)?;
    queue::fsync_dir(&cfg.paths.error)?;
    if !files.is_empty() {
        tracing::info!(files = files.len(), "moved error/ files back to the queue");
    }
    Ok(files.len() as u64)
}

/// `--dry-run`: reads, validates and plans every file, prints where each would go, and
/// writes and moves nothing.
async fn dry_run(cfg: &Config, opts: &LoadOptions, client: &Client) -> Result<Outcome, JobError> {
    let started = Instant::now();
    let mut files = list_queue(cfg)?;
    if opts.retry_errors {
        let mut errors = queue::list(&cfg.paths.error, format::is_sales_file_name)
            .with_context(|| format!("cannot list {}", cfg.paths.error.display()))?;
        errors.append(&mut files);
        queue::sort_in_processing_order(&mut errors);
        files = errors;
    }
    if let Some(limit) = opts.limit {
        files.truncate(limit);
    }
    let total = files.len() as u64;
    let mut rx = spawn_reader(files, cfg.sales.max_file_bytes);
    let mut planner = Planner::new();
    let mut summary = Summary::default();
    let mut out = std::io::stdout().lock();
    let mut reader_died = false;
    loop {
        // The same batches as a load (engine::next_batch), planned without writing: later
        // files see the shifts that earlier ones would create.
        let batch = next_batch(&mut rx, cfg.sales.batch_files, cfg.sales.batch_items, |aside| match aside {
            Aside::Unreadable(entry, e) => {
                summary.unreadable += 1;
                let _ = writeln!(out, "{}\tunreadable\t{e}", entry.name);
            }
            Aside::Failed(msg) => {
                let _ = writeln!(out, "failed\t{msg}");
            }
            Aside::ReaderDied => reader_died = true,
        })
        .await;
        if !batch.files.is_empty() {
            let results = apply::plan_only(client, &mut planner, &batch.files)
                .await
                .context("cannot read the cash server DB")?;
            for (f, r) in batch.files.iter().zip(&results) {
                summary.add(r);
                let what = match (&f.content, r.disposition) {
                    (Ok(sf), Disposition::Processed) => apply::describe_shift(r, sf),
                    _ => r.reason.clone().unwrap_or_default(),
                };
                let _ = writeln!(out, "{}\t{}\t{}", f.entry.name, r.disposition.as_str(), what);
            }
        }
        if batch.last {
            break;
        }
    }
    drop(out);
    summary.left = total;
    summary.elapsed_s = started.elapsed().as_secs_f64();
    output::say(&summary.render(true));
    if reader_died {
        return Err(anyhow!("{READER_DIED}").into());
    }
    // A real run fails on a file it cannot read (it stays in the queue): so does its dry run.
    if summary.unreadable > 0 {
        return Err(anyhow!(
            "{} files cannot be read (listed above as unreadable): a run would leave them in the queue and \
             exit 1; check their permissions",
            summary.unreadable
        )
        .into());
    }
    Ok(Outcome::rejected(summary.rejected()))
}
