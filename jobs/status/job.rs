//! Entry point of `csjobs status`: options → read (files first, then both databases at once)
//! → judge → one format → stdout or `--output` (temporary name, fsync, rename: the textfile
//! collector never reads half a file). Takes no lock and writes to no database, so it runs
//! every minute beside every job, and with a read-only role.
//!
//! When the cash server DB cannot be read the output is still written, with what could be
//! checked (`csjobs_up{database="cashserver"} 0`, the directories), and the run exits 1.

use std::{io::IsTerminal, path::PathBuf};

use anyhow::Context;

use super::{
    collect::{self, CashServerFacts},
    judge, problems, prometheus,
    render::{self, StatusFormat},
    LinkState, Queues, Status, FORMAT_TAG,
};
use crate::core::{config::Config, db::Database, duration::Span, output, queue, JobError, Outcome};

/// The options of `csjobs status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusOptions {
    /// Only the registers of this shop (shopcode; repeatable) [default: every shop]
    #[arg(long = "shop", value_name = "N")]
    pub shops: Vec<i32>,
    /// The window of the register states: files handled since now minus this (30m, 2h, 1d)
    #[arg(long, value_name = "DUR", default_value = "1d")]
    pub since: Span,
    /// Only the registers whose state is not ok
    #[arg(long)]
    pub problems: bool,
    /// Output format [default: from the --output extension (.prom, .json, .csv, .xlsx,
    /// .html), else table on a terminal and json otherwise]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<StatusFormat>,
    /// Write to this file, whole (a temporary name, then renamed into place) [default: stdout]
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

fn output_format(o: &StatusOptions) -> Result<StatusFormat, JobError> {
    let by_extension = o
        .output
        .as_deref()
        .and_then(|p| p.extension())
        .and_then(|e| e.to_str())
        .and_then(StatusFormat::from_extension);
    let to_terminal = o.output.is_none() && std::io::stdout().is_terminal();
    let f = o.format.or(by_extension).unwrap_or(if to_terminal {
        StatusFormat::Table
    } else {
        StatusFormat::Json
    });
    if f == StatusFormat::Xlsx && to_terminal {
        return Err(JobError::usage(
            "--format xlsx writes a binary workbook: give --output FILE.xlsx or redirect stdout",
        ));
    }
    Ok(f)
}

/// Runs `csjobs status`.
pub async fn run(cfg: &Config, opts: &StatusOptions) -> Result<Outcome, JobError> {
    let format = output_format(opts)?;
    let now = cfg.now;
    let window_start = now - opts.since.as_duration();

    // What needs no database.
    let directories = collect::directories(cfg);
    let p = &cfg.paths;
    let (queue_files, error_files, broken_files) = (
        collect::dir_files(now, "queue", &p.queue),
        collect::dir_files(now, "error", &p.error),
        collect::dir_files(now, "broken", &p.broken),
    );

    let ((cash_link, cash), (bonus_link, _bonus)) = tokio::join!(
        collect::probe(cfg.cashserver_url.as_ref(), Database::CashServer),
        collect::probe(cfg.bonus_url.as_ref(), Database::Bonus)
    );
    let shops = (!opts.shops.is_empty()).then_some(opts.shops.as_slice());
    let mut unreadable: Option<anyhow::Error> = None;
    let facts: Option<CashServerFacts> = match &cash {
        None => None,
        Some(client) => {
            if let Some(shops) = shops {
                let unknown = collect::unknown_shops(client, shops).await?;
                if !unknown.is_empty() {
                    let list: Vec<String> = unknown.iter().map(i32::to_string).collect();
                    return Err(JobError::usage(format!(
                        "--shop {}: no such shop in the cash server DB (table shop)",
                        list.join(", ")
                    )));
                }
            }
            match collect::cashserver(client, now, window_start, shops).await {
                Ok(f) => Some(f),
                Err(e) => {
                    unreadable = Some(e);
                    None
                }
            }
        }
    };
    drop(cash);

    let mut status = Status {
        format: FORMAT_TAG,
        checked_at: now,
        csjobs_version: env!("CARGO_PKG_VERSION"),
        healthy: false,
        problems: Vec::new(),
        connections: vec![cash_link, bonus_link],
        queues: Queues {
            queue: queue_files,
            error: error_files,
            broken: broken_files,
            staged: Vec::new(),
            astu: None,
            dictionary: None,
            directories,
        },
        jobs: Vec::new(),
        errors_3d: None,
        latest_errors: Vec::new(),
        registers: Vec::new(),
        window: opts.since.to_string(),
        window_start,
    };
    if let Some(f) = facts {
        status.queues.staged = f.staged;
        status.queues.astu = Some(f.astu);
        status.queues.dictionary = Some(f.dictionary);
        status.jobs = f.jobs;
        status.errors_3d = Some(f.errors_3d);
        status.latest_errors = f.latest_errors;
        status.registers = f.registers;
    }
    let stale_after = cfg.status.stale_after.as_duration();
    for r in &mut status.registers {
        r.state = judge(r, now, stale_after);
    }
    status.problems = problems(&status, &cfg.status);
    if let Some(e) = &unreadable {
        status.problems.insert(0, format!("the cash server DB cannot be read: {e:#}"));
    }
    status.healthy = status.problems.is_empty();
    if opts.problems {
        status.registers.retain(|r| r.state != super::RegisterState::Ok);
    }

    let bytes = match format {
        StatusFormat::Table => render::table(&status, opts.output.is_none() && colour_ok()).into_bytes(),
        StatusFormat::Json => render::json(&status),
        StatusFormat::Prometheus => prometheus::render(&status).into_bytes(),
        StatusFormat::Csv => render::csv(&status),
        StatusFormat::Xlsx => render::xlsx(&status).context("cannot build the workbook")?,
        StatusFormat::Html => render::html(&status),
    };
    write(opts.output.as_ref(), &bytes)?;
    tracing::info!(
        healthy = status.healthy,
        problems = status.problems.len(),
        registers = status.registers.len(),
        "status checked"
    );

    let cash_state = status.cashserver().state;
    if cash_state == LinkState::NotConfigured {
        return Err(JobError::usage(
            "the cash server DB is not configured: set cashserver.database_url in the config file or \
             CSJOBS_CASHSERVER_DATABASE_URL (the output was written with what needs no database)",
        ));
    }
    if cash_state == LinkState::Unreachable {
        let why = status.cashserver().error.clone().unwrap_or_default();
        return Err(JobError::Failed(anyhow::anyhow!(
            "the cash server DB cannot be used ({why}); the output was written with what needs no database"
        )));
    }
    if let Some(e) = unreadable {
        return Err(JobError::Failed(e.context(
            "the cash server DB cannot be read; the output was written with what needs no database",
        )));
    }
    Ok(Outcome { rejected: 0, problems: status.problems.len() as u64 })
}

/// ANSI colours only on a terminal.
fn colour_ok() -> bool {
    std::io::stdout().is_terminal()
}

fn write(path: Option<&PathBuf>, bytes: &[u8]) -> Result<(), JobError> {
    match path {
        None => output::product(bytes).context("cannot write the status to stdout")?,
        Some(path) => {
            queue::replace_file(path, bytes, &std::process::id().to_string())
                .and_then(|()| {
                    queue::fsync_dir(
                        path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(".".as_ref()),
                    )
                })
                .with_context(|| format!("cannot write the status to {}", path.display()))?;
        }
    }
    Ok(())
}
