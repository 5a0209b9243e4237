//! Per-tenant cost caps (SPEC §7.1), enforced in Redis across any number of
//! originate workers.
//!
//! # Design
//! - **One atomic step.** `reserve` is one Lua script that checks all four
//!   caps and, only if all pass, counts the call in all four. Checks only read
//!   (ZCOUNT, GET), so a refusal writes nothing; lapsed leases and window
//!   entries are dropped by the next admission, and counting ignores them
//!   meanwhile. Every key is passed in KEYS and shares the tenant's hash tag,
//!   so the script runs unchanged on Redis Cluster.
//! - **Key layout** (`<ns>:caps:{<tenant>}:<part>`, see `keys`): `conc` (ZSET
//!   call -> lease expiry ms), `cpm` (ZSET call -> admission ms, 60 s),
//!   `calls:<YYYY-MM-DD>` and `minutes:<YYYY-MM-DD>` (counters, TTL 48 h),
//!   `calls` (HASH call -> `admitted`|`done`), `seen` (ZSET call -> admission
//!   time while admitted, then last touch,
//!   prunes `calls` after the retention), `epoch` (counters are loaded).
//! - **Idempotent per call.** A call already in `calls` is admitted again
//!   without counting (redelivery; two workers racing for one call), and
//!   `release` counts only a call in state `admitted`, so a repeated end
//!   callback never counts twice.
//! - **A rejected call counts against nothing.** A reservation whose call
//!   was rejected (its handler lost the race to another's refusal) is taken
//!   back whole with `withdraw` (slot, window, day, number), only from
//!   `admitted`; a rejected call that holds nothing is remembered as done
//!   for ten minutes, so a late reserve of it counts nothing. Redis then
//!   holds what a rebuild from the store would, the claimed calls.
//! - **Injected time.** "Now" comes from the `Clock` and is passed to the
//!   scripts, never Redis `TIME`: tests move it across midnight or past a
//!   lease, and every worker judges by the same clock as the event store.
//!   (Key TTLs are Redis-relative durations; they only clean up.)
//! - **Redis is a cache.** Every script first checks `epoch`, which holds
//!   the `run_id` of the Redis process that loaded the counters; when it is
//!   missing or names another process (restart, flush, a restore from a
//!   snapshot file, failover to a replica), the script
//!   answers "rebuild", the caller loads the counters from the event store
//!   (`snapshot_from_store`, under a per-tenant lock, see `rebuild`) and
//!   retries. Nothing is admitted while the epoch is missing.
//!
//! # Limits of the design
//! - A worker reserves before it appends `OriginateClaimed`; a rebuild that
//!   runs between the two misses that one call until it ends. The window is
//!   one store append long.
//! - A rebuild forgets the marks of rejected calls, and a reserve more than
//!   ten minutes after a rejection was withdrawn finds none: if that
//!   handler then crashes or errs before its claim fails, its reservation
//!   of a rejected call stays counted (the slot until its lease lapses, the
//!   day and the number's day for good).
//! - Redis must not evict these keys (`maxmemory-policy noeviction`); an
//!   evicted counter under a surviving epoch would undercount.

mod keys;
mod rebuild;
mod scripts;
mod snapshot;
mod types;

pub use snapshot::{snapshot_from_store, CallState, KnownCall, Snapshot};
pub use types::{Admission, CapsError, CountedNumber, Dimension, Refusal, Usage, Withdrawal};

use events::{CallId, NumberId, TenantId};
use std::time::Duration;

use crate::redis_conn::RedisConn;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgPool;

use crate::clock::SharedClock;
use crate::domain::limits::CallLimits;
use crate::namespace::Namespace;
use keys::{
    day_start, ms, next_midnight, retention, secs_to_midnight, TenantKeys, DAY_KEY_TTL_MS,
    WINDOW_MS,
};
use scripts::{count, NEED_REBUILD};

/// A lapsed end callback frees a slot after this long (SPEC §7.1).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(4 * 3600);

/// How many times one call rebuilds before giving up (Redis keeps losing
/// the counters right after each load).
const MAX_REBUILDS: usize = 3;
/// How long a rejected call that held nothing is remembered as done (a
/// handler that read the call before the rejection reserves it within
/// seconds; then it counts nothing).
const REMEMBER_REJECTED_MS: i64 = 10 * 60 * 1000;

/// The calling number of a call, and its own daily cap (`None`: uncapped,
/// but still counted, so a cap set later in the day sees today's calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumberCap {
    pub number_id: NumberId,
    pub daily_calls_max: Option<u32>,
}

/// The cost caps of every tenant; cheap to clone, one per worker is enough.
#[derive(Clone)]
pub struct Caps {
    redis: RedisConn,
    pool: PgPool,
    ns: Namespace,
    clock: SharedClock,
    lease: Duration,
}

impl Caps {
    /// `lease`: how long an admitted call holds its `concurrent` slot when no
    /// end arrives (`DEFAULT_LEASE` in production).
    pub fn new(
        redis: RedisConn,
        pool: PgPool,
        ns: Namespace,
        clock: SharedClock,
        lease: Duration,
    ) -> Caps {
        Caps {
            redis,
            pool,
            ns,
            clock,
            lease,
        }
    }

    /// The `EVALSHA` command `reserve` sends for `call_id` (a string, so a
    /// load generator may put a placeholder there), as words: what
    /// `scripts/bench` hands to redis-benchmark to measure the ceiling of
    /// the same script.
    pub fn reserve_command(
        &self,
        tenant: TenantId,
        call_id: &str,
        limits: &CallLimits,
    ) -> Vec<String> {
        let keys = TenantKeys::new(&self.ns, tenant);
        let now = self.clock.now();
        let now_ms = now.timestamp_millis();
        let lease_ms = i64::try_from(ms(self.lease)).unwrap_or(i64::MAX);
        let keep_ms = i64::try_from(ms(retention(self.lease))).unwrap_or(i64::MAX);
        let keys = keys.all(now.date_naive());
        let mut words = vec![
            "EVALSHA".to_owned(),
            scripts::RESERVE.get_hash().to_owned(),
            keys.len().to_string(),
        ];
        words.extend(keys);
        words.extend([
            now_ms.to_string(),
            call_id.to_owned(),
            limits.concurrent_max.to_string(),
            limits.calls_per_minute.to_string(),
            limits.daily_calls_max.to_string(),
            limits.daily_minutes_max.to_string(),
            now_ms.saturating_add(lease_ms).to_string(),
            (now_ms - WINDOW_MS).to_string(),
            secs_to_midnight(now).to_string(),
            keep_ms.to_string(),
            now_ms.saturating_sub(keep_ms).to_string(),
            DAY_KEY_TTL_MS.to_string(),
            String::new(),
            "-1".to_owned(),
        ]);
        words
    }

    /// Checks `call_id` against all four caps of `tenant` and, if all admit
    /// it, counts it in all four, atomically (no number of its own).
    pub async fn reserve(
        &self,
        tenant: TenantId,
        call_id: CallId,
        limits: &CallLimits,
    ) -> Result<Admission, CapsError> {
        self.reserve_from(tenant, call_id, limits, None).await
    }

    /// `reserve`, and the calling number's own daily cap checked and counted
    /// in the same atomic step, so neither can overshoot.
    pub async fn reserve_from(
        &self,
        tenant: TenantId,
        call_id: CallId,
        limits: &CallLimits,
        number: Option<NumberCap>,
    ) -> Result<Admission, CapsError> {
        let (number_id, number_max) = match number {
            Some(n) => (
                n.number_id.to_string(),
                n.daily_calls_max.map_or(-1, i64::from),
            ),
            None => (String::new(), -1),
        };
        let keys = TenantKeys::new(&self.ns, tenant);
        for _ in 0..=MAX_REBUILDS {
            let now = self.clock.now();
            let now_ms = now.timestamp_millis();
            let mut call = scripts::RESERVE.prepare_invoke();
            for key in keys.all(now.date_naive()) {
                call.key(key);
            }
            let lease_ms = i64::try_from(ms(self.lease)).unwrap_or(i64::MAX);
            let keep_ms = i64::try_from(ms(retention(self.lease))).unwrap_or(i64::MAX);
            let reply: Vec<i64> = call
                .arg(now_ms)
                .arg(call_id.to_string())
                .arg(limits.concurrent_max)
                .arg(limits.calls_per_minute)
                .arg(limits.daily_calls_max)
                .arg(limits.daily_minutes_max)
                .arg(now_ms.saturating_add(lease_ms))
                .arg(now_ms - WINDOW_MS)
                .arg(secs_to_midnight(now))
                .arg(keep_ms)
                .arg(now_ms.saturating_sub(keep_ms))
                .arg(DAY_KEY_TTL_MS)
                .arg(&number_id)
                .arg(number_max)
                .invoke_async(&mut self.redis.clone())
                .await?;
            match reply.first() {
                Some(&NEED_REBUILD) => self.rebuild(tenant).await?,
                Some(0 | 1) => return Ok(Admission::Admitted),
                Some(2) => {
                    let dimension = reply
                        .get(1)
                        .and_then(|c| types::dimension_from_code(*c))
                        .ok_or_else(|| CapsError::Reply(format!("{reply:?}")))?;
                    return Ok(Admission::Refused(Refusal {
                        dimension,
                        limit: count(&reply, 2)?,
                        current: count(&reply, 3)?,
                        retry_after_s: count(&reply, 4)?,
                    }));
                }
                _ => return Err(CapsError::Reply(format!("{reply:?}"))),
            }
        }
        Err(CapsError::Unstable)
    }

    /// Frees `call_id`'s slot and adds `billed_minutes` (0 for a failed
    /// originate) to the minutes of `ended_at`'s UTC day. A call that is not
    /// admitted (unknown, or released before) is left alone.
    pub async fn release(
        &self,
        tenant: TenantId,
        call_id: CallId,
        ended_at: DateTime<chrono::Utc>,
        billed_minutes: u64,
    ) -> Result<(), CapsError> {
        let keys = TenantKeys::new(&self.ns, tenant);
        for _ in 0..=MAX_REBUILDS {
            let now = self.clock.now();
            let reply: Vec<i64> = scripts::RELEASE
                .key(keys.epoch())
                .key(keys.concurrent())
                .key(keys.calls())
                .key(keys.daily_minutes(ended_at.date_naive()))
                .key(keys.seen())
                .arg(call_id.to_string())
                .arg(billed_minutes)
                .arg(now.timestamp_millis())
                .arg(ms(retention(self.lease)))
                .arg(DAY_KEY_TTL_MS)
                .invoke_async(&mut self.redis.clone())
                .await?;
            match reply.first() {
                Some(&NEED_REBUILD) => self.rebuild(tenant).await?,
                Some(0 | 1) => return Ok(()),
                _ => return Err(CapsError::Reply(format!("{reply:?}"))),
            }
        }
        Err(CapsError::Unstable)
    }

    /// Takes back `call_id`'s reservation, for a call whose rejection is
    /// committed (a handler that reserved it lost the race to another's
    /// `OriginateRejected`): every counter it moved, the day's calls and its
    /// number's included, as if it had never been reserved, once. The store
    /// counts only claimed calls, so this keeps Redis where a rebuild would
    /// put it. A call that holds nothing is remembered as done for at least
    /// ten minutes, so a handler that reserves it after this counts nothing.
    /// Call it only for a call whose rejection is committed: a call marked
    /// so is never counted again, so a live one would be dialed uncounted.
    /// `number` is what the reservation counted; `CountedNumber::Unknown`
    /// asks first whether there is anything to take back, and the caller
    /// loads the number only when there is (`Withdrawal::NeedsNumber`).
    pub async fn withdraw(
        &self,
        tenant: TenantId,
        call_id: CallId,
        number: CountedNumber,
    ) -> Result<Withdrawal, CapsError> {
        let keys = TenantKeys::new(&self.ns, tenant);
        let number = match number {
            CountedNumber::Unknown => "?".to_owned(),
            CountedNumber::Known(None) => String::new(),
            CountedNumber::Known(Some(n)) => n.to_string(),
        };
        let keep_ms = i64::try_from(ms(retention(self.lease))).unwrap_or(i64::MAX);
        for _ in 0..=MAX_REBUILDS {
            let now = self.clock.now();
            let today = now.date_naive();
            let yesterday = today.pred_opt().unwrap_or(today);
            let tomorrow = today.succ_opt().unwrap_or(today);
            let today_start = day_start(now);
            let yesterday_start = today_start - TimeDelta::days(1);
            let tomorrow_start = next_midnight(now);
            let prune_before = now.timestamp_millis().saturating_sub(keep_ms);
            let reply: Vec<i64> = scripts::WITHDRAW
                .key(keys.epoch())
                .key(keys.concurrent())
                .key(keys.window())
                .key(keys.calls())
                .key(keys.seen())
                .key(keys.daily_calls(today))
                .key(keys.number_calls(today))
                .key(keys.daily_calls(yesterday))
                .key(keys.number_calls(yesterday))
                .key(keys.daily_calls(tomorrow))
                .key(keys.number_calls(tomorrow))
                .arg(call_id.to_string())
                .arg(now.timestamp_millis())
                .arg(keep_ms)
                .arg(&number)
                .arg(today_start.timestamp_millis())
                .arg(yesterday_start.timestamp_millis())
                .arg(prune_before)
                .arg(prune_before.saturating_add(REMEMBER_REJECTED_MS))
                .arg(tomorrow_start.timestamp_millis())
                .invoke_async(&mut self.redis.clone())
                .await?;
            match reply.first() {
                Some(&NEED_REBUILD) => self.rebuild(tenant).await?,
                Some(0) => return Ok(Withdrawal::Withdrawn),
                Some(1) => return Ok(Withdrawal::NotHeld),
                Some(2) => return Ok(Withdrawal::NeedsNumber),
                _ => return Err(CapsError::Reply(format!("{reply:?}"))),
            }
        }
        Err(CapsError::Unstable)
    }

    /// The live counters of `tenant` (rebuilt first if Redis lost them).
    pub async fn usage(&self, tenant: TenantId) -> Result<Usage, CapsError> {
        let keys = TenantKeys::new(&self.ns, tenant);
        let mut asked_again = false;
        for _ in 0..=MAX_REBUILDS {
            let now = self.clock.now();
            let reply = match self.usage_reply(&keys, now).await {
                // A read: after a Redis restart the first command finds the
                // old connection dead (the manager reconnects behind it);
                // asking once more, briefly, on the new one is safe.
                Err(e) if (e.is_connection_dropped() || e.is_io_error()) && !asked_again => {
                    asked_again = true;
                    tracing::warn!(error = %e, "redis connection lost; asking once more");
                    match tokio::time::timeout(Duration::from_secs(1), self.usage_reply(&keys, now))
                        .await
                    {
                        Ok(r) => r?,
                        Err(_) => return Err(CapsError::Redis(e)),
                    }
                }
                r => r?,
            };
            match reply.first() {
                Some(&NEED_REBUILD) => self.rebuild(tenant).await?,
                Some(0) => {
                    return Ok(Usage {
                        concurrent: count(&reply, 1)?,
                        calls_last_minute: count(&reply, 2)?,
                        daily_calls: count(&reply, 3)?,
                        daily_minutes: count(&reply, 4)?,
                        day: now.date_naive(),
                    })
                }
                _ => return Err(CapsError::Reply(format!("{reply:?}"))),
            }
        }
        Err(CapsError::Unstable)
    }

    async fn usage_reply(
        &self,
        keys: &TenantKeys,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, redis::RedisError> {
        let day = now.date_naive();
        let window_start = now - TimeDelta::milliseconds(WINDOW_MS);
        scripts::USAGE
            .key(keys.epoch())
            .key(keys.concurrent())
            .key(keys.window())
            .key(keys.daily_calls(day))
            .key(keys.daily_minutes(day))
            .arg(now.timestamp_millis())
            .arg(window_start.timestamp_millis())
            .invoke_async(&mut self.redis.clone())
            .await
    }
}
