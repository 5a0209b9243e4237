//! What a carrier's answer means for the one question that matters: may a
//! call exist now?

use std::time::Duration;

pub(crate) use crate::callproc::client::describe;

/// A carrier request that did not return what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CarrierError {
    /// The carrier refused and no call exists (bad number, bad
    /// credentials, unowned From): final, answered as a 4xx.
    Final { status: u16, error: String },
    /// The carrier refused before creating anything (rate or concurrency
    /// limit, connection refused): safe to post again, after `retry_after`
    /// when the carrier said.
    NotPlaced {
        retry_after: Option<Duration>,
        error: String,
    },
    /// No usable answer (timeout, reset, 5xx): the call may or may not
    /// exist. Only a reconcile against the carrier's call list decides.
    Unknown { error: String },
}

impl CarrierError {
    pub fn message(&self) -> &str {
        match self {
            CarrierError::Final { error, .. }
            | CarrierError::NotPlaced { error, .. }
            | CarrierError::Unknown { error } => error,
        }
    }
}

/// A transport error classified: refused connections never reached the
/// carrier; anything after the request may have left is unknown.
pub fn transport(e: reqwest::Error) -> CarrierError {
    let connect = e.is_connect();
    let error = describe(e);
    if connect {
        CarrierError::NotPlaced {
            retry_after: None,
            error,
        }
    } else {
        CarrierError::Unknown { error }
    }
}

/// `Retry-After` in seconds, as carriers send it (shared with the worker's
/// Call Processor client).
pub use crate::callproc::client::retry_after;
