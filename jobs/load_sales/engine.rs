//! The loading engine shared by the queue (`job`) and replay (`replay`): what a reader
//! sends ([`FromReader`]), the batching loop ([`consume`]: one transaction per batch, a refused
//! batch split down to the file the database refuses), the dispose hook ([`AfterCommit`]:
//! move the files, or leave them where they are), the ASTU auto export after a batch, and
//! the run's counters ([`Summary`]). The adapters own where files come from and what
//! happens before and after; only [`consume`] talks to the database for a batch, and only
//! [`dispose`] moves files.

use std::{
    collections::{HashMap, HashSet},
    io::IsTerminal,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{anyhow, Context};
use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::{
    apply,
    format::{self, ReadError},
    types::{AstuMarking, Disposition, FileResult, ReadFile},
};
use crate::core::{
    budget::ByteBudget,
    config::Config,
    db::{self, ErrorClass},
    queue::{self, QueuedFile},
    runner::Ctx,
    JobError,
};
use crate::export_astu;

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
    pub fn add(&mut self, r: &FileResult) {
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

/// The bytes of read files (decompressed content) that may wait between the reader and
/// the writer at once: with the batch being written, what a run holds in memory is about
/// this plus the one file the reader is reading. A file larger than this goes alone.
pub const IN_FLIGHT_BYTES: u64 = 256 * 1024 * 1024;

/// What the reading side hands to the loading side, in processing order.
pub enum FromReader {
    File(Box<ReadFile>),
    Unreadable(QueuedFile, std::io::Error),
    /// A source that could not be read at all (replay: a corrupt archive); the run goes on
    /// and fails at its end.
    Failed(String),
    /// Everything was read: the reader's last message. A channel that closes without it
    /// means the reader died (a panic): the run fails instead of passing for a short queue.
    End,
}

/// What the loading side says when the reader stopped without [`FromReader::End`].
pub const READER_DIED: &str = "the reader thread stopped before the end of the files (an internal error; \
                           its message is in the log): what was committed stays, the files not read \
                           stay where they are; run again";

/// Starts the reading side of a run on a thread of its own (`name`), so reading and parsing
/// the next files overlaps with the database writing the current batch: `read` sends the
/// files in order, each made with [`FromReader::from_reading`] against the run's byte budget
/// ([`IN_FLIGHT_BYTES`]), and returns what it wants to hand back through the join handle;
/// [`FromReader::End`] is sent after it. The channel is bounded (64 files): memory stays
/// bounded whatever the number of files. A send that fails means the loading side stopped:
/// `read` then returns at once.
pub fn spawn_reader<T: Send + 'static>(
    name: &str,
    read: impl FnOnce(&mpsc::Sender<FromReader>, &Arc<ByteBudget>) -> T + Send + 'static,
) -> (mpsc::Receiver<FromReader>, std::thread::JoinHandle<T>) {
    let (tx, rx) = mpsc::channel(64);
    let budget = ByteBudget::new(IN_FLIGHT_BYTES);
    let handle = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let out = read(&tx, &budget);
            // Fails only when the loading side has stopped already: nobody is waiting for it.
            let _ = tx.blocking_send(FromReader::End);
            out
        })
        .expect("spawn the reader thread");
    (rx, handle)
}

/// What a reader sends besides files, and the reader's dying, as [`next_batch`] meets them.
pub enum Aside {
    Unreadable(QueuedFile, std::io::Error),
    Failed(String),
    /// The channel closed without [`FromReader::End`] (see [`READER_DIED`]).
    ReaderDied,
}

/// A batch as [`next_batch`] collects it.
pub struct Batch {
    pub files: Vec<ReadFile>,
    /// The reader has ended (or died): nothing more will come.
    pub last: bool,
}

/// Collects the next batch from the reader: files until `max_files` of them or `max_items`
/// items (the file that reaches it is in), waiting for the first as long as it takes and for
/// the others half a second at most from the batch's start (the reader may be waiting for
/// the byte budget that this very batch holds); what is not a file goes to `aside` as it
/// comes. Shared by the load ([`consume`]) and its dry run, so both batch alike.
pub async fn next_batch(
    rx: &mut mpsc::Receiver<FromReader>,
    max_files: usize,
    max_items: usize,
    mut aside: impl FnMut(Aside),
) -> Batch {
    let mut files: Vec<ReadFile> = Vec::new();
    let mut items = 0usize;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    while files.len() < max_files && items < max_items {
        let next = if files.is_empty() {
            rx.recv().await
        } else {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(next) => next,
                Err(_) => break, // the reader is slow: this batch goes as it is
            }
        };
        match next {
            Some(FromReader::End) => return Batch { files, last: true },
            None => {
                aside(Aside::ReaderDied);
                return Batch { files, last: true };
            }
            Some(FromReader::Unreadable(entry, e)) => aside(Aside::Unreadable(entry, e)),
            Some(FromReader::Failed(msg)) => aside(Aside::Failed(msg)),
            Some(FromReader::File(f)) => {
                items += f.content.as_ref().map(|s| s.item_count()).unwrap_or(0);
                files.push(*f);
            }
        }
    }
    Batch { files, last: false }
}

/// What happens to a file once its transaction committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCommit {
    /// Queue files: moved to processed/, error/ or broken/.
    Move,
    /// Replayed files: they stay where they are (processed/ or an archive).
    Stay,
}

impl FromReader {
    /// Reads and parses one queued or replayed file (`read` gets its bytes) into what the
    /// loading side gets: a parsed file (valid or broken, rules 1–9) or an unreadable one;
    /// `None` for a file that vanished since it was listed.
    ///
    /// A panic while reading or parsing (a bug of ours that some input reaches) is contained
    /// here, for this one file: it becomes a broken file whose reason is the internal error,
    /// so it goes to broken/ with a load log row and the files behind it are loaded. Without
    /// this, one such file first in the queue stopped every later run.
    pub fn from_reading(
        entry: QueuedFile,
        read: impl FnOnce() -> Result<format::RawFile, ReadError>,
        started_at: chrono::DateTime<Utc>,
        budget: &Arc<ByteBudget>,
    ) -> Option<FromReader> {
        let mut held = None;
        let name = entry.name.clone();
        let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // A fault for the tests of this very path (debug builds only).
            #[cfg(debug_assertions)]
            if std::env::var_os("CSJOBS_TEST_READER_PANIC_AT").is_some_and(|v| v == name.as_str()) {
                panic!("injected fault: the reader panics at {name}");
            }
            match read() {
                Ok(raw) => {
                    // Taken before parsing: the parsed form takes about as much as the text.
                    held = Some(budget.acquire(raw.content.len() as u64));
                    Ok(Some((format::parse(&raw.content), raw.size, raw.sha256)))
                }
                Err(ReadError::Broken { size, sha256, broken }) => Ok(Some((Err(broken), size, sha256))),
                Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(ReadError::Io(e)) => Err(e),
            }
        }));
        let (content, size, sha256) = match attempt {
            Ok(Ok(Some(parsed))) => parsed,
            Ok(Ok(None)) => return None,
            Ok(Err(e)) => return Some(FromReader::Unreadable(entry, e)),
            Err(panic) => {
                let what = panic_message(&*panic);
                // The hook has logged the panic with its location; this names the file.
                tracing::error!(file = %name, "internal error while reading {name}: {what}; it goes to broken/");
                // The hash identifies the file in the load log (crash recovery moves a file
                // only when it still has it); a replayed archive member has no path of its own.
                let (size, sha256) = crate::core::hash::sha256_of_file(&entry.path).unwrap_or_default();
                (Err(format::Broken::internal(what)), size, sha256)
            }
        };
        Some(FromReader::File(Box::new(ReadFile { content, size, sha256, started_at, entry, held })))
    }
}

/// The text of a panic's payload (`panic!` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

pub fn target_dir(cfg: &Config, d: Disposition) -> &Path {
    match d {
        Disposition::Processed => &cfg.paths.processed,
        Disposition::Error => &cfg.paths.error,
        Disposition::Broken => &cfg.paths.broken,
    }
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

/// The loading side of a run: takes what the reader sends, in batches of one transaction
/// each, and disposes of each file once its batch committed, until the reader's end or a
/// stop request (`ctx.stop`, checked between batches). Shared by the queue and replay.
pub async fn consume(
    ctx: &mut Ctx<'_>,
    mut rx: mpsc::Receiver<FromReader>,
    total: Option<usize>,
    after: AfterCommit,
    summary: &mut Summary,
) -> Result<(), JobError> {
    let (cfg, run_id, stop) = (ctx.cfg, ctx.run_id, ctx.stop.flag());
    let client = &mut *ctx.db;
    let astu = match after {
        AfterCommit::Move if cfg.astu_auto_export => AstuMarking::StaleAndDue,
        AfterCommit::Move => AstuMarking::Stale,
        AfterCommit::Stay => AstuMarking::Leave,
    };
    let pb = progress(total);
    let mut failures: Vec<String> = Vec::new();
    let mut done = false;
    while !done && !stop.requested() {
        let next = next_batch(&mut rx, cfg.sales.batch_files, cfg.sales.batch_items, |aside| match aside {
            Aside::ReaderDied => {
                tracing::error!("{READER_DIED}");
                failures.push(READER_DIED.to_string());
            }
            Aside::Unreadable(entry, e) => {
                let msg = format!(
                    "cannot read {}: {e}; it stays in the queue (check its permissions)",
                    entry.path.display()
                );
                tracing::error!(file = %entry.name, "{msg}");
                summary.unreadable += 1;
                failures.push(msg);
            }
            Aside::Failed(msg) => {
                tracing::error!("{msg}");
                failures.push(msg);
            }
        })
        .await;
        done = next.last;
        let batch = next.files;
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
pub async fn auto_export(
    cfg: &Config,
    client: &mut Client,
    within: Option<&[i64]>,
    summary: &mut Summary,
) -> Result<Option<String>, JobError> {
    let cannot =
        |e| anyhow::Error::new(e).context("the cash server DB cannot be used for the ASTU auto export");
    let due = export_astu::state::due(client, within).await.map_err(cannot)?;
    if due.is_empty() {
        return Ok(None);
    }
    let report =
        export_astu::export::export_shifts(client, &cfg.paths.astu_outbox, &due).await.map_err(cannot)?;
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
