//! Feeding projections: the global order in, read tables and checkpoint out.
//!
//! # Invariants
//! - A batch's table changes and the checkpoint commit in one transaction: a
//!   crash between them cannot apply an event twice or lose one.
//! - An event a projection cannot apply stops that projection; it is logged,
//!   counted (`switchboard_projector_stopped`), recorded in its checkpoint row
//!   and reported by `/readyz`. It is never skipped.
//! - Each projection runs in one process at a time (leader lock).
//! - A batch transaction locks the checkpoint row before touching any table,
//!   so a live rebuild's swap (`swap`) can hold the projection still.

mod progress;
mod rebuild;
mod runner;
pub mod swap;

pub use progress::{Progress, PROGRESS_CHANNEL};
pub use rebuild::rebuild_to_schema;
pub use runner::{checkpoint_name, ensure_schema, rebuild_into, Runner, StepError, StepOutcome};
pub use swap::{rebuild_and_swap, SwapReport};

use std::sync::Arc;

use projections::Projection;

/// The projections `serve` and `project` run.
pub fn all() -> Vec<Arc<dyn Projection>> {
    projections::all()
}
