//! Reading the global order ahead of a consumer, for the long reads (audit
//! replay, projection rebuild).
//!
//! A paged read that fetches a whole page and only then decodes it makes
//! PostgreSQL and this process take turns: the backend sends while the
//! client buffers, the client decodes while the backend waits for the next
//! query. Here one task streams each page's rows and decodes each as it
//! arrives, and hands them over in chunks through a bounded channel, so the
//! backend's sending, the decoding and the consumer's work run at once on
//! different cores, and memory stays bounded by the channel.

use std::time::Duration;

use futures::TryStreamExt;
use sqlx::PgPool;
use tokio::sync::mpsc;

use super::row::{StoredEvent, COLUMNS};
use super::{Position, StoreError};

/// Events per query: each query is its own snapshot, so no replay holds
/// one open (and vacuum back) for the whole history.
const PAGE: i64 = 20_000;
/// Decoded events waiting for the consumer, about, at most: a few chunks of
/// a replay's, one of a rebuild's (its chunks are large, and a rebuild must
/// stay within its memory budget with the batch it applies).
const AHEAD_EVENTS: usize = 8_000;
/// How often a read that must reach `until` looks again for events still
/// committing.
const UNTIL_POLL: Duration = Duration::from_millis(10);

/// Every event after a position, in global order, read ahead in chunks.
pub struct Ahead {
    rx: mpsc::Receiver<Result<Vec<StoredEvent>, StoreError>>,
}

impl Ahead {
    /// Starts reading after `after`, in chunks of `chunk` events. Without
    /// `until` it ends at the end of what is stored when each page is read;
    /// with `until` it ends there, waiting for events still committing.
    pub fn start(pool: &PgPool, after: Position, until: Option<Position>, chunk: usize) -> Ahead {
        let chunk = chunk.max(1);
        let (tx, rx) = mpsc::channel((AHEAD_EVENTS / chunk).max(1));
        let pool = pool.clone();
        tokio::spawn(async move {
            if let Err(e) = produce(&pool, after, until, chunk, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        Ahead { rx }
    }

    /// The next chunk (never empty), or `None` at the end. Dropping the
    /// reader stops the reading.
    pub async fn next(&mut self) -> Option<Result<Vec<StoredEvent>, StoreError>> {
        self.rx.recv().await
    }
}

/// Reads pages and sends their events in chunks until the end (or `until`),
/// or until the consumer is gone.
async fn produce(
    pool: &PgPool,
    mut at: Position,
    until: Option<Position>,
    chunk: usize,
    tx: &mpsc::Sender<Result<Vec<StoredEvent>, StoreError>>,
) -> Result<(), StoreError> {
    // The same shape as every other read of the global order: a bound on
    // both sides let the planner, with stale statistics after a bulk load,
    // sort the whole table for every page; `until` is checked here instead.
    let sql = format!(
        "SELECT {COLUMNS} FROM events \
         WHERE global_position > $1 ORDER BY global_position LIMIT $2"
    );
    let upto = until.map_or(i64::MAX, |u| u.global_position);
    loop {
        if at.global_position >= upto {
            return Ok(());
        }
        let mut rows = sqlx::query(&sql)
            .bind(at.global_position)
            .bind(PAGE)
            .fetch(pool);
        let mut read = 0i64;
        let mut out = Vec::with_capacity(chunk);
        let mut past_until = false;
        while let Some(row) = rows.try_next().await? {
            let event = StoredEvent::from_row(&row)?;
            if event.position.global_position > upto {
                past_until = true;
                break;
            }
            at = event.position;
            read += 1;
            out.push(event);
            if out.len() == chunk {
                let full = std::mem::replace(&mut out, Vec::with_capacity(chunk));
                if tx.send(Ok(full)).await.is_err() {
                    return Ok(());
                }
            }
        }
        drop(rows);
        if !out.is_empty() && tx.send(Ok(out)).await.is_err() {
            return Ok(());
        }
        if past_until {
            return Ok(());
        }
        if read < PAGE {
            // The end of what is stored: done, unless `until` is further on
            // and its events are still committing.
            if until.is_none() {
                return Ok(());
            }
            if read == 0 {
                tokio::time::sleep(UNTIL_POLL).await;
            }
        }
    }
}
