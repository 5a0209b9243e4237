//! Connections kept out of the pool for the store's hottest statements.
//!
//! sqlx's pool pings a connection (a `Sync` and its `ReadyForQuery`, one
//! round trip) when it hands it out and again, unconditionally, when it
//! takes it back. For the group-commit writer and the worker's judged read,
//! which run one short statement per use, that was two round trips of
//! nothing beside each one that did work: `PgConnection::ping` was 7.9 % of
//! the originate bench process's CPU samples (docs/BENCHMARKS.md, sixth
//! session). A `Kept` holds a few connections detached from the pool and
//! hands them out without either ping. The projector runners step on one
//! each too, replaced every `REPLAN` (`Kept::replanning`) so that plans
//! made while a table was small do not outlive its growth.
//!
//! # Invariants
//! - A connection goes back only through `Lease::give_back`, after its
//!   statement completed or failed with an answer from the server. One
//!   dropped mid-statement (a cancelled future) or that lost its socket is
//!   closed, never reused: it may hold half a conversation.
//! - A lost connection (no answer, or the server's FATAL: `is_lost`)
//!   retires every idle one with it: a
//!   server restart kills them all, and each would otherwise fail one
//!   statement to find out.
//! - One idle longer than `IDLE_CHECK` is pinged before use (what the pool
//!   does every time), so a connection that died quietly while idle (a
//!   restart in a quiet hour, an idle timeout) is found there, not by a
//!   statement. Under load a connection is never idle that long.
//! - At most `size` connections are out or idle at once; they do not count
//!   against the pool's `max_connections` (`PoolConnection::detach`).

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgDatabaseError, PgSeverity};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Idle this long, a connection is pinged before it is handed out.
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// A connection this old is closed when given back (the pool's default
/// `max_lifetime`), so server-side memory does not grow without bound.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// How long a `replanning` connection lives. A statement run thousands of
/// times on one connection keeps the generic plan PostgreSQL made at its
/// sixth run; on a small table (a new database) that plan is a scan, and it
/// is kept as the table grows until an `ANALYZE` invalidates it. A new
/// connection plans again with the table's size as it is.
pub const REPLAN: Duration = Duration::from_secs(5);

/// A few connections kept out of the pool. Cheap to clone.
#[derive(Clone)]
pub struct Kept {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    /// Given back older than this, a connection is closed.
    lifetime: Duration,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Idle>>,
    /// Bumped when a connection is lost: idle ones of an older generation
    /// are closed instead of handed out.
    generation: AtomicU64,
}

struct Idle {
    conn: PgConnection,
    since: Instant,
    born: Instant,
    generation: u64,
}

/// A connection handed out by `Kept`. Dropped without `give_back`, it is
/// closed.
pub struct Lease {
    inner: Arc<Inner>,
    conn: PgConnection,
    born: Instant,
    generation: u64,
    _permit: OwnedSemaphorePermit,
}

impl Kept {
    /// Up to `size` connections, opened through `pool` as they are needed.
    pub fn new(pool: PgPool, size: usize) -> Kept {
        Kept::with_lifetime(pool, size, MAX_LIFETIME)
    }

    /// `new`, for statements whose plans depend on the size of a table that
    /// grows (the projectors' row loads): each connection is closed once
    /// `REPLAN` old, and with it go its plans.
    pub fn replanning(pool: PgPool, size: usize) -> Kept {
        Kept::with_lifetime(pool, size, REPLAN)
    }

    /// `new`, each connection closed once `lifetime` old (when given back).
    pub fn with_lifetime(pool: PgPool, size: usize, lifetime: Duration) -> Kept {
        Kept {
            inner: Arc::new(Inner {
                pool,
                lifetime,
                permits: Arc::new(Semaphore::new(size.max(1))),
                idle: Mutex::new(Vec::new()),
                generation: AtomicU64::new(0),
            }),
        }
    }

    /// An idle connection, or a new one when none is idle; waits while
    /// `size` are out.
    pub async fn get(&self) -> Result<Lease, sqlx::Error> {
        let permit = self
            .inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        loop {
            let current = self.inner.generation.load(Ordering::Acquire);
            let idle = self.inner.idle().pop();
            let Some(mut idle) = idle else {
                let conn = self.inner.pool.acquire().await?.detach();
                return Ok(self.lease(conn, Instant::now(), current, permit));
            };
            // Of a retired generation, or aged while idle (a runner that
            // stopped leading leaves its connection here): closed, not used.
            if idle.generation != current || idle.born.elapsed() >= self.inner.lifetime {
                close(idle.conn);
                continue;
            }
            if idle.since.elapsed() >= IDLE_CHECK && idle.conn.ping().await.is_err() {
                self.inner.retire_all();
                continue;
            }
            return Ok(self.lease(idle.conn, idle.born, idle.generation, permit));
        }
    }

    fn lease(
        &self,
        conn: PgConnection,
        born: Instant,
        generation: u64,
        permit: OwnedSemaphorePermit,
    ) -> Lease {
        Lease {
            inner: self.inner.clone(),
            conn,
            born,
            generation,
            _permit: permit,
        }
    }
}

impl Inner {
    /// The idle list (a panic elsewhere while it was held leaves it whole:
    /// each change to it is one push, pop or take).
    fn idle(&self) -> MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn retire_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let retired = std::mem::take(&mut *self.idle());
        drop(retired);
    }
}

impl Lease {
    /// Gives the connection back after a statement that ended in `error`
    /// (`None`: it succeeded). A lost connection is closed and retires the
    /// idle ones with it.
    pub fn give_back(self, error: Option<&sqlx::Error>) {
        if error.is_some_and(is_lost) {
            self.inner.retire_all();
            return;
        }
        if self.generation != self.inner.generation.load(Ordering::Acquire)
            || self.born.elapsed() >= self.inner.lifetime
        {
            close(self.conn);
            return;
        }
        let Lease {
            inner,
            conn,
            born,
            generation,
            ..
        } = self;
        inner.idle().push(Idle {
            conn,
            since: Instant::now(),
            born,
            generation,
        });
    }
}

/// Closes `conn` with a goodbye (`Terminate`), not just a dropped socket,
/// where a runtime can run it; else drops it.
fn close(conn: PgConnection) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let _ = conn.close().await;
        });
    }
}

/// Whether `e` means the connection is gone or out of step with the server:
/// no answer, or the server's own word that it is ending the session (a
/// FATAL such as 57P01 when a backend is terminated or the server shuts
/// down, or a connection exception, class 08).
pub fn is_lost(e: &sqlx::Error) -> bool {
    if let sqlx::Error::Database(db) = e {
        let fatal = db
            .try_downcast_ref::<PgDatabaseError>()
            .is_some_and(|pg| matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic));
        return fatal || db.code().is_some_and(|c| c.starts_with("08"));
    }
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::PoolClosed
            | sqlx::Error::PoolTimedOut
    )
}

impl Deref for Lease {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}
