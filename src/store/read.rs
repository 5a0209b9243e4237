//! Reading the store: one stream, or the global order.
//!
//! # Design: a gap-free global order
//! Sequence values are handed out at insert but become visible at commit, so
//! "position > checkpoint" can pass over an event whose transaction commits
//! late. Instead each event records the id of the transaction that wrote it,
//! and readers only look below `pg_snapshot_xmin(pg_current_snapshot())`:
//! every transaction with a smaller id has finished, so nothing new can ever
//! appear behind the reader. Ordering by (transaction id, position) is then
//! stable, and the checkpoint is that pair. A transaction still open holds
//! readers back (never skips them); that is the price, and why append
//! transactions are short.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::row::{StoredEvent, COLUMNS};
use super::{Position, StoreError};

/// The condition that keeps a reader below every transaction still running.
const SAFE_HORIZON: &str = "transaction_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint";

/// A stream's events in version order, up to `max_version` when given.
pub async fn read_stream<'e>(
    db: impl PgExecutor<'e>,
    stream_id: Uuid,
    max_version: Option<i64>,
) -> Result<Vec<StoredEvent>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM events WHERE stream_id = $1 AND version <= $2 ORDER BY version"
    ))
    .bind(stream_id)
    .bind(max_version.unwrap_or(i64::MAX))
    .fetch_all(db)
    .await?;
    Ok(rows
        .iter()
        .map(StoredEvent::from_row)
        .collect::<Result<_, _>>()?)
}

/// Up to `limit` events after `after` in the global order, never passing an
/// event whose transaction may still commit.
pub async fn read_global(
    pool: &PgPool,
    after: Position,
    limit: i64,
) -> Result<Vec<StoredEvent>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM events \
         WHERE (transaction_id, global_position) > ($1, $2) AND {SAFE_HORIZON} \
         ORDER BY transaction_id, global_position LIMIT $3"
    ))
    .bind(after.transaction_id)
    .bind(after.global_position)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(StoredEvent::from_row)
        .collect::<Result<_, _>>()?)
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
    tenant_id: Uuid,
    filter: &TenantFilter,
    limit: i64,
) -> Result<Vec<StoredEvent>, StoreError> {
    let after = filter.after.unwrap_or(Position::START);
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM events \
         WHERE tenant_id = $1 AND (transaction_id, global_position) > ($2, $3) AND {SAFE_HORIZON} \
           AND ($4::uuid IS NULL OR stream_id = $4) \
           AND ($5::text IS NULL OR event_type = $5) \
           AND ($6::timestamptz IS NULL OR recorded_at >= $6) \
           AND ($7::timestamptz IS NULL OR recorded_at < $7) \
         ORDER BY transaction_id, global_position LIMIT $8"
    ))
    .bind(tenant_id)
    .bind(after.transaction_id)
    .bind(after.global_position)
    .bind(filter.stream_id)
    .bind(&filter.event_type)
    .bind(filter.since)
    .bind(filter.until)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(StoredEvent::from_row)
        .collect::<Result<_, _>>()?)
}

/// How many committed events lie after `at` (counted up to `cap`): a
/// reader's lag, for metrics.
pub async fn count_after(pool: &PgPool, at: Position, cap: i64) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT 1 FROM events WHERE (transaction_id, global_position) > ($1, $2) LIMIT $3) s",
    )
    .bind(at.transaction_id)
    .bind(at.global_position)
    .bind(cap)
    .fetch_one(pool)
    .await?)
}
