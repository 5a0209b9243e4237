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
use events::ProviderKind;
use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroize;

use super::callbacks::{self, Call};
use super::state::{Dial, Recorded, SimState};
use crate::secrets::PlainCredentials;

#[derive(Deserialize)]
struct OriginateBody {
    call_id: String,
    session_id: String,
    provider: ProviderKind,
    credentials: PlainCredentials,
    from_number: String,
    to_number: String,
    agent_id: String,
    status_callback_url: String,
}

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
    let parsed = serde_json::from_slice::<OriginateBody>(&body);
    if let Ok(mut raw) = body.try_into_mut() {
        raw.as_mut().zeroize();
    }
    let Ok(req) = parsed else {
        return error(StatusCode::BAD_REQUEST, "invalid originate body");
    };
    if let Err(message) = validate(&req, &headers) {
        return error(StatusCode::BAD_REQUEST, message);
    }
    let OriginateBody {
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

fn validate(req: &OriginateBody, headers: &HeaderMap) -> Result<(), &'static str> {
    let key = headers
        .get("idempotency-key")
        .ok_or("missing Idempotency-Key")?;
    if key.as_bytes() != req.call_id.as_bytes() {
        return Err("Idempotency-Key must equal call_id");
    }
    let required = [
        &req.call_id,
        &req.session_id,
        &req.agent_id,
        &req.from_number,
        &req.to_number,
    ];
    if required.iter().any(|s| s.trim().is_empty()) {
        return Err("call_id, session_id, agent_id, from_number and to_number are required");
    }
    if req.credentials.is_empty() {
        return Err("credentials must not be empty");
    }
    let url = &req.status_callback_url;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err("status_callback_url must be an http(s) URL");
    }
    Ok(())
}
