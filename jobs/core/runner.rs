//! The job runner: the frame every job runs in, written once.
//!
//! Two layers:
//!
//! - [`run_command`], around every command of the binary: the start ping, the command on a
//!   tokio runtime, its result mapped once to the exit code ([`super::exit_code`]) and logged
//!   ([`report`]), the end ping with that code. A ping never changes the code.
//! - [`Frame`], around every job that keeps a run log (load-sales and its replay, transfer,
//!   archive, trim-dicts, trim-db, export-astu): its locks ([`Frame::job_lock`],
//!   [`Frame::archive_lock`]), then its `job_run` row, then the work (with the stop
//!   handling, [`Frame::stops_on_signals`], from where the work first asks for its flag), then the row closed with the outcome, the
//!   exit code, the counters and, on failure, an `error_message` row ([`Frame::run`];
//!   archive's run log only when the cash server DB answers: [`Frame::run_logged_if_db`]).
//!   The locks are held until the row is closed.
//!
//! What a job does before its frame (check its options, connect, a dry run that writes no
//! run log and takes no lock) stays in the job's `run`; what it does inside is a function
//! from its [`Ctx`] to [`Ran`]: the outcome and the counters its run log keeps.

use std::{future::Future, io::Write, path::Path};

use tokio_postgres::Client;

use super::{
    config::{Config, DbUrl},
    db::{self, Database},
    lock::{self, FileLock, JobLock},
    logging::{LogFormat, Stream},
    ping::Pinger,
    runlog::RunLog,
    stop::{self, StopFlag},
    JobError, Outcome,
};

/// Runs one command of the binary: pings `<notify.ping_url>/start`, runs `command` on a
/// current-thread tokio runtime, maps its result to the exit code (logging why it failed,
/// [`report`]), pings `<url>/<exit code>` and returns the code.
pub fn run_command(
    job: &str,
    ping_url: Option<&str>,
    stream: Stream,
    command: impl Future<Output = Result<Outcome, JobError>>,
) -> u8 {
    let pinger = Pinger::new(ping_url, job);
    pinger.start();
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let result = runtime.block_on(command);
    let code = report(&result, stream);
    pinger.finish(code);
    code
}

/// Logs why a run failed and returns its exit code (`core::exit_code`). The log line carries
/// it in every format; a person at a terminal (the human format) also gets the plain
/// `csjobs: …` line, never beside JSON.
pub fn report(result: &Result<Outcome, JobError>, stream: Stream) -> u8 {
    let code = super::exit_code(result);
    if let Err(e) = result {
        // `{:#}` prints the whole context chain: what failed, on which file or setting.
        let text = match e {
            JobError::Failed(inner) => format!("{inner:#}"),
            other => other.to_string(),
        };
        tracing::error!(exit_code = code, "{text}");
        if stream.format == LogFormat::Human {
            let _ = std::io::stderr().write_all(stream.error_line(&text, code).as_bytes());
        }
    }
    code
}

/// How a job's work ended: its result and the counters its run log keeps (kept on a failure
/// too: what was done before it).
pub struct Ran {
    pub result: Result<Outcome, JobError>,
    pub counters: serde_json::Value,
}

impl Ran {
    pub fn new(result: Result<Outcome, JobError>, counters: serde_json::Value) -> Ran {
        Ran { result, counters }
    }
}

/// What a job's work gets from its frame.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    /// The job's connection to the cash server DB, on which the run log is kept.
    pub db: &'a mut Client,
    /// This run's row in `job_run`.
    pub run_id: i64,
    /// The stop flag: [`Stop::flag`].
    pub stop: Stop,
}

/// A run's stop flag, its handling installed when the work first asks for it ([`Stop::flag`]):
/// a signal before that point ends the process, as it does for a job that never asks.
pub struct Stop {
    handled: bool,
    flag: std::cell::OnceCell<StopFlag>,
}

impl Stop {
    fn new(handled: bool) -> Stop {
        Stop { handled, flag: std::cell::OnceCell::new() }
    }

    /// The flag the work checks between its units of work. In a frame that
    /// [stops on signals](Frame::stops_on_signals), the first call installs the handling
    /// (`core::stop::install`): from then on the first SIGTERM/SIGINT sets the flag and the
    /// second exits 1 at once. Otherwise the flag is never set.
    pub fn flag(&self) -> StopFlag {
        self.flag.get_or_init(|| if self.handled { stop::install() } else { StopFlag::never() }).clone()
    }
}

/// The frame of one run of a job: its name, the locks taken so far, whether it stops on
/// signals. Built in that order (locks, then stop handling), then [`Frame::run`].
#[must_use = "a frame does nothing until it runs"]
pub struct Frame {
    job: &'static str,
    stops: bool,
    _job_lock: Option<JobLock>,
    _archive_lock: Option<FileLock>,
}

impl Frame {
    /// A frame for `job` (its name in `job_run`, the job lock and `error_message`): no lock
    /// yet, signals not handled.
    pub fn new(job: &'static str) -> Frame {
        Frame { job, stops: false, _job_lock: None, _archive_lock: None }
    }

    /// Takes the job lock (`core::lock::acquire`; exit 4 when another run holds it).
    pub async fn job_lock(mut self, url: &DbUrl) -> Result<Frame, JobError> {
        self._job_lock = Some(lock::acquire(url, self.job).await?);
        Ok(self)
    }

    /// Takes the archive lock that archive and load-sales --replay share
    /// (`core::lock::acquire_archive_lock`), noting `holder` in it.
    pub fn archive_lock(mut self, backup: &Path, holder: &str) -> Result<Frame, JobError> {
        self._archive_lock = Some(lock::acquire_archive_lock(backup, holder)?);
        Ok(self)
    }

    /// The job checks its stop flag ([`Stop::flag`]) between its units of work: from the
    /// first time it asks for it, the first SIGTERM/SIGINT sets the flag and the second exits
    /// 1 at once (`core::stop`). A job that does not stop on signals leaves them alone (they
    /// end the process).
    pub fn stops_on_signals(mut self) -> Frame {
        self.stops = true;
        self
    }

    /// Starts the run log on `client` (a failure to: exit 1, nothing done), installs the
    /// stop handling, runs `work`, closes the run log from its result and counters
    /// (`RunLog::close`), then frees the locks. Returns the work's result.
    pub async fn run(
        self,
        cfg: &Config,
        client: &mut Client,
        work: impl AsyncFnOnce(Ctx<'_>) -> Ran,
    ) -> Result<Outcome, JobError> {
        let run = RunLog::start(client, self.job).await?;
        let ran = work(Ctx { cfg, db: client, run_id: run.run_id, stop: Stop::new(self.stops) }).await;
        run.close(client, self.job, &ran.result, &ran.counters).await;
        ran.result
    }

    /// For a job that needs no database (archive): connects to the cash server DB and starts
    /// the run log there when it is configured and answers; otherwise warns and runs `work`
    /// without a run log (its files matter more than their bookkeeping); `doing` names the
    /// work in that warning ("archiving goes on without it"). Then as [`Frame::run`].
    pub async fn run_logged_if_db(
        self,
        cfg: &Config,
        doing: &str,
        work: impl AsyncFnOnce(Stop) -> Ran,
    ) -> Result<Outcome, JobError> {
        let log = self.start_run_log_if_db(cfg, doing).await;
        let ran = work(Stop::new(self.stops)).await;
        if let Some((client, run)) = &log {
            run.close(client, self.job, &ran.result, &ran.counters).await;
        }
        ran.result
    }

    /// The run log of [`Frame::run_logged_if_db`]: `None`, with a warning, when there is no
    /// cash server DB or it cannot be used.
    async fn start_run_log_if_db(&self, cfg: &Config, doing: &str) -> Option<(Client, RunLog)> {
        let job = self.job;
        let Some(url) = cfg.cashserver_url.as_ref() else {
            tracing::warn!(
                "the cash server DB is not configured (cashserver.database_url): this {job} run keeps \
                 no run log, so status cannot show it"
            );
            return None;
        };
        let started = async {
            let client = db::connect(url, Database::CashServer, &format!("csjobs {job}")).await?;
            let run = RunLog::start(&client, job).await?;
            anyhow::Ok((client, run))
        }
        .await;
        match started {
            Ok(log) => Some(log),
            Err(e) => {
                tracing::warn!(
                    error = %format!("{e:#}"),
                    "cannot write the run log in the cash server DB: {doing} goes on without it"
                );
                None
            }
        }
    }
}
