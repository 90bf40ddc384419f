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

/// How long a held job lock is tried again before the run gives up (exit 4): 10 × 100 ms.
const LOCK_GRACE_TRIES: u32 = 10;
const LOCK_GRACE_STEP: std::time::Duration = std::time::Duration::from_millis(100);

pub async fn acquire(url: &DbUrl, job: &str) -> Result<JobLock, JobError> {
    let client = db::connect(url, Database::CashServer, &format!("csjobs {job} (lock)")).await?;
    let key = db::lock_key(&format!("csjobs job lock: {job}"));
    // A run that has just exited frees its lock only once its server process has seen the
    // connection close: a few milliseconds, longer on a busy server. A run started right after
    // it (a timer, a script) waits out that moment instead of reporting a holder that is gone.
    for attempt in 0..=LOCK_GRACE_TRIES {
        let got: bool = client
            .query_one("select pg_try_advisory_lock($1)", &[&key])
            .await
            .with_context(|| format!("cannot take the job lock in the cash server DB at {url}"))?
            .get(0);
        if got {
            return Ok(JobLock { _client: client });
        }
        if attempt < LOCK_GRACE_TRIES {
            tokio::time::sleep(LOCK_GRACE_STEP).await;
        }
    }
    Err(JobError::Locked { job: job.to_string(), db: Box::new(url.clone()) })
}

/// The name of the lock file, in the backup directory, that `archive` and
/// `load-sales --replay` both take: an archive run moves processed/ files into the `.tgz`
/// archives that a replay reads, so the two never work at once. Nothing else takes it, so it
/// blocks no other job (the queue's load-sales and replay already share the job lock).
pub const ARCHIVE_LOCK_NAME: &str = ".csjobs-archive.lock";

/// Held for the life of a run; the kernel releases an `flock` when the process ends however
/// it ends.
pub struct FileLock {
    _file: fs_err::File,
}

/// Takes the exclusive `flock` on `<backup>/.csjobs-archive.lock` for `holder` (e.g.
/// `archive`), creating the backup directory and the file when they are missing, and writes
/// who holds it into the file. When another process holds it, fails with
/// [`JobError::LockedBy`] naming that holder (exit code 4).
pub fn acquire_archive_lock(backup: &std::path::Path, holder: &str) -> Result<FileLock, JobError> {
    use fs_err::os::unix::fs::OpenOptionsExt;
    use std::io::{Read, Seek, Write};
    fs_err::create_dir_all(backup)
        .with_context(|| format!("cannot create the backup directory {} (paths.backup)", backup.display()))?;
    let path = backup.join(ARCHIVE_LOCK_NAME);
    let file = fs_err::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o644)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => {
            let mut who = String::new();
            let _ = (&file).read_to_string(&mut who);
            let who = who.trim();
            return Err(JobError::LockedBy {
                holder: if who.is_empty() {
                    "another run of archive or load-sales --replay".into()
                } else {
                    who.into()
                },
                lock: format!("the archive lock file {}", path.display()),
            });
        }
        Err(e) => return Err(anyhow::anyhow!("cannot lock {}: {e}", path.display()).into()),
    }
    // Who holds it, for the message of a run that finds it taken. Only the holder writes.
    let mut f = &file;
    let noted = f.set_len(0).and_then(|()| f.rewind()).and_then(|()| {
        writeln!(f, "{holder} (pid {} on {})", std::process::id(), super::runlog::host_name())
    });
    if let Err(e) = noted {
        tracing::warn!(file = %path.display(), "cannot note the holder in the lock file: {e}");
    }
    Ok(FileLock { _file: file })
}
