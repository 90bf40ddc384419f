//! `load-sales`: sales files from the queue into the cash server DB.
//!
//! A file's way: `queue` (core) lists it → [`format`] reads and validates it → [`plan`]
//! decides its shift (pure) → [`apply`] writes a batch of files in one transaction →
//! [`job`] moves each file after the commit and writes the summary.

pub mod apply;
pub mod format;
pub mod job;
pub mod plan;
pub mod replay;
pub mod synth;
