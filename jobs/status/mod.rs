//! `csjobs status` (состояние кассового сервера): links to the databases, what waits in each
//! queue, how the jobs ended, and every register's sync state, judged against the thresholds of
//! shared/spec/monitoring.md; written for a person (table), for machines (json), for
//! Prometheus' textfile collector, and as the register checklist (csv, xlsx, html).
//!
//! The flow: `monitoring::facts::gather` reads and judges (register states, the problems:
//! pure functions of what was read and `--now`) → `render` / `prometheus` write one format →
//! `job` puts it on stdout or `--output`. Nothing is written to any database.

pub mod job;
pub mod prometheus;
pub mod render;
