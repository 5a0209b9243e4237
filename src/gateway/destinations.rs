//! `/api/v1/destinations`: where a tenant's calls may go (a country
//! allowlist; premium-rate and satellite numbers only when allowed).
//!
//! Read from the tenant's destinations stream through the store's state
//! cache (one small stream per tenant; no read table), so a PUT is visible
//! to the next GET at once.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use events::destinations_stream_id;
use serde::Serialize;

use super::etag::{etag, if_match};
use super::json::JsonObject;
use super::limits::require_read;
use super::{ApiError, Gateway};
use crate::auth::{Principal, Scope};
use crate::commands::set_destinations::{DestinationsState, SetDestinations};
use crate::write::with_written;

/// The policy in force, with the version of the tenant's destinations
/// stream (0 and no `updated_at` while the default applies).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DestinationsView {
    /// ISO 3166-1 alpha-2 codes; empty: every country.
    pub allowed_countries: Vec<String>,
    pub allow_premium_rate: bool,
    pub allow_satellite: bool,
    pub version: i64,
    pub updated_at: Option<DateTime<Utc>>,
}

impl DestinationsView {
    fn respond(s: &DestinationsState) -> Response {
        let p = s.in_force();
        let view = DestinationsView {
            allowed_countries: p.allowed_countries,
            allow_premium_rate: p.allow_premium_rate,
            allow_satellite: p.allow_satellite,
            version: s.version,
            updated_at: s.updated_at,
        };
        ([etag(view.version)], Json(view)).into_response()
    }
}

#[utoipa::path(get, path = "/api/v1/destinations", tag = "destinations",
    responses((status = 200, body = DestinationsView)))]
pub async fn get_destinations(
    State(gw): State<Gateway>,
    p: Principal,
) -> Result<Response, ApiError> {
    require_read(&p)?;
    let id = destinations_stream_id(p.tenant_id);
    let s = gw
        .deps
        .store
        .load_fresh(id, DestinationsState::apply)
        .await?;
    Ok(DestinationsView::respond(&s.state))
}

#[utoipa::path(put, path = "/api/v1/destinations", tag = "destinations",
    responses((status = 200, body = DestinationsView), (status = 400), (status = 412)))]
pub async fn put_destinations(
    State(gw): State<Gateway>,
    p: Principal,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    p.require(Scope::LimitsWrite)?;
    let cmd = SetDestinations::parse(&body, p.tenant_id, if_match(&headers)?)
        .map_err(ApiError::Validation)?;
    let ran = gw.run(&p, &cmd).await?;
    let id = destinations_stream_id(p.tenant_id);
    let s = with_written(&ran.state, id, &ran.written, DestinationsState::apply)?;
    Ok(DestinationsView::respond(&s))
}
