//! The read stage of the monitoring jobs in one call: the directories first (they need no
//! database), then both databases at once; every register judged and the problems listed.
//! `status` renders what this returns, `report` draws it beside the revenue.
//!
//! When the cash server DB cannot be read the facts still hold what could be checked (the
//! links, the directories), and [`outcome`] maps that to the exit of a run that wrote them.

use super::{
    collect::{self, CashServerFacts},
    health::problems,
    judge, LinkState, Queues, Status, FORMAT_TAG,
};
use crate::core::{config::Config, db::Database, duration::Span, JobError, Outcome};

/// What `status` found: the judged [`Status`], and why the cash server DB could not be read
/// when it answered but a query failed.
pub struct Gathered {
    pub status: Status,
    pub unreadable: Option<anyhow::Error>,
}

/// The read and judge stages of `status`, shared with `report`: the directories, both links,
/// what the cash server DB says (registers over `since`, only `shops` when given), every
/// register judged and the problems listed. An unknown `--shop` is a usage error.
pub async fn gather(cfg: &Config, shops: &[i32], since: Span) -> Result<Gathered, JobError> {
    let now = cfg.now;
    let window_start = now - since.as_duration();

    // What needs no database.
    let directories = collect::directories(cfg);
    let p = &cfg.paths;
    let (queue_files, error_files, broken_files) = (
        collect::dir_files(now, "queue", &p.queue),
        collect::dir_files(now, "error", &p.error),
        collect::dir_files(now, "broken", &p.broken),
    );

    let ((cash_link, cash), (bonus_link, _bonus)) = tokio::join!(
        collect::probe(cfg.cashserver_url.as_ref(), Database::CashServer),
        collect::probe(cfg.bonus_url.as_ref(), Database::Bonus)
    );
    let shops = (!shops.is_empty()).then_some(shops);
    // The cash server DB's facts and the broker (when receive is configured) at once.
    let read_cashserver = async {
        let Some(client) = &cash else { return Ok((None, None)) };
        if let Some(shops) = shops {
            collect::check_shops(client, shops).await?;
        }
        Ok::<_, JobError>(match collect::cashserver(client, now, window_start, shops).await {
            Ok(f) => (Some(f), None),
            Err(e) => (None, Some(e)),
        })
    };
    let (read, broker) = tokio::join!(read_cashserver, collect::broker(cfg));
    let (facts, unreadable): (Option<CashServerFacts>, Option<anyhow::Error>) = read?;
    drop(cash);

    let mut status = Status {
        format: FORMAT_TAG,
        checked_at: now,
        csjobs_version: env!("CARGO_PKG_VERSION"),
        healthy: false,
        problems: Vec::new(),
        connections: vec![cash_link, bonus_link],
        queues: Queues {
            queue: queue_files,
            error: error_files,
            broken: broken_files,
            staged: Vec::new(),
            astu: None,
            dictionary: None,
            directories,
            broker: None,
            broker_rejected: None,
        },
        jobs: Vec::new(),
        errors_3d: None,
        latest_errors: Vec::new(),
        registers: Vec::new(),
        shops: Vec::new(),
        window: since.to_string(),
        window_start,
    };
    if let Some((link, queue, rejected)) = broker {
        status.connections.push(link);
        status.queues.broker = Some(queue);
        status.queues.broker_rejected = Some(rejected);
    }
    if let Some(f) = facts {
        status.queues.staged = f.staged;
        status.queues.astu = Some(f.astu);
        status.queues.dictionary = Some(f.dictionary);
        status.jobs = f.jobs;
        status.errors_3d = Some(f.errors_3d);
        status.latest_errors = f.latest_errors;
        status.registers = f.registers;
        status.shops = f.shops;
    }
    let stale_after = cfg.status.stale_after.as_duration();
    for r in &mut status.registers {
        r.state = judge(r, now, stale_after);
    }
    status.problems = problems(&status, &cfg.status);
    if let Some(e) = &unreadable {
        status.problems.insert(0, format!("the cash server DB cannot be read: {e:#}"));
    }
    status.healthy = status.problems.is_empty();
    Ok(Gathered { status, unreadable })
}

/// The exit of a run that wrote its output with what `gather` found: exit 2 when the cash
/// server DB is not configured, 1 when it cannot be used or read, else `problems` (exit 3
/// when any, 0 when none).
pub fn outcome(g: Gathered, what: &str) -> Result<Outcome, JobError> {
    let status = g.status;
    let cash_state = status.cashserver().state;
    if cash_state == LinkState::NotConfigured {
        return Err(JobError::usage(format!(
            "the cash server DB is not configured: set cashserver.database_url in the config file or \
             CSJOBS_CASHSERVER_DATABASE_URL ({what} was written with what needs no database)"
        )));
    }
    if cash_state == LinkState::Unreachable {
        let why = status.cashserver().error.clone().unwrap_or_default();
        return Err(JobError::Failed(anyhow::anyhow!(
            "the cash server DB cannot be used ({why}); {what} was written with what needs no database"
        )));
    }
    if let Some(e) = g.unreadable {
        return Err(JobError::Failed(e.context(format!(
            "the cash server DB cannot be read; {what} was written with what needs no database"
        ))));
    }
    Ok(Outcome { rejected: 0, problems: status.problems.len() as u64 })
}
