//! Read-your-writes: wait until projections have applied a position.

use std::time::Duration;

use sqlx::PgPool;

use crate::store::Position;

/// Waits (polling, up to `timeout`) until every checkpoint in `names` is at or
/// past `at`. Returns whether they got there; a write still succeeds when a
/// projection is slow or stopped, the caller just cannot promise the read.
pub async fn wait_for(pool: &PgPool, names: &[String], at: Position, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    // Short steps: a write's answer waits on this, and a projector usually
    // applies the event within a few milliseconds.
    let mut delay = Duration::from_millis(1);
    loop {
        let behind: Result<i64, _> = sqlx::query_scalar(
            "SELECT count(*) FROM unnest($1::text[]) AS n(name) \
             LEFT JOIN checkpoints c ON c.name = n.name \
             WHERE c.name IS NULL OR (c.transaction_id, c.position) < ($2, $3)",
        )
        .bind(names)
        .bind(at.transaction_id)
        .bind(at.global_position)
        .fetch_one(pool)
        .await;
        if matches!(behind, Ok(0)) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(10));
    }
}
