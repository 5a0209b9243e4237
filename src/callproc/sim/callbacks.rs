//! A simulated call's life: signed status callbacks after the configured
//! delays, one at a time: each (with its retries) is done before the next
//! is sent, so a receiver sees them in order.
//!
//! ringing → answered → completed(duration_s), or ringing → busy /
//! no_answer / failed (duration_s 0). A hang-up ends a ringing call as
//! `canceled` and an answered one as `completed` with the time talked so far.
//! Shutdown stops the call silently.

use std::time::{Duration, Instant};

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use super::config::Outcome;
use super::state::SimState;
use crate::callproc::report::{post_signed, timestamp, StatusReport};

/// Attempts per callback POST, and the first retry delay (doubling).
const CALLBACK_ATTEMPTS: u32 = 4;
const CALLBACK_RETRY: Duration = Duration::from_millis(50);

/// Everything a call task needs, fixed when the call was dialed.
pub(super) struct Call {
    pub call_id: String,
    pub provider_call_id: String,
    pub url: String,
    pub ring_delay: Duration,
    pub answer_delay: Duration,
    pub outcome: Outcome,
    pub duration_s: u64,
    pub hold: Duration,
    pub secret: SecretString,
}

enum Waited {
    Elapsed,
    HungUp,
    Shutdown,
}

async fn wait(state: &SimState, hangup: &CancellationToken, d: Duration) -> Waited {
    tokio::select! {
        _ = state.shutdown().cancelled() => Waited::Shutdown,
        _ = hangup.cancelled() => Waited::HungUp,
        _ = tokio::time::sleep(d) => Waited::Elapsed,
    }
}

/// Runs the call to its end state.
pub(super) async fn run(state: SimState, call: Call, hangup: CancellationToken) {
    let end = lifecycle(&state, &call, &hangup).await;
    // The call is over when the line drops, before the carrier reports it:
    // a caller's cap frees its slot only on the report, so a call ended
    // here can never be counted live beside the one that takes its slot.
    state.ended(&call.call_id);
    if let Some((status, duration_s)) = end {
        send(&state, &call, status, Some(duration_s)).await;
    }
}

/// Sends the progress callbacks; returns the end state still to send.
async fn lifecycle(
    state: &SimState,
    call: &Call,
    hangup: &CancellationToken,
) -> Option<(&'static str, u64)> {
    match wait(state, hangup, call.ring_delay).await {
        Waited::Elapsed => send(state, call, "ringing", None).await,
        Waited::HungUp => return Some(("canceled", 0)),
        Waited::Shutdown => return None,
    }
    match wait(state, hangup, call.answer_delay).await {
        Waited::Elapsed => {}
        Waited::HungUp => return Some(("canceled", 0)),
        Waited::Shutdown => return None,
    }
    if call.outcome != Outcome::Completed {
        return Some((call.outcome.as_str(), 0));
    }
    send(state, call, "answered", None).await;
    let started = Instant::now();
    match wait(state, hangup, call.hold).await {
        Waited::Elapsed => Some(("completed", call.duration_s)),
        Waited::HungUp => Some(("completed", talked(call, started.elapsed()))),
        Waited::Shutdown => None,
    }
}

/// The duration a call hung up after `elapsed` reports, scaled like the
/// hold (a 60 s call held 60 ms and hung up at 30 ms talked 30 s).
fn talked(call: &Call, elapsed: Duration) -> u64 {
    if call.hold.is_zero() {
        return call.duration_s;
    }
    let share = elapsed.as_secs_f64() / call.hold.as_secs_f64();
    ((call.duration_s as f64 * share) as u64).min(call.duration_s)
}

/// POSTs one signed callback, retrying non-2xx and connection errors.
async fn send(state: &SimState, call: &Call, status: &str, duration_s: Option<u64>) {
    let body = StatusReport {
        call_id: &call.call_id,
        provider_call_id: &call.provider_call_id,
        status,
        timestamp: timestamp(Utc::now()),
        duration_s,
    }
    .body();
    let mut delay = CALLBACK_RETRY;
    for attempt in 1..=CALLBACK_ATTEMPTS {
        let secret = call.secret.expose_secret().as_bytes();
        let Err(why) = post_signed(state.http(), &call.url, secret, &body).await else {
            return;
        };
        tracing::warn!(call_id = %call.call_id, status, attempt, error = %why, "sim callback failed");
        if attempt == CALLBACK_ATTEMPTS || state.shutdown().is_cancelled() {
            return;
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
}
