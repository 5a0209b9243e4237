//! `/api/v1/calls`: originate an outbound call and follow it.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use events::{Envelope, Event, StreamType};
use futures::StreamExt;
use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::json::JsonObject;
use super::list::ListQuery;
use super::write::{begin, finish, to_stream};
use super::{load, ApiError, Gateway};
use crate::auth::{Principal, Scope};
use crate::commands::originate::{self, Originate, OriginateRefusal};
use crate::commands::state::NumberState;
use crate::domain::{Fields, E164};
use crate::projection;
use crate::store;

fn e164_field(f: &mut Fields<'_>, key: &str) -> Option<E164> {
    let s = f.string(key, 32)?;
    match E164::parse(&s) {
        Ok(n) => Some(n),
        Err(m) => {
            f.error(key, m);
            None
        }
    }
}

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
    let mut f = Fields::new(&body);
    f.deny_unknown(&["from_number", "to_number", "agent_id", "metadata"]);
    let from = e164_field(&mut f, "from_number");
    let to = e164_field(&mut f, "to_number");
    let agent_id = f.opt_nullable_uuid("agent_id").flatten();
    let metadata = match f.raw("metadata") {
        None | Some(Value::Null) => Value::Null,
        Some(v @ Value::Object(_)) if crate::domain::fields::has_nul(v) => {
            f.error("metadata", "must not contain NUL characters");
            Value::Null
        }
        Some(Value::Object(m)) => Value::Object(m.clone()),
        Some(_) => {
            f.error("metadata", "must be an object");
            Value::Null
        }
    };
    f.finish().map_err(ApiError::Validation)?;
    let (Some(from), Some(to)) = (from, to) else {
        return Err(ApiError::field("body", "is incomplete"));
    };
    let number_id: Option<Uuid> = sqlx::query_scalar(
        "SELECT number_id FROM number_claims WHERE e164 = $1 AND tenant_id = $2",
    )
    .bind(from.as_str())
    .bind(p.tenant_id)
    .fetch_optional(&gw.deps.pool)
    .await?;
    let Some(number_id) = number_id else {
        return Err(ApiError::CallerIdNotAllowed);
    };
    let (call_id, session_id) = (Uuid::now_v7(), Uuid::now_v7());
    // Subscribed before the append (so the outcome cannot slip past) and
    // before the transaction opens (no network wait while it holds locks).
    let subject = format!("{}.events.{}.call.{call_id}.>", gw.deps.ns, p.tenant_id);
    let sub = gw.deps.nats.subscribe(subject).await.ok();
    let mut tx = begin(&gw, &p, &[call_id, number_id]).await?;
    if let Some(axum::Extension(claimed)) = &claimed {
        // Committed with the call: a retry after a crash gets "pending".
        let (location, body) = pending(call_id, session_id);
        let headers = [
            ("content-type", "application/json".to_owned()),
            ("location", location),
        ];
        super::idempotency::settle_provisionally(
            tx.conn(),
            claimed,
            StatusCode::ACCEPTED,
            &headers,
            &body,
        )
        .await?;
    }
    let number: NumberState = load::fold(tx.conn(), number_id, NumberState::apply).await?;
    let cmd = Originate {
        tenant_id: p.tenant_id,
        from_number: from,
        to_number: to,
        agent_id,
        metadata,
        session_id,
    };
    let events = originate::decide(Some((number_id, &number)), cmd).map_err(|r| match r {
        OriginateRefusal::CallerIdNotAllowed => ApiError::CallerIdNotAllowed,
        OriginateRefusal::Rejected(r) => r.into(),
    })?;
    let appends = [
        to_stream(StreamType::Call, call_id, 0, events),
        // The number must not change (released, outbound off) meanwhile.
        to_stream(StreamType::Number, number_id, number.version, vec![]),
    ];
    finish(&gw, tx, &appends, &["calls"]).await?;
    // From here on the call exists: whatever this answers (even a 5xx) is
    // the answer an Idempotency-Key replays, never a second call.
    let answer = match wait_for_outcome(&gw, call_id, sub).await {
        Ok(outcome) => respond(&gw, call_id, session_id, outcome).await,
        Err(e) => Err(e),
    };
    // Trouble reading the outcome is not the call's outcome: the call
    // exists, so the honest answer is "pending, follow Location".
    let answer = match answer {
        Err(e) if e.status().is_server_error() && !matches!(e, ApiError::BadGateway { .. }) => {
            tracing::warn!(%call_id, error = %e, "outcome unreadable; answering pending");
            respond(&gw, call_id, session_id, None).await
        }
        other => other,
    };
    let mut resp = answer.into_response();
    resp.extensions_mut().insert(super::idempotency::Committed);
    Ok(resp)
}

/// Waits for the call's admission and dial outcome on NATS, up to the
/// configured wait; then looks in the store once, in case NATS lagged.
async fn wait_for_outcome(
    gw: &Gateway,
    call_id: Uuid,
    sub: Option<async_nats::Subscriber>,
) -> Result<Option<(Envelope, Event)>, ApiError> {
    let is_outcome = |e: &Event| {
        matches!(
            e,
            Event::OriginateDispatched(_) | Event::OriginateRejected(_) | Event::OriginateFailed(_)
        )
    };
    if let Some(mut sub) = sub {
        let deadline = tokio::time::Instant::now() + gw.originate_wait;
        while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, sub.next()).await {
            let Ok(env) = serde_json::from_slice::<Envelope>(&msg.payload) else {
                continue;
            };
            if let Ok(event) = Event::decode(&env.event_type, env.schema_version, &env.data) {
                if is_outcome(&event) {
                    return Ok(Some((env, event)));
                }
            }
        }
    } else {
        tokio::time::sleep(gw.originate_wait).await;
    }
    for stored in store::read_stream(&gw.deps.pool, call_id, None).await? {
        let event = stored.event()?;
        if is_outcome(&event) {
            return Ok(Some((stored.envelope, event)));
        }
    }
    Ok(None)
}

async fn respond(
    gw: &Gateway,
    call_id: Uuid,
    session_id: Uuid,
    outcome: Option<(Envelope, Event)>,
) -> Result<Response, ApiError> {
    let Some((env, event)) = outcome else {
        let (location, body) = pending(call_id, session_id);
        return Ok((
            StatusCode::ACCEPTED,
            [(header::LOCATION, location)],
            Json(body),
        )
            .into_response());
    };
    // A read of the call right after this answer shows the outcome.
    let at: Option<(i64, i64)> =
        sqlx::query_as("SELECT transaction_id, global_position FROM events WHERE event_id = $1")
            .bind(env.event_id)
            .fetch_optional(&gw.deps.pool)
            .await?;
    if let Some((t, p)) = at {
        let at = store::Position::new(t, p);
        projection::wait_for(
            &gw.deps.pool,
            &["projection:calls".to_owned()],
            at,
            gw.read_your_writes,
        )
        .await;
    }
    match event {
        Event::OriginateDispatched(d) => Ok(Json(json!({
            "call_id": call_id, "session_id": session_id,
            "provider_call_id": d.provider_call_id, "status": "dispatched",
        }))
        .into_response()),
        Event::OriginateRejected(r) => {
            let mut body = Map::new();
            body.insert("dimension".into(), json!(r.dimension));
            body.insert("limit".into(), json!(r.limit));
            body.insert("current".into(), json!(r.current));
            body.insert("retry_after_s".into(), json!(r.retry_after_s));
            body.insert("call_id".into(), json!(call_id));
            body.insert("status".into(), json!("rejected"));
            Err(ApiError::CapExceeded {
                body,
                headers: rate_limit_headers(&r.dimension, r.limit, r.current, r.retry_after_s),
            })
        }
        Event::OriginateFailed(f) => {
            let mut body = Map::new();
            body.insert("call_id".into(), json!(call_id));
            body.insert("status".into(), json!("failed"));
            body.insert("retryable".into(), json!(f.retryable));
            Err(ApiError::BadGateway {
                detail: f.error,
                body,
            })
        }
        _ => Err(ApiError::internal(anyhow::anyhow!("not an outcome"))),
    }
}

/// The 202 answer of a call whose outcome is not known yet.
fn pending(call_id: Uuid, session_id: Uuid) -> (String, Value) {
    let location = format!("/api/v1/calls/{call_id}");
    (
        location,
        json!({"call_id": call_id, "session_id": session_id, "status": "pending"}),
    )
}

/// `Retry-After` and the IETF RateLimit fields for the refusing dimension.
fn rate_limit_headers(dimension: &str, limit: u64, current: u64, retry_after_s: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    let window = match dimension {
        "calls_per_minute" => Some(60),
        "daily_calls" | "daily_minutes" => Some(86_400),
        _ => None,
    };
    let policy = match window {
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
    pub call_id: Uuid,
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

const SELECT: &str = "SELECT call_id, session_id, from_number, to_number, agent_id, provider, provider_call_id, \
    status, rejection, error, created_at, answered_at, ended_at, duration_s, billed_minutes, hangup_cause, timeline FROM calls";

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
    let row: Option<CallView> =
        sqlx::query_as(&format!("{SELECT} WHERE call_id = $1 AND tenant_id = $2"))
            .bind(id)
            .bind(p.tenant_id)
            .fetch_optional(&gw.deps.pool)
            .await?;
    Ok(Json(row.ok_or(ApiError::NotFound("call"))?).into_response())
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
        const ALL: [&str; 10] = [
            "requested",
            "rejected",
            "dispatched",
            "ringing",
            "answered",
            "completed",
            "busy",
            "no_answer",
            "failed",
            "canceled",
        ];
        if !ALL.contains(&s) {
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
    let rows: Vec<CallView> = sqlx::query_as(&format!(
        "{SELECT} WHERE tenant_id = $1 AND call_id < $2 AND ($3::text IS NULL OR status = $3) \
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
