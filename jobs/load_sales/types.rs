//! The data load-sales' stages hand each other: a read file ([`ReadFile`], from the
//! readers through [`engine`](super::engine) to [`apply`](super::apply)), where a file goes
//! ([`Disposition`]), what became of it ([`FileResult`]) and what a batch does to the ASTU
//! flags ([`AstuMarking`]), and the job's name ([`JOB`]). It imports only `format`, `plan`
//! and `core`, so `apply`, `engine`, `job` and `replay` all import it and none of them
//! imports another back.

use chrono::{DateTime, Utc};

use super::{
    format::{Broken, SalesFile},
    plan::{PlannedFile, ShiftRef},
};
use crate::core::queue::QueuedFile;

/// The job's name in `job_run`, the error messages, the lock and the pings.
pub const JOB: &str = "load-sales";

/// A file of the queue as the read stage hands it over.
#[derive(Debug)]
pub struct ReadFile {
    pub entry: QueuedFile,
    pub started_at: DateTime<Utc>,
    pub size: u64,
    pub sha256: String,
    pub content: Result<SalesFile, Broken>,
    /// Its share of the reader's byte budget (its decompressed size), held until the file
    /// is dropped after its batch: what is in flight stays within the budget.
    pub held: Option<crate::core::budget::Lease>,
}

/// Where a file goes (rules.md §1, "Where a file goes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    Processed,
    Error,
    Broken,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Processed => "processed",
            Disposition::Error => "error",
            Disposition::Broken => "broken",
        }
    }
}

/// What happened to one file of a batch.
#[derive(Debug, Clone)]
pub struct FileResult {
    pub disposition: Disposition,
    /// Why it was refused (error/ or broken/).
    pub reason: Option<String>,
    /// Set when committed; the dry run has none.
    pub load_id: Option<i64>,
    pub workshiftid: Option<i64>,
    pub shift: Option<PlannedFile>,
    pub documents: usize,
    pub items: usize,
}

impl FileResult {
    pub(super) fn of(file: &ReadFile, plan: &Result<PlannedFile, String>) -> FileResult {
        let (documents, items) = match &file.content {
            Ok(f) => (f.documents.len(), f.item_count()),
            Err(_) => (0, 0),
        };
        match (&file.content, plan) {
            (Err(b), _) => FileResult {
                disposition: Disposition::Broken,
                reason: Some(b.to_string()),
                load_id: None,
                workshiftid: None,
                shift: None,
                documents: 0,
                items: 0,
            },
            (Ok(_), Err(reason)) => FileResult {
                disposition: Disposition::Error,
                reason: Some(reason.clone()),
                load_id: None,
                workshiftid: None,
                shift: None,
                documents: 0,
                items: 0,
            },
            (Ok(_), Ok(p)) => FileResult {
                disposition: Disposition::Processed,
                reason: None,
                load_id: None,
                workshiftid: match p.shift {
                    ShiftRef::Existing(id) => Some(id),
                    ShiftRef::New(_) => None,
                },
                shift: Some(*p),
                documents,
                items,
            },
        }
    }
}

/// What loading a batch does to the ASTU export state of the shifts it writes (rules.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AstuMarking {
    /// Replay: it writes back what was loaded, so every flag stays as it is.
    Leave,
    /// A shift whose documents change loses `astu_exported_at`: its ASTU file is out of
    /// date, and `export-astu` takes it again (auto export off).
    Stale,
    /// As `Stale`, and every closed shift that a file of the batch closes or whose documents
    /// it changes gets `astu_export_due`: the auto export owes it a file. Being set in the
    /// load's own transaction, the mark survives a crash before the export.
    StaleAndDue,
}
