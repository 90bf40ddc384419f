//! The `reconcile` job: options → which report → its query → frame → one writer → stdout
//! or `--output FILE` (written to a temporary name and renamed). Read-only: it writes no
//! run log, so a DBA can run it with a read-only role.

use std::{io::IsTerminal, path::PathBuf};

use anyhow::Context;
use chrono::NaiveDate;
use tokio_postgres::{types::ToSql, Client};

use super::{
    day_frame, dept_frame, shift_frame, time_text,
    write::{self, OutputFormat},
    DayRows, DeptRows, Report, ReportKind, ShiftRows, Sums,
};
use crate::core::prelude::*;

/// The options of `csjobs reconcile` (its `--help` is these doc comments). At most one
/// subject is a clap group; "none" is refused by [`subject`] with the list of the three.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(group(clap::ArgGroup::new("subject").args(["cash", "shop", "departments"]).multiple(false)))]
pub struct ReconcileOptions {
    /// Per shift of this cash register (cashcode)
    #[arg(long, value_name = "N")]
    pub cash: Option<i32>,
    /// Per day of this shop (shopcode)
    #[arg(long, value_name = "N")]
    pub shop: Option<i32>,
    /// Per department (отдел) of the shift given by --shift
    #[arg(long, requires = "shift")]
    pub departments: bool,
    /// The shift of the department report (workshiftid)
    #[arg(long, value_name = "WORKSHIFTID", requires = "departments")]
    pub shift: Option<i64>,
    /// First day (YYYY-MM-DD), included
    #[arg(long, value_name = "DATE")]
    pub from: Option<NaiveDate>,
    /// Last day (YYYY-MM-DD), included
    #[arg(long, value_name = "DATE")]
    pub to: Option<NaiveDate>,
    /// Output format [default: from the --output extension, else table on a terminal, csv
    /// otherwise]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<OutputFormat>,
    /// Write the report to this file (written whole, then renamed into place) [default:
    /// stdout; xlsx needs a file]
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// What to report, once the options are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject {
    Cash(i32),
    Shop(i32),
    Shift(i64),
}

fn subject(o: &ReconcileOptions) -> Result<Subject, JobError> {
    let s = match (o.cash, o.shop, o.departments, o.shift) {
        (Some(c), None, false, None) => Subject::Cash(c),
        (None, Some(s), false, None) => Subject::Shop(s),
        (None, None, true, Some(id)) => Subject::Shift(id),
        (None, None, true, None) => {
            return Err(JobError::usage("reconcile --departments needs --shift WORKSHIFTID"))
        }
        _ => {
            return Err(JobError::usage(
                "reconcile needs exactly one of: --cash N (per shift), --shop N (per day), \
                 --departments --shift WORKSHIFTID (per department)",
            ))
        }
    };
    if let (Some(from), Some(to)) = (o.from, o.to) {
        if to < from {
            return Err(JobError::usage(format!("--to {to} is before --from {from}")));
        }
    }
    if matches!(s, Subject::Shift(_)) && (o.from.is_some() || o.to.is_some()) {
        return Err(JobError::usage("--from/--to do not apply to the department report of one shift"));
    }
    Ok(s)
}

/// `--format`, else the `--output` file's extension, else `table` on a terminal and `csv`
/// otherwise.
fn output_format(o: &ReconcileOptions) -> Result<OutputFormat, JobError> {
    let by_extension =
        o.output.as_deref().and_then(|p| p.extension()).and_then(|e| e.to_str()).and_then(|e| {
            match e.to_ascii_lowercase().as_str() {
                "xlsx" => Some(OutputFormat::Xlsx),
                "csv" => Some(OutputFormat::Csv),
                "json" => Some(OutputFormat::Json),
                _ => None,
            }
        });
    let f = o.format.or(by_extension).unwrap_or(if o.output.is_none() && std::io::stdout().is_terminal() {
        OutputFormat::Table
    } else {
        OutputFormat::Csv
    });
    if f == OutputFormat::Xlsx && o.output.is_none() {
        return Err(JobError::usage("--format xlsx needs --output FILE"));
    }
    Ok(f)
}

/// Runs `csjobs reconcile`.
pub async fn run(cfg: &Config, opts: &ReconcileOptions) -> Result<Outcome, JobError> {
    let subject = subject(opts)?;
    let format = output_format(opts)?;
    let url = cfg.cashserver_url()?;
    let client = db::connect(url, Database::CashServer, "csjobs reconcile").await?;
    check_subject(&client, subject).await?;
    let report = build(&client, subject, opts.from, opts.to).await?;
    let bytes = match format {
        OutputFormat::Table => write::table(&report).map(String::into_bytes).map_err(anyhow::Error::new),
        OutputFormat::Csv => {
            let mut b = Vec::new();
            write::csv(&report, &mut b).map(|()| b).map_err(anyhow::Error::new)
        }
        OutputFormat::Json => {
            let mut b = Vec::new();
            write::json(&report, &mut b).map(|()| b).map_err(anyhow::Error::new)
        }
        OutputFormat::Xlsx => write::xlsx(&report).map_err(anyhow::Error::new),
    }
    .context("cannot write the report")?;
    output::product_to(opts.output.as_deref(), &bytes).with_context(|| match &opts.output {
        Some(path) => format!("cannot write the report to {}", path.display()),
        None => "cannot write the report to stdout".into(),
    })?;
    if let Some(path) = &opts.output {
        tracing::info!(file = %path.display(), rows = report.frame.height(), "report written");
    }
    Ok(Outcome::default())
}

/// An unknown cash, shop or shift is a mistyped option (exit 2), not an empty report.
async fn check_subject(client: &Client, s: Subject) -> Result<(), JobError> {
    let (sql, what, id): (&str, &str, &(dyn ToSql + Sync)) = match &s {
        Subject::Cash(c) => ("select 1 from cash where cashcode = $1", "cash (table cash)", c),
        Subject::Shop(n) => ("select 1 from shop where shopcode = $1", "shop (table shop)", n),
        Subject::Shift(id) => ("select 1 from workshift where workshiftid = $1", "shift (workshiftid)", id),
    };
    let found = client.query_opt(sql, &[id]).await.context("cannot read the cash server DB")?;
    if found.is_none() {
        let n = match s {
            Subject::Cash(c) => c.to_string(),
            Subject::Shop(n) => n.to_string(),
            Subject::Shift(id) => id.to_string(),
        };
        return Err(JobError::usage(format!("there is no {what} {n} in the cash server DB")));
    }
    Ok(())
}

fn period(from: Option<NaiveDate>, to: Option<NaiveDate>) -> String {
    match (from, to) {
        (None, None) => "all dates".into(),
        (f, t) => format!(
            "{} … {}",
            f.map_or("the beginning".into(), |d| d.to_string()),
            t.map_or("now".into(), |d| d.to_string())
        ),
    }
}

fn sums(rows: &[tokio_postgres::Row], first: usize) -> Sums {
    let col = |i: usize| rows.iter().map(|r| r.get::<_, i64>(first + i)).collect();
    Sums {
        sales_cash: col(0),
        sales_noncash: col(1),
        returns_cash: col(2),
        returns_noncash: col(3),
        cash_in: col(4),
        cash_out: col(5),
    }
}

/// Runs the report's query and builds its frame.
async fn build(
    client: &Client,
    s: Subject,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Report, JobError> {
    let (kind, params): (ReportKind, Vec<&(dyn ToSql + Sync)>) = match &s {
        Subject::Cash(c) => (ReportKind::PerShift, vec![c, &from, &to]),
        Subject::Shop(n) => (ReportKind::PerShopDay, vec![n, &from, &to]),
        Subject::Shift(id) => (ReportKind::PerDepartment, vec![id]),
    };
    let rows = client.query(&kind.sql(), &params).await.context("cannot read the sales (cash server DB)")?;
    let frame = match kind {
        ReportKind::PerShift => shift_frame(ShiftRows {
            workshiftid: rows.iter().map(|r| r.get(0)).collect(),
            shift: rows.iter().map(|r| r.get::<_, i32>(1) as i64).collect(),
            opened: rows.iter().map(|r| time_text(r.get(2))).collect(),
            closed: rows.iter().map(|r| time_text(r.get(3))).collect(),
            checks: rows.iter().map(|r| r.get(4)).collect(),
            sums: sums(&rows, 5),
            exported: rows.iter().map(|r| r.get(11)).collect(),
        }),
        ReportKind::PerShopDay => day_frame(DayRows {
            date: rows.iter().map(|r| r.get::<_, NaiveDate>(0).format("%Y-%m-%d").to_string()).collect(),
            documents: rows.iter().map(|r| r.get(1)).collect(),
            sums: sums(&rows, 2),
        }),
        ReportKind::PerDepartment => dept_frame(DeptRows {
            dept: rows.iter().map(|r| r.get::<_, i32>(0) as i64).collect(),
            quantity: rows.iter().map(|r| r.get(1)).collect(),
            sales: rows.iter().map(|r| r.get(2)).collect(),
            returns: rows.iter().map(|r| r.get(3)).collect(),
        }),
    }
    .context("cannot build the report")?;
    let title = match s {
        Subject::Cash(c) => format!("reconcile per shift: cash {c}, {}", period(from, to)),
        Subject::Shop(n) => format!("reconcile per day: shop {n}, {}", period(from, to)),
        Subject::Shift(id) => format!("reconcile per department: workshiftid {id}"),
    };
    Ok(Report { kind, title, frame })
}
