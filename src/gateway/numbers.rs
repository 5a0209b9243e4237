//! `/api/v1/telephony/numbers`: E.164 numbers, one holder across all tenants.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use events::{NumberId, ProviderId, ProviderKind};
use serde::Serialize;
use uuid::Uuid;

use super::etag::{etag, if_match};
use super::json::JsonObject;
use super::list::ListQuery;
use super::{ApiError, Gateway};
use crate::auth::{Principal, Scope};
use crate::commands::state::NumberState;
use crate::commands::{attach_number, release_number, update_number};
use crate::domain::Fields;
use crate::write::with_written;

const PROJECTION: &[&str] = &["numbers"];

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
            created_at: s.created_at.unwrap_or_default(),
            updated_at: s.updated_at.unwrap_or_default(),
            version: s.version,
        }
    }

    fn respond(self, status: StatusCode) -> Response {
        let tag = etag(self.version);
        let location = (
            header::LOCATION,
            format!("/api/v1/telephony/numbers/{}", self.id),
        );
        (status, [tag], [location], Json(self)).into_response()
    }
}

fn id_from_path(raw: &str) -> Result<NumberId, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound("number"))
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
    let ran = gw.run(&p, &cmd, PROJECTION).await?;
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
    let id = id_from_path(&raw)?;
    let expected = if_match(&headers)?;
    let mut f = Fields::new(&body);
    f.deny_unknown(&["agent_id", "inbound_enabled", "outbound_enabled"]);
    let agent_id = f.opt_nullable_uuid("agent_id");
    let inbound = f.opt_bool("inbound_enabled");
    let outbound = f.opt_bool("outbound_enabled");
    f.finish().map_err(ApiError::Validation)?;
    let cmd = update_number::UpdateNumber {
        number_id: id,
        tenant_id: p.tenant_id,
        agent_id,
        inbound_enabled: inbound,
        outbound_enabled: outbound,
        if_match: expected,
    };
    let ran = gw.run(&p, &cmd, PROJECTION).await?;
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
    let id = id_from_path(&raw)?;
    let expected = if_match(&headers)?;
    let cmd = release_number::ReleaseNumber {
        number_id: id,
        tenant_id: p.tenant_id,
        if_match: expected,
    };
    gw.run(&p, &cmd, PROJECTION).await?;
    Ok(StatusCode::NO_CONTENT)
}

const SELECT: &str =
    "SELECT id, e164, provider, credentials_id, agent_id, inbound_enabled, outbound_enabled, \
    created_at, updated_at, version FROM numbers";

#[utoipa::path(get, path = "/api/v1/telephony/numbers/{id}", tag = "numbers",
    responses((status = 200, body = NumberView), (status = 404)))]
pub async fn get_one(
    State(gw): State<Gateway>,
    p: Principal,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    p.require(Scope::TelephonyRead)?;
    let id = id_from_path(&raw)?;
    let row: Option<NumberView> =
        sqlx::query_as(&format!("{SELECT} WHERE id = $1 AND tenant_id = $2"))
            .bind(id)
            .bind(p.tenant_id)
            .fetch_optional(&gw.deps.pool)
            .await?;
    Ok(row
        .ok_or(ApiError::NotFound("number"))?
        .respond(StatusCode::OK))
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
    let after = q.uuid("cursor")?.unwrap_or(Uuid::nil());
    let agent = q.uuid("agent_id")?;
    let provider =
        match q.get("provider") {
            None => None,
            Some(s) => Some(ProviderKind::parse(s).ok_or_else(|| {
                ApiError::field("provider", "must be one of twilio, plivo, vobiz")
            })?),
        };
    let rows: Vec<NumberView> = sqlx::query_as(&format!(
        "{SELECT} WHERE tenant_id = $1 AND id > $2 AND ($3::uuid IS NULL OR agent_id = $3) \
         AND ($4::text IS NULL OR provider = $4) ORDER BY id LIMIT $5"
    ))
    .bind(p.tenant_id)
    .bind(after)
    .bind(agent)
    .bind(provider.map(ProviderKind::as_str))
    .bind(q.limit + 1)
    .fetch_all(&gw.deps.pool)
    .await?;
    Ok(Json(q.page(rows, |r| r.id)).into_response())
}
