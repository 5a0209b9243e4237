//! Leader election with PostgreSQL session advisory locks.
//!
//! The relay and each projector run in exactly one process at a time; extra
//! copies wait as hot standbys. The lock lives as long as the connection that
//! took it, so a leader that dies (or loses its connection) frees it at once
//! and a standby takes over within one retry interval.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

/// The first key of the two-key advisory lock space; the single-key space is
/// used by stream locks, and PostgreSQL keeps the two apart.
const LEADER_CLASS: i32 = 0x5b_0a_7d;

/// How often a standby retries, and a leader checks it still holds the lock.
const INTERVAL: Duration = Duration::from_millis(500);

/// A held leadership; dropping it releases the lock with its connection.
pub struct Leadership {
    /// Detached from the pool: a pooled connection would keep the session
    /// lock alive after we let go of it.
    conn: PgConnection,
}

/// A stable 32-bit key for a role name.
pub fn role_key(role: &str) -> i32 {
    // FNV-1a: tiny, stable across versions and platforms.
    let mut h: u32 = 0x811c9dc5;
    for b in role.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x01000193);
    }
    h as i32
}

/// Waits until this process leads `role`, or `shutdown` fires (`None`).
pub async fn acquire(
    pool: &PgPool,
    role: &str,
    shutdown: &CancellationToken,
) -> Option<Leadership> {
    let key = role_key(role);
    loop {
        if shutdown.is_cancelled() {
            return None;
        }
        match pool.acquire().await {
            Ok(mut conn) => {
                let got: Result<bool, _> =
                    sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
                        .bind(LEADER_CLASS)
                        .bind(key)
                        .fetch_one(&mut *conn)
                        .await;
                match got {
                    Ok(true) => {
                        tracing::info!(role, "took leadership");
                        return Some(Leadership {
                            conn: conn.detach(),
                        });
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(role, error = %e, "leadership check failed"),
                }
            }
            Err(e) => tracing::warn!(role, error = %e, "no database connection for leadership"),
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = shutdown.cancelled() => return None,
        }
    }
}

impl Leadership {
    /// Resolves when the lock's connection fails, i.e. leadership is lost.
    pub async fn lost(&mut self) {
        loop {
            tokio::time::sleep(INTERVAL).await;
            if sqlx::query("SELECT 1")
                .execute(&mut self.conn)
                .await
                .is_err()
            {
                return;
            }
        }
    }
}
