//! What a job hands back to the CLI layer. The CLI (`jobs/main.rs`) is the only place that
//! turns these into exit codes (shared/spec/cli.md, "Exit codes").

use super::config::DbUrl;

/// A job that ran to its end. `rejected` counts inputs refused (files moved to error/ or
/// broken/, rows refused): more than zero makes the run "done, but some inputs were rejected".
/// `problems` counts what a monitoring job found wrong (`status`: each reason it is
/// unhealthy); more than zero gives the same exit code.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub rejected: u64,
    pub problems: u64,
}

impl Outcome {
    pub fn rejected(n: u64) -> Outcome {
        Outcome { rejected: n, problems: 0 }
    }
}

/// Why a job did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Bad option, missing or malformed setting, unreadable config file.
    #[error("{0}")]
    Usage(String),
    /// Another run of the same job holds its job lock, the advisory lock in the cash server
    /// DB `db` (a lock file is [`JobError::LockedBy`]'s). Boxed: a `DbUrl` is large, and every
    /// `Result` of a job carries this enum.
    #[error("another run of `{job}` holds its lock (advisory lock in {db}); this run did nothing")]
    Locked { job: String, db: Box<DbUrl> },
    /// A lock that two jobs share (the archive lock of `archive` and `load-sales --replay`)
    /// is held by `holder`.
    #[error("{holder} holds {lock}; this run did nothing (run it again once that one has ended)")]
    LockedBy { holder: String, lock: String },
    /// The request needs `--yes` and there is no terminal to ask.
    #[error("{0}")]
    NeedsConfirmation(String),
    /// A database or file system could not be used, or an internal error. Whatever was done
    /// before stays consistent.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl JobError {
    pub fn usage(msg: impl Into<String>) -> Self {
        JobError::Usage(msg.into())
    }
}

/// The exit codes of shared/spec/cli.md, defined in this one place: the CLI exits with it
/// and the job run log records it.
pub fn exit_code(result: &Result<Outcome, JobError>) -> u8 {
    match result {
        Ok(o) if o.rejected > 0 || o.problems > 0 => 3,
        Ok(_) => 0,
        Err(JobError::Failed(_)) => 1,
        Err(JobError::Usage(_)) => 2,
        Err(JobError::Locked { .. } | JobError::LockedBy { .. }) => 4,
        Err(JobError::NeedsConfirmation(_)) => 5,
    }
}
