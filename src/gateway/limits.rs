//! `/api/v1/call-limits`: a tenant's cost caps.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use events::call_limits_stream_id;
use serde::Serialize;

use super::etag::{etag, if_match};
use super::json::JsonObject;
use super::{ApiError, Gateway};
use crate::auth::{AuthError, Principal, Scope};
use crate::commands::state::LimitsState;
use crate::commands::update_limits::UpdateLimits;
use crate::domain::limits::MAX_LIMIT;
use crate::domain::{CallLimits, Fields};
use crate::write::with_written;

/// The caps in force, with the version of the tenant's call_limits stream
/// (0 and no `updated_at` while the configured defaults apply).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LimitsView {
    pub concurrent_max: u32,
    pub calls_per_minute: u32,
    pub daily_calls_max: u32,
    pub daily_minutes_max: u32,
    pub version: i64,
    pub updated_at: Option<DateTime<Utc>>,
}

impl LimitsView {
    fn new(l: CallLimits, version: i64, updated_at: Option<DateTime<Utc>>) -> Self {
        LimitsView {
            concurrent_max: l.concurrent_max,
            calls_per_minute: l.calls_per_minute,
            daily_calls_max: l.daily_calls_max,
            daily_minutes_max: l.daily_minutes_max,
            version,
            updated_at,
        }
    }

    fn respond(self) -> Response {
        ([etag(self.version)], Json(self)).into_response()
    }
}

/// The caps in force for `tenant`, from the read table.
pub async fn current(
    gw: &Gateway,
    tenant: events::TenantId,
) -> Result<(CallLimits, i64, Option<DateTime<Utc>>), ApiError> {
    gw.fresh_for(tenant, &[&projections::call_limits::CallLimits])
        .await?;
    let row: Option<(i64, i64, i64, i64, i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT concurrent_max, calls_per_minute, daily_calls_max, daily_minutes_max, version, updated_at \
         FROM call_limits WHERE tenant_id = $1",
    )
    .bind(tenant)
    .fetch_optional(&gw.deps.pool)
    .await?;
    Ok(match row {
        None => (gw.default_limits, 0, None),
        Some((c, m, d, dm, v, at)) => (
            CallLimits {
                concurrent_max: c as u32,
                calls_per_minute: m as u32,
                daily_calls_max: d as u32,
                daily_minutes_max: dm as u32,
            },
            v,
            Some(at),
        ),
    })
}

pub(super) fn require_read(p: &Principal) -> Result<(), AuthError> {
    if p.has(Scope::LimitsWrite) || p.has(Scope::CallsWrite) {
        return Ok(());
    }
    p.require(Scope::TelephonyRead)
}

#[utoipa::path(get, path = "/api/v1/call-limits", tag = "call-limits", responses((status = 200, body = LimitsView)))]
pub async fn get_limits(State(gw): State<Gateway>, p: Principal) -> Result<Response, ApiError> {
    require_read(&p)?;
    let (l, v, at) = current(&gw, p.tenant_id).await?;
    Ok(LimitsView::new(l, v, at).respond())
}

#[utoipa::path(patch, path = "/api/v1/call-limits", tag = "call-limits",
    responses((status = 200, body = LimitsView), (status = 400), (status = 412)))]
pub async fn patch_limits(
    State(gw): State<Gateway>,
    p: Principal,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    update(gw, p, headers, body, false).await
}

#[utoipa::path(put, path = "/api/v1/call-limits", tag = "call-limits",
    responses((status = 200, body = LimitsView), (status = 400), (status = 412)))]
pub async fn put_limits(
    State(gw): State<Gateway>,
    p: Principal,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    update(gw, p, headers, body, true).await
}

async fn update(
    gw: Gateway,
    p: Principal,
    headers: HeaderMap,
    body: serde_json::Map<String, serde_json::Value>,
    all_required: bool,
) -> Result<Response, ApiError> {
    p.require(Scope::LimitsWrite)?;
    let expected = if_match(&headers)?;
    let mut f = Fields::new(&body);
    f.deny_unknown(&CallLimits::FIELDS);
    let mut values = [None; 4];
    for (slot, key) in values.iter_mut().zip(CallLimits::FIELDS) {
        if all_required && !f.has(key) {
            f.error(key, "is required");
        }
        *slot = f.opt_u32(key, MAX_LIMIT);
    }
    if !all_required && body.is_empty() {
        f.error("body", "must set at least one limit");
    }
    f.finish().map_err(ApiError::Validation)?;
    let cmd = UpdateLimits {
        tenant_id: p.tenant_id,
        defaults: gw.default_limits,
        concurrent_max: values[0],
        calls_per_minute: values[1],
        daily_calls_max: values[2],
        daily_minutes_max: values[3],
        if_match: expected,
    };
    let ran = gw.run(&p, &cmd).await?;
    let id = call_limits_stream_id(p.tenant_id);
    let s = with_written(&ran.state, id, &ran.written, LimitsState::apply)?;
    Ok(LimitsView::new(
        s.limits.unwrap_or(gw.default_limits),
        s.version,
        s.updated_at,
    )
    .respond())
}

#[utoipa::path(get, path = "/api/v1/call-limits/usage", tag = "call-limits",
    responses((status = 200, description = "{concurrent, calls_last_minute, daily_calls, daily_minutes, day} beside the limits")))]
pub async fn usage(State(gw): State<Gateway>, p: Principal) -> Result<Response, ApiError> {
    require_read(&p)?;
    let (limits, version, _) = current(&gw, p.tenant_id).await?;
    let usage = gw.caps.usage(p.tenant_id).await?;
    let mut body = serde_json::to_value(usage).map_err(ApiError::internal)?;
    body["limits"] =
        serde_json::to_value(LimitsView::new(limits, version, None)).map_err(ApiError::internal)?;
    Ok(Json(body).into_response())
}
