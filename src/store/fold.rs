//! Folding stored events into the state decisions read.
//!
//! The states and their `apply` functions are pure (`commands::state`);
//! this is the one place that walks stored envelopes into them.

use events::Event;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::row::StoredEvent;
use super::{read_stream, StoreError};
use crate::commands::state::At;

/// Applies `events` (in version order) to `state`.
pub fn fold_onto<'a, S>(
    mut state: S,
    events: impl IntoIterator<Item = &'a StoredEvent>,
    apply: fn(&mut S, At, &Event),
) -> Result<S, StoreError> {
    for stored in events {
        let env = &stored.envelope;
        let at = At {
            tenant_id: env.tenant_id,
            version: env.version,
            recorded_at: env.recorded_at,
        };
        apply(&mut state, at, &stored.event()?);
    }
    Ok(state)
}

/// Reads stream `id` and folds it from the default state.
pub async fn load<'e, S: Default>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    apply: fn(&mut S, At, &Event),
) -> Result<S, StoreError> {
    let events = read_stream(db, id, None).await?;
    fold_onto(S::default(), &events, apply)
}
