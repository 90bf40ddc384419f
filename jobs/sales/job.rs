//! The `load-sales` job: recovers what an interrupted run left, lists the queue, reads and
//! validates files on a reader thread, applies them in batches (one transaction each),
//! moves each file only after its batch committed, and prints the summary.
//!
//! Crash safety rests on one invariant: a file's load log row is written in the same
//! transaction as its sales. A file that is still in the queue but has a committed load
//! log row without `disposed_at` was loaded by a run that died before moving it; the next
//! run moves it (checking its content hash) instead of loading it again.

use std::{
    collections::{HashMap, HashSet},
    io::IsTerminal,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{anyhow, Context};
use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::{
    apply::{self, AstuMarking, Disposition, FileResult, ReadFile},
    format::{self, ReadError},
    plan::Planner,
};
use crate::astu;
use crate::core::{
    config::Config,
    db::{self, Database, ErrorClass},
    lock, output,
    queue::{self, QueuedFile},
    runlog::RunLog,
    stop, JobError, Outcome,
};

pub const JOB: &str = "load-sales";

/// The options of `csjobs load-sales`.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub dry_run: bool,
    pub limit: Option<usize>,
    pub retry_errors: bool,
}

/// The counters of one run, printed at the end and kept in the job run log.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Summary {
    pub processed: u64,
    pub error: u64,
    pub broken: u64,
    /// Sales files still in the queue when the run ended.
    pub left: u64,
    pub unreadable: u64,
    pub documents: u64,
    pub items: u64,
    pub recovered: u64,
    pub retried_errors: u64,
    /// Replay: sales files read that belong to another period or cash.
    pub outside_period: u64,
    /// Shifts written to the ASTU outbox by the auto export.
    pub astu_exported: u64,
    /// Shifts whose ASTU file could not be written: they stay unexported.
    pub astu_failed: u64,
    /// Replay: files whose shift open date is unknown (no open time in the shift or any
    /// document, or broken): not replayed.
    pub undated: u64,
    pub elapsed_s: f64,
}

impl Summary {
    fn add(&mut self, r: &FileResult) {
        match r.disposition {
            Disposition::Processed => {
                self.processed += 1;
                self.documents += r.documents as u64;
                self.items += r.items as u64;
            }
            Disposition::Error => self.error += 1,
            Disposition::Broken => self.broken += 1,
        }
    }

    pub(super) fn rejected(&self) -> u64 {
        self.error + self.broken
    }

    /// The summary as a DBA reads it on stdout.
    pub fn render(&self, dry_run: bool) -> String {
        let verb = if dry_run { "would be " } else { "" };
        format!(
            "load-sales{}: {} files in {:.2} s\n  {verb}processed  {:>8}\n  {verb}error      {:>8}\n  \
             {verb}broken     {:>8}\n  left       {:>8}\n  documents  {:>8}\n  items      {:>8}\n",
            if dry_run { " --dry-run" } else { "" },
            self.processed + self.error + self.broken,
            self.elapsed_s,
            self.processed,
            self.error,
            self.broken,
            self.left,
            self.documents,
            self.items,
        ) + &if self.astu_exported + self.astu_failed > 0 {
            format!("  astu files {:>8}\n  astu failed{:>8}\n", self.astu_exported, self.astu_failed)
        } else {
            String::new()
        }
    }
}

/// What the reading side hands to the loading side, in processing order.
pub(super) enum Read {
    File(Box<ReadFile>),
    Unreadable(QueuedFile, std::io::Error),
    /// A source that could not be read at all (replay: a corrupt archive); the run goes on
    /// and fails at its end.
    Failed(String),
    /// Everything was read: the reader's last message. A channel that closes without it
    /// means the reader died (a panic): the run fails instead of passing for a short queue.
    End,
}

/// What the loading side says when the reader stopped without [`Read::End`].
const READER_DIED: &str = "the reader thread stopped before the end of the files (an internal error; \
                           its message is in the log): what was committed stays, the files not read \
                           stay where they are; run again";

/// What happens to a file once its transaction committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterCommit {
    /// Queue files: moved to processed/, error/ or broken/.
    Move,
    /// Replayed files: they stay where they are (processed/ or an archive).
    Stay,
}

/// Reads and validates the files in order on a thread of its own, so parsing the next
/// files overlaps with the database writing the current batch. The channel is bounded:
/// memory stays bounded whatever the queue size.
fn spawn_reader(files: Vec<QueuedFile>, max_bytes: u64) -> mpsc::Receiver<Read> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::Builder::new()
        .name("sales-reader".into())
        .spawn(move || {
            for entry in files {
                // A fault for the tests of this very path (debug builds only).
                #[cfg(debug_assertions)]
                if std::env::var_os("CSJOBS_TEST_READER_PANIC_AT").is_some_and(|v| v == entry.name.as_str()) {
                    panic!("injected fault: the reader panics at {}", entry.name);
                }
                let started_at = Utc::now();
                let read = format::read_file(&entry.path, max_bytes);
                let item = match validate(entry, read, started_at) {
                    Some(item) => item,
                    // Taken away by someone else since the listing: nothing to do.
                    None => continue,
                };
                if tx.blocking_send(item).is_err() {
                    return; // the run stopped
                }
            }
            let _ = tx.blocking_send(Read::End);
        })
        .expect("spawn the reader thread");
    rx
}

/// Turns what reading a file gave into what the loading side gets: a parsed file, a broken
/// one, or an unreadable one; `None` for a file that vanished since it was listed.
pub(super) fn validate(
    entry: QueuedFile,
    read: Result<format::RawFile, ReadError>,
    started_at: chrono::DateTime<Utc>,
) -> Option<Read> {
    Some(match read {
        Ok(raw) => Read::File(Box::new(ReadFile {
            content: format::parse(&raw.content),
            size: raw.size,
            sha256: raw.sha256,
            started_at,
            entry,
        })),
        Err(ReadError::Broken { size, sha256, broken }) => {
            Read::File(Box::new(ReadFile { content: Err(broken), size, sha256, started_at, entry }))
        }
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(ReadError::Io(e)) => Read::Unreadable(entry, e),
    })
}

fn target_dir(cfg: &Config, d: Disposition) -> &Path {
    match d {
        Disposition::Processed => &cfg.paths.processed,
        Disposition::Error => &cfg.paths.error,
        Disposition::Broken => &cfg.paths.broken,
    }
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

fn progress(total: Option<usize>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total.unwrap_or(0) as u64);
    pb.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} files, {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb
}

/// Runs `csjobs load-sales`.
pub async fn run(cfg: &Config, opts: &LoadOptions) -> Result<Outcome, JobError> {
    let url = cfg.cashserver_url()?;
    check_queue(cfg)?;
    let mut client = db::connect(url, Database::CashServer, "csjobs load-sales").await?;
    if opts.dry_run {
        return dry_run(cfg, opts, &client).await;
    }
    let _lock = lock::acquire(url, JOB).await?;
    let run = RunLog::start(&client, JOB).await?;
    let started = Instant::now();
    let mut summary = Summary::default();
    let result = load(cfg, opts, &mut client, run.run_id, &mut summary).await;
    summary.elapsed_s = started.elapsed().as_secs_f64();
    summary.left = list_queue(cfg).map(|f| f.len() as u64).unwrap_or(0);

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
    let result = result.map(|()| Outcome::rejected(summary.rejected()));
    run.close(&client, JOB, &result, &counters).await;
    result
}

async fn load(
    cfg: &Config,
    opts: &LoadOptions,
    client: &mut Client,
    run_id: i64,
    summary: &mut Summary,
) -> Result<(), JobError> {
    for dir in [&cfg.paths.processed, &cfg.paths.error, &cfg.paths.broken] {
        fs_err::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }
    summary.recovered = recover(cfg, client).await?;
    // Shifts an earlier run's auto export still owes a file (killed before it, or its write
    // failed) are exported first; a failure here is reported at the end, the load goes on.
    let owed = if cfg.astu_auto_export { auto_export(cfg, client, None, summary).await? } else { None };
    if opts.retry_errors {
        summary.retried_errors = retry_errors(cfg)?;
    }
    let mut files = list_queue(cfg)?;
    if let Some(limit) = opts.limit {
        files.truncate(limit);
    }
    let total = files.len();
    let rx = spawn_reader(files, cfg.sales.max_file_bytes);
    let loaded = consume(cfg, client, run_id, rx, Some(total), AfterCommit::Move, summary).await;
    match (loaded, owed) {
        (Ok(()), Some(failed)) => Err(anyhow!("{failed}").into()),
        (loaded, _) => loaded,
    }
}

/// The loading side of a run: takes what the reader sends, in batches of one transaction
/// each, and disposes of each file once its batch committed. Shared by the queue and replay.
pub(super) async fn consume(
    cfg: &Config,
    client: &mut Client,
    run_id: i64,
    mut rx: mpsc::Receiver<Read>,
    total: Option<usize>,
    after: AfterCommit,
    summary: &mut Summary,
) -> Result<(), JobError> {
    let astu = match after {
        AfterCommit::Move if cfg.astu_auto_export => AstuMarking::StaleAndDue,
        AfterCommit::Move => AstuMarking::Stale,
        AfterCommit::Stay => AstuMarking::Leave,
    };
    let pb = progress(total);
    let stop = stop::install();
    let mut failures: Vec<String> = Vec::new();
    let mut done = false;
    while !done && !stop.requested() {
        let mut batch: Vec<ReadFile> = Vec::new();
        let mut items = 0usize;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        while batch.len() < cfg.sales.batch_files && items < cfg.sales.batch_items {
            let next = if batch.is_empty() {
                rx.recv().await
            } else {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(next) => next,
                    Err(_) => break, // the reader is slow: commit what we have
                }
            };
            match next {
                Some(Read::End) => {
                    done = true;
                    break;
                }
                None => {
                    tracing::error!("{READER_DIED}");
                    failures.push(READER_DIED.to_string());
                    done = true;
                    break;
                }
                Some(Read::Unreadable(entry, e)) => {
                    let msg = format!(
                        "cannot read {}: {e}; it stays in the queue (check its permissions)",
                        entry.path.display()
                    );
                    tracing::error!(file = %entry.name, "{msg}");
                    summary.unreadable += 1;
                    failures.push(msg);
                }
                Some(Read::File(f)) => {
                    items += f.content.as_ref().map(|s| s.item_count()).unwrap_or(0);
                    batch.push(*f);
                }
                Some(Read::Failed(msg)) => {
                    tracing::error!("{msg}");
                    failures.push(msg);
                }
            }
        }
        if batch.is_empty() {
            continue;
        }
        let results = apply_with_fallback(client, &batch, run_id, astu).await?;
        for (f, r) in batch.iter().zip(&results) {
            summary.add(r);
            match r.disposition {
                Disposition::Processed => tracing::debug!(
                    file = %f.entry.name, workshiftid = r.workshiftid, documents = r.documents,
                    "processed"
                ),
                d => tracing::warn!(
                    file = %f.entry.name, disposition = d.as_str(),
                    reason = r.reason.as_deref().unwrap_or(""),
                    "file refused"
                ),
            }
        }
        let disposed = match after {
            AfterCommit::Move => dispose(cfg, client, &batch, &results).await,
            AfterCommit::Stay => {
                let stay = results.iter().filter_map(|r| r.load_id).map(|id| (id, None)).collect();
                apply::mark_disposed(client, &stay).await.context("cannot update the load log")
            }
        };
        if let Err(e) = disposed {
            failures.push(format!("{e:#}"));
            break;
        }
        if astu == AstuMarking::StaleAndDue {
            let shifts: Vec<i64> = results.iter().filter_map(|r| r.workshiftid).collect();
            if let Some(failed) = auto_export(cfg, client, Some(&shifts), summary).await? {
                failures.push(failed);
            }
        }
        pb.inc(batch.len() as u64);
        let rate = pb.position() as f64 / pb.elapsed().as_secs_f64().max(1e-3);
        pb.set_message(format!("{rate:.0} files/s, {} documents", summary.documents));
    }
    pb.finish_and_clear();
    if !failures.is_empty() {
        return Err(anyhow!("{}", failures.join("\n")).into());
    }
    Ok(())
}

/// Auto export (rules.md §5): writes the ASTU files the loads owe (`astu_export_due`, set
/// in the load's transaction on the closed shifts a batch closed or changed), all of them or
/// only those among `within`. A file that cannot be written leaves its shift owed and is
/// returned as a message (the run then ends with exit code 1); the sales stay loaded.
async fn auto_export(
    cfg: &Config,
    client: &mut Client,
    within: Option<&[i64]>,
    summary: &mut Summary,
) -> Result<Option<String>, JobError> {
    let cannot =
        |e| anyhow::Error::new(e).context("the cash server DB cannot be used for the ASTU auto export");
    let due = astu::export::due(client, within).await.map_err(cannot)?;
    if due.is_empty() {
        return Ok(None);
    }
    let report = astu::export::export_shifts(client, &cfg.paths.astu_outbox, &due).await.map_err(cannot)?;
    for (id, path) in &report.exported {
        tracing::info!(workshiftid = id, file = %path.display(), "auto export to ASTU");
    }
    summary.astu_exported += report.exported.len() as u64;
    summary.astu_failed += report.failed.len() as u64;
    let msg = report.failure_message(&cfg.paths.astu_outbox);
    if let Some(msg) = &msg {
        tracing::error!("{msg}");
    }
    Ok(msg)
}

/// Applies a batch; when the database refuses something in it, applies its files one by
/// one so that only the refused file goes to error/. Fails (exit 1, files stay queued)
/// when the database cannot be used.
async fn apply_with_fallback(
    client: &mut Client,
    batch: &[ReadFile],
    run_id: i64,
    astu: AstuMarking,
) -> anyhow::Result<Vec<FileResult>> {
    match apply_retrying(client, batch, run_id, astu).await {
        Ok(r) => return Ok(r),
        Err(e) if batch.len() == 1 || db::classify(&e) != ErrorClass::Refused => {
            return refuse(client, &batch[0], e, run_id).await
        }
        Err(e) => tracing::info!(
            reason = %db::describe(&e),
            "the database refused something in a batch of {} files; loading them one by one",
            batch.len()
        ),
    }
    let mut results = Vec::with_capacity(batch.len());
    for f in batch.chunks(1) {
        match apply_retrying(client, f, run_id, astu).await {
            Ok(mut r) => results.append(&mut r),
            Err(e) => results.push(refuse(client, &f[0], e, run_id).await?.remove(0)),
        }
    }
    Ok(results)
}

/// Applies with up to three tries on serialization failures and deadlocks.
async fn apply_retrying(
    client: &mut Client,
    batch: &[ReadFile],
    run_id: i64,
    astu: AstuMarking,
) -> Result<Vec<FileResult>, tokio_postgres::Error> {
    let mut tries = 0;
    loop {
        match apply::apply_batch(client, batch, Some(run_id), astu).await {
            Err(e) if db::classify(&e) == ErrorClass::Retry && tries < 3 => tries += 1,
            other => return other,
        }
    }
}

async fn refuse(
    client: &mut Client,
    file: &ReadFile,
    e: tokio_postgres::Error,
    run_id: i64,
) -> anyhow::Result<Vec<FileResult>> {
    if db::classify(&e) != ErrorClass::Refused {
        return Err(anyhow::Error::new(e).context(format!(
            "the cash server DB cannot be used while loading {}; it and the files after it stay \
             in the queue",
            file.entry.name
        )));
    }
    let reason = format!("the cash server DB refused the file: {}", db::describe(&e));
    let r = apply::record_refused(client, file, reason, Some(run_id))
        .await
        .context("cannot write the load log")?;
    Ok(vec![r])
}

/// Moves every file of a committed batch to its directory and records the moves.
async fn dispose(
    cfg: &Config,
    client: &Client,
    batch: &[ReadFile],
    results: &[FileResult],
) -> anyhow::Result<()> {
    let mut moved: HashMap<i64, Option<String>> = HashMap::new();
    let mut dirs: HashSet<PathBuf> = HashSet::new();
    let mut failure = None;
    for (f, r) in batch.iter().zip(results) {
        let dir = target_dir(cfg, r.disposition);
        let load_id = r.load_id.expect("committed results carry their load id");
        match queue::move_no_overwrite(&f.entry.path, dir) {
            Ok(dest) => {
                moved.insert(load_id, Some(dest.display().to_string()));
                dirs.insert(dir.to_path_buf());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                moved.insert(load_id, None);
            }
            Err(e) => {
                failure = Some(anyhow!(
                    "{} was loaded ({}) but cannot be moved to {}: {e}; the next run moves it",
                    f.entry.path.display(),
                    r.disposition.as_str(),
                    dir.display()
                ));
                break;
            }
        }
    }
    dirs.insert(cfg.paths.queue.clone());
    for d in &dirs {
        queue::fsync_dir(d).with_context(|| format!("cannot fsync {}", d.display()))?;
    }
    apply::mark_disposed(client, &moved).await.context("cannot update the load log")?;
    failure.map_or(Ok(()), Err)
}

/// Finishes the moves an interrupted run committed but did not record. Returns how many
/// files were moved.
async fn recover(cfg: &Config, client: &Client) -> anyhow::Result<u64> {
    let pending = apply::undisposed(client).await.context("cannot read the load log")?;
    if pending.is_empty() {
        return Ok(0);
    }
    let mut moved = HashMap::new();
    let mut count = 0;
    for u in pending {
        if u.file_name.contains('/') {
            // A replayed file (named by its full path or archive): it never moves.
            moved.insert(u.load_id, None);
            continue;
        }
        let path = cfg.paths.queue.join(&u.file_name);
        let same = match fs_err::read(&path) {
            Ok(bytes) => hex::encode(Sha256::digest(&bytes)) == u.sha256,
            Err(_) => false,
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
        count += 1;
    }
    for d in [&cfg.paths.queue, &cfg.paths.processed, &cfg.paths.error, &cfg.paths.broken] {
        queue::fsync_dir(d).with_context(|| format!("cannot fsync {}", d.display()))?;
    }
    apply::mark_disposed(client, &moved).await.context("cannot update the load log")?;
    Ok(count)
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
        let mut errors = queue::list(&cfg.paths.error, format::is_sales_file_name).unwrap_or_default();
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
    let mut batch = Vec::new();
    let mut out = std::io::stdout().lock();
    let mut reader_died = false;
    loop {
        let next = rx.recv().await;
        let end = matches!(next, None | Some(Read::End));
        match next {
            Some(Read::File(f)) => batch.push(*f),
            Some(Read::Unreadable(entry, e)) => {
                summary.unreadable += 1;
                use std::io::Write;
                let _ = writeln!(out, "{}\tunreadable\t{e}", entry.name);
            }
            Some(Read::Failed(msg)) => {
                use std::io::Write;
                let _ = writeln!(out, "failed\t{msg}");
            }
            Some(Read::End) => {}
            None => reader_died = true,
        }
        if batch.len() >= cfg.sales.batch_files || (end && !batch.is_empty()) {
            let results = apply::plan_only(client, &mut planner, &batch)
                .await
                .context("cannot read the cash server DB")?;
            for (f, r) in batch.iter().zip(&results) {
                summary.add(r);
                let what = match (&f.content, r.disposition) {
                    (Ok(sf), Disposition::Processed) => apply::describe_shift(r, sf),
                    _ => r.reason.clone().unwrap_or_default(),
                };
                use std::io::Write;
                let _ = writeln!(out, "{}\t{}\t{}", f.entry.name, r.disposition.as_str(), what);
            }
            batch.clear();
        }
        if end {
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
