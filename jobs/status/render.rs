//! The formats of `status` other than Prometheus: `table` (for a person at a terminal: every
//! section, problems first, states coloured on a terminal only), `json` (`csjobs-status/1`),
//! and the register checklist as `csv`, `xlsx` and `html` (columns and order fixed by
//! shared/spec/monitoring.md).

use std::fmt::Write;

use rust_xlsxwriter::{Color, ExcelDateTime, Format, FormatBorder, Workbook, XlsxError};

use crate::{
    core::{csv, table},
    monitoring::{
        age_text, html,
        sections::{self, checklist_row, or_dash, CHECKLIST},
        time_text, Moment, RegisterState, Status,
    },
};

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    Table,
    Json,
    Prometheus,
    Csv,
    Xlsx,
    Html,
}

impl StatusFormat {
    /// The format a file name implies (`--output x.prom` without `--format`).
    pub fn from_extension(ext: &str) -> Option<StatusFormat> {
        Some(match ext.to_ascii_lowercase().as_str() {
            "prom" => StatusFormat::Prometheus,
            "json" => StatusFormat::Json,
            "csv" => StatusFormat::Csv,
            "xlsx" => StatusFormat::Xlsx,
            "html" | "htm" => StatusFormat::Html,
            "txt" => StatusFormat::Table,
            _ => return None,
        })
    }
}

// ---- json -------------------------------------------------------------------------------

pub fn json(s: &Status) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(s).expect("the status model serialises");
    v.push(b'\n');
    v
}

// ---- csv --------------------------------------------------------------------------------

/// The checklist as CSV (core::csv: RFC 4180 quoting, one record per line).
pub fn csv(s: &Status) -> Result<Vec<u8>, csv::CsvError> {
    csv::document(csv::Separator::Comma, &CHECKLIST, s.registers.iter().map(checklist_row))
}

// ---- xlsx -------------------------------------------------------------------------------

fn state_fill(state: RegisterState) -> Option<Color> {
    match state {
        RegisterState::Ok => None,
        RegisterState::Stale => Some(Color::RGB(0xFFEB9C)),
        RegisterState::Errors => Some(Color::RGB(0xFFC7CE)),
        RegisterState::Duplicate => Some(Color::RGB(0xFF7C80)),
        RegisterState::Never => Some(Color::RGB(0xD9D9D9)),
    }
}

fn excel_time(m: &Moment) -> Result<ExcelDateTime, XlsxError> {
    use chrono::{Datelike, Timelike};
    // The wall clock in now's offset, as every other format shows it.
    ExcelDateTime::from_ymd(m.year() as u16, m.month() as u8, m.day() as u8)?.and_hms(
        m.hour() as u16,
        m.minute() as u8,
        m.second(),
    )
}

/// The checklist as a workbook: a bold, frozen header with an autofilter, times as real date
/// cells (`yyyy-mm-dd hh:mm:ss`, in the offset of "now"), rows of a register that is not ok
/// filled by its state.
pub fn xlsx(s: &Status) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("registers")?;
    let bold = Format::new().set_bold().set_border_bottom(FormatBorder::Thin);
    for (i, name) in CHECKLIST.iter().enumerate() {
        ws.write_string_with_format(0, i as u16, *name, &bold)?;
    }
    for (i, r) in s.registers.iter().enumerate() {
        let row = i as u32 + 1;
        let base = match state_fill(r.state) {
            Some(c) => Format::new().set_background_color(c),
            None => Format::new(),
        };
        let time_fmt = base.clone().set_num_format("yyyy-mm-dd hh:mm:ss");
        let text = checklist_row(r);
        for (col, value) in text.iter().enumerate() {
            let col16 = col as u16;
            match CHECKLIST[col] {
                "shop" | "cash" => {
                    let n = if col == 2 { r.shop } else { r.cash };
                    ws.write_number_with_format(row, col16, f64::from(n), &base)?;
                }
                "last_contact" | "last_sale" => {
                    let m = if col == 6 { &r.last_contact } else { &r.last_sale };
                    match m {
                        Some(m) => ws.write_datetime_with_format(row, col16, excel_time(m)?, &time_fmt)?,
                        None => ws.write_blank(row, col16, &base)?,
                    };
                }
                _ => {
                    ws.write_string_with_format(row, col16, value, &base)?;
                }
            }
        }
    }
    ws.set_freeze_panes(1, 0)?;
    ws.autofilter(0, 0, s.registers.len() as u32, CHECKLIST.len() as u16 - 1)?;
    ws.autofit();
    // Date cells autofit to the serial number's width; give them room for the date.
    ws.set_column_width(6, 20)?;
    ws.set_column_width(8, 20)?;
    wb.save_to_buffer()
}

// ---- html -------------------------------------------------------------------------------

const PAGE_CSS: &str = "\
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; }
th { background: #f0f0f0; position: sticky; top: 0; }
td.num { text-align: right; }
td.time { white-space: nowrap; }
.summary span { margin-right: 1.2em; }
";

/// The checklist as one self-contained page: no script, style sheet, font or image from
/// anywhere; rows coloured by state; a count per state above the table.
pub fn html(s: &Status) -> Vec<u8> {
    let count = |st: RegisterState| s.registers.iter().filter(|r| r.state == st).count();
    let title = format!("csjobs status — registers — {}", time_text(&s.checked_at));
    let body = maud::html! {
        p.summary {
            (if s.healthy { "healthy" } else { "UNHEALTHY" }) " · window " (s.window)
            " (since " (time_text(&s.window_start)) ")"
        }
        p.summary {
            @for st in RegisterState::ALL {
                span class=(format!("count-{}", st.name())) { (st.name()) ": " (count(st)) }
            }
        }
        (html::register_table(&s.registers))
    };
    html::page(&title, &[PAGE_CSS, html::STATE_CSS], body).into_bytes()
}

// ---- table ------------------------------------------------------------------------------

fn ansi(state: RegisterState) -> Option<&'static str> {
    match state {
        RegisterState::Ok => None,
        RegisterState::Stale => Some("\x1b[33m"),
        RegisterState::Errors => Some("\x1b[31m"),
        RegisterState::Duplicate => Some("\x1b[1;97;41m"),
        RegisterState::Never => Some("\x1b[2m"),
    }
}

/// Everything, for a person: the verdict and the problems first, then links, queues, jobs,
/// error messages and the registers (problems first). `colour`: ANSI colours for a terminal.
pub fn table(s: &Status, colour: bool) -> String {
    let now = s.checked_at;
    let mut out = String::new();
    let verdict = if s.healthy {
        "healthy".to_string()
    } else {
        format!("UNHEALTHY: {} problem{}", s.problems.len(), if s.problems.len() == 1 { "" } else { "s" })
    };
    let _ = writeln!(out, "csjobs status {} · checked {} · {verdict}", s.csjobs_version, time_text(&now));
    if !s.problems.is_empty() {
        out.push_str("\nPROBLEMS\n");
        for p in &s.problems {
            let _ = writeln!(out, "  - {p}");
        }
    }

    for section in [sections::connections(s), sections::queues(s), sections::jobs(s)] {
        let _ = writeln!(out, "\n{}", section.title.to_uppercase());
        let headers: Vec<String> = section.headers.iter().map(|h| h.to_uppercase()).collect();
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        out.push_str(&table::render(2, &headers, &section.rows, &[], |i| {
            (colour && section.bad[i]).then_some("\x1b[31m")
        }));
        for note in &section.notes {
            let _ = writeln!(out, "  ! {note}");
        }
    }

    match s.errors_3d {
        Some(n) => {
            let _ = writeln!(out, "\nERROR MESSAGES (last 3 days): {n}");
            for e in &s.latest_errors {
                let subject = e.subject.as_deref().map(|x| format!(" [{x}]")).unwrap_or_default();
                let _ = writeln!(out, "  {} {}{subject}: {}", time_text(&e.created_at), e.job, e.message);
            }
        }
        None => out.push_str("\nERROR MESSAGES: the cash server DB could not be read\n"),
    }

    let mut counts = String::new();
    for st in RegisterState::ALL {
        let n = s.registers.iter().filter(|r| r.state == st).count();
        if n > 0 {
            let _ = write!(counts, ", {n} {}", st.name());
        }
    }
    let _ = writeln!(
        out,
        "\nREGISTERS (window {} since {}): {}{counts}",
        s.window,
        time_text(&s.window_start),
        s.registers.len()
    );
    let regs = s.registers_problems_first();
    let rows: Vec<Vec<String>> = regs
        .iter()
        .map(|r| {
            vec![
                r.state.name().to_uppercase(),
                r.shop.to_string(),
                r.cash.to_string(),
                r.cash_name.clone(),
                [r.city.as_deref(), r.address.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(", "),
                r.last_contact.map_or("-".into(), |t| format!("{} ago", age_text((now - t).num_seconds()))),
                r.last_sale.as_ref().map_or("-".into(), time_text),
                if r.senders.is_empty() {
                    or_dash(r.host.clone().or(r.ip.clone()))
                } else {
                    r.senders.join(" + ")
                },
                format!("{}/{}/{}", r.files, r.errors, r.broken),
                r.checks_today.to_string(),
                sections::money(r.revenue_today),
            ]
        })
        .collect();
    out.push_str(&table::render(
        2,
        &[
            "STATE",
            "SHOP",
            "CASH",
            "NAME",
            "PLACE",
            "LAST CONTACT",
            "LAST SALE",
            "SENDER",
            "FILES/ERR/BROKEN",
            "CHECKS",
            "REVENUE",
        ],
        &rows,
        &[1, 2, 9, 10],
        |i| if colour { ansi(regs[i].state) } else { None },
    ));
    if !s.shops.is_empty() {
        let _ = writeln!(out, "\nSHOPS (today up to {})", now.format("%H:%M"));
        let rows: Vec<Vec<String>> = s
            .shops
            .iter()
            .map(|sh| {
                vec![
                    sh.shop.to_string(),
                    sh.name.clone(),
                    [sh.city.as_deref(), sh.address.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(", "),
                    sh.hours_text(),
                    if sh.open_now { "open" } else { "closed" }.to_string(),
                    sh.registers.to_string(),
                    sh.checks_today.to_string(),
                    sections::money(sh.revenue_today),
                ]
            })
            .collect();
        out.push_str(&table::render(
            2,
            &["SHOP", "NAME", "PLACE", "HOURS", "NOW", "REGISTERS", "CHECKS", "REVENUE"],
            &rows,
            &[0, 5, 6, 7],
            |_| None,
        ));
    }
    out
}
