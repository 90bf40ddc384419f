//! The health verdict of `status` (and of `report`'s page): every reason the cash server is
//! unhealthy, one sentence each — what is wrong and what to do (docs/operations.md has an
//! entry for each).

use super::{age_text, time_text, LinkState, Moment, Register, RegisterState, Status};
use crate::core::config::StatusSettings;

fn shop_text(r: &Register) -> String {
    let place: Vec<&str> = [r.city.as_deref(), r.address.as_deref()].into_iter().flatten().collect();
    if place.is_empty() {
        format!("shop {}", r.shop)
    } else {
        format!("shop {} ({})", r.shop, place.join(", "))
    }
}

/// The sentence of a register that is not ok: what is wrong and what to do.
pub fn register_problem(
    r: &Register,
    now: Moment,
    window: &str,
    settings: &StatusSettings,
) -> Option<String> {
    let who = format!("register {} \"{}\" of {}", r.cash, r.cash_name, shop_text(r));
    let since_last = r.last_contact.map(|t| age_text((now - t).num_seconds())).unwrap_or_default();
    Some(match r.state {
        RegisterState::Ok => return None,
        RegisterState::Never => {
            format!("{who} has never sent a sales file: is it installed and is its link set up?")
        }
        RegisterState::Duplicate => format!(
            "{who} sent files from {} machines in the last {window} ({}): one register identity is \
             used on several machines and the chain's figures disagree; give each machine its own \
             register number",
            r.senders.len(),
            r.senders.join(", ")
        ),
        RegisterState::Errors => format!(
            "{who} has files in error/ or broken/ from the last {window} ({} error, {} broken) not \
             made good by a later file: see `csjobs status --shop {}` and the load log (table \
             load_log), fix the cause, then `csjobs load-sales --retry-errors`",
            r.errors, r.broken, r.shop
        ),
        RegisterState::Stale => format!(
            "{who} has sent nothing for {since_last} while its shop is open (status.stale_after \
             {}): check the register and its link",
            settings.stale_after
        ),
    })
}

/// Every reason the cash server is unhealthy, one sentence each, in the order of the
/// sections: links, directories, queues, jobs, registers.
pub fn problems(s: &Status, settings: &StatusSettings) -> Vec<String> {
    let now = s.checked_at;
    let mut p = Vec::new();
    for c in &s.connections {
        match c.state {
            LinkState::Ok => {}
            LinkState::NotConfigured => {
                if c.database == "cashserver" {
                    p.push(
                        "the cash server DB is not configured: set cashserver.database_url or \
                         CSJOBS_CASHSERVER_DATABASE_URL"
                            .to_string(),
                    );
                }
            }
            LinkState::Unreachable => p.push(format!(
                "the {} cannot be used: {}",
                c.label(),
                c.error.as_deref().unwrap_or("unknown error")
            )),
            LinkState::ReadOnly => p.push(format!(
                "the {} is read-only (a standby in recovery, or read-only transactions): no job \
                 can write to it; point the URL at the primary",
                c.label()
            )),
        }
        let readable = matches!(c.state, LinkState::Ok | LinkState::ReadOnly);
        let Some(expected) = &c.expected_migration else { continue };
        if readable && c.migration.as_deref() != Some(expected.as_str()) {
            p.push(format!(
                "the {} is at migration {} but this csjobs expects {}: run `csjobs migrate`",
                c.label(),
                c.migration.as_deref().unwrap_or("none"),
                expected
            ));
        }
    }
    for d in &s.queues.directories {
        if let Some(e) = &d.error {
            let env = d.env.map(|e| format!(" ({e})")).unwrap_or_default();
            p.push(format!("{}{env} {}: {e}", d.setting, d.path.display()));
        }
    }
    let q = &s.queues.queue;
    if let Some(age) =
        q.oldest_age_seconds.filter(|&a| a > settings.queue_max_age.as_duration().num_seconds())
    {
        p.push(format!(
            "the oldest sales file in the queue ({}) waits for {} (status.queue_max_age {}); {} \
             files wait: is load-sales running?",
            q.path.display(),
            age_text(age),
            settings.queue_max_age,
            q.files
        ));
    }
    for t in &s.queues.staged {
        if let Some(age) =
            t.oldest_age_seconds.filter(|&a| a > settings.staged_max_age.as_duration().num_seconds())
        {
            p.push(format!(
                "{}: {} staged rows wait, the oldest for {} (status.staged_max_age {}): is transfer \
                 running, and is the bonus DB reachable?",
                t.table,
                t.rows,
                age_text(age),
                settings.staged_max_age
            ));
        }
        if t.refused > 0 {
            p.push(format!(
                "{}: {} rows were refused by the bonus DB in the last {}; their reason is in the \
                 column transfer_error",
                t.table, t.refused, s.window
            ));
        }
    }
    if let Some(a) = &s.queues.astu {
        if let Some(age) =
            a.oldest_owed_seconds.filter(|&x| x > settings.astu_max_age.as_duration().num_seconds())
        {
            p.push(format!(
                "{} closed shifts are owed their ASTU file, the longest for {} (status.astu_max_age \
                 {}): run `csjobs export-astu` and check paths.astu_outbox",
                a.shifts,
                age_text(age),
                settings.astu_max_age
            ));
        }
    }
    if let Some(d) = &s.queues.dictionary {
        if let (Some(path), Some(e)) = (&d.path, &d.error) {
            p.push(format!("{} {}: {e}", crate::trim_dicts::SETTING, path.display()));
        }
    }
    if let Some(q) = s.queues.broker_rejected.as_ref().filter(|q| q.messages.is_some_and(|n| n > 0)) {
        p.push(format!(
            "{} messages on the broker were rejected (queue {}): receive could not turn them into sales \
             files; each one's reason is in receive's log (journalctl -u csjobs-receive); fix the sender, \
             then publish them again or purge the queue",
            q.messages.unwrap_or(0),
            q.name
        ));
    }
    for j in &s.jobs {
        if let Some(r) = j.last_run.as_ref().filter(|r| r.is_bad()) {
            let code = r.exit_code.map(|c| format!(" with exit code {c}")).unwrap_or_default();
            let how = if r.outcome == "killed" {
                "was killed: it never finished and its process is gone; the next run finishes its work"
                    .to_string()
            } else {
                format!("failed{code}; its error is in the error messages (table error_message)")
            };
            p.push(format!(
                "the last run of {} (run {} on {}, started {}) {how}",
                j.job,
                r.run_id,
                r.host,
                time_text(&r.started_at)
            ));
        }
    }
    for r in &s.registers {
        p.extend(register_problem(r, now, &s.window, settings));
    }
    p
}
