//! The monitoring core (мониторинг): the facts that `status`, `revenue-watch` and `report`
//! decide and render over — the links, the queues, the jobs, every register, the shops'
//! working hours and their revenue — gathered in one place, and the judgments they share
//! (a register's state, the health problems, a shop's revenue verdict). No job imports
//! another: each imports this.
//!
//! - [`facts`]: the read stage as one call (`facts::gather`), and the exit of a run that
//!   wrote what it could;
//! - [`alert_rows`]: the table `alert` as the pages read it (open alerts, each in a sentence);
//! - [`collect`]: the reads themselves (directories, the two databases);
//! - [`hours`]: working hours (`shop_hours`) and whether a shop is open;
//! - [`revenue`]: revenue by shop, day and hour, the profile and a shop's verdict;
//! - [`period`]: per shop, register and day over a period, each day against its profile;
//! - [`health`]: the problems, one sentence each (what `status` exits 3 for);
//! - [`html`]: the pieces of HTML the pages share (maud templates, escaped by default);
//! - [`sections`]: connections, queues and jobs as rows of text (the table and the page);
//! - this module: the model (the JSON document of `status` is [`Status`]).

pub mod alert_rows;
pub mod collect;
pub mod facts;
pub mod health;
pub mod hours;
pub mod html;
pub mod period;
pub mod revenue;
pub mod sections;

use std::path::PathBuf;

use chrono::{DateTime, FixedOffset, NaiveTime, TimeDelta};
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

/// A broker queue as status shows it: what receive's probe saw.
pub use crate::receive::probe::QueueFacts;
use hours::Opening;

/// The `format` tag of the JSON document.
pub const FORMAT_TAG: &str = "csjobs-status/1";

/// A moment as every format shows it: in the offset of "now".
pub type Moment = DateTime<FixedOffset>;

/// The sync state of one register (состояние синхронизации кассы), in the order in which the
/// first that applies wins (monitoring.md, "Per-register state").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterState {
    /// No file of this register was ever handled.
    Never,
    /// Files of this register came from two or more machines within the window: one register
    /// identity used on several PCs.
    Duplicate,
    /// A file of the window went to error/ or broken/ and no later file of the same content
    /// was processed.
    Errors,
    /// Its shop has been open longer than `status.stale_after` and it has sent nothing for
    /// longer than that.
    Stale,
    Ok,
}

impl RegisterState {
    /// The five states, in the order of the one-hot Prometheus gauge.
    pub const ALL: [RegisterState; 5] = [
        RegisterState::Never,
        RegisterState::Duplicate,
        RegisterState::Errors,
        RegisterState::Stale,
        RegisterState::Ok,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RegisterState::Never => "never",
            RegisterState::Duplicate => "duplicate",
            RegisterState::Errors => "errors",
            RegisterState::Stale => "stale",
            RegisterState::Ok => "ok",
        }
    }

    /// The order of the table, problems first and the worst first: a duplicate sender makes
    /// the chain's numbers disagree, errors lose sales until retried, stale may be a dead link.
    pub fn severity_rank(self) -> u8 {
        match self {
            RegisterState::Duplicate => 0,
            RegisterState::Errors => 1,
            RegisterState::Stale => 2,
            RegisterState::Never => 3,
            RegisterState::Ok => 4,
        }
    }
}

/// One register (касса) as the load log shows it, and its judged state. Field order is the
/// JSON key order: the checklist's columns first.
#[derive(Debug, Clone, Serialize)]
pub struct Register {
    pub city: Option<String>,
    pub address: Option<String>,
    pub shop: i32,
    pub cash: i32,
    pub cash_name: String,
    pub state: RegisterState,
    /// When the last file of this register was handled (any disposition).
    #[serde(serialize_with = "rfc3339")]
    pub last_contact: Option<Moment>,
    /// The last sender's ip.
    pub ip: Option<String>,
    /// The latest sale close time loaded from this register (shop wall clock).
    #[serde(serialize_with = "rfc3339")]
    pub last_sale: Option<Moment>,
    pub host: Option<String>,
    pub software: Option<String>,
    /// The distinct senders (host, or ip where the host is absent) of the window's files.
    pub senders: Vec<String>,
    /// Files of the window processed, sent to error/, sent to broken/.
    pub files: i64,
    pub errors: i64,
    pub broken: i64,
    /// Its checks of today (чеков за сегодня): the sale and return documents whose close
    /// time falls on today's local date up to now.
    pub checks_today: i64,
    /// Its revenue of today (выручка за сегодня): Σ sale − Σ return of those documents.
    #[serde(serialize_with = "money")]
    pub revenue_today: Decimal,
    /// Some file of the window went to error/ or broken/ and was not made good by a later
    /// processed file of the same content.
    #[serde(skip)]
    pub unresolved_errors: bool,
    /// The shop's opening at "now".
    #[serde(skip)]
    pub opening: Option<Opening>,
}

/// Judges one register: the first state that applies, in the spec's order.
pub fn judge(r: &Register, now: Moment, stale_after: TimeDelta) -> RegisterState {
    let Some(last) = r.last_contact else {
        return RegisterState::Never;
    };
    if r.senders.len() >= 2 {
        RegisterState::Duplicate
    } else if r.unresolved_errors {
        RegisterState::Errors
    } else if r.opening.unwrap_or(Opening::Always).open_longer_than(now.naive_local(), stale_after)
        && now - last > stale_after
    {
        RegisterState::Stale
    } else {
        RegisterState::Ok
    }
}

/// A shop (магазин) with its working hours and what its registers sold today.
#[derive(Debug, Clone, Serialize)]
pub struct ShopToday {
    pub shop: i32,
    pub name: String,
    pub city: Option<String>,
    pub address: Option<String>,
    /// Its `shop_hours` rows, Monday first; empty when it is open around the clock.
    pub hours: Vec<HoursRow>,
    pub open_now: bool,
    pub checks_today: i64,
    #[serde(serialize_with = "money")]
    pub revenue_today: Decimal,
    /// How many registers (table `cash`) it has.
    pub registers: i64,
}

impl ShopToday {
    /// The hours as one line (`Mon–Sun 09:00–21:30`, `around the clock`), for people.
    pub fn hours_text(&self) -> String {
        let mut h = hours::ShopHours::default();
        for r in &self.hours {
            h.set(i16::from(r.weekday), r.opens, r.closes);
        }
        h.text()
    }
}

/// One row of a shop's working hours.
#[derive(Debug, Clone, Serialize)]
pub struct HoursRow {
    /// ISO weekday, 1 = Monday … 7 = Sunday.
    pub weekday: u8,
    #[serde(serialize_with = "hh_mm")]
    pub opens: NaiveTime,
    #[serde(serialize_with = "hh_mm")]
    pub closes: NaiveTime,
}

/// Money in JSON: a decimal string with two places (`"1000.00"`, `"0.00"`).
fn money<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{:.2}", d.round_dp(2)))
}

fn hh_mm<S: Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.format("%H:%M").to_string())
}

/// A database as `status` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    Ok,
    Unreachable,
    /// In recovery (a standby) or read-only transactions.
    ReadOnly,
    NotConfigured,
}

impl LinkState {
    pub fn name(self) -> &'static str {
        match self {
            LinkState::Ok => "ok",
            LinkState::Unreachable => "unreachable",
            LinkState::ReadOnly => "read_only",
            LinkState::NotConfigured => "not_configured",
        }
    }
}

/// The link to one database.
#[derive(Debug, Clone, Serialize)]
pub struct Connection {
    /// `cashserver`, `bonus` or `broker` (the Prometheus label too).
    pub database: &'static str,
    pub state: LinkState,
    /// Why it is unreachable (the connection string's password masked).
    pub error: Option<String>,
    pub server_version: Option<String>,
    /// The latest csjobs migration applied to it (`0005_status`), and the latest this binary
    /// has (`None` for the broker, which has no migrations).
    pub migration: Option<String>,
    pub expected_migration: Option<String>,
    pub latency_seconds: Option<f64>,
}

impl Connection {
    pub fn label(&self) -> &'static str {
        match self.database {
            "cashserver" => "cash server DB",
            "broker" => "broker (receive.amqp_url)",
            _ => "bonus DB",
        }
    }
}

/// A data directory of `paths.*` (or the dictionary directory) and whether it can be used.
#[derive(Debug, Clone, Serialize)]
pub struct Directory {
    /// The setting that names it: `paths.queue`, or `SEND_DICTS_ON_CASHES_BY_URL_LOCAL_DIRECTORY`.
    pub setting: &'static str,
    /// Its environment twin, where it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<&'static str>,
    pub path: PathBuf,
    /// `None` when it is a readable directory; otherwise what is wrong.
    pub error: Option<String>,
}

/// The files waiting in one of queue/, error/, broken/.
#[derive(Debug, Clone, Serialize)]
pub struct DirFiles {
    /// `queue`, `error` or `broken` (the Prometheus label).
    pub dir: &'static str,
    pub path: PathBuf,
    /// False when the directory could not be listed (see `queues.directories`).
    pub listed: bool,
    pub files: u64,
    pub bytes: u64,
    #[serde(serialize_with = "rfc3339")]
    pub oldest: Option<Moment>,
    #[serde(serialize_with = "rfc3339")]
    pub newest: Option<Moment>,
    pub oldest_age_seconds: Option<i64>,
}

/// The staged rows of one staging table.
#[derive(Debug, Clone, Serialize)]
pub struct Staged {
    pub table: &'static str,
    /// Not yet transferred.
    pub rows: i64,
    #[serde(serialize_with = "rfc3339")]
    pub oldest: Option<Moment>,
    pub oldest_age_seconds: Option<i64>,
    /// Refused by the bonus DB within the window (`transfer_error` set).
    pub refused: i64,
}

/// Closed shifts owed an ASTU file.
#[derive(Debug, Clone, Serialize)]
pub struct AstuDue {
    pub shifts: i64,
    /// The oldest close time among them (shop wall clock).
    #[serde(serialize_with = "rfc3339")]
    pub oldest_close: Option<Moment>,
    /// How long the longest-owed shift has been owed: since the load that last touched it.
    pub oldest_owed_seconds: Option<i64>,
}

/// The dictionary directory (`SEND_DICTS_ON_CASHES_BY_URL_LOCAL_DIRECTORY`).
#[derive(Debug, Clone, Serialize)]
pub struct Dictionary {
    /// The setting's value; `None` when the setting is missing or empty.
    pub path: Option<PathBuf>,
    pub files: u64,
    pub bytes: u64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Queues {
    pub queue: DirFiles,
    pub error: DirFiles,
    pub broken: DirFiles,
    /// Empty when the cash server DB could not be read.
    pub staged: Vec<Staged>,
    pub astu: Option<AstuDue>,
    pub dictionary: Option<Dictionary>,
    /// Every `paths.*` directory with what is wrong with it.
    pub directories: Vec<Directory>,
    /// With `receive.amqp_url` set: `receive.queue` and `<queue>.rejected` on the broker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker: Option<QueueFacts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_rejected: Option<QueueFacts>,
}

/// One run of a job (table `job_run`).
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub run_id: i64,
    pub host: String,
    pub pid: i32,
    #[serde(serialize_with = "rfc3339_some")]
    pub started_at: Moment,
    #[serde(serialize_with = "rfc3339")]
    pub finished_at: Option<Moment>,
    /// done, rejected, failed; running or killed for a run without an end.
    pub outcome: String,
    pub exit_code: Option<i32>,
    pub counters: serde_json::Value,
}

impl Run {
    pub fn is_bad(&self) -> bool {
        matches!(self.outcome.as_str(), "failed" | "killed")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    pub job: &'static str,
    pub last_run: Option<Run>,
    /// The last run that ended with exit code 0 or 3 (done; rejected inputs are not a
    /// failure of the job).
    pub last_success: Option<Run>,
    /// The latest run without an end: still running, or killed.
    pub unfinished: Option<Run>,
}

/// One message of `error_message`.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorMessage {
    #[serde(serialize_with = "rfc3339_some")]
    pub created_at: Moment,
    pub job: String,
    pub subject: Option<String>,
    pub message: String,
}

/// Everything `status` found, in the JSON document's key order.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub format: &'static str,
    #[serde(serialize_with = "rfc3339_some")]
    pub checked_at: Moment,
    pub csjobs_version: &'static str,
    pub healthy: bool,
    pub problems: Vec<String>,
    pub connections: Vec<Connection>,
    pub queues: Queues,
    pub jobs: Vec<JobStatus>,
    /// Error messages of the last 3 days; `None` when the cash server DB could not be read.
    pub errors_3d: Option<i64>,
    /// The latest of them, newest first.
    pub latest_errors: Vec<ErrorMessage>,
    pub registers: Vec<Register>,
    /// Every shop asked for (`--shop`, else all): hours, open now, today's checks and revenue.
    pub shops: Vec<ShopToday>,
    /// The window of the register states (`--since`).
    pub window: String,
    #[serde(serialize_with = "rfc3339_some")]
    pub window_start: Moment,
}

impl Status {
    pub fn cashserver(&self) -> &Connection {
        &self.connections[0]
    }
    /// The registers as the table shows them: problems first (the worst first), then by
    /// city, address and cash like the checklist.
    pub fn registers_problems_first(&self) -> Vec<&Register> {
        let mut v: Vec<&Register> = self.registers.iter().collect();
        v.sort_by_key(|r| r.state.severity_rank()); // stable: keeps the checklist order within
        v
    }
}

fn rfc3339<S: Serializer>(t: &Option<Moment>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339_some(t, s),
        None => s.serialize_none(),
    }
}

fn rfc3339_some<S: Serializer>(t: &Moment, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&time_text(t))
}

/// A moment as text in every format: RFC 3339 to the second, in now's offset.
pub fn time_text(t: &Moment) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// An age for people: `45s`, `12m`, `3h 05m`, `2d 04h`.
pub fn age_text(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveTime, TimeZone};
    use hours::ShopHours;

    fn now() -> Moment {
        FixedOffset::east_opt(3 * 3600).unwrap().with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
    }

    fn register(last_contact_minutes_ago: Option<i64>) -> Register {
        Register {
            city: Some("Казань".into()),
            address: Some("ул. Баумана, 1".into()),
            shop: 8,
            cash: 17,
            cash_name: "Касса 17".into(),
            state: RegisterState::Ok,
            last_contact: last_contact_minutes_ago.map(|m| now() - TimeDelta::minutes(m)),
            ip: None,
            last_sale: None,
            host: None,
            software: None,
            senders: vec!["pos-8-17".into()],
            files: 1,
            errors: 0,
            broken: 0,
            checks_today: 0,
            revenue_today: Decimal::ZERO,
            unresolved_errors: false,
            opening: Some(Opening::Always),
        }
    }

    #[test]
    fn the_first_state_that_applies_wins() {
        let two_h = TimeDelta::hours(2);
        let mut r = register(None);
        r.senders = vec!["a".into(), "b".into()];
        r.unresolved_errors = true;
        assert_eq!(judge(&r, now(), two_h), RegisterState::Never);
        let mut r = register(Some(500));
        r.senders = vec!["a".into(), "b".into()];
        r.unresolved_errors = true;
        assert_eq!(judge(&r, now(), two_h), RegisterState::Duplicate);
        r.senders.pop();
        assert_eq!(judge(&r, now(), two_h), RegisterState::Errors);
        r.unresolved_errors = false;
        assert_eq!(judge(&r, now(), two_h), RegisterState::Stale);
        assert_eq!(judge(&register(Some(120)), now(), two_h), RegisterState::Ok);
        assert_eq!(judge(&register(Some(121)), now(), two_h), RegisterState::Stale);
    }

    #[test]
    fn stale_only_while_the_shop_is_open_long_enough() {
        let two_h = TimeDelta::hours(2);
        let mut hours = ShopHours::default();
        let t = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap();
        hours.set(2, t(11), t(20)); // 2026-11-24 is a Tuesday: open since 11:00, one hour
        let mut r = register(Some(600));
        r.opening = Some(hours.at(now().naive_local()));
        assert_eq!(judge(&r, now(), two_h), RegisterState::Ok);
        hours.set(2, t(9), t(20)); // open three hours
        r.opening = Some(hours.at(now().naive_local()));
        assert_eq!(judge(&r, now(), two_h), RegisterState::Stale);
        r.opening = Some(Opening::Closed);
        assert_eq!(judge(&r, now(), two_h), RegisterState::Ok);
    }

    #[test]
    fn ages_read_like_a_person_writes_them() {
        assert_eq!(age_text(-5), "0s");
        assert_eq!(age_text(59), "59s");
        assert_eq!(age_text(60 * 25), "25m");
        assert_eq!(age_text(3600 * 3 + 300), "3h 05m");
        assert_eq!(age_text(86_400 * 2 + 3600 * 4), "2d 04h");
    }
}
