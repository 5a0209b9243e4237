//! `POST /telephony/originate` of the carrier adapter: one carrier POST per
//! call_id, however often and from however many workers it is asked.
//!
//! Claim the row (durable before anything is sent), then by what it says:
//! post; answer what an earlier request got; tell a concurrent request to
//! come back (503 + Retry-After); or, when an earlier POST's answer was lost
//! (its sender crashed or timed out and the lease lapsed), reconcile: list
//! the carrier's calls From → To since that POST and adopt the one no other
//! dial holds. Only when the list shows none is the call posted again, and
//! only because the carrier itself says it has no such call.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use events::{CallId, ProviderKind};
use serde_json::json;

use super::dials::{self, Claim, NewDial};
use super::outcome::CarrierError;
use super::{plivo, twilio, Adapter, Dial, Found};
use crate::callproc::wire::Incoming;
use crate::secrets::redact::redact;
use crate::secrets::PlainCredentials;

/// Longest carrier error text answered.
const MAX_ERROR_CHARS: usize = 300;

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn answer(carrier_call_id: &str) -> Response {
    Json(json!({ "provider_call_id": carrier_call_id })).into_response()
}

/// 503 with `Retry-After` (whole seconds, at least 1): the worker's client
/// retries 5xx with the same Idempotency-Key.
fn come_back(after: Duration, message: &str) -> Response {
    let mut resp = error(StatusCode::SERVICE_UNAVAILABLE, message);
    let secs = after.as_secs_f64().ceil().max(1.0) as u64;
    resp.headers_mut()
        .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

fn storage_error(e: sqlx::Error) -> Response {
    tracing::error!(error = %e, "carrier dial store failed");
    come_back(Duration::from_secs(1), "dial store unavailable")
}

/// The credential that signs this carrier's callbacks: the auth token, for
/// every carrier we speak.
fn signing_token(creds: &PlainCredentials) -> Option<&str> {
    creds.expose("auth_token")
}

pub(super) async fn originate(
    State(adapter): State<Adapter>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = match Incoming::parse(&headers, body) {
        Ok(req) => req,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let Ok(call_id) = req.call_id.parse::<CallId>() else {
        return error(StatusCode::BAD_REQUEST, "call_id must be a UUID");
    };
    let Some(token) = signing_token(&req.credentials) else {
        return error(StatusCode::BAD_REQUEST, "credentials need an auth_token");
    };
    let sealed = adapter.inner.seal.seal(call_id, token);
    let new = NewDial {
        call_id,
        provider: req.provider.as_str(),
        from_number: &req.from_number,
        to_number: &req.to_number,
        callback_url: &req.status_callback_url,
        sealed_auth: &sealed,
    };
    let started = Instant::now();
    let claim = match dials::claim(&adapter.inner.pool, &new, adapter.lease()).await {
        Ok(claim) => claim,
        Err(e) => return storage_error(e),
    };
    let settings = &adapter.inner.settings;
    let dial = Dial {
        call_id,
        from: &req.from_number,
        to: &req.to_number,
        callback_base: adapter.callback_base(req.provider, call_id),
        ring_timeout_s: settings.ring_timeout_s,
        twiml: &settings.twiml,
    };
    let job = Job {
        adapter: &adapter,
        kind: req.provider,
        creds: &req.credentials,
        dial: &dial,
        started,
    };
    match claim {
        Claim::Post => job.post().await,
        Claim::Placed(id) => answer(&id),
        Claim::Failed { status, error: e } => error(status_code(status), &e),
        Claim::Busy { retry_after } => come_back(retry_after, "this call is being dialed; retry"),
        Claim::Reconcile { since } => job.reconcile(since).await,
    }
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status)
        .ok()
        .filter(|s| s.is_client_error())
        .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
}

/// One request's work on one dial it owns (the lease is ours).
struct Job<'a> {
    adapter: &'a Adapter,
    kind: ProviderKind,
    creds: &'a PlainCredentials,
    dial: &'a Dial<'a>,
    started: Instant,
}

impl Job<'_> {
    fn pool(&self) -> &sqlx::PgPool {
        &self.adapter.inner.pool
    }

    fn base(&self) -> &str {
        self.adapter.base_url(self.kind)
    }

    /// Carrier text made safe to answer, log or store.
    fn clean(&self, text: &str) -> String {
        redact(text, self.creds)
            .chars()
            .take(MAX_ERROR_CHARS)
            .collect()
    }

    async fn post(&self) -> Response {
        if let Err(e) = dials::posting(self.pool(), self.dial.call_id).await {
            // Nothing sent: the lease lapses and a retry reconciles (and
            // finds nothing), then posts.
            return storage_error(e);
        }
        let http = &self.adapter.inner.carriers;
        let created = match self.kind {
            ProviderKind::Twilio => twilio::create(http, self.base(), self.creds, self.dial).await,
            ProviderKind::Plivo | ProviderKind::Vobiz => {
                plivo::create(
                    http,
                    plivo::Flavor::of(self.kind),
                    self.base(),
                    self.creds,
                    self.dial,
                )
                .await
            }
        };
        match created {
            Ok(id) => self.placed(&id).await,
            Err(e) => self.refused(e).await,
        }
    }

    async fn placed(&self, carrier_call_id: &str) -> Response {
        match dials::placed(self.pool(), self.dial.call_id, carrier_call_id).await {
            Ok(id) => {
                tracing::info!(call_id = %self.dial.call_id, carrier = self.kind.as_str(), carrier_call_id = %id, "carrier placed the call");
                answer(&id)
            }
            // The call exists; the row still says posting, so the next
            // request reconciles and adopts this very call.
            Err(e) => storage_error(e),
        }
    }

    async fn refused(&self, e: CarrierError) -> Response {
        let call_id = self.dial.call_id;
        let message = self.clean(e.message());
        tracing::warn!(%call_id, carrier = self.kind.as_str(), error = %message, "carrier did not place the call");
        match e {
            CarrierError::Final { status, .. } => {
                if let Err(e) = dials::failed(self.pool(), call_id, status, &message).await {
                    return storage_error(e);
                }
                error(status_code(status), &message)
            }
            CarrierError::NotPlaced { retry_after, .. } => {
                if let Err(e) = dials::ready(self.pool(), call_id).await {
                    return storage_error(e);
                }
                come_back(retry_after.unwrap_or(Duration::from_secs(1)), &message)
            }
            CarrierError::Unknown { .. } => {
                // The lease stays: only a reconcile after it lapses decides.
                let left = self.adapter.lease().saturating_sub(self.started.elapsed());
                come_back(
                    left,
                    &format!("carrier answer lost, reconciling: {message}"),
                )
            }
        }
    }

    async fn find(&self, since: DateTime<Utc>) -> Result<Vec<Found>, CarrierError> {
        let http = &self.adapter.inner.carriers;
        match self.kind {
            ProviderKind::Twilio => {
                twilio::find(http, self.base(), self.creds, self.dial, since).await
            }
            ProviderKind::Plivo | ProviderKind::Vobiz => {
                plivo::find(
                    http,
                    plivo::Flavor::of(self.kind),
                    self.base(),
                    self.creds,
                    self.dial,
                    since,
                )
                .await
            }
        }
    }

    async fn reconcile(&self, since: DateTime<Utc>) -> Response {
        let call_id = self.dial.call_id;
        tracing::warn!(%call_id, carrier = self.kind.as_str(), %since, "reconciling a dial whose answer was lost");
        let found = match self.find(since).await {
            Ok(found) => found,
            Err(CarrierError::Final { status, error: e }) => {
                let message = self.clean(&e);
                if let Err(e) = dials::failed(self.pool(), call_id, status, &message).await {
                    return storage_error(e);
                }
                return error(status_code(status), &message);
            }
            Err(e) => {
                // Could not ask: keep the state, let the next request try.
                let _ = dials::release(self.pool(), call_id).await;
                return come_back(Duration::from_secs(1), &self.clean(e.message()));
            }
        };
        for candidate in found {
            match dials::carrier_id_taken(self.pool(), &candidate.carrier_call_id).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => return storage_error(e),
            }
            match dials::placed(self.pool(), call_id, &candidate.carrier_call_id).await {
                Ok(id) => {
                    tracing::info!(%call_id, carrier_call_id = %id, "reconciled: the carrier had placed the call");
                    return answer(&id);
                }
                // Another dial adopted it a moment ago: try the next one.
                Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23505") => continue,
                Err(e) => return storage_error(e),
            }
        }
        tracing::warn!(%call_id, "reconciled: the carrier lists no such call; posting it");
        self.post().await
    }
}
