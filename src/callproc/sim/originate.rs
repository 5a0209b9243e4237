//! `POST /telephony/originate` of the simulator.
//!
//! It checks what a real Call Processor would (a well-formed body, an
//! `Idempotency-Key` equal to `call_id`), answers a repeat of a dialed
//! `call_id` with the first `provider_call_id` without dialing again, and
//! otherwise injects the configured failures before or after recording the
//! dial. Credentials are parsed into `PlainCredentials` (zeroized, redacted)
//! and dropped unused; parse errors get a fixed message because serde's may
//! quote a credential value; the raw body is wiped when we own it alone.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde_json::json;

use super::callbacks::{self, Call};
use super::state::{Dial, Recorded, SimState};
use crate::callproc::wire::Incoming;

pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn answer(provider_call_id: String) -> Response {
    Json(json!({ "provider_call_id": provider_call_id })).into_response()
}

/// True with probability `rate` (0 never, 1 always).
fn roll(rate: f64) -> bool {
    rand::random::<f64>() < rate
}

pub(super) async fn originate(
    State(state): State<SimState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.count_request();
    let req = match Incoming::parse(&headers, body) {
        Ok(req) => req,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let Incoming {
        call_id,
        provider,
        credentials,
        from_number,
        to_number,
        status_callback_url,
        ..
    } = req;
    drop(credentials);
    if let Some(provider_call_id) = state.existing(&call_id) {
        return answer(provider_call_id);
    }
    let config = state.config();
    if roll(config.fail_rate) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "simulated outage");
    }
    if roll(config.reject_rate) {
        return error(StatusCode::BAD_REQUEST, "simulated rejection");
    }
    let provider_call_id = format!("SIM{}", hex::encode(rand::random::<[u8; 12]>()));
    let dial = Dial {
        call_id: call_id.clone(),
        provider_call_id: provider_call_id.clone(),
        at: Utc::now(),
        from_number,
        to_number,
        provider,
    };
    let hangup = match state.record(dial) {
        Recorded::New(hangup) => hangup,
        Recorded::Existing(earlier) => return answer(earlier),
    };
    tracing::info!(%call_id, %provider_call_id, provider = provider.as_str(), "sim dialed");
    let call = Call {
        call_id,
        provider_call_id: provider_call_id.clone(),
        url: status_callback_url,
        ring_delay: config.ring_delay,
        answer_delay: config.answer_delay,
        outcome: config.outcome_mix.pick(),
        duration_s: config.call_duration_s,
        hold: config
            .call_hold
            .unwrap_or(std::time::Duration::from_secs(config.call_duration_s)),
        secret: config.callback_secret.clone(),
    };
    tokio::spawn(callbacks::run(state.clone(), call, hangup));
    if roll(config.timeout_rate) {
        // Dialed, but the answer comes after the client gave up.
        tokio::select! {
            _ = state.shutdown().cancelled() => {}
            _ = tokio::time::sleep(config.timeout_delay) => {}
        }
    }
    answer(provider_call_id)
}
