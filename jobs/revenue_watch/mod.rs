//! `csjobs revenue-watch` (контроль выручки): today's revenue of each shop against its usual
//! profile, and registers gone silent while their shop is open; alerts kept in table `alert`
//! and sent by e-mail and/or webhook (shared/spec/monitoring.md).
//!
//! The flow: `monitoring::revenue` reads (revenue per shop and day, shops, working hours) and
//! judges (the profile and the verdict of each shop, the silent registers: pure functions of
//! what was read, the settings and `--now`) → `alerts` plans the life cycle against the open
//! alerts and builds one message → `deliver` sends it → `alerts` records what was sent.

pub mod alerts;
pub mod deliver;
pub mod job;
