//! Logs go to stderr: human-readable on a terminal, one JSON object per line otherwise
//! (journald, Loki). `RUST_LOG` sets the filter unless `-q`/`-v` are given.
//!
//! Under systemd, where stderr is a journal stream (`JOURNAL_STREAM` names stderr's device
//! and inode), every line starts with its syslog priority (`<3>` error, `<4>` warning, `<6>`
//! info, `<7>` debug): journald takes the prefix off and files the line under that priority,
//! so `journalctl -u csjobs-load-sales -p warning` shows exactly the warnings and errors. The
//! message it stores is still the whole JSON object.

use std::io::{IsTerminal, Write};

use tracing::{Level, Metadata};
use tracing_subscriber::{fmt::MakeWriter, EnvFilter};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

impl LogFormat {
    pub fn default_for_stderr() -> LogFormat {
        if std::io::stderr().is_terminal() {
            LogFormat::Human
        } else {
            LogFormat::Json
        }
    }
}

/// Our info, but not the server NOTICEs tokio-postgres logs at info.
const QUIET_DEPS: &str = "info,tokio_postgres=warn";

/// The syslog priority of a level, as journald reads it from a `<N>` line prefix.
pub fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// True when stderr is the journal stream systemd gave this process: `JOURNAL_STREAM` is
/// `DEVICE:INODE` of that stream, and it must be stderr's (a child whose stderr was
/// redirected inherits the variable but not the stream).
pub fn stderr_is_journal(journal_stream: Option<&str>) -> bool {
    let Some((dev, ino)) = journal_stream.and_then(|v| v.split_once(':')) else {
        return false;
    };
    let Ok(st) = rustix::fs::fstat(std::io::stderr()) else {
        return false;
    };
    dev.parse::<u64>().is_ok_and(|d| d == st.st_dev) && ino.parse::<u64>().is_ok_and(|i| i == st.st_ino)
}

/// Stderr, with each line of an event prefixed by its priority when `journal` is set. An
/// event is written with one `write` call, so lines of two threads never interleave.
#[derive(Clone, Copy)]
struct Stderr {
    journal: bool,
}

struct EventWriter {
    prefix: Option<u8>,
    buf: Vec<u8>,
}

impl Write for EventWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        let out = match self.prefix {
            None => std::mem::take(&mut self.buf),
            Some(p) => prefix_lines(&self.buf, p),
        };
        let _ = std::io::stderr().lock().write_all(&out);
    }
}

/// `text` with `<p>` before each of its lines.
fn prefix_lines(text: &[u8], p: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 8);
    for line in text.split_inclusive(|&b| b == b'\n') {
        let _ = write!(out, "<{p}>");
        out.extend_from_slice(line);
    }
    out
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = EventWriter;
    fn make_writer(&'a self) -> EventWriter {
        EventWriter { prefix: self.journal.then_some(6), buf: Vec::new() }
    }
    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> EventWriter {
        EventWriter { prefix: self.journal.then(|| priority(meta.level())), buf: Vec::new() }
    }
}

/// How a line csjobs writes to stderr outside tracing (a usage error before logging is set
/// up) must look, so that stderr stays one format.
#[derive(Debug, Clone, Copy)]
pub struct Stream {
    pub format: LogFormat,
    pub journal: bool,
}

impl Stream {
    /// One error line in the stream's format: `csjobs: …` for people, a JSON object
    /// otherwise, with the journal's priority prefix when stderr is the journal.
    pub fn error_line(&self, message: &str, exit_code: u8) -> String {
        let body = match self.format {
            LogFormat::Human => format!("csjobs: {message}"),
            LogFormat::Json => serde_json::json!({
                "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "level": "ERROR",
                "message": message,
                "exit_code": exit_code,
            })
            .to_string(),
        };
        let line = format!("{body}\n");
        if self.journal {
            String::from_utf8_lossy(&prefix_lines(line.as_bytes(), 3)).into_owned()
        } else {
            line
        }
    }
}

/// `verbosity`: 0 = info, negative = quieter (-q: warn, -qq: error), positive = more
/// verbose (-v: debug, -vv: trace). `None` leaves the choice to `RUST_LOG` (default info).
pub fn init(stream: Stream, verbosity: Option<i8>) {
    let filter = match verbosity {
        Some(v) => EnvFilter::new(match v {
            i8::MIN..=-2 => "error",
            -1 => "warn",
            0 => QUIET_DEPS,
            1 => "debug",
            _ => "trace",
        }),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(QUIET_DEPS)),
    };
    let writer = Stderr { journal: stream.journal };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    let result = match stream.format {
        LogFormat::Human => builder.with_ansi(std::io::stderr().is_terminal()).with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_gets_the_priority() {
        assert_eq!(prefix_lines(b"a\nb\n", 4), b"<4>a\n<4>b\n");
        assert_eq!(prefix_lines(b"a", 3), b"<3>a");
        assert_eq!(priority(&Level::WARN), 4);
        assert_eq!(priority(&Level::TRACE), 7);
    }

    #[test]
    fn a_journal_stream_must_be_stderr_itself() {
        assert!(!stderr_is_journal(None));
        assert!(!stderr_is_journal(Some("garbage")));
        assert!(!stderr_is_journal(Some("1:1")));
        let st = rustix::fs::fstat(std::io::stderr()).unwrap();
        assert!(stderr_is_journal(Some(&format!("{}:{}", st.st_dev, st.st_ino))));
    }

    #[test]
    fn an_error_line_is_json_or_plain() {
        let json = Stream { format: LogFormat::Json, journal: false }.error_line("bad \"x\"", 2);
        let v: serde_json::Value = serde_json::from_str(json.trim_end()).unwrap();
        assert_eq!(
            (v["level"].as_str(), v["message"].as_str(), v["exit_code"].as_u64()),
            (Some("ERROR"), Some("bad \"x\""), Some(2))
        );
        assert_eq!(Stream { format: LogFormat::Human, journal: true }.error_line("x", 1), "<3>csjobs: x\n");
    }
}
