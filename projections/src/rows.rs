//! The one rule of a projection that keeps one row per stream (providers,
//! numbers, calls): each event folds the stream's row (`RowTable::fold`,
//! pure). A batch reads the rows it touches once, folds its events onto
//! them, and writes them back (or deletes them) in one statement each; a
//! single event is a batch of one.

use std::collections::HashMap;

use async_trait::async_trait;
use events::{Envelope, Event};
use sqlx::postgres::PgRow;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{BatchError, ProjectionError};

/// One field of every row in `rows`, as an array to bind to an `unnest`
/// upsert: borrowed, so a batch's rows (a call's whole timeline among them)
/// are not copied to be written.
macro_rules! column {
    ($rows:expr, $f:ident) => {
        $rows.iter().map(|r| &r.$f).collect::<Vec<_>>()
    };
}
pub(crate) use column;

/// A read table with one row per stream, keyed by the stream id.
#[async_trait]
pub(crate) trait RowTable:
    Sized + Send + Sync + Unpin + for<'r> sqlx::FromRow<'r, PgRow>
{
    /// The table, and its columns in the order `upsert` binds them; the
    /// first is the stream id.
    const TABLE: &'static str;
    const COLUMNS: &'static str;

    fn id(&self) -> Uuid;

    /// The row after `event` (`None`: no row, or deleted).
    fn fold(
        row: Option<Self>,
        env: &Envelope,
        event: &Event,
    ) -> Result<Option<Self>, ProjectionError>;

    /// Inserts or replaces `rows`.
    async fn upsert(conn: &mut PgConnection, rows: &[&Self]) -> Result<(), sqlx::Error>;
}

async fn load<T: RowTable>(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<T>, sqlx::Error> {
    let key = T::COLUMNS.split(',').next().unwrap_or("id").trim();
    sqlx::query_as(&format!(
        "SELECT {} FROM {} WHERE {key} = ANY($1)",
        T::COLUMNS,
        T::TABLE
    ))
    .bind(ids)
    .fetch_all(conn)
    .await
}

async fn delete<T: RowTable>(conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    let key = T::COLUMNS.split(',').next().unwrap_or("id").trim();
    sqlx::query(&format!("DELETE FROM {} WHERE {key} = ANY($1)", T::TABLE))
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
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
    let stored: Vec<T> = load(conn, &ids).await.map_err(db)?;
    let existed: Vec<Uuid> = stored.iter().map(T::id).collect();
    let mut rows: HashMap<Uuid, Option<T>> =
        stored.into_iter().map(|r| (r.id(), Some(r))).collect();
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
        delete::<T>(conn, &gone).await.map_err(db)?;
    }
    let kept: Vec<&T> = ids.iter().filter_map(|id| rows.get(id)?.as_ref()).collect();
    if !kept.is_empty() {
        T::upsert(conn, &kept).await.map_err(db)?;
    }
    Ok(())
}

/// `Projection::apply` for a `RowTable`: a batch of one.
pub(crate) async fn apply_one<T: RowTable>(
    conn: &mut PgConnection,
    env: &Envelope,
    event: &Event,
) -> Result<(), ProjectionError> {
    apply::<T>(conn, &[(env, event)]).await.map_err(|e| e.error)
}
