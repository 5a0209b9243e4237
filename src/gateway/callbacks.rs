//! `POST /internal/v1/call-events`: the Call Processor's status callbacks.
//!
//! Signed with HMAC-SHA256 (`Switchboard-Signature`); unsigned, wrongly
//! signed or stale callbacks are 401. Callbacks may repeat and arrive out of
//! order: the call stream is folded under its lock and `apply_callback`
//! records each transition at most once, never leaving an end state.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use events::StreamType;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use uuid::Uuid;

use super::json::parse_object;
use super::{load, ApiError, Gateway};
use crate::callproc::{verify, DEFAULT_MAX_AGE_S, SIGNATURE_HEADER};
use crate::commands::call::{apply_callback, CallState};
use crate::domain::Fields;
use crate::store::{AppendTx, Begin, CommandMeta};

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
    let map = parse_object(&body)?;
    let mut f = Fields::new(&map);
    f.deny_unknown(&[
        "call_id",
        "provider_call_id",
        "status",
        "timestamp",
        "duration_s",
        "hangup_cause",
    ]);
    let call_id = f.uuid("call_id");
    let provider_call_id = f.string("provider_call_id", 128);
    let status = f.string("status", 32);
    f.string("timestamp", 64);
    let duration_s = f.opt_u32("duration_s", 7 * 86_400).map(u64::from);
    let hangup_cause = f.opt_string("hangup_cause", 64);
    f.finish().map_err(ApiError::Validation)?;
    let (Some(call_id), Some(provider_call_id), Some(status)) = (call_id, provider_call_id, status)
    else {
        return Err(ApiError::field("body", "is incomplete"));
    };
    // The tenant is the call's own; the command is the Call Processor's.
    let tenant: Option<Uuid> = sqlx::query_scalar(
        "SELECT tenant_id FROM streams WHERE stream_id = $1 AND stream_type = 'call'",
    )
    .bind(call_id)
    .fetch_optional(&gw.deps.pool)
    .await?;
    let Some(tenant) = tenant else {
        return Err(ApiError::NotFound("call"));
    };
    let meta = CommandMeta::new(tenant, "system:callproc");
    let Begin::Fresh(mut tx) = AppendTx::begin(&gw.deps.pool, meta, &[call_id]).await? else {
        return Err(ApiError::internal(anyhow::anyhow!(
            "fresh command id already used"
        )));
    };
    let state: CallState = load::fold(tx.conn(), call_id, CallState::apply).await?;
    if state
        .provider_call_id
        .as_deref()
        .is_some_and(|p| p != provider_call_id)
    {
        return Err(ApiError::Conflict(
            "provider_call_id does not match the call".into(),
        ));
    }
    let events = apply_callback(&state, &status, duration_s, hangup_cause.as_deref())?;
    let applied = events.len();
    super::write::finish(
        &gw,
        tx,
        &[super::write::to_stream(
            StreamType::Call,
            call_id,
            state.version,
            events,
        )],
        &["calls"],
    )
    .await?;
    Ok(Json(json!({"applied": applied > 0})))
}
