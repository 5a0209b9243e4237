//! `/api/v1/calls`: originate an outbound call and follow it.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use events::{CallId, Envelope, Event, NumberId, OriginateRejected, TenantId};
use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::json::JsonObject;
use super::list::ListQuery;
use super::{ApiError, Gateway};
use crate::auth::{Principal, Scope};
use crate::commands::originate::{Originate, OriginateInput};
use crate::domain::E164;
use crate::store;

#[utoipa::path(post, path = "/api/v1/calls/originate", tag = "calls",
    responses((status = 200, description = "dispatched: {call_id, session_id, provider_call_id, status}"),
        (status = 202, description = "pending: {call_id, session_id, status}"),
        (status = 400), (status = 403, description = "caller-id-not-allowed"), (status = 409),
        (status = 429, description = "cap-exceeded"), (status = 502)))]
pub async fn originate(
    State(gw): State<Gateway>,
    p: Principal,
    claimed: Option<axum::Extension<super::idempotency::ClaimedKey>>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    p.require(Scope::CallsWrite)?;
    let input = OriginateInput::parse(&body).map_err(ApiError::Validation)?;
    let (call_id, session_id) = (CallId::new(), Uuid::now_v7());
    // Committed with the call: a retry after a crash gets "pending".
    let settle = claimed.map(|axum::Extension(k)| {
        let (location, body) = pending(call_id, session_id);
        super::idempotency::provisional(&k, StatusCode::ACCEPTED, &location, &body)
    });
    let cmd = Originate {
        call_id,
        number_id: caller_id(&gw, p.tenant_id, &input.from_number, true).await?,
        settle,
        tenant_id: p.tenant_id,
        from_number: input.from_number,
        to_number: input.to_number,
        agent_id: input.agent_id,
        metadata: input.metadata,
        session_id,
    };
    // Registered before the append, so the outcome cannot slip past.
    let expected = gw.outcomes.expect(call_id);
    run_originate(&gw, &p, cmd).await?;
    // From here on the call exists: whatever this answers (even a 5xx) is
    // the answer an Idempotency-Key replays, never a second call.
    let mut resp = answer(&gw, call_id, session_id, expected)
        .await
        .into_response();
    resp.extensions_mut().insert(super::idempotency::Committed);
    Ok(resp)
}

/// Appends the request. A remembered caller id may have been released and
/// attached again since, under another number id: refused on it, the
/// number is resolved again and the command runs once more.
async fn run_originate(gw: &Gateway, p: &Principal, mut cmd: Originate) -> Result<(), ApiError> {
    match gw.run(p, &cmd).await {
        Err(ApiError::CallerIdNotAllowed) if cmd.number_id.is_some() => {
            let fresh = caller_id(gw, p.tenant_id, &cmd.from_number, false).await?;
            if fresh == cmd.number_id {
                return Err(ApiError::CallerIdNotAllowed);
            }
            cmd.number_id = fresh;
            gw.run(p, &cmd).await.map(drop)
        }
        r => r.map(drop),
    }
}

/// The answer to an originate whose call exists: its outcome, or "pending".
/// Trouble reading the outcome is not the call's outcome, so it answers
/// pending too (follow Location), never an error that invites a retry.
async fn answer(
    gw: &Gateway,
    call_id: CallId,
    session_id: Uuid,
    expected: super::outcomes::Expected<'_>,
) -> Result<Response, ApiError> {
    let answer = match wait_for_outcome(gw, call_id, expected).await {
        Ok(outcome) => respond(call_id, session_id, outcome),
        Err(e) => Err(e),
    };
    match answer {
        Err(e) if e.status().is_server_error() && !matches!(e, ApiError::BadGateway { .. }) => {
            tracing::warn!(%call_id, error = %e, "outcome unreadable; answering pending");
            respond(call_id, session_id, None)
        }
        other => other,
    }
}

/// The number `e164` is for `tenant` (remembered when `cached` allows).
async fn caller_id(
    gw: &Gateway,
    tenant: TenantId,
    e164: &E164,
    cached: bool,
) -> Result<Option<NumberId>, ApiError> {
    let key = (tenant, e164.as_str().to_owned());
    if cached {
        if let Some(id) = gw.caller_ids.get(&key) {
            return Ok(Some(id));
        }
    }
    let id: Option<NumberId> = sqlx::query_scalar(
        "SELECT number_id FROM number_claims WHERE e164 = $1 AND tenant_id = $2",
    )
    .bind(e164.as_str())
    .bind(tenant)
    .fetch_optional(&gw.deps.pool)
    .await?;
    match id {
        Some(id) => gw.caller_ids.insert(key, id),
        None => {
            gw.caller_ids.remove(&key);
        }
    }
    Ok(id)
}

/// Waits for the call's admission and dial outcome (from this process's
/// commits, or the store when NATS says there is one), up to the configured
/// wait; then looks in the store once, in case both lagged.
async fn wait_for_outcome(
    gw: &Gateway,
    call_id: CallId,
    mut expected: super::outcomes::Expected<'_>,
) -> Result<Option<(Envelope, Event)>, ApiError> {
    use super::outcomes::Delivered;
    let deadline = tokio::time::Instant::now() + gw.originate_wait;
    loop {
        match tokio::time::timeout_at(deadline, &mut expected.rx).await {
            Ok(Ok(Delivered::Committed(env))) => return decode_outcome(*env).map(Some),
            Ok(Ok(Delivered::Hint)) => {
                if let Some(found) = stored_outcome(gw, call_id).await? {
                    return Ok(Some(found));
                }
                // NATS named an outcome the store does not hold: not the
                // truth. Keep waiting on a fresh registration (the old one
                // goes first: its drop unregisters by call id).
                drop(expected);
                expected = gw.outcomes.expect(call_id);
            }
            _ => return stored_outcome(gw, call_id).await,
        }
    }
}

fn decode_outcome(env: Envelope) -> Result<(Envelope, Event), ApiError> {
    let event = Event::decode(&env.event_type, env.schema_version, &env.data)
        .map_err(ApiError::internal)?;
    Ok((env, event))
}

/// The call's outcome as stored, if it has one yet.
async fn stored_outcome(
    gw: &Gateway,
    call_id: CallId,
) -> Result<Option<(Envelope, Event)>, ApiError> {
    for stored in store::read_stream(&gw.deps.pool, call_id, None).await? {
        if super::outcomes::OUTCOME_TYPES.contains(&stored.envelope.event_type.as_str()) {
            return decode_outcome(stored.envelope).map(Some);
        }
    }
    Ok(None)
}

fn respond(
    call_id: CallId,
    session_id: Uuid,
    outcome: Option<(Envelope, Event)>,
) -> Result<Response, ApiError> {
    let Some((_, event)) = outcome else {
        let (location, body) = pending(call_id, session_id);
        return Ok((
            StatusCode::ACCEPTED,
            [(header::LOCATION, location)],
            Json(body),
        )
            .into_response());
    };
    // No wait for the calls projection: `get_call` waits for the version
    // it must show.
    match event {
        Event::OriginateDispatched(d) => Ok(Json(json!({
            "call_id": call_id, "session_id": session_id,
            "provider_call_id": d.provider_call_id, "status": "dispatched",
        }))
        .into_response()),
        Event::OriginateRejected(r) => Err(rejected(call_id, &r)),
        Event::OriginateFailed(f) => Err(ApiError::BadGateway {
            body: object(json!({"call_id": call_id, "status": "failed", "retryable": f.retryable})),
            detail: f.error,
        }),
        _ => Err(ApiError::internal(anyhow::anyhow!("not an outcome"))),
    }
}

/// The 429 of a call a cap refused (the refusal's figures and the
/// rate-limit headers), or the 403 of a destination the policy refuses.
fn rejected(call_id: CallId, r: &OriginateRejected) -> ApiError {
    if let Some(b) = &r.blocked {
        let why = match b.rule.as_str() {
            "premium_rate" => "premium-rate numbers are not allowed",
            "satellite" => "satellite numbers are not allowed",
            _ => "the country is not in the tenant's allowlist",
        };
        return ApiError::DestinationBlocked {
            detail: format!("calls to {} are not allowed: {why}", b.country),
            body: object(json!({
                "dimension": r.dimension, "country": b.country, "rule": b.rule,
                "call_id": call_id, "status": "rejected",
            })),
        };
    }
    ApiError::CapExceeded {
        body: object(json!({
            "dimension": r.dimension, "limit": r.limit, "current": r.current,
            "retry_after_s": r.retry_after_s, "call_id": call_id, "status": "rejected",
        })),
        headers: rate_limit_headers(r.dimension, r.limit, r.current, r.retry_after_s),
    }
}

/// The members of `v`, a JSON object literal.
fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The 202 answer of a call whose outcome is not known yet.
fn pending(call_id: CallId, session_id: Uuid) -> (String, Value) {
    let location = format!("/api/v1/calls/{call_id}");
    (
        location,
        json!({"call_id": call_id, "session_id": session_id, "status": "pending"}),
    )
}

/// `Retry-After` and the IETF RateLimit fields for the refusing dimension.
fn rate_limit_headers(
    dimension: events::Dimension,
    limit: u64,
    current: u64,
    retry_after_s: u64,
) -> HeaderMap {
    let mut h = HeaderMap::new();
    let policy = match dimension.window_s() {
        Some(w) => format!("\"{dimension}\";q={limit};w={w}"),
        None => format!("\"{dimension}\";q={limit}"),
    };
    let remaining = limit.saturating_sub(current);
    let state = format!("\"{dimension}\";r={remaining};t={retry_after_s}");
    for (name, value) in [
        ("retry-after", retry_after_s.to_string()),
        ("ratelimit-policy", policy),
        ("ratelimit", state),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    h
}

/// A call as the API shows it.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct CallView {
    #[schema(value_type = String, format = Uuid)]
    pub call_id: CallId,
    pub session_id: Uuid,
    pub from_number: String,
    pub to_number: String,
    pub agent_id: Uuid,
    pub provider: String,
    pub provider_call_id: Option<String>,
    pub status: String,
    #[schema(value_type = Option<Object>)]
    pub rejection: Option<Value>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub duration_s: Option<i64>,
    pub billed_minutes: Option<i64>,
    /// Why the call ended (CallEnded v2).
    pub hangup_cause: Option<String>,
    /// `[{type, at}]`, in order.
    #[schema(value_type = Vec<Object>)]
    pub timeline: Value,
}

const COLUMNS: &str = "SELECT call_id, session_id, from_number, to_number, agent_id, provider, provider_call_id, \
    status, rejection, error, created_at, answered_at, ended_at, duration_s, billed_minutes, hangup_cause, timeline";

fn read_scope(p: &Principal) -> Result<(), ApiError> {
    if p.has(Scope::CallsWrite) {
        return Ok(());
    }
    Ok(p.require(Scope::TelephonyRead)?)
}

#[utoipa::path(get, path = "/api/v1/calls/{call_id}", tag = "calls",
    responses((status = 200, body = CallView), (status = 404)))]
pub async fn get_call(
    State(gw): State<Gateway>,
    p: Principal,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    read_scope(&p)?;
    let id = Uuid::parse_str(&raw).map_err(|_| ApiError::NotFound("call"))?;
    // Read-your-writes on the read side: the call's stream as stored now,
    // then its row once the projection shows that version (bounded). So an
    // originate answers without waiting for the projection, and a read
    // after it (from any gateway) still sees what the answer said.
    let head: Option<i64> =
        sqlx::query_scalar("SELECT version FROM streams WHERE stream_id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(p.tenant_id)
            .fetch_optional(&gw.deps.pool)
            .await?;
    let Some(head) = head else {
        return Err(ApiError::NotFound("call"));
    };
    let deadline = tokio::time::Instant::now() + gw.read_your_writes;
    loop {
        let row: Option<CallRow> = sqlx::query_as(&format!(
            "{COLUMNS}, version FROM calls WHERE call_id = $1 AND tenant_id = $2"
        ))
        .bind(id)
        .bind(p.tenant_id)
        .fetch_optional(&gw.deps.pool)
        .await?;
        let shown = row.as_ref().is_some_and(|r| r.version >= head);
        if shown || tokio::time::Instant::now() >= deadline {
            let row = row.ok_or(ApiError::NotFound("call"))?;
            return Ok(Json(row.view).into_response());
        }
        gw.deps
            .progress
            .next("projection:calls", std::time::Duration::from_millis(20))
            .await;
    }
}

/// A `calls` row: the view and the stream version it reflects.
#[derive(sqlx::FromRow)]
struct CallRow {
    #[sqlx(flatten)]
    view: CallView,
    version: i64,
}

#[utoipa::path(get, path = "/api/v1/calls", tag = "calls",
    params(("status" = Option<String>, Query), ("since" = Option<String>, Query),
        ("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "{items: [CallView], next_cursor}, newest first")))]
pub async fn list_calls(
    State(gw): State<Gateway>,
    p: Principal,
    q: ListQuery,
) -> Result<Response, ApiError> {
    read_scope(&p)?;
    q.only(&["status", "since"])?;
    let before = q.uuid("cursor")?.unwrap_or(Uuid::max());
    let status = q.get("status");
    if let Some(s) = status {
        if events::CallStatus::parse(s).is_none() {
            return Err(ApiError::field("status", "is not a call status"));
        }
    }
    let since = match q.get("since") {
        None => None,
        Some(s) => Some(
            DateTime::parse_from_rfc3339(s)
                .map_err(|_| ApiError::field("since", "must be an RFC 3339 time"))?
                .with_timezone(&Utc),
        ),
    };
    gw.fresh_for(p.tenant_id, &[&projections::calls::Calls])
        .await?;
    let rows: Vec<CallView> = sqlx::query_as(&format!(
        "{COLUMNS} FROM calls WHERE tenant_id = $1 AND call_id < $2 AND ($3::text IS NULL OR status = $3) \
         AND ($4::timestamptz IS NULL OR created_at >= $4) ORDER BY call_id DESC LIMIT $5"
    ))
    .bind(p.tenant_id)
    .bind(before)
    .bind(status)
    .bind(since)
    .bind(q.limit + 1)
    .fetch_all(&gw.deps.pool)
    .await?;
    Ok(Json(q.page(rows, |r| r.call_id)).into_response())
}
