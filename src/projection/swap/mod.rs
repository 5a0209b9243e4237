//! Rebuilding a projection while the service runs, then swapping it in.
//!
//! # Design
//! The copy is built beside the live tables and swapped in by one short
//! transaction; the live projector never stops for longer than that
//! transaction, and no event is missed or applied twice.
//!
//! 1. **Copy.** A dedicated connection creates a fresh schema
//!    `rebuild_<name>_<random>`, points its `search_path` at it, creates the
//!    projection's tables there (projections use unqualified names) and
//!    replays the whole store into them in batches, one short transaction
//!    each (an open write transaction holds back the horizon of every reader
//!    of the global order, the live projectors included). Memory stays
//!    bounded by one batch.
//! 2. **Catch up.** Writes keep arriving, so it replays again up to the
//!    horizon until a round has little left to do.
//! 3. **Swap**, in ONE transaction on that connection:
//!    - lock the live checkpoint row (`checkpoints`, name
//!      `projection:<name>`) `FOR UPDATE`. The runner takes the same row lock
//!      as the *first* statement of every batch transaction (see
//!      `runner.rs`), so this waits for a batch in flight to commit, and the
//!      next batch waits for the swap. Both take the row before any table,
//!      so they queue and never deadlock;
//!    - the live checkpoint `L` cannot move now. Apply the events between
//!      the copy's position `C` and `L` to the copy, inside this
//!      transaction: the copy now reflects exactly `max(C, L)`;
//!    - `DROP` each live table and `ALTER TABLE <copy>.<t> SET SCHEMA
//!      <live>`; set the checkpoint to `max(C, L)`; drop the empty schema;
//!      commit. Readers of the tables wait for the commit (they need the
//!      table lock the `DROP` holds) and then see the new tables; a
//!      re-planned statement finds them by name.
//!    - Should the copy be ahead (`C > L`, a lagging projector), the
//!      checkpoint moves forward to `C`. The runner, woken with a batch read
//!      from `L`, compares the checkpoint it locked with the one it read and
//!      starts over from `C`, so nothing is applied twice.
//!
//! A failed swap rolls back whole (the live tables are untouched) and the
//! copy's schema is dropped. Two rebuilds of one projection at once are
//! refused (a session advisory lock). A lock wait is capped by
//! `lock_timeout`; a timed-out or deadlocked swap is retried a few times.
//! An event the copy cannot apply fails the rebuild the way it stops the
//! live projector, and changes nothing. The checkpoint only ever moves
//! forward, so read-your-writes waits (`wait_for`) keep their meaning.

use std::time::Duration;

use projections::Projection;
use sqlx::{Connection, PgConnection, PgPool};

mod install;

use install::swap;

use super::runner::{checkpoint_name, create_indexes, replay_into, StepError};
use crate::leader::role_key;
use crate::store::Position;

/// The advisory-lock class of rebuilds (the leader class is another).
const REBUILD_CLASS: i32 = 0x5b_0a_7e;
/// A catch-up round that applied fewer events than this ends catching up.
const CLOSE_ENOUGH: u64 = 200;
const SWAP_ATTEMPTS: u32 = 5;

/// What a rebuild is doing, for a progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Copy,
    CatchUp,
    Swap,
}

#[derive(Debug, Clone)]
pub struct Progress {
    pub phase: Phase,
    /// Events replayed into the copy so far.
    pub applied: u64,
    pub at: Position,
    /// The store's highest global position when the rebuild began (a hint).
    pub total_hint: i64,
}

/// The outcome of a rebuild and swap.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SwapReport {
    pub projection: String,
    /// The schema the copy was built in (gone after the swap).
    pub schema: String,
    /// Where the swapped-in tables (and the checkpoint) stand; shown as a
    /// cursor (`<transaction>-<position>`).
    #[serde(serialize_with = "as_cursor")]
    pub position: Position,
    /// Events replayed into the copy before the swap transaction.
    pub copied: u64,
    /// Events applied inside the swap transaction.
    pub applied_in_swap: u64,
    /// How long the live projection was held by the swap transaction.
    pub held_ms: u128,
}

fn as_cursor<S: serde::Serializer>(p: &Position, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_cursor())
}

#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    #[error("another rebuild of {0} is running")]
    Busy(String),
    #[error(transparent)]
    Step(#[from] StepError),
    #[error("projection database: {0}")]
    Db(#[from] sqlx::Error),
}

pub(super) fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Rebuilds `projection` into a fresh schema from the whole store while the
/// service runs, then swaps it in atomically (see the module's design).
pub async fn rebuild_and_swap(
    pool: &PgPool,
    projection: &dyn Projection,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<SwapReport, SwapError> {
    let name = checkpoint_name(projection);
    let mut conn = pool.acquire().await?.detach();
    let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
        .bind(REBUILD_CLASS)
        .bind(role_key(&name))
        .fetch_one(&mut conn)
        .await?;
    if !free {
        return Err(SwapError::Busy(projection.name().to_owned()));
    }
    let live: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&mut conn)
        .await?;
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let schema = format!("rebuild_{}_{}", projection.name(), &suffix[..8]);
    sqlx::query(&format!("CREATE SCHEMA {}", quote(&schema)))
        .execute(&mut conn)
        .await?;
    let result = copy_and_swap(pool, &mut conn, projection, &name, &live, &schema, progress).await;
    if result.is_err() {
        // The swap rolled back (or never began): the copy is of no use.
        let drop = format!("DROP SCHEMA IF EXISTS {} CASCADE", quote(&schema));
        if let Err(e) = sqlx::query(&drop).execute(pool).await {
            tracing::warn!(%schema, error = %e, "could not drop the rebuild schema");
        }
    }
    let _ = conn.close().await;
    result
}

async fn copy_and_swap(
    pool: &PgPool,
    conn: &mut PgConnection,
    projection: &dyn Projection,
    name: &str,
    live: &str,
    schema: &str,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<SwapReport, SwapError> {
    sqlx::query(&format!("SET search_path TO {}", quote(schema)))
        .execute(&mut *conn)
        .await?;
    sqlx::raw_sql(projection.schema_sql())
        .execute(&mut *conn)
        .await?;
    let total_hint = crate::store::head(pool)
        .await
        .map_err(StepError::from)?
        .global_position;
    let mut p = Progress {
        phase: Phase::Copy,
        applied: 0,
        at: Position::START,
        total_hint,
    };
    // Copy, then catch up until a round has little left.
    loop {
        let before = p.applied;
        replay_into(pool, conn, projection, p.at, None, &mut |n, at| {
            p.applied += n as u64;
            p.at = at;
            progress(&p);
        })
        .await?;
        if p.phase == Phase::CatchUp && p.applied - before < CLOSE_ENOUGH {
            break;
        }
        if p.phase == Phase::Copy {
            // Filled first, indexed after (see `Projection::index_sql`);
            // catching up and the swap then keep the indexes as the live
            // projector does.
            create_indexes(conn, projection).await?;
        }
        p.phase = Phase::CatchUp;
    }
    sqlx::query("INSERT INTO checkpoints (name) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(name)
        .execute(pool)
        .await?;
    p.phase = Phase::Swap;
    progress(&p);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match swap(pool, conn, projection, name, live, schema, p.at).await {
            Ok((position, applied_in_swap, held)) => {
                return Ok(SwapReport {
                    projection: projection.name().to_owned(),
                    schema: schema.to_owned(),
                    position,
                    copied: p.applied,
                    applied_in_swap,
                    held_ms: held.as_millis(),
                })
            }
            Err(SwapError::Db(sqlx::Error::Database(db)))
                if attempt < SWAP_ATTEMPTS
                    && matches!(db.code().as_deref(), Some("40P01" | "55P03")) =>
            {
                tracing::warn!(error = %db, attempt, "swap could not take its locks; retrying");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
            Err(e) => return Err(e),
        }
    }
}
