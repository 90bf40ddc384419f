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
    prometheus,
    render::{self, StatusFormat},
};
use crate::{
    core::{config::Config, duration::Span, output, JobError, Outcome},
    monitoring::{facts, RegisterState},
};

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
    let mut g = facts::gather(cfg, &opts.shops, opts.since).await?;
    let status = &mut g.status;
    if opts.problems {
        status.registers.retain(|r| r.state != RegisterState::Ok);
    }

    let bytes = match format {
        StatusFormat::Table => render::table(status, opts.output.is_none() && colour_ok()).into_bytes(),
        StatusFormat::Json => render::json(status),
        StatusFormat::Prometheus => prometheus::render(status).into_bytes(),
        StatusFormat::Csv => render::csv(status).context("cannot write the checklist as CSV")?,
        StatusFormat::Xlsx => render::xlsx(status).context("cannot build the workbook")?,
        StatusFormat::Html => render::html(status),
    };
    output::product_to(opts.output.as_deref(), &bytes).with_context(|| match &opts.output {
        Some(path) => format!("cannot write the status to {}", path.display()),
        None => "cannot write the status to stdout".into(),
    })?;
    tracing::info!(
        healthy = status.healthy,
        problems = status.problems.len(),
        registers = status.registers.len(),
        "status checked"
    );

    facts::outcome(g, "the output")
}

/// ANSI colours only on a terminal.
fn colour_ok() -> bool {
    std::io::stdout().is_terminal()
}
