//! Appends outside group commit: one command alone, or inside a transaction
//! of the caller's that writes other tables with it.

use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::append::{AppendOutcome, CommandMeta, Guard, Prepared, StreamAppend};
use super::batch::{self, Settled};
use super::heads::Heads;
use super::row::StoredEvent;
use super::StoreError;

/// The append lock `sb_append` takes (the same key): held by an `AppendTx`
/// from its start, so what it reads before appending cannot change under it.
const APPEND_LOCK: i64 = 6_584_412_087_353_911_296;

/// Appends one command's events to one or more streams in one transaction
/// of its own (one round trip, plus one to read heads it must chain onto).
/// The service appends through `Store`; this is for tools and tests.
pub async fn append(
    pool: &PgPool,
    meta: CommandMeta,
    appends: &[StreamAppend],
) -> Result<AppendOutcome, StoreError> {
    append_guarded(pool, meta, appends, Vec::new()).await
}

/// `append` with command-side guards.
pub async fn append_guarded(
    pool: &PgPool,
    meta: CommandMeta,
    appends: &[StreamAppend],
    guards: Vec<Guard>,
) -> Result<AppendOutcome, StoreError> {
    let mut conn = pool.acquire().await?;
    append_on(&mut conn, meta, appends, guards).await
}

/// One command of `append_batch`.
pub struct BatchCommand {
    pub meta: CommandMeta,
    pub appends: Vec<StreamAppend>,
    pub guards: Vec<Guard>,
}

/// Appends `commands` in one transaction and one `sb_append` call, each
/// checked on its own: what a `Store` does with the commands of a moment,
/// for tools (bulk loads) and tests. No two may touch the same stream.
pub async fn append_batch(
    pool: &PgPool,
    commands: Vec<BatchCommand>,
) -> Result<Vec<Result<AppendOutcome, StoreError>>, StoreError> {
    let mut conn = pool.acquire().await?;
    let heads = Heads::default();
    let mut prepared = Vec::with_capacity(commands.len());
    for c in commands {
        heads.fill(&mut conn, &c.appends).await?;
        prepared.push(Prepared::new(c.meta, &c.appends, c.guards, |sa| {
            heads.chain_onto(sa)
        })?);
    }
    let refs: Vec<&Prepared> = prepared.iter().collect();
    let settled = batch::execute(&mut conn, &refs).await?;
    let mut out = Vec::with_capacity(settled.len());
    for (p, s) in prepared.iter().zip(settled) {
        out.push(match s {
            Settled::Appended(events) => Ok(AppendOutcome::Appended(events)),
            Settled::Duplicate => Ok(AppendOutcome::Duplicate(
                batch::command_events(&mut conn, p.meta.command_id).await?,
            )),
            Settled::Failed(e) => Err(e),
        });
    }
    Ok(out)
}

/// Appends on `conn`, in its transaction if it is in one.
async fn append_on(
    conn: &mut PgConnection,
    meta: CommandMeta,
    appends: &[StreamAppend],
    guards: Vec<Guard>,
) -> Result<AppendOutcome, StoreError> {
    let heads = Heads::with_capacity(appends.len().max(1));
    heads.fill(conn, appends).await?;
    let command_id = meta.command_id;
    let prepared = Prepared::new(meta, appends, guards, |sa| heads.chain_onto(sa))?;
    match batch::execute(conn, &[&prepared]).await?.pop() {
        Some(Settled::Appended(events)) => Ok(AppendOutcome::Appended(events)),
        Some(Settled::Duplicate) => Ok(AppendOutcome::Duplicate(
            batch::command_events(conn, command_id).await?,
        )),
        Some(Settled::Failed(e)) => Err(e),
        None => Err(StoreError::Db(sqlx::Error::RowNotFound)),
    }
}

/// A transaction that holds the append lock from its start: what it reads
/// (folds, other tables) cannot change before it appends and commits. Every
/// other append in the database waits meanwhile, so it is for rare commands
/// that must write more than events and guards (a tenant's first data key,
/// key rotation); keep it short.
pub struct AppendTx {
    tx: Transaction<'static, Postgres>,
    meta: CommandMeta,
}

/// What `AppendTx::begin` found.
pub enum Begin {
    Fresh(AppendTx),
    Duplicate(Vec<StoredEvent>),
}

impl AppendTx {
    /// Opens the transaction, takes the append lock, and checks that the
    /// command id is new. `streams` is what the command will touch (kept
    /// for callers; the one lock covers every stream).
    pub async fn begin(
        pool: &PgPool,
        meta: CommandMeta,
        _streams: &[Uuid],
    ) -> Result<Begin, StoreError> {
        let mut tx = pool.begin().await?;
        // Nobody may hold every append up for long by forgetting a transaction.
        sqlx::query("SET LOCAL idle_in_transaction_session_timeout = '10s'")
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(APPEND_LOCK)
            .execute(&mut *tx)
            .await?;
        let written = batch::command_events(&mut tx, meta.command_id).await?;
        if !written.is_empty() {
            tx.rollback().await?;
            return Ok(Begin::Duplicate(written));
        }
        Ok(Begin::Fresh(AppendTx { tx, meta }))
    }

    /// The transaction, for writes that must commit with the events.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Checks each stream's version and writes its events, chaining hashes.
    /// One call per transaction.
    pub async fn append(
        &mut self,
        appends: &[StreamAppend],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        match append_on(&mut self.tx, self.meta.clone(), appends, Vec::new()).await? {
            AppendOutcome::Appended(e) | AppendOutcome::Duplicate(e) => Ok(e),
        }
    }

    /// Commits; readers elsewhere are woken by the notification `sb_append`
    /// sent, delivered at commit.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}
