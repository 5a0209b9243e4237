//! The originate worker: consumes `OriginateRequested` from a durable
//! JetStream consumer that any number of workers share, admits the call
//! through the cost caps, dials through the Call Processor, and records the
//! outcome; and the caps releaser, which frees slots as calls end.
//!
//! # Invariants
//! - A message is acknowledged only after its outcome is in the store.
//! - No call is dialed twice: the dial happens only for a call this worker
//!   claimed (`OriginateClaimed`, appended with an expected version, so of
//!   racing workers one claims); a claimed call whose outcome is missing (a
//!   worker died) is dialed again only with the same `Idempotency-Key`, which
//!   the Call Processor answers without placing a second call; and an outcome
//!   is appended at most once (`OriginateDispatched` or `OriginateFailed`,
//!   never both).
//! - Credentials are decrypted here and nowhere else, just before the dial,
//!   and dropped (zeroized) right after it.

mod consumer;
mod dial;
mod judged;
mod process;
mod release;

use std::sync::Arc;
use std::time::Duration;

pub use consumer::{ensure_consumers, ORIGINATE_CONSUMER, RELEASE_CONSUMERS};
pub use process::{Attempt, Handled};

use crate::app::Deps;
use crate::callproc::CallProcessorClient;
use crate::caps::Caps;
use crate::domain::CallLimits;
use crate::secrets::Secrets;

/// Where a test can make a worker "die" (stop without acknowledging), to
/// prove that another worker finishes the call without a second dial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// After `OriginateClaimed` is appended, before the dial.
    AfterClaim,
    /// After the Call Processor answered, before the outcome is appended.
    AfterDial,
    /// After the outcome is appended, before the acknowledgement.
    BeforeAck,
}

/// Everything a worker needs; cheap to clone.
#[derive(Clone)]
pub struct Worker {
    pub deps: Deps,
    pub caps: Caps,
    pub secrets: Arc<Secrets>,
    pub client: CallProcessorClient,
    /// Where the Call Processor posts status callbacks.
    pub callback_url: String,
    /// Recorded in `OriginateClaimed`.
    pub worker_id: String,
    pub default_limits: CallLimits,
    /// How long JetStream waits for an acknowledgement before redelivering.
    pub ack_wait: Duration,
    /// Calls handled at once by this worker.
    pub concurrency: usize,
    /// How long after its claim an unanswered dial is retried (same key)
    /// before the call is recorded as failed.
    pub give_up: Duration,
    /// Fault injection for tests; `None` in production.
    pub crash: Option<CrashPoint>,
}
