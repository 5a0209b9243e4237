//! Reloading a tenant's counters from the event store after Redis lost them.
//!
//! # Lock
//! Rebuilds of one tenant are serialized by a PostgreSQL advisory lock,
//! `pg_advisory_xact_lock(REBUILD_CLASS, tenant_key(tenant))`, taken in a
//! transaction on a pooled connection:
//! - it lives in the system that holds the truth, not in the Redis that just
//!   lost its state (a failover can lose a Redis lock too, and a `SET NX PX`
//!   lock needs an expiry guessed longer than the slowest rebuild);
//! - being transaction-scoped, it is released at commit or rollback, also when
//!   the rebuilding task is cancelled or its connection dies, so it can never
//!   be left held on a connection returned to the pool;
//! - the snapshot query runs in the same transaction, on the same connection.
//!
//! The lock is only an economy: a worker that waited re-checks the epoch and
//! skips the query when another one already rebuilt. Correctness does not
//! depend on it, because the load script writes only while the epoch does
//! not name this Redis process, and the other scripts never write unless it
//! does.

use crate::redis_conn::RedisConn;
use chrono::Utc;
use events::TenantId;

use super::keys::{ms, retention, TenantKeys, DAY_KEY_TTL_MS};
use super::snapshot::snapshot_with;
use super::{scripts, Caps, CapsError};

/// The first key of the two-key advisory lock space for caps rebuilds
/// (the leader election uses its own class; stream locks the one-key space).
const REBUILD_CLASS: i32 = 0x5b_ca_95;

/// How long a rebuild waits for another one of the same tenant.
const LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '30s'";

/// A stable 32-bit key for a tenant. Two tenants folding to one key only
/// wait for each other's rebuild.
pub(crate) fn tenant_key(tenant: TenantId) -> i32 {
    let b = tenant.as_bytes();
    let word = |i: usize| i32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    word(0) ^ word(4) ^ word(8) ^ word(12)
}

/// Whether the epoch names this Redis process (see rebuild.lua).
const LOADED_HERE: &str = "return redis.call('GET', KEYS[1]) == \
    string.match(redis.call('INFO', 'server'), 'run_id:(%w+)') and 1 or 0";

impl Caps {
    /// Loads `tenant`'s counters from the store unless they are loaded.
    pub(crate) async fn rebuild(&self, tenant: TenantId) -> Result<(), CapsError> {
        let keys = TenantKeys::new(&self.ns, tenant);
        let mut redis: RedisConn = self.redis.clone();
        let mut tx = self.pool.begin().await?;
        sqlx::query(LOCK_TIMEOUT).execute(&mut *tx).await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(REBUILD_CLASS)
            .bind(tenant_key(tenant))
            .execute(&mut *tx)
            .await?;
        let loaded: bool = redis::Script::new(LOADED_HERE)
            .key(keys.epoch())
            .invoke_async(&mut redis)
            .await?;
        if loaded {
            tx.commit().await?;
            return Ok(());
        }
        // Taken after the lock: the store then has every claim committed
        // before it, and nothing is admitted meanwhile (no epoch).
        let now = self.clock.now();
        let snap = snapshot_with(&mut *tx, tenant, now, self.lease).await?;
        let mut load = scripts::REBUILD.prepare_invoke();
        for key in keys.all(snap.day) {
            load.key(key);
        }
        let wrote: i64 = load
            .arg(snap.to_json().to_string())
            .arg(now.timestamp_millis())
            .arg(ms(retention(self.lease)))
            // Unused: the script stores the server's run_id as the epoch.
            .arg(Utc::now().to_rfc3339())
            .arg(DAY_KEY_TTL_MS)
            .invoke_async(&mut redis)
            .await?;
        tx.commit().await?;
        tracing::info!(
            %tenant,
            loaded = wrote == 1,
            active = snap.active.len(),
            daily_calls = snap.daily_calls,
            daily_minutes = snap.daily_minutes,
            "rebuilt cost-cap counters from the event store"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn tenant_key_is_stable() {
        assert_eq!(tenant_key(TenantId::default()), 0);
        let t = TenantId::from(Uuid::from_u128(0x0102_0304_0000_0000_0000_0000_0000_0000));
        assert_eq!(tenant_key(t), 0x0102_0304);
    }
}
