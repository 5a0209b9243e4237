//! The caps test fixture: a test's own database, namespace, tenant and
//! ManualClock, and the namespace's keys in Redis.

use events::{CallId, TenantId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use redis::aio::ConnectionManager;
use switchboard::caps::{Admission, Caps, Refusal, Usage};
use switchboard::clock::{Clock, ManualClock};
use switchboard::domain::limits::CallLimits;

use crate::support::{redis_url, TestEnv};

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub fn limits(concurrent: u32, per_minute: u32, daily: u32, minutes: u32) -> CallLimits {
    CallLimits {
        concurrent_max: concurrent,
        calls_per_minute: per_minute,
        daily_calls_max: daily,
        daily_minutes_max: minutes,
    }
}

/// One test's caps: its own database, namespace, tenant and clock.
pub struct Fixture {
    pub env: TestEnv,
    pub caps: Caps,
    pub clock: Arc<ManualClock>,
    pub redis: ConnectionManager,
    pub tenant: TenantId,
}

impl Fixture {
    pub async fn new(start: DateTime<Utc>, lease: Duration) -> Fixture {
        let env = TestEnv::new().await;
        let redis = ConnectionManager::new(redis::Client::open(redis_url()).unwrap())
            .await
            .unwrap();
        let clock = Arc::new(ManualClock::new(start));
        let caps = Caps::new(
            redis.clone().into(),
            env.pool.clone(),
            env.ns.clone(),
            clock.clone(),
            lease,
        );
        Fixture {
            env,
            caps,
            clock,
            redis,
            tenant: TenantId::new(),
        }
    }

    pub fn advance(&self, ms: i64) {
        self.clock.advance(TimeDelta::milliseconds(ms));
    }

    pub async fn reserve(&self, call: CallId, l: &CallLimits) -> Admission {
        self.caps.reserve(self.tenant, call, l).await.unwrap()
    }

    /// Reserves a fresh call and asserts it is admitted.
    pub async fn admit(&self, l: &CallLimits) -> CallId {
        let call = CallId::new();
        assert_eq!(self.reserve(call, l).await, Admission::Admitted);
        call
    }

    /// Reserves a fresh call and asserts it is refused.
    pub async fn refuse(&self, l: &CallLimits) -> Refusal {
        match self.reserve(CallId::new(), l).await {
            Admission::Refused(r) => r,
            Admission::Admitted => panic!("admitted past the caps"),
        }
    }

    pub async fn release(&self, call: CallId, minutes: u64) {
        let now = self.clock.now();
        self.caps
            .release(self.tenant, call, now, minutes)
            .await
            .unwrap();
    }

    pub async fn usage(&self) -> Usage {
        self.caps.usage(self.tenant).await.unwrap()
    }

    /// This namespace's keys. (Never FLUSHDB/FLUSHALL: parallel tests share
    /// the Redis server.)
    pub async fn keys(&self) -> Vec<String> {
        let mut conn = self.redis.clone();
        let mut cursor = 0u64;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}:*", self.env.ns))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .unwrap();
            keys.extend(batch);
            if next == 0 {
                keys.sort();
                return keys;
            }
            cursor = next;
        }
    }

    /// Every key of the namespace with its serialized value.
    pub async fn dump(&self) -> BTreeMap<String, Vec<u8>> {
        let mut conn = self.redis.clone();
        let mut out = BTreeMap::new();
        for k in self.keys().await {
            let v: Vec<u8> = redis::cmd("DUMP")
                .arg(&k)
                .query_async(&mut conn)
                .await
                .unwrap();
            out.insert(k, v);
        }
        out
    }

    /// Deletes every key of the namespace: what a Redis restart or flush
    /// does to this test's state.
    pub async fn flush(&self) {
        let keys = self.keys().await;
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut self.redis.clone())
                .await
                .unwrap();
        }
        assert!(self.keys().await.is_empty());
    }

    pub async fn done(self) {
        self.flush().await;
        self.env.cleanup(None).await;
    }
}
