//! Snapshots of folded command state, stored beside the streams
//! (`stream_snapshots`), so a process that has not seen a long stream reads
//! its last snapshot and the events after it instead of the whole history.
//!
//! # Design
//! - A snapshot is a cache, never the truth. It is taken from a state this
//!   process holds (the exact fold of versions 1..=v, see `states`) and
//!   written off the command's path by one task; a full channel or a failed
//!   write drops it, and the next one due is taken later.
//! - It is read only where the event stored at its version has its hash
//!   (`read`): a snapshot cannot stand for history it was not folded from,
//!   whatever happened to the table.
//! - Its kind names the state and the revision of its fold
//!   (`commands::state::Snapshot`); a kind this build does not know, or a
//!   value it cannot read, is ignored: the stream is folded from the start.
//! - One is due every `EVERY` versions of a stream, so a stream shorter
//!   than that (a call's, most providers and numbers) never has one, and a
//!   long one is never more than `EVERY` events behind its last.

use std::collections::HashMap;

use events::Hash32;
use sqlx::{PgExecutor, PgPool, Row};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::append::Head;
use super::StoreError;

/// Versions between two snapshots of a stream.
pub const EVERY: i64 = 100;

/// Snapshots waiting to be written at most; more are dropped.
const QUEUE: usize = 1_024;

/// A snapshot taken, to be written.
#[derive(Debug)]
pub(crate) struct Taken {
    pub stream_id: Uuid,
    pub kind: &'static str,
    pub head: Head,
    pub state: serde_json::Value,
}

/// Where snapshots go to be written: a task of its own, so no command
/// waits for one. Cheap to clone; the task ends with the last clone.
#[derive(Clone)]
pub(crate) struct Snapshots {
    tx: mpsc::Sender<Taken>,
}

impl Snapshots {
    /// Starts the writer on the current runtime.
    pub fn new(pool: PgPool) -> Snapshots {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_all(pool, rx));
        Snapshots { tx }
    }

    /// Queues `taken`, or drops it when the queue is full.
    pub fn offer(&self, taken: Taken) {
        let _ = self.tx.try_send(taken);
    }
}

async fn write_all(pool: PgPool, mut rx: mpsc::Receiver<Taken>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 256).await > 0 {
        let n = batch.len();
        if let Err(e) = write(&pool, std::mem::take(&mut batch)).await {
            tracing::warn!(error = %e, snapshots = n, "snapshots not written (they are only a cache)");
        }
    }
}

/// Upserts `taken`, keeping the newest of each stream and kind. One at the
/// version stored replaces it: a stored one this process could not use
/// (see `read`) is mended by the fold that took its place.
async fn write(pool: &PgPool, taken: Vec<Taken>) -> Result<(), sqlx::Error> {
    // One row per key: a statement may not update one row twice.
    let mut newest: HashMap<(Uuid, &str), Taken> = HashMap::new();
    for t in taken {
        let key = (t.stream_id, t.kind);
        if newest
            .get(&key)
            .is_none_or(|kept| kept.head.version < t.head.version)
        {
            newest.insert(key, t);
        }
    }
    let (mut ids, mut kinds, mut versions, mut hashes, mut states) =
        (vec![], vec![], vec![], vec![], vec![]);
    for t in newest.into_values() {
        ids.push(t.stream_id);
        kinds.push(t.kind);
        versions.push(t.head.version);
        hashes.push(t.head.hash.0.to_vec());
        states.push(t.state);
    }
    sqlx::query(
        "INSERT INTO stream_snapshots (stream_id, kind, version, hash, state) \
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bytea[], $5::jsonb[]) \
         ON CONFLICT (stream_id, kind) DO UPDATE \
           SET version = EXCLUDED.version, hash = EXCLUDED.hash, state = EXCLUDED.state, \
               taken_at = now() \
           WHERE stream_snapshots.version <= EXCLUDED.version",
    )
    .bind(&ids)
    .bind(&kinds)
    .bind(&versions)
    .bind(&hashes)
    .bind(&states)
    .execute(pool)
    .await?;
    Ok(())
}

/// A stored snapshot as read: the head it was taken at and its value.
#[derive(Debug, Clone)]
pub struct Stored {
    pub stream_id: Uuid,
    pub kind: String,
    pub head: Head,
    pub state: serde_json::Value,
}

/// The snapshots of the `(stream, kind)` pairs asked for that the stream's
/// own events vouch for (the event at the snapshot's version has its hash),
/// in one query.
pub async fn read<'e>(
    db: impl PgExecutor<'e>,
    wanted: &[(Uuid, &str)],
) -> Result<Vec<Stored>, StoreError> {
    let ids: Vec<Uuid> = wanted.iter().map(|w| w.0).collect();
    let kinds: Vec<&str> = wanted.iter().map(|w| w.1).collect();
    // Planned for each run (not prepared): it runs rarely (after a restart
    // or an eviction), so a prepared statement would get its generic plan
    // whenever its sixth run came, maybe while the tables were small, and
    // keep it: a scan of every snapshot, or of every event, as they grow
    // (checked with EXPLAIN: under `force_generic_plan` on a fresh
    // database a plain join was a hash join over a scan of `events`; on
    // small analyzed tables even LATERAL … LIMIT 1 lookups become scans).
    // The lookups are index probes per stream in the plans it does get.
    let rows = sqlx::query(
        "SELECT s.stream_id, s.version, s.hash, s.state, s.kind \
         FROM unnest($1::uuid[], $2::text[]) AS w(id, kind) \
         CROSS JOIN LATERAL (SELECT * FROM stream_snapshots s \
                             WHERE s.stream_id = w.id AND s.kind = w.kind LIMIT 1) s \
         CROSS JOIN LATERAL (SELECT e.hash FROM events e \
                             WHERE e.stream_id = s.stream_id AND e.version = s.version \
                             LIMIT 1) e \
         WHERE e.hash = s.hash",
    )
    .persistent(false)
    .bind(&ids)
    .bind(&kinds)
    .fetch_all(db)
    .await?;
    let mut read = Vec::with_capacity(rows.len());
    for row in rows {
        let hash: Vec<u8> = row.try_get(2)?;
        // The join compared it with a stored event's hash: 32 bytes.
        let Some(hash) = Hash32::from_slice(&hash) else {
            continue;
        };
        read.push(Stored {
            stream_id: row.try_get(0)?,
            kind: row.try_get(4)?,
            head: Head {
                version: row.try_get(1)?,
                hash,
            },
            state: row.try_get(3)?,
        });
    }
    Ok(read)
}
