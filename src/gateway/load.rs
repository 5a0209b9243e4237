//! Folding streams inside a command's transaction (under its locks).

use events::Event;
use sqlx::PgConnection;
use uuid::Uuid;

use super::ApiError;
use crate::commands::state::At;
use crate::store::{self, StoredEvent};

/// Reads stream `id` on `conn` and folds it with `apply`.
pub async fn fold<S: Default>(
    conn: &mut PgConnection,
    id: Uuid,
    apply: fn(&mut S, At, &Event),
) -> Result<S, ApiError> {
    Ok(store::load(conn, id, apply).await?)
}

/// Applies to `state` the events just written for stream `id`.
pub fn written<S>(
    state: S,
    id: Uuid,
    events: &[StoredEvent],
    apply: fn(&mut S, At, &Event),
) -> Result<S, ApiError> {
    Ok(store::fold_onto(
        state,
        events.iter().filter(|e| e.envelope.stream_id == id),
        apply,
    )?)
}
