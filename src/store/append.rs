//! Appending a command's events.
//!
//! # Design
//! An append transaction first takes a transaction-scoped advisory lock on
//! every stream it touches (sorted, so two commands never deadlock), and only
//! then writes anything. Advisory locks do not assign a transaction id, so a
//! transaction's id is assigned *after* it holds its streams' locks. Hence two
//! transactions touching a common stream get transaction ids in the order
//! they commit, and ordering readers by (transaction id, position) keeps each
//! stream's events in version order. Callers that need extra writes in the
//! same transaction (a uniqueness claim, say) make them through
//! `AppendTx::conn` after `begin`, never before.

use chrono::Utc;
use events::{Event, Hash32, NewEnvelope, StreamType};
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

use super::row::{StoredEvent, COLUMNS};
use super::{StoreError, NOTIFY_CHANNEL};

/// The version a command expects a stream to be at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ExpectedVersion {
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be at exactly this version.
    Exact(i64),
}

impl ExpectedVersion {
    /// The expectation that matches a stream folded to `version` (0 = none).
    pub fn from_version(version: i64) -> Self {
        if version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(version)
        }
    }
}

/// Events for one stream, with the version they were decided against. An
/// append with no events only checks (and locks) the stream: a command can
/// depend on a stream it does not change.
#[derive(Debug, Clone)]
pub struct StreamAppend {
    pub stream_type: StreamType,
    pub stream_id: Uuid,
    pub expected: ExpectedVersion,
    pub events: Vec<Event>,
}

/// Who and what an append is for.
#[derive(Debug, Clone)]
pub struct CommandMeta {
    /// Idempotency of the append: the same id writes once.
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub actor: String,
    pub tenant_id: Uuid,
}

impl CommandMeta {
    /// A fresh command by `actor` for `tenant_id`, correlated to itself.
    pub fn new(tenant_id: Uuid, actor: impl Into<String>) -> Self {
        let command_id = Uuid::now_v7();
        CommandMeta {
            command_id,
            correlation_id: command_id,
            causation_id: None,
            actor: actor.into(),
            tenant_id,
        }
    }
}

/// The result of an append.
#[derive(Debug, Clone)]
pub enum AppendOutcome {
    /// The events were written now.
    Appended(Vec<StoredEvent>),
    /// This command_id was appended before; these are the events it wrote.
    Duplicate(Vec<StoredEvent>),
}

impl AppendOutcome {
    pub fn events(&self) -> &[StoredEvent] {
        match self {
            AppendOutcome::Appended(e) | AppendOutcome::Duplicate(e) => e,
        }
    }
}

/// An open append transaction holding its streams' locks.
pub struct AppendTx {
    tx: Transaction<'static, Postgres>,
    meta: CommandMeta,
    locked: Vec<Uuid>,
}

/// What `AppendTx::begin` found.
pub enum Begin {
    Fresh(AppendTx),
    Duplicate(Vec<StoredEvent>),
}

fn lock_key(id: &Uuid) -> i64 {
    let b = id.as_bytes();
    let hi = i64::from_be_bytes(b[..8].try_into().expect("8 bytes"));
    let lo = i64::from_be_bytes(b[8..].try_into().expect("8 bytes"));
    hi ^ lo
}

async fn command_events(
    conn: &mut PgConnection,
    command_id: Uuid,
) -> Result<Vec<StoredEvent>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM events WHERE command_id = $1 ORDER BY global_position"
    ))
    .bind(command_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(StoredEvent::from_row)
        .collect::<Result<_, _>>()?)
}

impl AppendTx {
    /// Opens the transaction, locks `streams`, and claims the command id.
    pub async fn begin(
        pool: &PgPool,
        meta: CommandMeta,
        streams: &[Uuid],
    ) -> Result<Begin, StoreError> {
        let mut tx = pool.begin().await?;
        let mut keys: Vec<i64> = streams.iter().map(lock_key).collect();
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        // The first write of the transaction: its id is assigned only now.
        let claimed = sqlx::query(
            "INSERT INTO commands (command_id, tenant_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(meta.command_id)
        .bind(meta.tenant_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            tx.rollback().await?;
            let mut conn = pool.acquire().await?;
            return Ok(Begin::Duplicate(
                command_events(&mut conn, meta.command_id).await?,
            ));
        }
        Ok(Begin::Fresh(AppendTx {
            tx,
            meta,
            locked: streams.to_vec(),
        }))
    }

    /// The transaction, for writes that must commit with the events.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Checks each stream's version and writes its events, chaining hashes.
    pub async fn append(
        &mut self,
        appends: &[StreamAppend],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let recorded_at = NewEnvelope::storage_time(Utc::now());
        let mut written = Vec::new();
        for sa in appends {
            debug_assert!(
                self.locked.contains(&sa.stream_id),
                "stream not locked in begin"
            );
            let head = sqlx::query("SELECT version, last_hash FROM streams WHERE stream_id = $1")
                .bind(sa.stream_id)
                .fetch_optional(&mut *self.tx)
                .await?;
            let (actual, mut prev_hash) = match &head {
                Some(row) => {
                    let bytes: Vec<u8> = row.try_get("last_hash")?;
                    (
                        Some(row.try_get::<i64, _>("version")?),
                        Hash32::from_slice(&bytes).unwrap_or_default(),
                    )
                }
                None => (None, Hash32::ZERO),
            };
            let matches = match sa.expected {
                ExpectedVersion::NoStream => actual.is_none(),
                ExpectedVersion::Exact(v) => actual == Some(v),
            };
            if !matches {
                return Err(StoreError::Conflict {
                    stream_id: sa.stream_id,
                    expected: sa.expected,
                    actual,
                });
            }
            let mut version = actual.unwrap_or(0);
            for event in &sa.events {
                debug_assert_eq!(event.stream_type(), sa.stream_type);
                version += 1;
                let env = NewEnvelope {
                    event_id: Uuid::now_v7(),
                    event_type: event.event_type().to_owned(),
                    schema_version: event.schema_version(),
                    stream_type: sa.stream_type,
                    stream_id: sa.stream_id,
                    version,
                    tenant_id: self.meta.tenant_id,
                    recorded_at,
                    command_id: self.meta.command_id,
                    correlation_id: self.meta.correlation_id,
                    causation_id: self.meta.causation_id,
                    actor: self.meta.actor.clone(),
                    data: event.to_data(),
                    prev_hash,
                };
                let hash = env.compute_hash();
                let row = sqlx::query(&format!(
                    "INSERT INTO events (event_id, event_type, schema_version, stream_type, stream_id, \
                     version, tenant_id, recorded_at, command_id, correlation_id, causation_id, actor, \
                     data, prev_hash, hash) \
                     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15) RETURNING {COLUMNS}"
                ))
                .bind(env.event_id)
                .bind(&env.event_type)
                .bind(env.schema_version as i32)
                .bind(env.stream_type.as_str())
                .bind(env.stream_id)
                .bind(env.version)
                .bind(env.tenant_id)
                .bind(env.recorded_at)
                .bind(env.command_id)
                .bind(env.correlation_id)
                .bind(env.causation_id)
                .bind(&env.actor)
                .bind(&env.data)
                .bind(&env.prev_hash.0[..])
                .bind(&hash.0[..])
                .fetch_one(&mut *self.tx)
                .await
                .map_err(|e| unique_as_conflict(e, sa))?;
                written.push(StoredEvent::from_row(&row)?);
                prev_hash = hash;
            }
            if !sa.events.is_empty() {
                sqlx::query(
                    "INSERT INTO streams (stream_id, stream_type, tenant_id, version, last_hash) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version, last_hash = EXCLUDED.last_hash",
                )
                .bind(sa.stream_id)
                .bind(sa.stream_type.as_str())
                .bind(self.meta.tenant_id)
                .bind(version)
                .bind(&prev_hash.0[..])
                .execute(&mut *self.tx)
                .await?;
            }
        }
        Ok(written)
    }

    /// Commits; readers are woken by a notification sent at commit.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(NOTIFY_CHANNEL)
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await?;
        Ok(())
    }
}

/// The (stream_id, version) unique index is the last line of defence behind
/// the lock; should it fire, it is the same conflict.
fn unique_as_conflict(e: sqlx::Error, sa: &StreamAppend) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
            stream_id: sa.stream_id,
            expected: sa.expected,
            actual: None,
        },
        _ => StoreError::Db(e),
    }
}

/// Appends one command's events to one or more streams in one transaction.
pub async fn append(
    pool: &PgPool,
    meta: CommandMeta,
    appends: &[StreamAppend],
) -> Result<AppendOutcome, StoreError> {
    let ids: Vec<Uuid> = appends.iter().map(|a| a.stream_id).collect();
    match AppendTx::begin(pool, meta, &ids).await? {
        Begin::Duplicate(events) => Ok(AppendOutcome::Duplicate(events)),
        Begin::Fresh(mut tx) => {
            let events = tx.append(appends).await?;
            tx.commit().await?;
            Ok(AppendOutcome::Appended(events))
        }
    }
}
