//! `/api/v1/audit` (`audit:read`): this tenant's history in global order, a
//! stream's state at a past moment, and the hash-chain check (SPEC §9).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use events::Envelope;
use uuid::Uuid;

use super::list::{ListQuery, Page};
use super::{ApiError, Gateway};
use crate::audit::state::{self, At};
use crate::audit::verify;
use crate::auth::{Principal, Scope};
use crate::domain::FieldError;
use crate::store::{self, Position, TenantFilter};

fn time(q: &ListQuery, key: &str, errors: &mut Vec<FieldError>) -> Option<DateTime<Utc>> {
    let v = q.get(key)?;
    match DateTime::parse_from_rfc3339(v) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            errors.push(FieldError::new(key, "must be an RFC 3339 time"));
            None
        }
    }
}

/// Where the page starts: `after` (SPEC §4) or `cursor` (every list), the
/// same thing under two names; at most one of them.
fn after(q: &ListQuery, errors: &mut Vec<FieldError>) -> Option<Position> {
    let (key, c) = match (q.get("after"), q.get("cursor")) {
        (Some(_), Some(_)) => {
            errors.push(FieldError::new("cursor", "give after or cursor, not both"));
            return None;
        }
        (Some(c), None) => ("after", c),
        (None, Some(c)) => ("cursor", c),
        (None, None) => return None,
    };
    let at = Position::from_cursor(c);
    if at.is_none() {
        errors.push(FieldError::new(key, "is not a cursor from this list"));
    }
    at
}

/// The `type` filter: an event type's spelling (a letter, then letters,
/// digits or _), or an error named `type`.
pub(super) fn event_type(q: &ListQuery, errors: &mut Vec<FieldError>) -> Option<String> {
    let t = q.get("type")?;
    let well_formed = (1..=100).contains(&t.len())
        && t.starts_with(|c: char| c.is_ascii_alphabetic())
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !well_formed {
        errors.push(FieldError::new("type", "must be an event type name"));
        return None;
    }
    Some(t.to_owned())
}

/// The filters of `GET /audit/events`, every bad one named at once.
fn filter(q: &ListQuery) -> Result<TenantFilter, ApiError> {
    q.only(&["stream_id", "type", "since", "until", "after"])?;
    let mut errors = Vec::new();
    let stream_id = match q.uuid("stream_id") {
        Ok(id) => id,
        Err(_) => {
            errors.push(FieldError::new("stream_id", "must be a UUID"));
            None
        }
    };
    let event_type = event_type(q, &mut errors);
    let since = time(q, "since", &mut errors);
    let until = time(q, "until", &mut errors);
    // `until` before `since` is an empty window, not an error: the page is
    // empty (the document cannot say "after since", so neither do we).
    // `after` (SPEC §4) and `cursor` (every list) are the same thing.
    let after = after(q, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(TenantFilter {
        stream_id,
        event_type,
        since,
        until,
        after,
    })
}

#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit",
    params(("stream_id" = Option<Uuid>, Query), ("type" = Option<String>, Query),
        ("since" = Option<String>, Query, description = "RFC 3339, inclusive"),
        ("until" = Option<String>, Query, description = "RFC 3339, exclusive"),
        ("after" = Option<String>, Query, description = "a next_cursor; `cursor` is accepted too"),
        ("limit" = Option<i64>, Query)),
    responses((status = 200, description = "{items: [event envelope], next_cursor}, in global order"),
        (status = 400), (status = 401), (status = 403)))]
pub async fn events(
    State(gw): State<Gateway>,
    p: Principal,
    q: ListQuery,
) -> Result<Response, ApiError> {
    p.require(Scope::AuditRead)?;
    let filter = filter(&q)?;
    let mut rows = store::read_tenant(&gw.deps.pool, p.tenant_id, &filter, q.limit + 1).await?;
    let more = rows.len() as i64 > q.limit;
    rows.truncate(q.limit as usize);
    let next_cursor = more
        .then(|| rows.last().map(|e| e.position.to_cursor()))
        .flatten();
    let items: Vec<Envelope> = rows.into_iter().map(|e| e.envelope).collect();
    Ok(Json(Page { items, next_cursor }).into_response())
}

#[utoipa::path(get, path = "/api/v1/audit/streams/{stream_id}", tag = "audit",
    params(("stream_id" = Uuid, Path),
        ("at" = Option<String>, Query, description = "an RFC 3339 time or a stream version; default now")),
    responses((status = 200, description = "{stream_id, stream_type, tenant_id, version, state, events}"),
        (status = 400), (status = 404)))]
pub async fn stream(
    State(gw): State<Gateway>,
    p: Principal,
    Path(raw): Path<String>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    p.require(Scope::AuditRead)?;
    let Query(params) =
        params.map_err(|_| ApiError::field("query", "is not a valid query string"))?;
    let mut at = At::Latest;
    for (k, v) in &params {
        match k.as_str() {
            "at" => at = At::parse(v).map_err(|m| ApiError::field("at", m))?,
            other => return Err(ApiError::field(other, "unknown query parameter")),
        }
    }
    let id = Uuid::parse_str(&raw).map_err(|_| ApiError::NotFound("stream"))?;
    let audit = state::state_at(&gw.deps.pool, id, at)
        .await?
        .filter(|a| a.tenant_id == p.tenant_id)
        .ok_or(ApiError::NotFound("stream"))?;
    Ok(Json(audit).into_response())
}

#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200,
        description = "{ok, streams_checked, events_checked, breaks: [{stream_id, event_id, global_position, version, kind, detail}]}"),
        (status = 401), (status = 403)))]
pub async fn verify(State(gw): State<Gateway>, p: Principal) -> Result<Response, ApiError> {
    p.require(Scope::AuditRead)?;
    let report = verify::verify_collect(&gw.deps.pool, Some(p.tenant_id)).await?;
    Ok(Json(report).into_response())
}
