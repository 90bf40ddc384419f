//! csjobs: the batch jobs of a retail chain's cash server (кассовый сервер).
//!
//! `core` is what every job stands on; each other module is one job. The binary
//! (`jobs/main.rs`) parses the command line, builds the typed [`core::config::Config`],
//! runs one job and maps its result to an exit code.

pub mod archive;
pub mod core;
pub mod export_astu;
pub mod load_sales;
pub mod monitoring;
pub mod receive;
pub mod reconcile;
pub mod report;
pub mod revenue_watch;
pub mod status;
pub mod transfer;
pub mod trim_db;
pub mod trim_dicts;
