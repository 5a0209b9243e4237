//! One projection's loop.

use std::sync::Arc;
use std::time::Duration;

use projections::{BatchError, Projection, ProjectionError};
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use super::Progress;
use crate::checkpoint;
use crate::leader;
use crate::metrics::{Metrics, ProjectorLabels};
use crate::store::{self, Position, StoreError, Wake};

const BATCH: i64 = 500;
/// Events a rebuild reads and applies per transaction. With the chunk read
/// ahead and the one being decoded, three are in memory: 5,000 put a
/// rebuild's peak RSS at 83-101 MB (the budget is 100), 4,000 at 81-83 MB
/// for the same share of `COPY`, 2,500 at 75 MB and about 8 % slower.
const REBUILD_BATCH: i64 = 4_000;
const IDLE_WAKE: Duration = Duration::from_millis(250);

/// The checkpoint (and leader-lock) name of a projection.
pub fn checkpoint_name(projection: &dyn Projection) -> String {
    format!("projection:{}", projection.name())
}

/// Creates the projection's tables if missing.
pub async fn ensure_schema(pool: &PgPool, projection: &dyn Projection) -> Result<(), sqlx::Error> {
    // `CREATE TABLE IF NOT EXISTS` run by two processes at once can still
    // collide in the catalog; one at a time, under a lock of their own.
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(SCHEMA_LOCK_CLASS)
        .bind(crate::leader::role_key(projection.name()))
        .execute(&mut *tx)
        .await?;
    // One statement at a time (line comments dropped): the DDL has no `;`
    // inside a statement.
    let ddl: String = [projection.schema_sql(), projection.index_sql()]
        .join("\n")
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    for statement in ddl.split(';').filter(|s| !s.trim().is_empty()) {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// Creates `projection`'s secondary indexes on `conn`: a copy's, once it
/// is filled (see `Projection::index_sql`).
pub(crate) async fn create_indexes(
    conn: &mut PgConnection,
    projection: &dyn Projection,
) -> Result<(), sqlx::Error> {
    let sql = projection.index_sql();
    if !sql.trim().is_empty() {
        sqlx::raw_sql(sql).execute(conn).await?;
    }
    Ok(())
}

/// The advisory-lock class of schema creation (two-key space).
const SCHEMA_LOCK_CLASS: i32 = 0x5c_4e_3a;

/// What one step did.
#[derive(Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// Applied this many events and moved the checkpoint.
    Applied(usize),
    /// Nothing new below the horizon.
    Idle,
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The projection cannot apply this event: it must stop.
    #[error("event {global_position} ({event_type}): {reason}")]
    Poison {
        global_position: i64,
        event_type: String,
        reason: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("projection database: {0}")]
    Db(#[from] sqlx::Error),
}

/// How a projector's transaction begins: without waiting for its WAL to
/// reach the disk at commit (`synchronous_commit` off, for this transaction
/// only), set in the same round trip as the `BEGIN`.
///
/// A read table and its checkpoint are derived from the store and commit
/// together, so a crash can only take back the last few batches whole, and
/// they are applied again. Only the store's appends wait for the disk. This
/// halves the flushes of a write (one for the append, none for its
/// projection).
const BEGIN_UNFLUSHED: &str = "BEGIN; SET LOCAL synchronous_commit TO off";

/// Locks `name`'s checkpoint row for the rest of `tx`; returns its position
/// (`None` while the row does not exist yet).
async fn lock_checkpoint(
    conn: &mut PgConnection,
    name: &str,
) -> Result<Option<Position>, sqlx::Error> {
    let p: Option<i64> =
        sqlx::query_scalar("SELECT position FROM checkpoints WHERE name = $1 FOR UPDATE")
            .bind(name)
            .fetch_optional(conn)
            .await?;
    Ok(p.map(Position::new))
}

/// Whether a database error is the event's own fault: a data exception
/// (class 22) or an integrity violation (class 23). Everything else
/// (deadlocks, lock timeouts, a restarting or read-only server, a full disk)
/// says nothing about the event and is retried.
fn is_event_fault(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    matches!(db.code().as_deref(), Some(c) if c.starts_with("22") || c.starts_with("23"))
}

fn error_db(e: ProjectionError) -> sqlx::Error {
    match e {
        ProjectionError::Db(e) => e,
        ProjectionError::Invariant(m) => sqlx::Error::Protocol(m),
    }
}

/// What applying `stored` failing with `e` means: the event's fault stops
/// the projection (poison), anything else is retried.
fn poison(stored: &store::StoredEvent, e: ProjectionError) -> StepError {
    let reason = match e {
        ProjectionError::Invariant(reason) => reason,
        ProjectionError::Db(e) if is_event_fault(&e) => e.to_string(),
        ProjectionError::Db(e) => return StepError::Db(e),
    };
    StepError::Poison {
        global_position: stored.envelope.global_position,
        event_type: stored.envelope.event_type.clone(),
        reason,
    }
}

/// Runs one projection.
#[derive(Clone)]
pub struct Runner {
    pub pool: PgPool,
    pub projection: Arc<dyn Projection>,
    pub metrics: Arc<Metrics>,
    /// Told of every batch committed, for read-your-writes in this process.
    pub progress: Arc<Progress>,
    /// This process's store, to wake on its commits without waiting for a
    /// NOTIFY.
    pub local: Option<store::Store>,
    /// The connection its steps run on (`Kept::replanning`: without the
    /// pool's two pings per step).
    pub conns: store::Kept,
}

impl Runner {
    /// A runner on its own (tests, tools): no process to share progress with.
    pub fn new(pool: PgPool, projection: Arc<dyn Projection>, metrics: Arc<Metrics>) -> Runner {
        Runner {
            conns: store::Kept::replanning(pool.clone(), 1),
            pool,
            projection,
            metrics,
            progress: Arc::default(),
            local: None,
        }
    }

    fn labels(&self) -> ProjectorLabels {
        ProjectorLabels {
            projector: self.projection.name().to_owned(),
        }
    }

    /// Applies the next batch after the checkpoint in one transaction.
    /// Tests drive a projection with this until it is `Idle`.
    pub async fn step(&self) -> Result<StepOutcome, StepError> {
        self.step_to().await.map(|(outcome, _)| outcome)
    }

    /// `step`, also returning where the checkpoint is now.
    async fn step_to(&self) -> Result<(StepOutcome, Position), StepError> {
        let mut conn = self.conns.get().await?;
        let stepped = self.step_on(&mut conn).await;
        let db = match &stepped {
            Ok(_) => {
                conn.give_back(None);
                return stepped;
            }
            Err(StepError::Db(e)) => Some(e),
            Err(StepError::Store(e)) => e.db(),
            Err(StepError::Poison { .. }) => None,
        };
        // A step that failed may have dropped its transaction open (sqlx
        // only queues the ROLLBACK for the connection's next use), holding
        // the checkpoint's row lock: the connection is closed, not kept,
        // which ends the transaction now. A lost one retires the idle ones.
        match db {
            Some(e) if store::is_lost(e) => conn.give_back(Some(e)),
            _ => drop(conn),
        }
        stepped
    }

    async fn step_on(
        &self,
        conn: &mut sqlx::PgConnection,
    ) -> Result<(StepOutcome, Position), StepError> {
        let name = checkpoint_name(&*self.projection);
        let types: Vec<&str> = self
            .projection
            .stream_types()
            .iter()
            .map(|t| t.as_str())
            .collect();
        // The checkpoint row is this transaction's first lock, taken before
        // any table is touched: a live rebuild's swap (`super::swap`) locks
        // it first too, so the two queue instead of deadlocking, and a swap
        // that moved the checkpoint is seen here. The same statement reads
        // the batch after it.
        let (mut tx, read) = loop {
            let mut tx = conn.begin_with(BEGIN_UNFLUSHED).await?;
            match store::read_after_checkpoint(&mut tx, &name, &types, BATCH).await? {
                Some(read) => break (tx, read),
                None => {
                    tx.rollback().await?;
                    checkpoint::load(&self.pool, &name).await?;
                }
            }
        };
        let store::CheckpointRead {
            at,
            events: batch,
            covered: last,
        } = read;
        if last == at {
            tx.rollback().await?;
            return Ok((StepOutcome::Idle, at));
        }
        let mut decoded = Vec::with_capacity(batch.len());
        for stored in &batch {
            let event = stored
                .event()
                .map_err(|e| poison(stored, ProjectionError::Invariant(e.to_string())))?;
            decoded.push(event);
        }
        let pairs: Vec<(&events::Envelope, &events::Event)> =
            batch.iter().map(|s| &s.envelope).zip(&decoded).collect();
        match self.projection.apply_batch(&mut tx, &pairs).await {
            Ok(()) => {}
            Err(BatchError { at: Some(i), error }) => return Err(poison(&batch[i], error)),
            // The batch's own statements failed: no event to blame yet.
            // Apply them one at a time (in a new transaction) to find it.
            Err(BatchError { at: None, error }) => {
                tx.rollback().await?;
                if let ProjectionError::Db(e) = &error {
                    if !is_event_fault(e) {
                        return Err(StepError::Db(error_db(error)));
                    }
                }
                let mut tx = conn.begin_with(BEGIN_UNFLUSHED).await?;
                lock_checkpoint(&mut tx, &name).await?;
                for (stored, event) in batch.iter().zip(&decoded) {
                    self.projection
                        .apply(&mut tx, &stored.envelope, event)
                        .await
                        .map_err(|e| poison(stored, e))?;
                }
                // Every event applied alone: retry the batch next step.
                return Err(StepError::Db(sqlx::Error::Protocol(
                    "a batch failed that its events did not".into(),
                )));
            }
        }
        checkpoint::save_and_announce(&mut *tx, &name, last, super::PROGRESS_CHANNEL).await?;
        tx.commit().await?;
        self.progress.advance(&name, last.global_position);
        let delay = self.metrics.projector_delay.get_or_create(&self.labels());
        for e in &batch {
            delay.observe(crate::metrics::seconds_since(e.envelope.recorded_at));
        }
        Ok((StepOutcome::Applied(batch.len()), last))
    }

    /// Runs until `shutdown` or a poison event.
    pub async fn run(self, shutdown: CancellationToken) {
        let name = checkpoint_name(&*self.projection);
        let mut schema_ready = false;
        // Failures in a row (each within a few seconds of the last).
        let mut failing: (u32, Option<std::time::Instant>) = (0, None);
        while let Some(mut lead) = leader::acquire(&self.pool, &name, &shutdown).await {
            tokio::select! {
                r = self.run_while_leading(&shutdown, &mut schema_ready) => match r {
                    Ok(()) => return,
                    Err(StepError::Poison { global_position, event_type, reason }) => {
                        let error = format!("event {global_position} ({event_type}): {reason}");
                        tracing::error!(projection = self.projection.name(), %error, "projection stopped");
                        self.metrics.projector_stopped.get_or_create(&self.labels()).set(1);
                        if let Err(e) = checkpoint::mark_stopped(&self.pool, &name, &error).await {
                            tracing::error!(error = %e, "could not record the stop");
                        }
                        // Stay stopped (and keep leading, so no standby
                        // retries the poison) until shutdown.
                        tokio::select! {
                            _ = lead.lost() => {}
                            _ = shutdown.cancelled() => {}
                        }
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(projection = self.projection.name(), error = %e, "projection step failed; retrying");
                        let recent = failing.1.is_some_and(|t| t.elapsed() < Duration::from_secs(10));
                        failing = (if recent { failing.0 + 1 } else { 1 }, Some(std::time::Instant::now()));
                        // Still retrying, but no longer healthy: say so where
                        // /readyz looks (the next good batch clears it).
                        if failing.0 == 30 {
                            let error = format!("failing for 30 attempts: {e}");
                            if let Err(e) = checkpoint::mark_stopped(&self.pool, &name, &error).await {
                                tracing::error!(error = %e, "could not record the failures");
                            }
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
                _ = lead.lost() => tracing::warn!(projection = self.projection.name(), "lost leadership"),
                _ = shutdown.cancelled() => return,
            }
        }
    }

    async fn run_while_leading(
        &self,
        shutdown: &CancellationToken,
        schema_ready: &mut bool,
    ) -> Result<(), StepError> {
        if !*schema_ready {
            ensure_schema(&self.pool, &*self.projection).await?;
            *schema_ready = true;
        }
        self.metrics
            .projector_stopped
            .get_or_create(&self.labels())
            .set(0);
        let types = self.projection.stream_types().to_vec();
        let mut wake = Wake::new(&self.pool, self.local.as_ref(), Some(types)).await?;
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let (outcome, at) = self.step_to().await?;
            // A full batch means more is waiting: measure how much, and go
            // on at once.
            let full = outcome == StepOutcome::Applied(BATCH as usize);
            let lag = if full {
                store::count_after(&self.pool, at, 1_000_000).await?
            } else {
                0
            };
            self.metrics
                .projector_lag
                .get_or_create(&self.labels())
                .set(lag);
            if full {
                continue;
            }
            // Caught up: the step read everything stored when it ran (a
            // batch short of BATCH covers up to the head it saw). A commit
            // since has queued a wake, and a wake for what the step already
            // read (this process's feed told of a commit, the NOTIFY came
            // after) is skipped by its position: each commit costs one step,
            // not two or three that find nothing. Every wake, even the idle
            // one, steps from the locked checkpoint row, so a rebuild's swap
            // that moved it is seen.
            wake.wait(IDLE_WAKE, at).await?;
        }
    }
}

/// Applies `batch` (in global order) through `projection` on `conn`, a
/// batch at a time, skipping events of streams it does not read. For
/// rebuilds: any failure stops them, named by its event when known.
pub(crate) async fn apply_events(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    batch: &[store::StoredEvent],
) -> Result<(), StepError> {
    let types = projection.stream_types();
    let mine: Vec<&store::StoredEvent> = batch
        .iter()
        .filter(|e| types.contains(&e.envelope.stream_type))
        .collect();
    let mut decoded = Vec::with_capacity(mine.len());
    for stored in &mine {
        decoded.push(
            stored
                .event()
                .map_err(|e| poison(stored, ProjectionError::Invariant(e.to_string())))?,
        );
    }
    let pairs: Vec<(&events::Envelope, &events::Event)> =
        mine.iter().map(|s| &s.envelope).zip(&decoded).collect();
    match projection.apply_batch(conn, &pairs).await {
        Ok(()) => Ok(()),
        Err(BatchError { at: Some(i), error }) => Err(poison(mine[i], error)),
        Err(BatchError { at: None, error }) => Err(StepError::Poison {
            global_position: mine.first().map_or(0, |e| e.envelope.global_position),
            event_type: "batch".into(),
            reason: error.to_string(),
        }),
    }
}

/// Replays the store after `from` through `projection` on `conn` (whose
/// search_path points at fresh tables) until it has applied `until` (waiting
/// for the horizon to pass it), or, with `None`, up to the current horizon.
/// Returns where it stopped.
pub async fn rebuild_into(
    pool: &PgPool,
    conn: &mut PgConnection,
    projection: &dyn Projection,
    from: Position,
    until: Option<Position>,
) -> Result<Position, StepError> {
    replay_into(pool, conn, projection, from, until, &mut |_, _| {}).await
}

/// The next batch after `after`, up to `until` (all visible events with
/// `None`): what a swap applies to the copy inside its transaction (the
/// copy itself is read by `store::Ahead`).
pub(crate) async fn read_batch(
    pool: &PgPool,
    after: Position,
    until: Option<Position>,
) -> Result<Vec<store::StoredEvent>, StoreError> {
    let mut batch = store::read_global(pool, after, REBUILD_BATCH).await?;
    if let Some(u) = until {
        batch.retain(|e| e.position <= u);
    }
    Ok(batch)
}

/// `rebuild_into`, telling `committed` how many events each batch applied
/// and where it ended, once it has committed.
///
/// The events are read ahead (`store::Ahead`: streamed and decoded by
/// another task while this one applies): the read and the write run in two
/// PostgreSQL backends and on both cores at once instead of taking turns.
pub async fn replay_into(
    pool: &PgPool,
    conn: &mut PgConnection,
    projection: &dyn Projection,
    from: Position,
    until: Option<Position>,
    committed: &mut (dyn FnMut(usize, Position) + Send),
) -> Result<Position, StepError> {
    let mut at = from;
    let mut ahead = store::Ahead::start(pool, from, until, REBUILD_BATCH as usize);
    while let Some(batch) = ahead.next().await {
        let batch = batch?;
        // Unflushed like a live step's: what the copy commits reaches the
        // disk with the swap's commit (the WAL is flushed in order), and a
        // copy a crash interrupts is made again from the start.
        let mut tx = conn.begin_with(BEGIN_UNFLUSHED).await?;
        apply_events(&mut tx, projection, &batch).await?;
        tx.commit().await?;
        // `Ahead` hands over no empty chunk.
        at = batch.last().map_or(at, |e| e.position);
        committed(batch.len(), at);
    }
    Ok(at)
}
