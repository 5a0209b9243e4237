//! `POST /internal/v1/call-events`: the Call Processor's status callbacks.
//!
//! Signed with HMAC-SHA256 (`Switchboard-Signature`); unsigned, wrongly
//! signed or stale callbacks are 401. Callbacks may repeat and arrive out of
//! order: `RecordCallback` records each transition at most once, never
//! leaving an end state, and a conflicting concurrent callback is decided
//! again on the call's fresh state.

/// Where Call Processors post status callbacks, under a gateway's public URL.
pub const PATH: &str = "/internal/v1/call-events";

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use events::{CallId, TenantId};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use super::json::parse_object;
use super::{ApiError, Gateway};
use crate::callproc::{verify, DEFAULT_MAX_AGE_S, SIGNATURE_HEADER};
use crate::commands::call::{CallState, RecordCallback};
use crate::store::CommandMeta;

pub async fn call_event(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    // Freshness is judged by the wall clock the Call Processor signs with,
    // not the injectable clock the caps use.
    let now = chrono::Utc::now().timestamp();
    verify(
        gw.callback_secret.expose_secret().as_bytes(),
        header,
        &body,
        now,
        DEFAULT_MAX_AGE_S,
    )
    .map_err(|_| ApiError::BadSignature)?;
    let cmd = RecordCallback::parse(&parse_object(&body)?).map_err(ApiError::Validation)?;
    // The tenant is the call's own; the command is the Call Processor's.
    let tenant = call_tenant(&gw, cmd.call_id).await?;
    let meta = CommandMeta::new(tenant, "system:callproc");
    // The Call Processor reads nothing back: no wait for the projection.
    let ran = gw.run_as(&meta, &cmd).await?;
    Ok(Json(json!({"applied": !ran.written.is_empty()})))
}

/// The tenant of call `id` (a 404 for a call that does not exist).
async fn call_tenant(gw: &Gateway, id: CallId) -> Result<TenantId, ApiError> {
    let store = &gw.deps.store;
    let mut call = store.load(id, CallState::apply).await?;
    if call.head.version == 0 && !call.fresh {
        call = store.load_fresh(id, CallState::apply).await?;
    }
    if call.head.version == 0 {
        return Err(ApiError::NotFound("call"));
    }
    Ok(call.state.tenant_id)
}
