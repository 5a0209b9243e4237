//! The IO around a decision: open the command's transaction with its stream
//! locks, and after the decision append, commit and wait for projections.

use events::Event;
use uuid::Uuid;

use super::{ApiError, Gateway};
use crate::auth::Principal;
use crate::projection;
use crate::store::{AppendTx, Begin, CommandMeta, ExpectedVersion, StoredEvent, StreamAppend};

/// Opens a fresh command for `principal`, locking `streams`.
pub async fn begin(
    gw: &Gateway,
    principal: &Principal,
    streams: &[Uuid],
) -> Result<AppendTx, ApiError> {
    let meta = CommandMeta::new(principal.tenant_id, principal.actor.clone());
    match AppendTx::begin(&gw.deps.pool, meta, streams).await? {
        Begin::Fresh(tx) => Ok(tx),
        // Command ids are minted here, so a duplicate cannot happen.
        Begin::Duplicate(_) => Err(ApiError::internal(anyhow::anyhow!(
            "fresh command id already used"
        ))),
    }
}

/// Appends, commits, and waits (bounded) until `projections` have applied
/// the write, so a read right after it sees it.
pub async fn finish(
    gw: &Gateway,
    mut tx: AppendTx,
    appends: &[StreamAppend],
    projections: &[&str],
) -> Result<Vec<StoredEvent>, ApiError> {
    let written = tx.append(appends).await?;
    tx.commit().await?;
    gw.deps.metrics.events_appended.inc_by(written.len() as u64);
    if let Some(last) = written.iter().map(|e| e.position).max() {
        let names: Vec<String> = projections
            .iter()
            .map(|p| format!("projection:{p}"))
            .collect();
        if !projection::wait_for(&gw.deps.pool, &names, last, gw.read_your_writes).await {
            tracing::warn!(
                ?projections,
                "projections did not catch up in time; reads may lag this write"
            );
        }
    }
    Ok(written)
}

/// One stream's new events, decided against `version`.
pub fn to_stream(
    stream_type: events::StreamType,
    id: Uuid,
    version: i64,
    events: Vec<Event>,
) -> StreamAppend {
    StreamAppend {
        stream_type,
        stream_id: id,
        expected: ExpectedVersion::from_version(version),
        events,
    }
}

impl From<crate::secrets::SecretError> for ApiError {
    fn from(e: crate::secrets::SecretError) -> Self {
        ApiError::internal(e)
    }
}
