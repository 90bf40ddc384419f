//! The facts as sections for people: a title, a header, rows of text, the rows to mark, and
//! notes. The `status` table and the `report` page show the same sections, each in its way.

use super::{age_text, time_text, LinkState, Moment, Register, Status};

fn bytes_text(b: u64) -> String {
    match b {
        0..=1023 => format!("{b} B"),
        1024..=1_048_575 => format!("{:.1} KiB", b as f64 / 1024.0),
        1_048_576..=1_073_741_823 => format!("{:.1} MiB", b as f64 / 1_048_576.0),
        _ => format!("{:.1} GiB", b as f64 / 1_073_741_824.0),
    }
}

pub fn or_dash(v: Option<String>) -> String {
    v.filter(|s| !s.is_empty()).unwrap_or_else(|| "-".into())
}

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
                match &c.expected_migration {
                    Some(e) => format!("{} (expects {e})", c.migration.as_deref().unwrap_or("-")),
                    None => "-".into(),
                },
                c.latency_seconds.map_or("-".into(), |l| format!("{:.1} ms", l * 1000.0)),
                or_dash(c.error.clone()),
            ]
        })
        .collect();
    let bad = s.connections.iter().map(|c| c.state == LinkState::Unreachable).collect();
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
    for (name, b) in [("broker", &q.broker), ("broker_rejected", &q.broker_rejected)] {
        let Some(b) = b else { continue };
        let count = |n: Option<u64>, what: &str| n.map_or("-".into(), |n| format!("{n} {what}"));
        rows.push(vec![
            name.into(),
            if b.present || b.messages.is_some() { count(b.messages, "messages") } else { "missing".into() },
            count(b.consumers, "consumers"),
            b.error.clone().unwrap_or_else(|| "-".into()),
            format!("queue {}", b.name),
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

/// An amount of money for people: two decimals, thousands separated by a narrow no-break
/// space (1 234 567.89).
pub fn money(d: rust_decimal::Decimal) -> String {
    let s = format!("{:.2}", d.round_dp(2));
    let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |x| ("-", x));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push('\u{202f}');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{frac}")
}
