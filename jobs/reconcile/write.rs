//! The writers of a reconciliation report, one per format: `table` (aligned, for a terminal),
//! `csv` (`core::csv`, the one CSV writer), `json` (polars' writer over the frame with money
//! and quantities turned into fixed-point text), `xlsx` (rust_xlsxwriter, money as numbers
//! with a 2-digit format).
//! Every writer shows money with exactly 2 fraction digits and quantities with 3.

use std::{borrow::Cow, io::Write};

use polars::prelude::*;
use rust_xlsxwriter::{Color, Format, Workbook, XlsxError};

use super::{Col, Kind, Report, ReportKind};
use crate::core::csv::{self as core_csv, CsvError, Separator};

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
    Xlsx,
}

/// Kopecks as money text: `123450` → `1234.50`, `-5` → `-0.05`.
pub fn money(kopecks: i64) -> String {
    fixed(kopecks, 100, 2)
}

/// Thousandths as quantity text: `1500` → `1.500`.
pub fn quantity(thousandths: i64) -> String {
    fixed(thousandths, 1000, 3)
}

fn fixed(v: i64, unit: u64, digits: usize) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    format!("{sign}{}.{:0digits$}", a / unit, a % unit)
}

/// One cell, as the writers see it.
enum Cell<'a> {
    Int(i64),
    Money(i64),
    Quantity(i64),
    Text(&'a str),
    Flag(bool),
    Null,
}

fn cell<'a>(frame: &'a DataFrame, c: &Col, row: usize) -> PolarsResult<Cell<'a>> {
    let column = frame.column(c.name)?;
    Ok(match c.kind {
        Kind::Int | Kind::Money | Kind::Quantity => match column.i64()?.get(row) {
            None => Cell::Null,
            Some(v) if c.kind == Kind::Money => Cell::Money(v),
            Some(v) if c.kind == Kind::Quantity => Cell::Quantity(v),
            Some(v) => Cell::Int(v),
        },
        Kind::Text => column.str()?.get(row).map_or(Cell::Null, Cell::Text),
        Kind::Flag => column.bool()?.get(row).map_or(Cell::Null, Cell::Flag),
    })
}

/// The frame as JSON shows it: money and quantities as fixed-point text, the rest as it is.
fn rendered(report: &Report) -> PolarsResult<DataFrame> {
    let mut cols = Vec::new();
    for c in report.kind.columns() {
        let column = report.frame.column(c.name)?;
        cols.push(match c.kind {
            Kind::Money | Kind::Quantity => {
                let text: Vec<Option<String>> = column.i64()?.iter().map(|v| v.map(|v| show(c, v))).collect();
                Column::new(c.name.into(), text)
            }
            _ => column.clone(),
        });
    }
    DataFrame::new_infer_height(cols)
}

/// Why a CSV report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CsvReportError {
    #[error(transparent)]
    Frame(#[from] PolarsError),
    #[error(transparent)]
    Csv(#[from] CsvError),
}

/// CSV (`core::csv`) with a header line, `,`-separated, `\n` line ends; money and
/// quantities as fixed-point text, `exported` as true/false, null as an empty field.
pub fn csv(report: &Report, out: impl Write) -> Result<(), CsvReportError> {
    let cols = report.kind.columns();
    let mut w = core_csv::Writer::new(out, Separator::Comma);
    w.record(cols.iter().map(|c| c.name))?;
    for r in 0..report.frame.height() {
        let mut line = Vec::with_capacity(cols.len());
        for c in cols {
            line.push(match cell(&report.frame, c, r)? {
                Cell::Int(v) | Cell::Money(v) | Cell::Quantity(v) => Cow::Owned(show(c, v)),
                Cell::Text(t) => Cow::Borrowed(t),
                Cell::Flag(b) => Cow::Borrowed(if b { "true" } else { "false" }),
                Cell::Null => Cow::Borrowed(""),
            });
        }
        w.record(line.iter().map(|f| f.as_bytes()))?;
    }
    w.finish()?;
    Ok(())
}

/// JSON: an array of objects, keys in column order; money as strings.
pub fn json(report: &Report, out: &mut impl Write) -> PolarsResult<()> {
    let mut df = rendered(report)?;
    if df.height() == 0 {
        // polars writes nothing for an empty frame; an empty report is an empty array.
        return out.write_all(b"[]\n").map_err(PolarsError::from);
    }
    JsonWriter::new(&mut *out).with_json_format(JsonFormat::Json).finish(&mut df)?;
    out.write_all(b"\n").map_err(PolarsError::from)
}

/// Columns summed in the table's total line: money and counts. Not quantities: one
/// department sells kilograms, the next one pieces, and their sum means nothing.
fn summed(c: &Col) -> bool {
    c.kind == Kind::Money || matches!(c.name, "checks" | "documents")
}

/// The aligned table for a terminal: title, header, rows, a total line, and for the
/// per-shift report the shifts not exported to ASTU, marked and listed for re-export.
pub fn table(report: &Report) -> PolarsResult<String> {
    let cols = report.kind.columns();
    let frame = &report.frame;
    let mut rows: Vec<Vec<String>> = vec![cols.iter().map(|c| c.name.to_string()).collect()];
    let mut totals = vec![0i64; cols.len()];
    let mut not_exported = Vec::new();
    for r in 0..frame.height() {
        let mut line = Vec::with_capacity(cols.len());
        for (i, c) in cols.iter().enumerate() {
            let text = match cell(frame, c, r)? {
                Cell::Int(v) | Cell::Money(v) | Cell::Quantity(v) if summed(c) => {
                    totals[i] += v;
                    show(c, v)
                }
                Cell::Int(v) => v.to_string(),
                Cell::Money(v) => money(v),
                Cell::Quantity(v) => quantity(v),
                Cell::Text(t) => t.to_string(),
                Cell::Flag(true) => "yes".into(),
                Cell::Flag(false) => {
                    if let Ok(Cell::Int(id)) = cell(frame, &cols[0], r) {
                        not_exported.push(id);
                    }
                    "NO *".into()
                }
                Cell::Null => String::new(),
            };
            line.push(text);
        }
        rows.push(line);
    }
    if frame.height() > 1 {
        let mut line: Vec<String> = cols
            .iter()
            .zip(&totals)
            .map(|(c, t)| if summed(c) { show(c, *t) } else { String::new() })
            .collect();
        line[0] = "total".into();
        rows.push(line);
    }
    let right: Vec<usize> = cols
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c.kind, Kind::Int | Kind::Money | Kind::Quantity))
        .map(|(i, _)| i)
        .collect();
    let headers: Vec<&str> = rows[0].iter().map(String::as_str).collect();
    let mut s = format!("{}\n", report.title);
    s.push_str(&crate::core::table::render(0, &headers, &rows[1..], &right, |_| None));
    if frame.height() == 0 {
        s.push_str("(no rows)\n");
    }
    if report.kind == ReportKind::PerShift && !not_exported.is_empty() {
        let ids: Vec<String> = not_exported.iter().map(|id| format!("--shift {id}")).collect();
        s.push_str(&format!(
            "* {} shifts not exported to ASTU; to export them: csjobs export-astu {}\n",
            not_exported.len(),
            ids.join(" ")
        ));
    }
    Ok(s)
}

fn show(c: &Col, v: i64) -> String {
    match c.kind {
        Kind::Money => money(v),
        Kind::Quantity => quantity(v),
        _ => v.to_string(),
    }
}

/// The report as an .xlsx workbook of one sheet: a bold header row (frozen), money as
/// numbers formatted `#,##0.00`, quantities `#,##0.000`, times and dates as text in the
/// report's format, `exported` as TRUE/FALSE (FALSE highlighted).
pub fn xlsx(report: &Report) -> Result<Vec<u8>, XlsxError> {
    let cols = report.kind.columns();
    let frame = &report.frame;
    let bold = Format::new().set_bold();
    let money_fmt = Format::new().set_num_format("#,##0.00");
    let quantity_fmt = Format::new().set_num_format("#,##0.000");
    let flag_off = Format::new().set_background_color(Color::RGB(0xFFC7CE));
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name(match report.kind {
        ReportKind::PerShift => "per shift",
        ReportKind::PerShopDay => "per shop and day",
        ReportKind::PerDepartment => "per department",
    })?;
    for (i, c) in cols.iter().enumerate() {
        ws.write_string_with_format(0, i as u16, c.name, &bold)?;
    }
    let err = |e: PolarsError| XlsxError::ParameterError(e.to_string());
    for r in 0..frame.height() {
        let row = r as u32 + 1;
        for (i, c) in cols.iter().enumerate() {
            let col = i as u16;
            match cell(frame, c, r).map_err(err)? {
                Cell::Int(v) => ws.write_number(row, col, v as f64)?,
                // Kopecks / 100 is the double nearest the exact amount: Excel shows it exactly.
                Cell::Money(v) => ws.write_number_with_format(row, col, v as f64 / 100.0, &money_fmt)?,
                Cell::Quantity(v) => {
                    ws.write_number_with_format(row, col, v as f64 / 1000.0, &quantity_fmt)?
                }
                Cell::Text(t) => ws.write_string(row, col, t)?,
                Cell::Flag(true) => ws.write_boolean(row, col, true)?,
                Cell::Flag(false) => ws.write_boolean_with_format(row, col, false, &flag_off)?,
                Cell::Null => ws,
            };
        }
    }
    ws.set_freeze_panes(1, 0)?;
    ws.autofit();
    wb.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_text_is_exact() {
        assert_eq!(money(123_450), "1234.50");
        assert_eq!(money(0), "0.00");
        assert_eq!(money(-5), "-0.05");
        assert_eq!(money(-100), "-1.00");
        assert_eq!(money(i64::MIN), "-92233720368547758.08");
        assert_eq!(quantity(1_500), "1.500");
        assert_eq!(quantity(-1), "-0.001");
    }
}
