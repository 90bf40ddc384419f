//! `transfer`: staged rows of the cash server DB's `*temp` tables into the bonus DB, each
//! exactly once (shared/spec/rules.md §2).
//!
//! read ([`staged::read`], cash server DB: the rows not yet transferred, in id order, from
//! the watermark past the done runs of [`done::DoneSet`]) →
//! plan (per card, only the newest row of a batch is upserted) → apply ([`staged::apply`],
//! bonus DB, one transaction: claim the ids, apply what was newly claimed) → dispose
//! ([`done::record`], cash server DB: one done row per batch; refused rows marked) → and at
//! the start and end of each table [`done::compact`] moves the watermark.

pub mod done;
pub mod job;
pub mod staged;
pub mod types;
