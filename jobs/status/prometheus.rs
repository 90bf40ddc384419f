//! `status --format prometheus`: the classic Prometheus text format (version 0.0.4) that
//! node_exporter's textfile collector reads — `# HELP` and `# TYPE` before every metric, no
//! timestamps, label values escaped, a final newline. Not OpenMetrics (no `# EOF`, no
//! `# UNIT`). The metric names and labels are fixed by shared/spec/monitoring.md.

use std::fmt::Write;

use rust_decimal::prelude::ToPrimitive;

use crate::monitoring::{LinkState, RegisterState, Status};

/// A label value with `\`, `"` and line feeds escaped, as the text format requires.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A sample value: integers without a fraction, the rest in Go's `%g`-compatible shortest form.
fn value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The metrics being written, one family after the other. Every metric is a gauge.
struct Families {
    out: String,
}

impl Families {
    fn family<'a>(&'a mut self, name: &'a str, help: &'a str) -> Family<'a> {
        Family { out: &mut self.out, name, help, started: false }
    }
}

/// One metric's samples, written together; its `# HELP`/`# TYPE` header comes with the
/// first sample, so a metric with no sample (a database down) leaves no empty family.
struct Family<'a> {
    out: &'a mut String,
    name: &'a str,
    help: &'a str,
    started: bool,
}

impl Family<'_> {
    fn sample(&mut self, labels: &[(&str, &str)], v: f64) -> &mut Self {
        if !self.started {
            let _ = writeln!(self.out, "# HELP {} {}", self.name, self.help);
            let _ = writeln!(self.out, "# TYPE {} gauge", self.name);
            self.started = true;
        }
        self.out.push_str(self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(val));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", value(v));
        self
    }
}

/// The whole textfile. A database that is down gives `csjobs_up{database=…} 0` and none of
/// the metrics that need it; a database that is not configured gives no `csjobs_up` line.
pub fn render(s: &Status) -> String {
    let mut f = Families { out: String::with_capacity(256 + s.registers.len() * 700) };

    let mut up = f.family("csjobs_up", "Whether csjobs can use the database (1) or not (0).");
    for c in s.connections.iter().filter(|c| c.state != LinkState::NotConfigured) {
        up.sample(&[("database", c.database)], if c.state == LinkState::Unreachable { 0.0 } else { 1.0 });
    }
    let mut lat = f.family("csjobs_database_latency_seconds", "Round trip of a query to the database.");
    for c in &s.connections {
        if let Some(l) = c.latency_seconds {
            lat.sample(&[("database", c.database)], l);
        }
    }

    let dirs = [&s.queues.queue, &s.queues.error, &s.queues.broken];
    let mut files = f.family("csjobs_files", "Files in the sales queue, error/ and broken/.");
    for d in dirs.iter().filter(|d| d.listed) {
        files.sample(&[("dir", d.dir)], d.files as f64);
    }
    let mut oldest =
        f.family("csjobs_oldest_file_age_seconds", "Age of the oldest file (0 when there is none).");
    for d in dirs.iter().filter(|d| d.listed) {
        oldest.sample(&[("dir", d.dir)], d.oldest_age_seconds.unwrap_or(0) as f64);
    }

    // The broker of receive (receive.md, "Monitoring"): its queues' messages and consumers,
    // when they could be looked at.
    let broker: Vec<_> = [&s.queues.broker, &s.queues.broker_rejected].into_iter().flatten().collect();
    if !broker.is_empty() {
        let mut messages = f.family(
            "csjobs_broker_messages",
            "Messages ready in the broker's queue (receive.queue, <queue>.rejected).",
        );
        for q in &broker {
            if let Some(n) = q.messages {
                messages.sample(&[("queue", &q.name)], n as f64);
            }
        }
        let mut consumers = f.family("csjobs_broker_consumers", "Consumers of the broker's queue.");
        for q in &broker {
            if let Some(n) = q.consumers {
                consumers.sample(&[("queue", &q.name)], n as f64);
            }
        }
    }

    let mut rows = f.family("csjobs_staged_rows", "Staged rows not yet transferred to the bonus DB.");
    for t in &s.queues.staged {
        rows.sample(&[("table", t.table)], t.rows as f64);
    }
    let mut age = f.family(
        "csjobs_staged_oldest_age_seconds",
        "Age of the oldest staged row not yet transferred (0 when none).",
    );
    for t in &s.queues.staged {
        age.sample(&[("table", t.table)], t.oldest_age_seconds.unwrap_or(0) as f64);
    }
    let mut refused =
        f.family("csjobs_staged_refused_rows", "Staged rows the bonus DB refused within the status window.");
    for t in &s.queues.staged {
        refused.sample(&[("table", t.table)], t.refused as f64);
    }
    if let Some(a) = &s.queues.astu {
        f.family("csjobs_astu_due_shifts", "Closed shifts owed an ASTU file.").sample(&[], a.shifts as f64);
    }

    let mut last =
        f.family("csjobs_job_last_run_timestamp_seconds", "Start of the job's last run (Unix time).");
    for j in &s.jobs {
        if let Some(r) = &j.last_run {
            last.sample(&[("job", j.job)], r.started_at.timestamp() as f64);
        }
    }
    let mut ok = f.family(
        "csjobs_job_last_success_timestamp_seconds",
        "End of the job's last run that exited 0 or 3 (Unix time).",
    );
    for j in &s.jobs {
        if let Some(t) = j.last_success.as_ref().and_then(|r| r.finished_at) {
            ok.sample(&[("job", j.job)], t.timestamp() as f64);
        }
    }
    let mut code = f.family("csjobs_job_last_exit_code", "Exit code of the job's last finished run.");
    for j in &s.jobs {
        if let Some(c) = j.last_run.as_ref().and_then(|r| r.exit_code) {
            code.sample(&[("job", j.job)], f64::from(c));
        }
    }

    // Register labels: shop and cash numbers as text, written once per register.
    let ids: Vec<(String, String)> =
        s.registers.iter().map(|r| (r.shop.to_string(), r.cash.to_string())).collect();
    let mut contact = f.family(
        "csjobs_register_last_contact_timestamp_seconds",
        "When the register's last file was handled (Unix time).",
    );
    for (r, (shop, cash)) in s.registers.iter().zip(&ids) {
        if let Some(t) = r.last_contact {
            contact.sample(&[("shop", shop), ("cash", cash)], t.timestamp() as f64);
        }
    }
    let mut sale = f.family(
        "csjobs_register_last_sale_timestamp_seconds",
        "Close time of the latest sale loaded from the register (Unix time; shop wall clock read in the offset of now).",
    );
    for (r, (shop, cash)) in s.registers.iter().zip(&ids) {
        if let Some(t) = r.last_sale {
            sale.sample(&[("shop", shop), ("cash", cash)], t.timestamp() as f64);
        }
    }
    let mut state = f.family(
        "csjobs_register_state",
        "The register's sync state: 1 for its state (never, duplicate, errors, stale, ok), 0 for the others.",
    );
    for (r, (shop, cash)) in s.registers.iter().zip(&ids) {
        for st in RegisterState::ALL {
            state.sample(
                &[("shop", shop), ("cash", cash), ("state", st.name())],
                if r.state == st { 1.0 } else { 0.0 },
            );
        }
    }
    let mut senders = f.family(
        "csjobs_register_senders",
        "Distinct machines that sent the register's files within the window.",
    );
    for (r, (shop, cash)) in s.registers.iter().zip(&ids) {
        senders.sample(&[("shop", shop), ("cash", cash)], r.senders.len() as f64);
    }
    let mut checks = f.family(
        "csjobs_register_checks_today",
        "The register's sale and return documents closed today up to now (shop wall clock).",
    );
    for (r, (shop, cash)) in s.registers.iter().zip(&ids) {
        checks.sample(&[("shop", shop), ("cash", cash)], r.checks_today as f64);
    }
    let mut revenue = f.family(
        "csjobs_register_revenue_today",
        "The register's revenue today up to now: sales minus returns, in the currency's units.",
    );
    for (r, (shop, cash)) in s.registers.iter().zip(&ids) {
        revenue.sample(&[("shop", shop), ("cash", cash)], r.revenue_today.to_f64().unwrap_or(0.0));
    }

    f.family("csjobs_status_healthy", "Whether status found no problem (1) or some (0).")
        .sample(&[], if s.healthy { 1.0 } else { 0.0 });
    f.family("csjobs_status_checked_timestamp_seconds", "When status checked (Unix time).")
        .sample(&[], s.checked_at.timestamp() as f64);
    f.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        assert_eq!(escape_label("Казань"), "Казань");
    }

    #[test]
    fn values_print_without_needless_fractions() {
        assert_eq!(value(3.0), "3");
        assert_eq!(value(0.25), "0.25");
        assert_eq!(value(1_795_000_000.0), "1795000000");
    }
}
