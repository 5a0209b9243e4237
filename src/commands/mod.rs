//! Commands: one module each, holding the command and its decision.
//!
//! A decision is a pure function of the folded state and the command: it
//! returns the events to append or a `Rejection`. It does no IO, reads no
//! clock and draws no random numbers; everything it needs is in its inputs.
//! Each command also says which streams its decision reads (`write::Command`);
//! `write::run` does the IO around it: load them, decide, append, and decide
//! again on fresh state after a conflict.

pub mod attach_number;
pub mod call;
pub mod create_provider;
pub mod delete_provider;
pub mod dial;
pub mod originate;
pub mod release_number;
pub mod set_destinations;
pub mod snapshot;
pub mod state;
pub mod update_limits;
pub mod update_number;
pub mod update_provider;

use crate::domain::FieldError;

/// Why a command was refused. Refusing is not failing: nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The target does not exist for this tenant (another tenant's resource
    /// is answered exactly the same).
    NotFound(&'static str),
    /// Bad input, by field.
    Invalid(Vec<FieldError>),
    /// The command conflicts with the current state.
    Conflict(String),
    /// `If-Match` named another version.
    PreconditionFailed { current: i64 },
    /// The tenant may not call from this number (it does not hold it, or
    /// not with outbound enabled): one answer whoever holds it.
    CallerIdNotAllowed,
}

impl Rejection {
    pub fn invalid(field: &str, message: &str) -> Self {
        Rejection::Invalid(vec![FieldError::new(field, message)])
    }
}

/// Checks an `If-Match` version against the current one.
pub fn check_if_match(if_match: Option<i64>, current: i64) -> Result<(), Rejection> {
    match if_match {
        Some(v) if v != current => Err(Rejection::PreconditionFailed { current }),
        _ => Ok(()),
    }
}
