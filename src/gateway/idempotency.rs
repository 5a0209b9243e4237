//! `Idempotency-Key` on writes: the same key with the same request within
//! 24 h returns the first response and appends nothing; with a different
//! request, 422.
//!
//! # Design
//! The key is claimed *before* the request runs, by inserting a row with no
//! response yet; a concurrent duplicate finds it and gets 409 (still in
//! progress) instead of running the command a second time. When the request
//! ends, its response (status, a few headers, body) is stored in the row; a
//! 5xx response is not stored, so the client can retry with the same key,
//! unless the request had already committed events (`Committed`): then the
//! 5xx is the answer, since a retry would append again. A claim abandoned by
//! a crashed process is taken over after a minute.

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use events::TenantId;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::auth::Principal;
use crate::store::Guard;

use super::json::BODY_LIMIT;
use super::{ApiError, Gateway};

const HEADER: &str = "idempotency-key";
/// Headers a replay carries again.
const KEPT: &[&str] = &[
    "content-type",
    "etag",
    "location",
    "retry-after",
    "ratelimit",
    "ratelimit-policy",
];

/// The middleware: passes through anything that is not a write with a key.
pub async fn layer(State(gw): State<Gateway>, req: Request, next: Next) -> Response {
    let (key, principal) = match keyed(&gw, &req) {
        Ok(Some(keyed)) => keyed,
        Ok(None) => return next.run(req).await,
        Err(refused) => return *refused,
    };
    let tenant = principal.tenant_id;
    let (mut parts, body) = req.into_parts();
    // The handler's extractor takes it from here instead of verifying again.
    parts.extensions.insert(principal);
    let bytes = match to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => return ApiError::PayloadTooLarge.into_response(),
    };
    let hash = request_hash(
        &parts.method,
        parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or(""),
        &bytes,
    );
    match claim(&gw, tenant, &key, &hash).await {
        Ok(Claim::Ours) => {}
        Ok(Claim::Replay(resp)) => return resp,
        Err(e) => return e.into_response(),
    }
    parts.extensions.insert(ClaimedKey {
        tenant_id: tenant,
        key: key.clone(),
    });
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    match store(&gw, tenant, &key, resp).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

/// The key a request runs under and who sent it: `None` when it has nothing
/// to key (not a write, no key, a token the handler would refuse, no such
/// route), `Err` with the answer when the key or the scope is refused.
fn keyed(gw: &Gateway, req: &Request) -> Result<Option<(String, Principal)>, Box<Response>> {
    let is_write = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let Some(key) = req.headers().get(HEADER).filter(|_| is_write) else {
        return Ok(None);
    };
    let Some(key) = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
    else {
        let e = ApiError::field(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        );
        return Err(Box::new(e.into_response()));
    };
    // The same bearer parsing as the handlers' extractor: a request the
    // handler would authenticate is always keyed. One it would refuse has
    // nothing to key.
    let principal = crate::auth::bearer(req.headers())
        .ok()
        .and_then(|t| gw.verifier.verify(t).ok());
    let Some(principal) = principal else {
        return Ok(None);
    };
    // Authorized before anything is replayed: a token without the route's
    // scope gets its 403 here, and never sees (or claims) another caller's
    // key. A write to no route has nothing to key.
    let Some(scope) = super::write_scope(req.method(), req.uri().path()) else {
        return Ok(None);
    };
    principal
        .require(scope)
        .map_err(IntoResponse::into_response)?;
    Ok(Some((key.to_owned(), principal)))
}

fn request_hash(method: &Method, path: &str, body: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(method.as_str());
    h.update([0]);
    h.update(path);
    h.update([0]);
    h.update(body);
    h.finalize().to_vec()
}

/// A claimed key's row; `status` is NULL while the request runs.
#[derive(sqlx::FromRow)]
struct StoredResponse {
    request_hash: Vec<u8>,
    status: Option<i16>,
    headers: Option<Value>,
    body: Option<Vec<u8>>,
}

enum Claim {
    Ours,
    Replay(Response),
}

async fn claim(gw: &Gateway, tenant: TenantId, key: &str, hash: &[u8]) -> Result<Claim, ApiError> {
    let pool = &gw.deps.pool;
    // Expired keys and abandoned claims make way.
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND \
         (created_at < now() - interval '24 hours' OR (status IS NULL AND created_at < now() - interval '1 minute'))",
    )
    .bind(tenant)
    .bind(key)
    .execute(pool)
    .await?;
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (tenant_id, key, request_hash) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(key)
    .bind(hash)
    .execute(pool)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::Ours);
    }
    let row: Option<StoredResponse> = sqlx::query_as(
        "SELECT request_hash, status, headers, body FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
    )
    .bind(tenant)
    .bind(key)
    .fetch_optional(pool)
    .await?;
    let Some(StoredResponse {
        request_hash: stored_hash,
        status,
        headers,
        body,
    }) = row
    else {
        // Deleted between our insert and select: treat as in progress.
        return Err(ApiError::IdempotencyInProgress);
    };
    if stored_hash != hash {
        return Err(ApiError::IdempotencyMismatch);
    }
    let Some(status) = status else {
        return Err(ApiError::IdempotencyInProgress);
    };
    Ok(Claim::Replay(replay(status, headers, body)))
}

/// The stored answer, as sent again.
fn replay(status: i16, headers: Option<Value>, body: Option<Vec<u8>>) -> Response {
    let mut resp = Response::new(Body::from(body.unwrap_or_default()));
    *resp.status_mut() = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
    if let Some(Value::Object(h)) = headers {
        for (k, v) in h {
            if let (Ok(name), Some(Ok(value))) = (
                HeaderName::from_bytes(k.as_bytes()),
                v.as_str().map(HeaderValue::from_str),
            ) {
                resp.headers_mut().insert(name, value);
            }
        }
    }
    resp.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    resp
}

/// The Idempotency-Key a request runs under, for handlers that must settle
/// it inside their own transaction (see `settle_provisionally`).
#[derive(Debug, Clone)]
pub struct ClaimedKey {
    pub tenant_id: TenantId,
    pub key: String,
}

/// The answer a retry should get should this process die before the real
/// one is stored, as a guard that commits with the command's events: no
/// crash can leave the key looking abandoned (and a retry run the command
/// again). The final answer overwrites it.
pub fn provisional(
    claimed: &ClaimedKey,
    status: StatusCode,
    location: &str,
    body: &Value,
) -> Guard {
    let headers: Map<String, Value> =
        [("content-type", "application/json"), ("location", location)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
            .collect();
    Guard::SettleKey {
        tenant_id: claimed.tenant_id,
        key: claimed.key.clone(),
        status: status.as_u16(),
        headers: Value::Object(headers),
        body: serde_json::to_vec(body).unwrap_or_default(),
    }
}

/// Marks a response whose request already committed events: it is stored
/// and replayed even when it is a 5xx, because running the request again
/// would append (and, for an originate, dial) a second time.
#[derive(Debug, Clone, Copy)]
pub struct Committed;

async fn store(
    gw: &Gateway,
    tenant: TenantId,
    key: &str,
    resp: Response,
) -> Result<Response, ApiError> {
    let pool = &gw.deps.pool;
    // Not stored: a 5xx that committed nothing (a retry may succeed), and
    // 401/403 (the answer to a caller, not to the request).
    let status = resp.status();
    let unanswered = status.is_server_error() && resp.extensions().get::<Committed>().is_none();
    if unanswered || status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        sqlx::query("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2")
            .bind(tenant)
            .bind(key)
            .execute(pool)
            .await?;
        return Ok(resp);
    }
    let (parts, body) = resp.into_parts();
    let bytes: Bytes = to_bytes(body, 4 * 1024 * 1024)
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("buffer response: {e}")))?;
    let saved = sqlx::query(
        "UPDATE idempotency_keys SET status = $3, headers = $4, body = $5 WHERE tenant_id = $1 AND key = $2",
    )
    .bind(tenant)
    .bind(key)
    .bind(parts.status.as_u16() as i16)
    .bind(Value::Object(kept_headers(&parts.headers)))
    .bind(bytes.to_vec())
    .execute(pool)
    .await;
    if let Err(e) = saved {
        // The request ran; its answer is still the truth for this client,
        // even if a retry will find the key unsettled.
        tracing::warn!(error = %e, "could not store an idempotent response");
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

fn kept_headers(headers: &HeaderMap) -> Map<String, Value> {
    KEPT.iter()
        .filter_map(|k| {
            let v = headers.get(*k)?.to_str().ok()?;
            Some(((*k).to_owned(), Value::String(v.to_owned())))
        })
        .collect()
}
