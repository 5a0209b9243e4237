//! What the caps answer: admissions, refusals, usage and errors.

use chrono::NaiveDate;
use serde::Serialize;

/// One of the four caps. The names (`as_str`) are the ones the API, the
/// `OriginateRejected` event and the `cap-exceeded` problem carry.
pub use events::Dimension;

/// The dimension the reserve script reports a refusal with (1-based, in
/// `Dimension::ALL` order).
pub(crate) fn dimension_from_code(code: i64) -> Option<Dimension> {
    usize::try_from(code)
        .ok()
        .and_then(|c| c.checked_sub(1))
        .and_then(|i| Dimension::ALL.get(i).copied())
}

/// The answer to `Caps::reserve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The call holds a slot in every cap (now, or from an earlier reserve
    /// of the same call id), or it is a rejected call marked done by
    /// `Caps::withdraw`, counted nowhere: its claim cannot succeed, as the
    /// store holds its rejection.
    Admitted,
    /// A cap refused it; no counter changed.
    Refused(Refusal),
}

/// What `Caps::withdraw` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdrawal {
    /// The reservation is taken back from every counter.
    Withdrawn,
    /// Nothing to take back: never admitted (now marked done, so a later
    /// reserve counts nothing), released or withdrawn already, or forgotten
    /// by a rebuild (which counts only claimed calls).
    NotHeld,
    /// Admitted, and the number it was counted against is needed
    /// (`CountedNumber::Unknown` was passed); nothing changed.
    NeedsNumber,
}

/// The calling number a reservation counted, as `Caps::withdraw` is told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountedNumber {
    /// Not known to the caller: ask whether there is anything to withdraw.
    Unknown,
    /// What the reservation was given (`None`: no number of its own).
    Known(Option<events::NumberId>),
}

/// Why a call was refused: the first failing cap, in `Dimension::ALL` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub dimension: Dimension,
    pub limit: u64,
    /// The counter's value when the call was refused.
    pub current: u64,
    /// When a retry can first succeed (at least 1): 1 for `concurrent` (a
    /// slot frees whenever a call ends), the time until the window has room
    /// for `calls_per_minute`, the time to 00:00 UTC for the daily caps.
    pub retry_after_s: u64,
}

/// The live counters beside a tenant's limits (`GET /call-limits/usage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Admitted calls not yet ended whose lease has not lapsed.
    pub concurrent: u64,
    /// Admissions in the sliding 60-second window.
    pub calls_last_minute: u64,
    /// Admissions since 00:00 UTC of `day`.
    pub daily_calls: u64,
    /// Billed minutes of calls that ended on `day`.
    pub daily_minutes: u64,
    /// The UTC day the daily counters are for.
    pub day: NaiveDate,
}

/// What can go wrong enforcing the caps. Every variant is a failure to
/// decide: the caller must not dial (and should retry later).
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("event store: {0}")]
    Store(#[from] sqlx::Error),
    /// The counters vanished again right after each rebuild.
    #[error("caps counters lost repeatedly while rebuilding")]
    Unstable,
    #[error("unexpected caps script reply: {0}")]
    Reply(String),
}
