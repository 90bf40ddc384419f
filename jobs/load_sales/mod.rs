//! `load-sales`: sales files from the queue into the cash server DB.
//!
//! A file's way: `queue` (core) lists it → [`format`] reads and validates it → [`plan`]
//! decides its shift (pure) → [`apply`] writes a batch of files in one transaction →
//! [`engine`] batches what a reader sends and disposes of each file after the commit →
//! [`job`] (the queue) and [`replay`] (processed/ and the archives) are the two adapters
//! over the engine: where the files come from, what is recovered first, the summary.
//! [`types`] holds what the stages hand each other, so their imports point one way.

pub mod apply;
pub mod engine;
pub mod format;
pub mod job;
pub mod plan;
pub mod replay;
pub mod types;
