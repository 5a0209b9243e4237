//! Read-your-writes without sleeping: where each projection has got to, as
//! this process hears it.
//!
//! A runner in this process reports every committed batch here directly; a
//! runner in another process sends `pg_notify(PROGRESS_CHANNEL,
//! '<checkpoint>:<position>')` in its batch transaction, which `listen`
//! relays here. A wait wakes on either, and re-reads the checkpoints table
//! now and then in case a notification was lost (a dropped listener
//! connection), so it never waits on a missed message for long.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::store::Position;

/// The channel projectors announce their checkpoints on.
pub const PROGRESS_CHANNEL: &str = "switchboard_progress";

/// How often a wait re-reads the checkpoints table though nothing woke it.
const RECHECK: Duration = Duration::from_millis(100);
const FIRST_RECHECK: Duration = Duration::from_millis(25);

/// How long, after a wait for a checkpoint timed out, later waits for it
/// give up at once while it has not moved.
const STALL_HOLD: Duration = Duration::from_secs(5);

/// Each checkpoint's last known position.
#[derive(Default)]
pub struct Progress {
    positions: Mutex<HashMap<String, watch::Sender<i64>>>,
    /// When a wait last re-read the checkpoints table.
    reread_last: Mutex<Option<tokio::time::Instant>>,
    /// Checkpoints a wait timed out on: where each stood then, and until
    /// when a wait for it is not tried again unless it moves.
    stalled: Mutex<HashMap<String, (i64, tokio::time::Instant)>>,
}

impl Progress {
    fn channel(&self, name: &str) -> watch::Receiver<i64> {
        let mut map = self.positions.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(name.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// `name` has applied everything up to `at`.
    pub fn advance(&self, name: &str, at: i64) {
        let mut map = self.positions.lock().unwrap_or_else(|e| e.into_inner());
        let tx = map
            .entry(name.to_owned())
            .or_insert_with(|| watch::channel(0).0);
        tx.send_if_modified(|p| {
            let moved = at > *p;
            *p = (*p).max(at);
            moved
        });
    }

    /// Waits until `name` moves on here, or `timeout`.
    pub async fn next(&self, name: &str, timeout: Duration) {
        let mut rx = self.channel(name);
        rx.borrow_and_update();
        let _ = tokio::time::timeout(timeout, rx.changed()).await;
    }

    fn known(&self, name: &str) -> i64 {
        let map = self.positions.lock().unwrap_or_else(|e| e.into_inner());
        map.get(name).map_or(0, |tx| *tx.borrow())
    }

    /// Whether one of `names` is held up: a wait for it timed out here less
    /// than `STALL_HOLD` ago and it has not moved since. A projection that
    /// is down (no runner anywhere, a long outage) then costs one read per
    /// `STALL_HOLD` the whole bound, not every read.
    pub fn stalled(&self, names: &[String]) -> bool {
        let now = tokio::time::Instant::now();
        let mut stalled = self.stalled.lock().unwrap_or_else(|e| e.into_inner());
        stalled.retain(|_, (_, until)| *until > now);
        names
            .iter()
            .any(|n| stalled.get(n).is_some_and(|(at, _)| *at == self.known(n)))
    }

    /// A wait for `names` timed out.
    pub fn note_stall(&self, names: &[String]) {
        let until = tokio::time::Instant::now() + STALL_HOLD;
        let mut stalled = self.stalled.lock().unwrap_or_else(|e| e.into_inner());
        for n in names {
            stalled.insert(n.clone(), (self.known(n), until));
        }
    }

    /// Every checkpoint a wait here has asked about.
    fn names(&self) -> Vec<String> {
        self.positions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// Re-reads every known checkpoint, unless a wait here already did
    /// within `FIRST_RECHECK`: under load many requests wait at once and
    /// all pass their first recheck together; one read serves them all
    /// (each wakes on the positions it moves).
    async fn reread_shared(&self, pool: &PgPool) {
        let now = tokio::time::Instant::now();
        {
            let mut last = self.reread_last.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| now.duration_since(t) < FIRST_RECHECK) {
                return;
            }
            *last = Some(now);
        }
        self.reread(pool, &self.names()).await;
    }

    async fn reread(&self, pool: &PgPool, names: &[String]) {
        let rows: Result<Vec<(String, i64)>, _> =
            sqlx::query_as("SELECT name, position FROM checkpoints WHERE name = ANY($1)")
                .bind(names)
                .fetch_all(pool)
                .await;
        for (name, at) in rows.unwrap_or_default() {
            self.advance(&name, at);
        }
    }

    /// Waits (up to `timeout`) until every checkpoint in `names` is at or past
    /// `at`. Returns whether they got there; a read still answers when a
    /// projection is slow or stopped, it just cannot promise to show
    /// everything written before it.
    pub async fn wait_for(
        &self,
        pool: &PgPool,
        names: &[String],
        at: Position,
        timeout: Duration,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        // A runner here or the listener usually wakes the wait first; the
        // table is asked only when neither has within a moment.
        let mut reread_at = tokio::time::Instant::now() + FIRST_RECHECK;
        for name in names {
            let mut rx = self.channel(name);
            loop {
                if *rx.borrow_and_update() >= at.global_position {
                    break;
                }
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return false;
                }
                if now >= reread_at {
                    self.reread_shared(pool).await;
                    reread_at = now + RECHECK;
                    continue;
                }
                let _ = tokio::time::timeout_at(reread_at.min(deadline), rx.changed()).await;
            }
        }
        true
    }

    /// Relays other processes' checkpoint announcements here until
    /// `shutdown`, reconnecting when the connection drops.
    pub async fn listen(&self, pool: PgPool, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                r = self.listen_once(&pool) => if let Err(e) = r {
                    tracing::warn!(error = %e, "progress listener interrupted; reconnecting");
                },
                _ = shutdown.cancelled() => return,
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn listen_once(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(PROGRESS_CHANNEL).await?;
        // Anything applied before the listener was in place.
        self.reread(pool, &self.names()).await;
        loop {
            let n = listener.recv().await?;
            if let Some((name, at)) = n.payload().rsplit_once(':') {
                if let Ok(at) = at.parse() {
                    self.advance(name, at);
                }
            }
        }
    }
}
