//! Rebuilding a projection from the store into a fresh schema.
//!
//! Projections use unqualified table names, so pointing a connection's
//! `search_path` at an empty schema and replaying every event there builds a
//! second copy of the read model from nothing. Comparing it with the live
//! tables proves a projection deterministic; swapping it in is how a read
//! model is rebuilt while the service runs.

use projections::Projection;
use sqlx::{Connection, PgPool};

use super::runner::{create_indexes, rebuild_into, StepError};
use crate::store::Position;

/// Replays the whole store through `projection` into `schema` (created, and
/// must not exist yet), at least up to `until` when given. Returns the
/// position the copy reached.
pub async fn rebuild_to_schema(
    pool: &PgPool,
    projection: &dyn Projection,
    schema: &str,
    until: Option<Position>,
) -> Result<Position, StepError> {
    if !schema
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(StepError::Db(sqlx::Error::Protocol(format!(
            "bad schema name {schema:?}"
        ))));
    }
    let mut conn = pool.acquire().await?.detach();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await?;
    sqlx::query(&format!("SET search_path TO {schema}"))
        .execute(&mut conn)
        .await?;
    sqlx::raw_sql(projection.schema_sql())
        .execute(&mut conn)
        .await?;
    let at = rebuild_into(pool, &mut conn, projection, Position::START, until).await?;
    // Filled first, indexed after: see `Projection::index_sql`.
    create_indexes(&mut conn, projection).await?;
    conn.close().await?;
    Ok(at)
}
