//! The formats of `status` other than Prometheus: `table` (for a person at a terminal: every
//! section, problems first, states coloured on a terminal only), `json` (`csjobs-status/1`),
//! and the register checklist as `csv`, `xlsx` and `html` (columns and order fixed by
//! shared/spec/monitoring.md).

use std::fmt::Write;

use rust_xlsxwriter::{Color, ExcelDateTime, Format, FormatBorder, Workbook, XlsxError};

use super::{age_text, time_text, Moment, Register, RegisterState, Status};

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

/// The checklist's columns, in order (monitoring.md).
pub const CHECKLIST: [&str; 9] =
    ["city", "address", "shop", "cash", "cash_name", "state", "last_contact", "ip", "last_sale"];

/// One register's checklist row as text: times RFC 3339, `ip` `-` for a register never heard
/// from, empty for what is unknown.
pub fn checklist_row(r: &Register) -> [String; 9] {
    let t = |m: &Option<Moment>| m.as_ref().map(time_text).unwrap_or_default();
    [
        r.city.clone().unwrap_or_default(),
        r.address.clone().unwrap_or_default(),
        r.shop.to_string(),
        r.cash.to_string(),
        r.cash_name.clone(),
        r.state.name().to_string(),
        t(&r.last_contact),
        if r.last_contact.is_none() { "-".into() } else { r.ip.clone().unwrap_or_default() },
        t(&r.last_sale),
    ]
}

// ---- json -------------------------------------------------------------------------------

pub fn json(s: &Status) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(s).expect("the status model serialises");
    v.push(b'\n');
    v
}

// ---- csv --------------------------------------------------------------------------------

/// A CSV field, quoted when it holds a separator, a quote or a line break (RFC 4180).
fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_string()
    }
}

pub fn csv(s: &Status) -> Vec<u8> {
    let mut out = String::new();
    out.push_str(&CHECKLIST.join(","));
    out.push('\n');
    for r in &s.registers {
        let row: Vec<String> = checklist_row(r).iter().map(|f| csv_field(f)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out.into_bytes()
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

pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The colours of the states, for pages (`status --format html`, later `report`).
pub const STATE_CSS: &str = "\
tr.state-ok td.state { color: #1a7f37; }
tr.state-stale { background: #fff4c2; }
tr.state-errors { background: #ffd7d5; }
tr.state-duplicate { background: #ff9a9a; font-weight: bold; }
tr.state-never { background: #e6e6e6; color: #555; }
";

/// The register checklist as an HTML table, each row of class `state-<state>` (coloured by
/// [`STATE_CSS`]), in the order given.
pub fn register_table_html<'a>(registers: impl IntoIterator<Item = &'a Register>) -> String {
    let mut out = String::from("<table class=\"registers\">\n<thead><tr>");
    for c in CHECKLIST {
        let _ = write!(out, "<th>{c}</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in registers {
        let _ = write!(out, "<tr class=\"state-{}\" data-cash=\"{}\">", r.state.name(), r.cash);
        for (name, value) in CHECKLIST.iter().zip(checklist_row(r)) {
            let class = match *name {
                "shop" | "cash" => " class=\"num\"",
                "state" => " class=\"state\"",
                "last_contact" | "last_sale" => " class=\"time\"",
                _ => "",
            };
            let _ = write!(out, "<td{class}>{}</td>", html_escape(&value));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// The checklist as one self-contained page: no script, style sheet, font or image from
/// anywhere; rows coloured by state; a count per state above the table.
pub fn html(s: &Status) -> Vec<u8> {
    let mut counts = [0usize; 5];
    for r in &s.registers {
        counts[RegisterState::ALL.iter().position(|&x| x == r.state).expect("one of five")] += 1;
    }
    let mut out = String::new();
    let title = format!("csjobs status — registers — {}", time_text(&s.checked_at));
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n\
         <style>\nbody {{ font-family: sans-serif; margin: 1.5em; }}\n\
         table {{ border-collapse: collapse; }}\n\
         th, td {{ border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; }}\n\
         th {{ background: #f0f0f0; position: sticky; top: 0; }}\n\
         td.num {{ text-align: right; }}\ntd.time {{ white-space: nowrap; }}\n.summary span {{ margin-right: 1.2em; }}\n{STATE_CSS}</style>\n\
         </head>\n<body>\n<h1>{}</h1>\n",
        html_escape(&title),
        html_escape(&title)
    );
    let _ = write!(
        out,
        "<p class=\"summary\">{} · window {} (since {})</p>\n<p class=\"summary\">",
        if s.healthy { "healthy" } else { "UNHEALTHY" },
        html_escape(&s.window),
        html_escape(&time_text(&s.window_start))
    );
    for (st, n) in RegisterState::ALL.iter().zip(counts) {
        let _ = write!(out, "<span class=\"count-{0}\">{0}: {n}</span>", st.name());
    }
    out.push_str("</p>\n");
    out.push_str(&register_table_html(&s.registers));
    out.push_str("</body>\n</html>\n");
    out.into_bytes()
}

// ---- table ------------------------------------------------------------------------------

/// Columns padded to the widest cell (by characters: Cyrillic names align too). Headers are
/// upper case; `colour` paints a whole row after padding, so escapes never break alignment.
fn aligned(headers: &[&str], rows: &[Vec<String>], colour: impl Fn(usize) -> Option<&'static str>) -> String {
    let mut width: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::from("  ");
        for (i, c) in cells.enumerate() {
            s.push_str(c);
            if i + 1 < width.len() {
                s.push_str(&" ".repeat(width[i] - c.chars().count() + 2));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(&mut headers.iter().copied());
    out.push('\n');
    for (i, r) in rows.iter().enumerate() {
        let text = line(&mut r.iter().map(String::as_str));
        match colour(i) {
            Some(code) => {
                let _ = writeln!(out, "{code}{text}\x1b[0m");
            }
            None => {
                out.push_str(&text);
                out.push('\n');
            }
        }
    }
    out
}

fn ansi(state: RegisterState) -> Option<&'static str> {
    match state {
        RegisterState::Ok => None,
        RegisterState::Stale => Some("\x1b[33m"),
        RegisterState::Errors => Some("\x1b[31m"),
        RegisterState::Duplicate => Some("\x1b[1;97;41m"),
        RegisterState::Never => Some("\x1b[2m"),
    }
}

fn bytes_text(b: u64) -> String {
    match b {
        0..=1023 => format!("{b} B"),
        1024..=1_048_575 => format!("{:.1} KiB", b as f64 / 1024.0),
        1_048_576..=1_073_741_823 => format!("{:.1} MiB", b as f64 / 1_048_576.0),
        _ => format!("{:.1} GiB", b as f64 / 1_073_741_824.0),
    }
}

fn or_dash(v: Option<String>) -> String {
    v.filter(|s| !s.is_empty()).unwrap_or_else(|| "-".into())
}

// ---- sections shared by the table and the report page --------------------------------

/// One section of the status for people: a title, a table, rows to mark as bad, and notes.
pub struct Section {
    pub title: &'static str,
    pub headers: &'static [&'static str],
    pub rows: Vec<Vec<String>>,
    /// Per row: shown in red (a failed job).
    pub bad: Vec<bool>,
    /// Lines under the table (directories that are missing).
    pub notes: Vec<String>,
}

/// Both database links.
pub fn connections(s: &Status) -> Section {
    let rows: Vec<Vec<String>> = s
        .connections
        .iter()
        .map(|c| {
            vec![
                c.database.to_string(),
                c.state.name().to_string(),
                or_dash(c.server_version.clone()),
                format!("{} (expects {})", c.migration.as_deref().unwrap_or("-"), c.expected_migration),
                c.latency_seconds.map_or("-".into(), |l| format!("{:.1} ms", l * 1000.0)),
                or_dash(c.error.clone()),
            ]
        })
        .collect();
    let bad = s.connections.iter().map(|c| c.state == super::LinkState::Unreachable).collect();
    Section {
        title: "connections",
        headers: &["database", "state", "version", "migration", "round trip", "error"],
        rows,
        bad,
        notes: Vec::new(),
    }
}

/// The file queues, staged rows, ASTU-due shifts and the dictionary directory.
pub fn queues(s: &Status) -> Section {
    let q = &s.queues;
    let mut rows: Vec<Vec<String>> = [&q.queue, &q.error, &q.broken]
        .iter()
        .map(|d| {
            if !d.listed {
                return vec![
                    d.dir.into(),
                    "cannot be listed".into(),
                    "-".into(),
                    "-".into(),
                    d.path.display().to_string(),
                ];
            }
            vec![
                d.dir.into(),
                format!("{} files", d.files),
                bytes_text(d.bytes),
                d.oldest_age_seconds.map_or("-".into(), |a| format!("oldest {}", age_text(a))),
                d.path.display().to_string(),
            ]
        })
        .collect();
    for t in &q.staged {
        rows.push(vec![
            t.table.into(),
            format!("{} rows", t.rows),
            format!("{} refused", t.refused),
            t.oldest_age_seconds.map_or("-".into(), |a| format!("oldest {}", age_text(a))),
            "staged, not yet transferred".into(),
        ]);
    }
    if let Some(a) = &q.astu {
        rows.push(vec![
            "astu".into(),
            format!("{} shifts owed", a.shifts),
            a.oldest_close.as_ref().map_or("-".into(), |t| format!("closed {}", time_text(t))),
            a.oldest_owed_seconds.map_or("-".into(), |x| format!("owed {}", age_text(x))),
            "closed shifts owed an ASTU file".into(),
        ]);
    }
    if let Some(d) = &q.dictionary {
        rows.push(vec![
            "dictionaries".into(),
            format!("{} files", d.files),
            bytes_text(d.bytes),
            d.error.clone().unwrap_or_else(|| "-".into()),
            d.path.as_ref().map_or("(setting not set)".into(), |p| p.display().to_string()),
        ]);
    }
    let notes = q
        .directories
        .iter()
        .filter(|d| d.error.is_some())
        .map(|d| format!("{} {}: {}", d.setting, d.path.display(), d.error.as_deref().unwrap_or("")))
        .collect();
    let bad = vec![false; rows.len()];
    Section { title: "queues", headers: &["queue", "waiting", "size", "age", "where"], rows, bad, notes }
}

/// Each job's last run, last success and unfinished run.
pub fn jobs(s: &Status) -> Section {
    let rows: Vec<Vec<String>> = s
        .jobs
        .iter()
        .map(|j| {
            let last = j.last_run.as_ref();
            vec![
                j.job.into(),
                last.map_or("never ran".into(), |r| time_text(&r.started_at)),
                last.map_or("-".into(), |r| r.outcome.clone()),
                last.and_then(|r| r.exit_code).map_or("-".into(), |c| c.to_string()),
                j.last_success.as_ref().and_then(|r| r.finished_at).map_or("-".into(), |t| time_text(&t)),
                j.unfinished.as_ref().map_or("-".into(), |r| {
                    format!("run {} {} (pid {} on {})", r.run_id, r.outcome, r.pid, r.host)
                }),
            ]
        })
        .collect();
    let bad: Vec<bool> = s.jobs.iter().map(|j| j.last_run.as_ref().is_some_and(|r| r.is_bad())).collect();
    Section {
        title: "jobs",
        headers: &["job", "last run", "outcome", "exit", "last success", "unfinished"],
        rows,
        bad,
        notes: Vec::new(),
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

    for section in [connections(s), queues(s), jobs(s)] {
        let _ = writeln!(out, "\n{}", section.title.to_uppercase());
        let headers: Vec<String> = section.headers.iter().map(|h| h.to_uppercase()).collect();
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        out.push_str(&aligned(&headers, &section.rows, |i| (colour && section.bad[i]).then_some("\x1b[31m")));
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
            ]
        })
        .collect();
    out.push_str(&aligned(
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
        ],
        &rows,
        |i| if colour { ansi(regs[i].state) } else { None },
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("ул. Баумана, 1"), "\"ул. Баумана, 1\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("Казань"), "Казань");
    }

    #[test]
    fn html_text_is_escaped() {
        assert_eq!(html_escape("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
    }

    #[test]
    fn aligned_pads_by_characters_not_bytes() {
        let t = aligned(
            &["A", "B"],
            &[vec!["Касса".into(), "x".into()], vec!["ab".into(), "y".into()]],
            |_| None,
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[1].find('x').map(|_| lines[1].chars().position(|c| c == 'x')), Some(Some(9)));
        assert_eq!(lines[2].chars().position(|c| c == 'y'), Some(9));
    }
}
