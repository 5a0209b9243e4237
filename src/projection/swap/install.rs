//! The swap transaction of a live rebuild (see the design in `super`); the
//! copy before it is `runner::replay_into`.

use std::time::{Duration, Instant};

use projections::Projection;
use sqlx::{Connection, PgConnection, PgPool, Row};

use super::{quote, SwapError};
use crate::projection::runner::{apply_events, read_batch};
use crate::projection::StepError;
use crate::store::Position;

/// The swap transaction. Returns the position installed, the events it
/// applied, and how long it held the live projection.
pub(super) async fn swap(
    pool: &PgPool,
    conn: &mut PgConnection,
    projection: &dyn Projection,
    name: &str,
    live: &str,
    schema: &str,
    copy_at: Position,
) -> Result<(Position, u64, Duration), SwapError> {
    let mut tx = conn.begin().await?;
    sqlx::query("SET LOCAL lock_timeout = '10s'")
        .execute(&mut *tx)
        .await?;
    let row = sqlx::query(&format!(
        "SELECT position FROM {}.checkpoints WHERE name = $1 FOR UPDATE",
        quote(live)
    ))
    .bind(name)
    .fetch_one(&mut *tx)
    .await?;
    let held = Instant::now();
    let live_at = Position::new(row.try_get("position")?);
    // Every event up to the live checkpoint is visible: the runner read it.
    let mut at = copy_at;
    let mut applied = 0u64;
    while at < live_at {
        let batch = read_batch(pool, at, Some(live_at))
            .await
            .map_err(StepError::from)?;
        let Some(last) = batch.last().map(|e| e.position) else {
            break;
        };
        apply_events(&mut tx, projection, &batch).await?;
        applied += batch.len() as u64;
        at = last;
    }
    let installed = at.max(live_at);
    for table in projection.tables() {
        let t = quote(table);
        sqlx::query(&format!("DROP TABLE IF EXISTS {}.{t}", quote(live)))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "ALTER TABLE {}.{t} SET SCHEMA {}",
            quote(schema),
            quote(live)
        ))
        .execute(&mut *tx)
        .await?;
    }
    // This connection's search_path is the copy's schema: name the live one.
    sqlx::query(&format!(
        "UPDATE {}.checkpoints SET position = $2, updated_at = now() WHERE name = $1",
        quote(live)
    ))
    .bind(name)
    .bind(installed.global_position)
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!("DROP SCHEMA {}", quote(schema)))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((installed, applied, held.elapsed()))
}
