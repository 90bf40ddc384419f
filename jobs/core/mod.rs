//! The shared core every job stands on: typed configuration, database access and
//! migrations, the job lock, the job run log, the job runner (the frame of every run:
//! `runner`), the file-queue mechanics, the one CSV writer (`csv`) and logging.
//! Nothing here knows a business rule or an exit code.

pub mod budget;
pub mod config;
pub mod conninfo;
pub mod csv;
pub mod db;
pub mod duration;
pub mod error;
pub mod hash;
pub mod lock;
pub mod logging;
pub mod output;
pub mod pgpass;
pub mod ping;
pub mod prelude;
pub mod queue;
pub mod runlog;
pub mod runner;
pub mod stop;
pub mod table;

pub use error::{exit_code, JobError, Outcome};
