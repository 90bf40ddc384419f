//! Logs go to stderr: human-readable on a terminal, one JSON object per line otherwise
//! (journald, Loki). `RUST_LOG` sets the filter unless `-q`/`-v` are given.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

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

/// `verbosity`: 0 = info, negative = quieter (-q: warn, -qq: error), positive = more
/// verbose (-v: debug, -vv: trace). `None` leaves the choice to `RUST_LOG` (default info).
pub fn init(format: LogFormat, verbosity: Option<i8>) {
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
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Human => builder.with_ansi(std::io::stderr().is_terminal()).with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
