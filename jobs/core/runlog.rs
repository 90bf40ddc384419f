//! The job run log (`job_run`): one row per run of any job, inserted when the run starts
//! and completed when it ends. A row left with `finished_at` null is a run that was killed
//! or is still going.

use anyhow::Context;
use tokio_postgres::{Client, GenericClient};

pub struct RunLog {
    pub run_id: i64,
}

pub fn host_name() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

impl RunLog {
    pub async fn start(client: &Client, job: &str) -> anyhow::Result<RunLog> {
        let row = client
            .query_one(
                "insert into job_run (job, host, pid) values ($1, $2, $3) returning run_id",
                &[&job, &host_name(), &(std::process::id() as i32)],
            )
            .await
            .context("cannot write the job run log (table job_run)")?;
        Ok(RunLog { run_id: row.get(0) })
    }

    /// Completes the run's row from how the run ended: outcome, the exit code it gets
    /// (`core::exit_code`) and counters; a failure is also recorded in `error_message`.
    /// Never fails the job: a run log that cannot be written is a warning.
    pub async fn close(
        &self,
        client: &Client,
        job: &str,
        result: &Result<super::Outcome, super::JobError>,
        counters: &serde_json::Value,
    ) {
        let outcome = match result {
            Err(_) => "failed",
            Ok(o) if o.rejected > 0 => "rejected",
            Ok(_) => "done",
        };
        let code = super::exit_code(result) as i32;
        if let Err(e) = self.finish(client, outcome, code, counters).await {
            tracing::warn!(error = %format!("{e:#}"), "could not complete the job run log");
        }
        if let Err(e) = result {
            if let Err(why) = record_error(client, job, None, &format!("{e:#}")).await {
                tracing::warn!(
                    error = %format!("{why:#}"),
                    "could not record this run's failure in the error message list (its exit code \
                     is in the job run log when that was written)"
                );
            }
        }
    }

    async fn finish(
        &self,
        client: &Client,
        outcome: &str,
        exit_code: i32,
        counters: &serde_json::Value,
    ) -> anyhow::Result<()> {
        client
            .execute(
                "update job_run set finished_at = now(), outcome = $2, exit_code = $3, \
                 counters = $4 where run_id = $1",
                &[&self.run_id, &outcome, &exit_code, counters],
            )
            .await
            .context("cannot complete the job run log (table job_run)")?;
        Ok(())
    }
}

/// Records a message an operator must look at (table `error_message`, kept 3 days).
pub async fn record_error(
    client: &Client,
    job: &str,
    subject: Option<&str>,
    message: &str,
) -> anyhow::Result<()> {
    record_errors(client, job, &[subject], &[message])
        .await
        .context("cannot write the error message list (table error_message)")?;
    Ok(())
}

/// The one writer of `error_message`: one row per (subject, message) pair, in one statement
/// (inside the caller's transaction when it passes one: load-sales writes a batch's
/// messages with its documents).
pub async fn record_errors<C: GenericClient>(
    client: &C,
    job: &str,
    subjects: &[Option<&str>],
    messages: &[&str],
) -> Result<(), tokio_postgres::Error> {
    debug_assert_eq!(subjects.len(), messages.len());
    client
        .execute(
            "insert into error_message (job, subject, message)
             select $1, s, m from unnest($2::text[], $3::text[]) as t(s, m)",
            &[&job, &subjects, &messages],
        )
        .await?;
    Ok(())
}
