//! Carrier status callbacks → Switchboard's signed callbacks.
//!
//! Each carrier calls back below `{public_url}/carriers/{carrier}/{call_id}`.
//! The dial's row gives the sealed token that verifies the carrier's
//! signature and the `status_callback_url` to forward to. A callback that
//! does not verify is 401 and goes nowhere. The forward is retried a few
//! times; if Switchboard still does not take it, the carrier gets a 502 so
//! that a carrier which retries callbacks does (Switchboard applies each
//! status once, so a repeat is harmless).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use events::{CallId, ProviderKind};
use secrecy::ExposeSecret;

use super::dials::{self, DialRecord};
use super::{plivo, twilio, Adapter, CallStatus};
use crate::callproc::report::{post_signed, timestamp, StatusReport};

const FORWARD_ATTEMPTS: u32 = 3;
const FORWARD_RETRY: Duration = Duration::from_millis(100);

fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The dial a callback names, if it is this carrier's.
async fn dial_of(
    adapter: &Adapter,
    kind: ProviderKind,
    call_id: &str,
) -> Result<(CallId, DialRecord), Response> {
    let not_found = || (StatusCode::NOT_FOUND, "no such dial").into_response();
    let call_id: CallId = call_id.parse().map_err(|_| not_found())?;
    match dials::record(&adapter.inner.pool, call_id).await {
        Ok(Some(rec)) if rec.provider == kind.as_str() => Ok((call_id, rec)),
        Ok(_) => Err(not_found()),
        Err(e) => {
            tracing::error!(error = %e, "carrier dial store failed");
            Err(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
    }
}

/// The URL the carrier signed: the one we gave it, i.e. our public base
/// and the path and query it called.
fn signed_url(adapter: &Adapter, uri: &axum::http::Uri) -> String {
    let tail = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    format!("{}{tail}", adapter.inner.public_url)
}

/// `POST /carriers/twilio/{call_id}/status`.
pub(super) async fn twilio(
    State(adapter): State<Adapter>,
    Path(call_id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (call_id, rec) = match dial_of(&adapter, ProviderKind::Twilio, &call_id).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let params = form(&body);
    let Some(token) = adapter.inner.seal.open(call_id, &rec.sealed_auth) else {
        return unverifiable(call_id);
    };
    let given = headers
        .get(twilio::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !twilio::verify(&token, &signed_url(&adapter, &uri), &params, given) {
        tracing::warn!(%call_id, "twilio callback with a bad signature refused");
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    match twilio::status(&params) {
        Ok(Some(status)) => forward(&adapter, call_id, &rec, status).await,
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Err(why) => (StatusCode::BAD_REQUEST, why).into_response(),
    }
}

/// One Plivo-style callback as it arrived.
pub(super) struct Arrived {
    call_id: String,
    event: String,
    get: bool,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
}

/// `/carriers/plivo/{call_id}/{ring|answer|hangup}`.
pub(super) async fn plivo(
    State(adapter): State<Adapter>,
    method: Method,
    Path((call_id, event)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let get = method == Method::GET;
    let arrived = Arrived {
        call_id,
        event,
        get,
        uri,
        headers,
        body,
    };
    plivo_like(adapter, ProviderKind::Plivo, arrived).await
}

/// `/carriers/vobiz/{call_id}/{ring|answer|hangup}`.
pub(super) async fn vobiz(
    State(adapter): State<Adapter>,
    method: Method,
    Path((call_id, event)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let get = method == Method::GET;
    let arrived = Arrived {
        call_id,
        event,
        get,
        uri,
        headers,
        body,
    };
    plivo_like(adapter, ProviderKind::Vobiz, arrived).await
}

async fn plivo_like(adapter: Adapter, kind: ProviderKind, arrived: Arrived) -> Response {
    let Arrived {
        call_id,
        event,
        get,
        uri,
        headers,
        body,
    } = arrived;
    let Some(event) = plivo::Event::parse(&event) else {
        return (StatusCode::NOT_FOUND, "no such callback").into_response();
    };
    let (call_id, rec) = match dial_of(&adapter, kind, &call_id).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    // GET callbacks carry their fields in the query; POSTs in the body.
    let posted = if get { Vec::new() } else { form(&body) };
    let mut params = posted.clone();
    if let Some(q) = uri.query() {
        params.extend(form(q.as_bytes()));
    }
    let Some(token) = adapter.inner.seal.open(call_id, &rec.sealed_auth) else {
        return unverifiable(call_id);
    };
    let flavor = plivo::Flavor::of(kind);
    if !plivo::verify(
        flavor,
        &token,
        get,
        &signed_url(&adapter, &uri),
        &posted,
        &headers,
    ) {
        tracing::warn!(%call_id, carrier = kind.as_str(), "callback with a bad signature refused");
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    let status = match plivo::status(event, &params) {
        Ok(status) => status,
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    let forwarded = match status {
        Some(status) => forward(&adapter, call_id, &rec, status).await,
        None => StatusCode::NO_CONTENT.into_response(),
    };
    // The answer URL must return the call's XML, whatever we forwarded.
    if event == plivo::Event::Answer && forwarded.status().is_success() {
        let xml = adapter.inner.settings.plivo_xml.clone();
        return ([(axum::http::header::CONTENT_TYPE, "application/xml")], xml).into_response();
    }
    forwarded
}

/// A row sealed under another key (the callback secret changed): the
/// carrier's signature cannot be checked, so nothing is forwarded.
fn unverifiable(call_id: CallId) -> Response {
    tracing::error!(%call_id, "a dial's sealed token does not open: callback refused");
    (StatusCode::UNAUTHORIZED, "cannot verify").into_response()
}

/// Sends `status` to Switchboard, signed; records the carrier id if the
/// callback beat the create answer (it proves the call exists).
async fn forward(
    adapter: &Adapter,
    call_id: CallId,
    rec: &DialRecord,
    status: CallStatus,
) -> Response {
    let recorded = match &rec.carrier_call_id {
        Some(id) if *id != status.carrier_call_id => {
            tracing::warn!(%call_id, "callback for another carrier call of this dial ignored");
            return (StatusCode::CONFLICT, "not this dial's call").into_response();
        }
        Some(id) => id.clone(),
        None => match dials::placed(&adapter.inner.pool, call_id, &status.carrier_call_id).await {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(error = %e, "carrier dial store failed");
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        },
    };
    let call = call_id.to_string();
    let body = StatusReport {
        call_id: &call,
        provider_call_id: &recorded,
        status: status.status,
        timestamp: timestamp(status.timestamp.unwrap_or_else(Utc::now)),
        duration_s: status.duration_s,
    }
    .body();
    let secret = adapter.inner.callback_secret.expose_secret().as_bytes();
    let mut delay = FORWARD_RETRY;
    for attempt in 1..=FORWARD_ATTEMPTS {
        match post_signed(&adapter.inner.callbacks, &rec.callback_url, secret, &body).await {
            Ok(()) => return StatusCode::NO_CONTENT.into_response(),
            Err(why) => {
                tracing::warn!(%call_id, status = status.status, attempt, error = %why, "forwarding a callback failed");
            }
        }
        if attempt < FORWARD_ATTEMPTS {
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
    StatusCode::BAD_GATEWAY.into_response()
}
