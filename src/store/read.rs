//! Reading the store: one stream, or the global order.
//!
//! # Design: a gap-free global order
//! Positions are handed out under the append lock and the lock is released
//! only after the transaction is visible (`sb_append`, ARCHITECTURE.md
//! "Global order"), so positions become visible in increasing order: a
//! reader that sees position n can never later find an event below n. A
//! reader's checkpoint is therefore just the last position it handled, and
//! `global_position > checkpoint` never skips an event that commits late.

use chrono::{DateTime, Utc};
use events::TenantId;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::row::{StoredEvent, COLUMNS};
use super::{Position, StoreError};

/// A stream's events in version order, up to `max_version` when given.
pub async fn read_stream<'e>(
    db: impl PgExecutor<'e>,
    stream_id: impl Into<Uuid>,
    max_version: Option<i64>,
) -> Result<Vec<StoredEvent>, StoreError> {
    stream_versions(db, stream_id.into(), 0, max_version.unwrap_or(i64::MAX)).await
}

/// A stream's events after version `after`, in version order: what a cached
/// state lacks (usually nothing), read in one indexed query however long
/// the stream.
pub async fn read_stream_after<'e>(
    db: impl PgExecutor<'e>,
    stream_id: impl Into<Uuid>,
    after: i64,
) -> Result<Vec<StoredEvent>, StoreError> {
    stream_versions(db, stream_id.into(), after, i64::MAX).await
}

/// Several streams' events after a version each (`(stream, after)`), in
/// one query: each stream's in version order, the streams in the order
/// given. What several cached states lack, read in one round trip.
pub async fn read_streams_after<'e>(
    db: impl PgExecutor<'e>,
    streams: &[(Uuid, i64)],
) -> Result<Vec<StoredEvent>, StoreError> {
    let ids: Vec<Uuid> = streams.iter().map(|s| s.0).collect();
    let afters: Vec<i64> = streams.iter().map(|s| s.1).collect();
    let rows = sqlx::query(&format!(
        "SELECT e.* FROM unnest($1::uuid[], $2::bigint[]) WITH ORDINALITY AS s(id, after, n) \
         CROSS JOIN LATERAL (SELECT {COLUMNS} FROM events \
           WHERE stream_id = s.id AND version > s.after ORDER BY version) e \
         ORDER BY s.n, e.version"
    ))
    .bind(&ids)
    .bind(&afters)
    .fetch_all(db)
    .await?;
    Ok(StoredEvent::from_rows(&rows)?)
}

/// Versions `after + 1 ..= upto` of a stream.
async fn stream_versions<'e>(
    db: impl PgExecutor<'e>,
    stream_id: Uuid,
    after: i64,
    upto: i64,
) -> Result<Vec<StoredEvent>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM events WHERE stream_id = $1 AND version > $2 AND version <= $3 \
         ORDER BY version"
    ))
    .bind(stream_id)
    .bind(after)
    .bind(upto)
    .fetch_all(db)
    .await?;
    Ok(StoredEvent::from_rows(&rows)?)
}

/// Up to `limit` events after `after` in the global order.
pub async fn read_global(
    pool: &PgPool,
    after: Position,
    limit: i64,
) -> Result<Vec<StoredEvent>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM events \
         WHERE global_position > $1 ORDER BY global_position LIMIT $2"
    ))
    .bind(after.global_position)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(StoredEvent::from_rows(&rows)?)
}

/// What a reader with a checkpoint reads in one step.
#[derive(Debug)]
pub struct CheckpointRead {
    /// The checkpoint: where the read started.
    pub at: Position,
    /// Up to the limit of the reader's events after `at`.
    pub events: Vec<StoredEvent>,
    /// How far the read covered: the last event returned when the batch is
    /// full, else the last position stored, so a reader that applies only
    /// some streams still moves past the others.
    pub covered: Position,
}

/// Locks the checkpoint row `checkpoint` for the rest of the transaction
/// and reads up to `limit` events of `stream_types` after it, in the global
/// order: one statement, one round trip. `None` while the row does not
/// exist.
pub async fn read_after_checkpoint(
    conn: &mut sqlx::PgConnection,
    checkpoint: &str,
    stream_types: &[&str],
    limit: i64,
) -> Result<Option<CheckpointRead>, StoreError> {
    // One snapshot for the whole read: everything at or below the highest
    // position it sees is visible in it too (positions become visible in
    // order), so the read misses none of it. With no event to return, the
    // one row carries only the checkpoint and `top`. A checkpoint moved
    // while this waited for its lock is read as moved (the lock re-reads
    // the row), and the events after it are read in the same statement.
    let rows = sqlx::query(&format!(
        "WITH cp AS (SELECT position FROM checkpoints WHERE name = $1 FOR UPDATE), \
         top AS (SELECT coalesce(max(global_position), 0) AS top FROM events) \
         SELECT e.*, top.top, cp.position AS checkpoint FROM cp CROSS JOIN top \
         LEFT JOIN LATERAL ( \
           SELECT {COLUMNS} FROM events WHERE global_position > cp.position \
             AND global_position <= top.top AND stream_type = ANY($2) \
           ORDER BY global_position LIMIT $3) e ON true"
    ))
    .bind(checkpoint)
    .bind(stream_types)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let at = Position::new(sqlx::Row::try_get(first, "checkpoint")?);
    let top: i64 = sqlx::Row::try_get(first, "top")?;
    let top = top.max(at.global_position);
    let mut events = Vec::with_capacity(rows.len());
    for r in &rows {
        let present: Option<i64> = sqlx::Row::try_get(r, "global_position")?;
        if present.is_some() {
            events.push(StoredEvent::from_row(r)?);
        }
    }
    let covered = match events.last() {
        Some(last) if events.len() as i64 == limit => last.position,
        _ => Position::new(top),
    };
    Ok(Some(CheckpointRead {
        at,
        events,
        covered,
    }))
}

/// Filters for a tenant's history.
#[derive(Debug, Clone, Default)]
pub struct TenantFilter {
    pub stream_id: Option<Uuid>,
    pub event_type: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub after: Option<Position>,
}

/// A tenant's events in global order, filtered, up to `limit`.
pub async fn read_tenant(
    pool: &PgPool,
    tenant_id: TenantId,
    filter: &TenantFilter,
    limit: i64,
) -> Result<Vec<StoredEvent>, StoreError> {
    let after = filter.after.unwrap_or(Position::START);
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM events \
         WHERE tenant_id = $1 AND global_position > $2 \
           AND ($3::uuid IS NULL OR stream_id = $3) \
           AND ($4::text IS NULL OR event_type = $4) \
           AND ($5::timestamptz IS NULL OR recorded_at >= $5) \
           AND ($6::timestamptz IS NULL OR recorded_at < $6) \
         ORDER BY global_position LIMIT $7"
    ))
    .bind(tenant_id)
    .bind(after.global_position)
    .bind(filter.stream_id)
    .bind(&filter.event_type)
    .bind(filter.since)
    .bind(filter.until)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(StoredEvent::from_rows(&rows)?)
}

/// The highest position stored (`START` for an empty store). One index
/// probe.
pub async fn head(pool: &PgPool) -> Result<Position, StoreError> {
    let top: i64 = sqlx::query_scalar("SELECT coalesce(max(global_position), 0) FROM events")
        .fetch_one(pool)
        .await?;
    Ok(Position::new(top))
}

/// How many events lie after `at`, for a reader's lag metric: the distance
/// to the highest position stored (a rolled-back append leaves a hole in the
/// numbers, so it can overcount by those), at most `cap`.
pub async fn count_after(pool: &PgPool, at: Position, cap: i64) -> Result<i64, StoreError> {
    let top = head(pool).await?;
    Ok((top.global_position - at.global_position).clamp(0, cap))
}
