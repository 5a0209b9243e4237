//! The one rule of a projection that keeps one row per stream (providers,
//! numbers, calls): each event folds the stream's row (`RowTable::fold`,
//! pure). A batch reads the rows it touches once, folds its events onto
//! them, and writes them back (or deletes them) in one statement each; a
//! single event is a batch of one.

use std::collections::{HashMap, HashSet};

use events::{Envelope, Event};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres};
use uuid::Uuid;

use crate::{BatchError, ProjectionError};

/// A row table's columns, said once: each field of the row struct (named as
/// its column) with its SQL type. Gives `RowTable::COLUMNS` and
/// `RowTable::bind`, which binds each field of every row as one array for
/// the `unnest` insert, borrowed, so a batch's rows (a call's whole
/// timeline among them) are not copied to be written.
macro_rules! columns {
    ($($field:ident: $ty:literal),+ $(,)?) => {
        const COLUMNS: &'static [(&'static str, &'static str)] =
            &[$((stringify!($field), $ty)),+];

        fn bind<'q>(
            query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
            rows: &'q [&Self],
        ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
            query$(.bind(rows.iter().map(|r| &r.$field).collect::<Vec<_>>()))+
        }
    };
}
pub(crate) use columns;

/// A read table with one row per stream, keyed by the stream id.
pub(crate) trait RowTable:
    Sized + Send + Sync + Unpin + for<'r> sqlx::FromRow<'r, PgRow>
{
    /// The table, and its columns with their SQL types (`columns!`); the
    /// first is the stream id.
    const TABLE: &'static str;
    const COLUMNS: &'static [(&'static str, &'static str)];

    fn id(&self) -> Uuid;

    /// The row after `event` (`None`: no row, or deleted).
    fn fold(
        row: Option<Self>,
        env: &Envelope,
        event: &Event,
    ) -> Result<Option<Self>, ProjectionError>;

    /// The `ON CONFLICT … DO UPDATE` clause that makes the insert replace a
    /// row the table holds.
    const ON_CONFLICT: &'static str;

    /// Binds each column of `rows`, as an array, in `COLUMNS` order.
    fn bind<'q>(
        query: Query<'q, Postgres, PgArguments>,
        rows: &'q [&Self],
    ) -> Query<'q, Postgres, PgArguments>;
}

/// The column names of `T`, comma-separated.
fn names<T: RowTable>() -> String {
    T::COLUMNS
        .iter()
        .map(|c| c.0)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The key column (the stream id).
fn key<T: RowTable>() -> &'static str {
    T::COLUMNS.first().map_or("id", |c| c.0)
}

/// Writes `rows`: plain inserts when none is in the table (`replace` false:
/// a row that is there after all fails the batch with a unique violation,
/// never overwritten), else inserts or replaces.
async fn write<T: RowTable>(
    conn: &mut PgConnection,
    rows: &[&T],
    replace: bool,
) -> Result<(), sqlx::Error> {
    let arrays: Vec<String> = T::COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (_, ty))| format!("${}::{ty}[]", i + 1))
        .collect();
    let mut sql = format!(
        "INSERT INTO {} ({}) SELECT * FROM unnest({})",
        T::TABLE,
        names::<T>(),
        arrays.join(", ")
    );
    if replace {
        sql = format!("{sql} {}", T::ON_CONFLICT);
    }
    T::bind(sqlx::query(&sql), rows).execute(conn).await?;
    Ok(())
}

async fn load<T: RowTable>(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<T>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {} FROM {} WHERE {} = ANY($1)",
        names::<T>(),
        T::TABLE,
        key::<T>()
    ))
    .bind(ids)
    .fetch_all(conn)
    .await
}

async fn delete<T: RowTable>(conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "DELETE FROM {} WHERE {} = ANY($1)",
        T::TABLE,
        key::<T>()
    ))
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
    // A stream whose first event in the batch is its version 1 has no
    // row yet: only the others are read.
    let mut first: HashMap<Uuid, i64> = HashMap::with_capacity(batch.len());
    for (env, _) in batch {
        first.entry(env.stream_id).or_insert(env.version);
    }
    let mut ids: Vec<Uuid> = first.keys().copied().collect();
    ids.sort_unstable();
    let older: Vec<Uuid> = ids.iter().copied().filter(|id| first[id] != 1).collect();
    let stored: Vec<T> = if older.is_empty() {
        Vec::new()
    } else {
        load(conn, &older).await.map_err(db)?
    };
    let loaded: HashSet<Uuid> = stored.iter().map(T::id).collect();
    let mut rows: HashMap<Uuid, Option<T>> =
        stored.into_iter().map(|r| (r.id(), Some(r))).collect();
    for (i, (env, event)) in batch.iter().enumerate() {
        let slot = rows.entry(env.stream_id).or_insert(None);
        *slot =
            T::fold(slot.take(), env, event).map_err(|error| BatchError { at: Some(i), error })?;
    }
    let gone: Vec<Uuid> = loaded
        .iter()
        .copied()
        .filter(|id| rows.get(id).is_some_and(Option::is_none))
        .collect();
    if !gone.is_empty() {
        delete::<T>(conn, &gone).await.map_err(db)?;
    }
    // Rows the table held are replaced; the others (most: a stream's first
    // events) are inserted, which costs PostgreSQL no conflict handling.
    let (held, new): (Vec<&T>, Vec<&T>) = ids
        .iter()
        .filter_map(|id| rows.get(id)?.as_ref())
        .partition(|r| loaded.contains(&r.id()));
    if !held.is_empty() {
        write(conn, &held, true).await.map_err(db)?;
    }
    if !new.is_empty() {
        write(conn, &new, false).await.map_err(db)?;
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
