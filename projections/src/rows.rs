//! Batches for projections that keep one row per stream (numbers,
//! providers): the rows a batch touches are read once, each event folded
//! onto its row here, and the rows written back (or deleted) in one
//! statement each. The fold is the same rule as the projection's `apply`.

use std::collections::HashMap;

use async_trait::async_trait;
use events::{Envelope, Event};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{BatchError, ProjectionError};

/// A read table with one row per stream, keyed by the stream id.
#[async_trait]
pub(crate) trait RowTable: Sized + Send + Sync {
    /// The rows of `ids` that exist.
    async fn load(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<(Uuid, Self)>, sqlx::Error>;

    /// The row after `event` (`None`: no row, or deleted).
    fn fold(
        row: Option<Self>,
        env: &Envelope,
        event: &Event,
    ) -> Result<Option<Self>, ProjectionError>;

    /// Inserts or replaces `rows`.
    async fn upsert(conn: &mut PgConnection, rows: &[&Self]) -> Result<(), sqlx::Error>;

    /// Deletes the rows of `ids`.
    async fn delete(conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), sqlx::Error>;
}

/// `Projection::apply_batch` for a `RowTable`.
pub(crate) async fn apply<T: RowTable>(
    conn: &mut PgConnection,
    batch: &[(&Envelope, &Event)],
) -> Result<(), BatchError> {
    let db = |e: sqlx::Error| BatchError {
        at: None,
        error: ProjectionError::Db(e),
    };
    let mut ids: Vec<Uuid> = batch.iter().map(|(e, _)| e.stream_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let stored = T::load(conn, &ids).await.map_err(db)?;
    let existed: Vec<Uuid> = stored.iter().map(|(id, _)| *id).collect();
    let mut rows: HashMap<Uuid, Option<T>> =
        stored.into_iter().map(|(id, r)| (id, Some(r))).collect();
    for (i, (env, event)) in batch.iter().enumerate() {
        let slot = rows.entry(env.stream_id).or_insert(None);
        *slot =
            T::fold(slot.take(), env, event).map_err(|error| BatchError { at: Some(i), error })?;
    }
    let gone: Vec<Uuid> = existed
        .into_iter()
        .filter(|id| rows.get(id).is_some_and(Option::is_none))
        .collect();
    if !gone.is_empty() {
        T::delete(conn, &gone).await.map_err(db)?;
    }
    let kept: Vec<&T> = ids.iter().filter_map(|id| rows.get(id)?.as_ref()).collect();
    if !kept.is_empty() {
        T::upsert(conn, &kept).await.map_err(db)?;
    }
    Ok(())
}
