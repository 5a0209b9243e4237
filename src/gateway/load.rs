//! Folding streams inside a command's transaction (under its locks).

use events::Event;
use sqlx::PgConnection;
use uuid::Uuid;

use super::ApiError;
use crate::commands::state::At;
use crate::store;

/// Reads stream `id` on `conn` and folds it with `apply`.
pub async fn fold<S: Default>(
    conn: &mut PgConnection,
    id: Uuid,
    apply: fn(&mut S, At, &Event),
) -> Result<S, ApiError> {
    let mut state = S::default();
    for stored in store::read_stream(&mut *conn, id, None).await? {
        let event = stored.event()?;
        let env = &stored.envelope;
        let at = At {
            tenant_id: env.tenant_id,
            version: env.version,
            recorded_at: env.recorded_at,
        };
        apply(&mut state, at, &event);
    }
    Ok(state)
}
