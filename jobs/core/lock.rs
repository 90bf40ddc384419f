//! The job lock: two runs of the same job never work at once, even from two machines
//! against one database. It is a PostgreSQL session advisory lock held on a connection of
//! its own, so it dies with the process (a SIGKILLed run frees it when the server notices
//! the closed socket).

use anyhow::Context;
use tokio_postgres::Client;

use super::{
    config::DbUrl,
    db::{self, Database},
    JobError,
};

/// Held for the life of a run; dropping it closes the connection and frees the lock.
pub struct JobLock {
    _client: Client,
}

pub async fn acquire(url: &DbUrl, job: &str) -> Result<JobLock, JobError> {
    let client = db::connect(url, Database::CashServer, &format!("csjobs {job} (lock)")).await?;
    let key = db::lock_key(&format!("csjobs job lock: {job}"));
    let got: bool = client
        .query_one("select pg_try_advisory_lock($1)", &[&key])
        .await
        .with_context(|| format!("cannot take the job lock in the cash server DB at {url}"))?
        .get(0);
    if !got {
        return Err(JobError::Locked { job: job.to_string(), db: url.to_string() });
    }
    Ok(JobLock { _client: client })
}
