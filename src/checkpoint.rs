//! Checkpoints of the readers of the global order.

use sqlx::{PgExecutor, PgPool};

use crate::store::Position;

/// Where `name` has got to (the start if it never ran).
pub async fn load(pool: &PgPool, name: &str) -> Result<Position, sqlx::Error> {
    sqlx::query("INSERT INTO checkpoints (name) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(name)
        .execute(pool)
        .await?;
    let p: i64 = sqlx::query_scalar("SELECT position FROM checkpoints WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await?;
    Ok(Position::new(p))
}

/// The update both saves run; `save_without_flush` adds to its WHERE.
macro_rules! save_sql {
    () => {
        "UPDATE checkpoints SET position = $2, status = 'running', error = NULL, \
         updated_at = now() WHERE name = $1"
    };
}

/// Moves `name` to `at`, and marks it running.
pub async fn save<'e>(
    db: impl PgExecutor<'e>,
    name: &str,
    at: Position,
) -> Result<(), sqlx::Error> {
    run_save(db, name, at, save_sql!()).await
}

/// `save`, committed without waiting for the disk (`synchronous_commit`
/// off for this one statement's transaction), for a reader whose work is
/// safe to repeat: the relay, whose republished tail JetStream drops as
/// duplicates. A crash can take back the last few saves, never reorder
/// them. (`set_config` sits in the WHERE so it runs in the statement's own
/// transaction, before its commit reads the setting.)
pub async fn save_without_flush<'e>(
    db: impl PgExecutor<'e>,
    name: &str,
    at: Position,
) -> Result<(), sqlx::Error> {
    let sql = concat!(
        save_sql!(),
        " AND set_config('synchronous_commit', 'off', true) IS NOT NULL"
    );
    run_save(db, name, at, sql).await
}

async fn run_save<'e>(
    db: impl PgExecutor<'e>,
    name: &str,
    at: Position,
    sql: &'static str,
) -> Result<(), sqlx::Error> {
    sqlx::query(sql)
        .bind(name)
        .bind(at.global_position)
        .execute(db)
        .await?;
    Ok(())
}

/// `save`, and a `pg_notify(channel, '<name>:<position>')` delivered at
/// commit, in one statement.
pub async fn save_and_announce<'e>(
    db: impl PgExecutor<'e>,
    name: &str,
    at: Position,
    channel: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH saved AS (UPDATE checkpoints SET position = $2, status = 'running', error = NULL, \
         updated_at = now() WHERE name = $1 RETURNING name) \
         SELECT pg_notify($3, name || ':' || $2::text) FROM saved",
    )
    .bind(name)
    .bind(at.global_position)
    .bind(channel)
    .execute(db)
    .await?;
    Ok(())
}

/// Records that `name` stopped on an event it cannot handle.
pub async fn mark_stopped(pool: &PgPool, name: &str, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE checkpoints SET status = 'stopped', error = $2, updated_at = now() WHERE name = $1",
    )
    .bind(name)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// A checkpoint row as `/readyz` and the wait for read-your-writes see it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CheckpointRow {
    pub name: String,
    pub position: i64,
    pub status: String,
    pub error: Option<String>,
}

pub async fn all(pool: &PgPool) -> Result<Vec<CheckpointRow>, sqlx::Error> {
    sqlx::query_as("SELECT name, position, status, error FROM checkpoints ORDER BY name")
        .fetch_all(pool)
        .await
}
