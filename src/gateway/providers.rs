//! `/api/v1/telephony/providers`: carrier accounts with sealed credentials.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use events::{EncryptedCredentials, ProviderId, ProviderKind};
use serde::Serialize;

use super::etag::if_match;
use super::json::JsonObject;
use super::list::ListQuery;
use super::resource::{self, id_from_path, Resource};
use super::{ApiError, Gateway};
use crate::auth::{Principal, Scope};
use crate::commands::state::ProviderState;
use crate::commands::{create_provider, delete_provider, update_provider};
use crate::domain::{parse_credentials, Fields};
use crate::secrets::PlainCredentials;
use crate::write::with_written;

/// A provider as the API shows it: credentials masked, never plaintext.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ProviderView {
    #[schema(value_type = String, format = Uuid)]
    pub id: ProviderId,
    /// `twilio`, `plivo` or `vobiz`.
    pub provider: String,
    pub label: String,
    /// Identifiers cut to their first 2 and last 4 characters, tokens `********`.
    #[schema(value_type = BTreeMap<String, String>)]
    pub credentials: sqlx::types::Json<BTreeMap<String, String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl ProviderView {
    fn from_state(id: ProviderId, s: &ProviderState) -> ProviderView {
        ProviderView {
            id,
            provider: s
                .kind
                .map(ProviderKind::as_str)
                .unwrap_or_default()
                .to_owned(),
            label: s.label.clone(),
            credentials: sqlx::types::Json(
                s.credentials
                    .as_ref()
                    .map(|c| c.masked.clone())
                    .unwrap_or_default(),
            ),
            created_at: s.created_at.unwrap_or_default(),
            updated_at: s.updated_at.unwrap_or_default(),
            version: s.version,
        }
    }
}

impl Resource for ProviderView {
    const NAME: &'static str = "provider";
    const PATH: &'static str = "/api/v1/telephony/providers";
    const SELECT: &'static str = SELECT;
    const PROJECTION: &'static dyn projections::Projection = &projections::providers::Providers;
    type Id = ProviderId;

    fn id(&self) -> ProviderId {
        self.id
    }

    fn version(&self) -> i64 {
        self.version
    }
}

/// Seals `creds` for provider `id` under the tenant's data key (created on
/// the tenant's first credentials, with its own event).
async fn seal(
    gw: &Gateway,
    p: &Principal,
    id: ProviderId,
    creds: BTreeMap<String, String>,
) -> Result<events::EncryptedCredentials, ApiError> {
    let plain: PlainCredentials = creds.into_iter().collect();
    gw.secrets
        .seal_for_provider(&gw.deps.pool, p.tenant_id, id, &plain, &p.actor)
        .await
        .map_err(ApiError::internal)
}

#[utoipa::path(post, path = "/api/v1/telephony/providers", tag = "providers",
    responses((status = 201, body = ProviderView), (status = 400), (status = 401), (status = 403)))]
pub async fn create(
    State(gw): State<Gateway>,
    p: Principal,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    p.require(Scope::TelephonyWrite)?;
    let mut f = Fields::new(&body);
    f.deny_unknown(&["provider", "label", "credentials"]);
    let kind = f.provider_kind("provider");
    let label = f.string("label", 200);
    let creds = parse_credentials(&mut f, kind);
    f.finish().map_err(ApiError::Validation)?;
    let (Some(kind), Some(label), Some(creds)) = (kind, label, creds) else {
        return Err(ApiError::field("body", "is incomplete"));
    };
    let id = ProviderId::new();
    let credentials = seal(&gw, &p, id, creds).await?;
    let cmd = create_provider::CreateProvider {
        provider_id: id,
        provider: kind,
        label,
        credentials,
    };
    let ran = gw.run(&p, &cmd).await?;
    let state = with_written(&ran.state, id, &ran.written, ProviderState::apply)?;
    Ok(ProviderView::from_state(id, &state).respond(StatusCode::CREATED))
}

#[utoipa::path(patch, path = "/api/v1/telephony/providers/{id}", tag = "providers",
    responses((status = 200, body = ProviderView), (status = 400), (status = 404), (status = 412)))]
pub async fn update(
    State(gw): State<Gateway>,
    p: Principal,
    Path(raw): Path<String>,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    p.require(Scope::TelephonyWrite)?;
    let id = id_from_path::<ProviderView>(&raw)?;
    let expected = if_match(&headers)?;
    let mut f = Fields::new(&body);
    f.deny_unknown(&["label", "credentials"]);
    let label = f.opt_string("label", 200);
    let has_creds = f.has("credentials");
    f.errors
        .is_empty()
        .then_some(())
        .ok_or_else(|| ApiError::Validation(f.errors.clone()))?;
    let credentials = match has_creds {
        true => Some(rotated_credentials(&gw, &p, id, f).await?),
        false => None,
    };
    let cmd = update_provider::UpdateProvider {
        provider_id: id,
        tenant_id: p.tenant_id,
        label,
        credentials,
        if_match: expected,
    };
    let ran = gw.run(&p, &cmd).await?;
    let state = with_written(&ran.state, id, &ran.written, ProviderState::apply)?;
    Ok(ProviderView::from_state(id, &state).respond(StatusCode::OK))
}

/// The new credentials of provider `id` in `f`, checked against its kind
/// (which says which keys are valid, and never changes) and sealed.
async fn rotated_credentials(
    gw: &Gateway,
    p: &Principal,
    id: ProviderId,
    mut f: Fields<'_>,
) -> Result<EncryptedCredentials, ApiError> {
    let known = gw.deps.store.load(id, ProviderState::apply).await?;
    let known = match known.state.visible_to(p.tenant_id) {
        true => known,
        false => gw.deps.store.load_fresh(id, ProviderState::apply).await?,
    };
    if !known.state.visible_to(p.tenant_id) {
        return Err(ApiError::NotFound("provider"));
    }
    let creds = parse_credentials(&mut f, known.state.kind);
    f.finish().map_err(ApiError::Validation)?;
    let creds = creds.ok_or_else(|| ApiError::field("credentials", "is invalid"))?;
    seal(gw, p, id, creds).await
}

#[utoipa::path(delete, path = "/api/v1/telephony/providers/{id}", tag = "providers",
    responses((status = 204), (status = 404), (status = 409), (status = 412)))]
pub async fn delete(
    State(gw): State<Gateway>,
    p: Principal,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    p.require(Scope::TelephonyWrite)?;
    let id = id_from_path::<ProviderView>(&raw)?;
    let expected = if_match(&headers)?;
    let cmd = delete_provider::DeleteProvider {
        provider_id: id,
        tenant_id: p.tenant_id,
        if_match: expected,
    };
    gw.run(&p, &cmd).await?;
    Ok(StatusCode::NO_CONTENT)
}

const SELECT: &str = "SELECT id, provider, label, masked AS credentials, created_at, updated_at, version FROM providers";

#[utoipa::path(get, path = "/api/v1/telephony/providers/{id}", tag = "providers",
    responses((status = 200, body = ProviderView), (status = 404)))]
pub async fn get_one(
    State(gw): State<Gateway>,
    p: Principal,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    p.require(Scope::TelephonyRead)?;
    resource::get_one::<ProviderView>(&gw, p.tenant_id, &raw).await
}

#[utoipa::path(get, path = "/api/v1/telephony/providers", tag = "providers",
    params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "{items: [ProviderView], next_cursor}")))]
pub async fn list(
    State(gw): State<Gateway>,
    p: Principal,
    q: ListQuery,
) -> Result<Response, ApiError> {
    p.require(Scope::TelephonyRead)?;
    q.only(&[])?;
    resource::list::<ProviderView, _>(&gw, p.tenant_id, &q, "", |query| query).await
}
