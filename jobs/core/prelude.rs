//! What a job's module takes from `core` in every case, in one import
//! (`use crate::core::prelude::*;`): its settings, its connection, the frame of its run
//! (`core::runner`) and its result. Anything else a job needs it imports by name.

pub use super::{
    config::Config,
    db::{self, Database},
    output,
    runner::{Ctx, Frame, Ran},
    JobError, Outcome,
};
