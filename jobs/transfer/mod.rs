//! `transfer`: staged rows of the cash server DB's `*temp` tables into the bonus DB, each
//! exactly once (shared/spec/rules.md §2).
//!
//! read ([`staged::read`], cash server DB: the rows not yet transferred, in id order) →
//! plan (per card, only the newest row of a batch is upserted) → apply ([`staged::apply`],
//! bonus DB, one transaction: claim the ids, apply what was newly claimed) → dispose
//! ([`staged::mark`], cash server DB: `transferred_at`).

pub mod done;
pub mod job;
pub mod staged;
