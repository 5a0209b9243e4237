//! `/api/v1/telephony/numbers`: E.164 numbers, one holder across all tenants.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use events::{NumberId, ProviderId, ProviderKind};
use serde::Serialize;
use uuid::Uuid;

use super::etag::if_match;
use super::json::JsonObject;
use super::list::ListQuery;
use super::resource::{self, id_from_path, Resource};
use super::{ApiError, Gateway};
use crate::auth::{Principal, Scope};
use crate::commands::state::NumberState;
use crate::commands::{attach_number, release_number, update_number};
use crate::domain::PROVIDER_KINDS;
use crate::write::with_written;

/// A number as the API shows it.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct NumberView {
    #[schema(value_type = String, format = Uuid)]
    pub id: NumberId,
    pub e164: String,
    pub provider: String,
    #[schema(value_type = String, format = Uuid)]
    pub credentials_id: ProviderId,
    pub agent_id: Option<Uuid>,
    pub inbound_enabled: bool,
    pub outbound_enabled: bool,
    /// The number's own daily call cap; null: none (the tenant's apply).
    pub daily_calls_max: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl NumberView {
    fn from_state(id: NumberId, s: &NumberState) -> NumberView {
        NumberView {
            id,
            e164: s.e164.clone(),
            provider: s
                .provider
                .map(ProviderKind::as_str)
                .unwrap_or_default()
                .to_owned(),
            credentials_id: s.credentials_id,
            agent_id: s.agent_id,
            inbound_enabled: s.inbound_enabled,
            outbound_enabled: s.outbound_enabled,
            daily_calls_max: s.daily_calls_max.map(i64::from),
            created_at: s.created_at.unwrap_or_default(),
            updated_at: s.updated_at.unwrap_or_default(),
            version: s.version,
        }
    }
}

impl Resource for NumberView {
    const NAME: &'static str = "number";
    const PATH: &'static str = "/api/v1/telephony/numbers";
    const SELECT: &'static str = SELECT;
    const PROJECTION: &'static dyn projections::Projection = &projections::numbers::Numbers;
    type Id = NumberId;

    fn id(&self) -> NumberId {
        self.id
    }

    fn version(&self) -> i64 {
        self.version
    }
}

#[utoipa::path(post, path = "/api/v1/telephony/numbers", tag = "numbers",
    responses((status = 201, body = NumberView), (status = 400), (status = 404), (status = 409)))]
pub async fn create(
    State(gw): State<Gateway>,
    p: Principal,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    p.require(Scope::TelephonyWrite)?;
    let id = NumberId::new();
    let cmd =
        attach_number::AttachNumber::parse(&body, id, p.tenant_id).map_err(ApiError::Validation)?;
    let ran = gw.run(&p, &cmd).await?;
    let number = with_written(&ran.state.0, id, &ran.written, NumberState::apply)?;
    Ok(NumberView::from_state(id, &number).respond(StatusCode::CREATED))
}

#[utoipa::path(patch, path = "/api/v1/telephony/numbers/{id}", tag = "numbers",
    responses((status = 200, body = NumberView), (status = 400), (status = 404), (status = 412)))]
pub async fn update(
    State(gw): State<Gateway>,
    p: Principal,
    Path(raw): Path<String>,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    p.require(Scope::TelephonyWrite)?;
    let id = id_from_path::<NumberView>(&raw)?;
    let expected = if_match(&headers)?;
    let cmd = update_number::UpdateNumber::parse(&body, id, p.tenant_id, expected)
        .map_err(ApiError::Validation)?;
    let ran = gw.run(&p, &cmd).await?;
    let number = with_written(&ran.state, id, &ran.written, NumberState::apply)?;
    Ok(NumberView::from_state(id, &number).respond(StatusCode::OK))
}

#[utoipa::path(delete, path = "/api/v1/telephony/numbers/{id}", tag = "numbers",
    responses((status = 204), (status = 404), (status = 412)))]
pub async fn delete(
    State(gw): State<Gateway>,
    p: Principal,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    p.require(Scope::TelephonyWrite)?;
    let id = id_from_path::<NumberView>(&raw)?;
    let expected = if_match(&headers)?;
    let cmd = release_number::ReleaseNumber {
        number_id: id,
        tenant_id: p.tenant_id,
        if_match: expected,
    };
    gw.run(&p, &cmd).await?;
    Ok(StatusCode::NO_CONTENT)
}

const SELECT: &str =
    "SELECT id, e164, provider, credentials_id, agent_id, inbound_enabled, outbound_enabled, \
    daily_calls_max, created_at, updated_at, version FROM numbers";

#[utoipa::path(get, path = "/api/v1/telephony/numbers/{id}", tag = "numbers",
    responses((status = 200, body = NumberView), (status = 404)))]
pub async fn get_one(
    State(gw): State<Gateway>,
    p: Principal,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    p.require(Scope::TelephonyRead)?;
    resource::get_one::<NumberView>(&gw, p.tenant_id, &raw).await
}

#[utoipa::path(get, path = "/api/v1/telephony/numbers", tag = "numbers",
    params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query),
        ("agent_id" = Option<Uuid>, Query), ("provider" = Option<String>, Query)),
    responses((status = 200, description = "{items: [NumberView], next_cursor}")))]
pub async fn list(
    State(gw): State<Gateway>,
    p: Principal,
    q: ListQuery,
) -> Result<Response, ApiError> {
    p.require(Scope::TelephonyRead)?;
    q.only(&["agent_id", "provider"])?;
    let agent = q.uuid("agent_id")?;
    let provider = match q.get("provider") {
        None => None,
        Some(s) => Some(
            ProviderKind::parse(s).ok_or_else(|| ApiError::field("provider", PROVIDER_KINDS))?,
        ),
    };
    let filter = "AND ($3::uuid IS NULL OR agent_id = $3) AND ($4::text IS NULL OR provider = $4)";
    resource::list::<NumberView, _>(&gw, p.tenant_id, &q, filter, |query| {
        query.bind(agent).bind(provider.map(ProviderKind::as_str))
    })
    .await
}
