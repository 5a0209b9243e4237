//! A stream's state at a past moment: its events up to a time or version,
//! folded with the same state types the commands decide on, shown as JSON.
//!
//! Credentials appear as their masked view and key id only: neither the
//! plaintext (never stored) nor the ciphertext is shown.

use chrono::{DateTime, Utc};
use events::{Envelope, StreamType, TenantId};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::commands::call::{CallState, Phase};
use crate::commands::set_destinations::DestinationsState;
use crate::commands::state::{At as FoldAt, LimitsState, NumberState, ProviderState, TenantState};
use crate::store::{self, StoreError, StoredEvent};

/// How far to fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// Every event.
    Latest,
    /// Up to and including this version.
    Version(i64),
    /// Every event recorded at or before this time.
    Time(DateTime<Utc>),
}

impl At {
    /// `42` (a version, from 1) or an RFC 3339 time.
    pub fn parse(s: &str) -> Result<At, &'static str> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return match s.parse::<i64>() {
                Ok(v) if v >= 1 && !s.starts_with('0') && s.len() <= 18 => Ok(At::Version(v)),
                _ => Err("a version must be an integer from 1, without leading zeros"),
            };
        }
        DateTime::parse_from_rfc3339(s)
            .map(|t| At::Time(t.with_timezone(&Utc)))
            .map_err(|_| "must be an RFC 3339 time or a stream version")
    }
}

/// A stream folded up to a point, and the events that made it.
#[derive(Debug, Clone, Serialize)]
pub struct StreamAudit {
    pub stream_id: Uuid,
    pub stream_type: StreamType,
    pub tenant_id: TenantId,
    /// The version folded to (0: the stream did not exist yet).
    pub version: i64,
    /// The folded state; `null` before the stream's first event.
    pub state: Value,
    pub events: Vec<Envelope>,
}

/// The stream's `state_at`, or `None` when the store has no such stream.
pub async fn state_at(
    pool: &PgPool,
    stream_id: Uuid,
    at: At,
) -> Result<Option<StreamAudit>, StoreError> {
    let head: Option<(String, TenantId)> =
        sqlx::query_as("SELECT stream_type, tenant_id FROM streams WHERE stream_id = $1")
            .bind(stream_id)
            .fetch_optional(pool)
            .await?;
    let max_version = match at {
        At::Version(v) => Some(v),
        _ => None,
    };
    let mut events = store::read_stream(pool, stream_id, max_version).await?;
    if let At::Time(t) = at {
        let keep = events.iter().position(|e| e.envelope.recorded_at > t);
        events.truncate(keep.unwrap_or(events.len()));
    }
    let (stream_type, tenant_id) = match (head, events.first()) {
        (Some((ty, tenant)), _) => match StreamType::parse(&ty) {
            Some(ty) => (ty, tenant),
            None => return Ok(None),
        },
        // A stream whose head row is gone still has a history to show.
        (None, Some(first)) => (first.envelope.stream_type, first.envelope.tenant_id),
        (None, None) => return Ok(None),
    };
    let state = fold_view(stream_type, &events)?;
    Ok(Some(StreamAudit {
        stream_id,
        stream_type,
        tenant_id,
        version: events.last().map_or(0, |e| e.envelope.version),
        state,
        events: events.into_iter().map(|e| e.envelope).collect(),
    }))
}

fn fold<S: Default>(
    events: &[StoredEvent],
    apply: fn(&mut S, FoldAt, &events::Event),
) -> Result<S, StoreError> {
    crate::store::fold_onto(S::default(), events, apply)
}

/// Folds `events` (one stream of `stream_type`, in version order) and shows
/// the state as JSON; `null` when there are none.
pub fn fold_view(stream_type: StreamType, events: &[StoredEvent]) -> Result<Value, StoreError> {
    if events.is_empty() {
        return Ok(Value::Null);
    }
    Ok(match stream_type {
        StreamType::Provider => provider_view(&fold(events, ProviderState::apply)?),
        StreamType::Number => number_view(&fold(events, NumberState::apply)?),
        StreamType::CallLimits => limits_view(&fold(events, LimitsState::apply)?),
        StreamType::Call => call_view(&fold(events, CallState::apply)?),
        StreamType::Tenant => tenant_view(&fold(events, TenantState::apply)?),
        StreamType::Destinations => {
            let s = fold(events, DestinationsState::apply)?;
            json!({"version": s.version, "policy": s.in_force(), "set": s.policy.is_some(), "updated_at": s.updated_at})
        }
    })
}

pub fn provider_view(s: &ProviderState) -> Value {
    json!({
        "tenant_id": s.tenant_id,
        "version": s.version,
        "provider": s.kind.map(|k| k.as_str()),
        "label": s.label,
        "credentials": s.credentials.as_ref().map(|c| json!({"key_id": c.key_id, "masked": c.masked})),
        "deleted": s.deleted,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    })
}

pub fn number_view(s: &NumberState) -> Value {
    json!({
        "tenant_id": s.tenant_id,
        "version": s.version,
        "e164": s.e164,
        "provider": s.provider.map(|k| k.as_str()),
        "credentials_id": s.credentials_id,
        "agent_id": s.agent_id,
        "inbound_enabled": s.inbound_enabled,
        "outbound_enabled": s.outbound_enabled,
        "daily_calls_max": s.daily_calls_max,
        "released": s.released,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    })
}

pub fn limits_view(s: &LimitsState) -> Value {
    json!({
        "version": s.version,
        // null: the tenant never set them, the configured defaults apply.
        "limits": s.limits,
        "updated_at": s.updated_at,
    })
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::None => "none",
        Phase::Requested => "requested",
        Phase::Rejected => "rejected",
        Phase::Claimed => "claimed",
        Phase::Dispatched => "dispatched",
        Phase::Failed => "failed",
    }
}

pub fn call_view(s: &CallState) -> Value {
    json!({
        "tenant_id": s.tenant_id,
        "version": s.version,
        "phase": phase_name(s.phase),
        "request": s.request,
        "provider_call_id": s.provider_call_id,
        "ringing": s.ringing,
        "answered": s.answered,
        "ended": s.ended,
    })
}

pub fn tenant_view(s: &TenantState) -> Value {
    json!({
        "version": s.version,
        "key_id": s.key_id,
        "shredded": s.shredded,
    })
}
