//! The Redis key layout of one tenant's caps, and UTC-day arithmetic.
//!
//! Every key carries the tenant in a hash tag (`{<tenant>}`), so all of a
//! tenant's keys live in one Redis Cluster hash slot and one script may touch
//! them all; different tenants spread over the cluster.

use events::TenantId;
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Utc};

use crate::namespace::Namespace;

/// How long a daily counter outlives its last write: long enough to be read
/// all through its day, short enough to vanish by the day after next.
pub(crate) const DAY_KEY_TTL_MS: u64 = 48 * 3600 * 1000;

/// The sliding window of `calls_per_minute`.
pub(crate) const WINDOW_MS: i64 = 60_000;

/// One tenant's keys, `<ns>:caps:{<tenant>}:<part>`.
pub(crate) struct TenantKeys {
    ns: Namespace,
    tenant: TenantId,
}

impl TenantKeys {
    pub(crate) fn new(ns: &Namespace, tenant: TenantId) -> TenantKeys {
        TenantKeys {
            ns: ns.clone(),
            tenant,
        }
    }

    fn key(&self, part: &str) -> String {
        self.ns
            .redis_key(&format!("caps:{{{}}}:{part}", self.tenant))
    }

    /// STRING: present while the counters below are loaded (see `mod.rs`).
    pub(crate) fn epoch(&self) -> String {
        self.key("epoch")
    }

    /// ZSET call_id -> lease expiry (ms).
    pub(crate) fn concurrent(&self) -> String {
        self.key("conc")
    }

    /// ZSET call_id -> admission time (ms), the last 60 s.
    pub(crate) fn window(&self) -> String {
        self.key("cpm")
    }

    /// STRING counter: admissions on `day`.
    pub(crate) fn daily_calls(&self, day: NaiveDate) -> String {
        self.key(&format!("calls:{}", day.format("%Y-%m-%d")))
    }

    /// STRING counter: billed minutes of calls that ended on `day`.
    pub(crate) fn daily_minutes(&self, day: NaiveDate) -> String {
        self.key(&format!("minutes:{}", day.format("%Y-%m-%d")))
    }

    /// HASH call_id -> `admitted` | `done`: makes reserve and release
    /// idempotent per call.
    pub(crate) fn calls(&self) -> String {
        self.key("calls")
    }

    /// ZSET call_id -> last touch (ms; an admitted call's admission, which
    /// `withdraw` reads its day from): the age index that prunes `calls`
    /// (Redis 7.0 has no per-field expiry, and the hash of a busy tenant
    /// would otherwise never expire).
    pub(crate) fn seen(&self) -> String {
        self.key("seen")
    }

    /// HASH number_id -> admissions on `day` from that number (every number,
    /// capped or not, so a cap set during the day counts the calls before it).
    pub(crate) fn number_calls(&self, day: NaiveDate) -> String {
        self.key(&format!("numcalls:{}", day.format("%Y-%m-%d")))
    }

    /// Every key, in the order the reserve and rebuild scripts take them.
    pub(crate) fn all(&self, day: NaiveDate) -> [String; 8] {
        [
            self.epoch(),
            self.concurrent(),
            self.window(),
            self.daily_calls(day),
            self.daily_minutes(day),
            self.calls(),
            self.seen(),
            self.number_calls(day),
        ]
    }
}

/// How long a call's idempotency state (and the epoch) is kept after its last
/// touch: its whole lease and two more days for late redeliveries and end
/// callbacks.
pub(crate) fn retention(lease: Duration) -> Duration {
    lease + Duration::from_secs(48 * 3600)
}

pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// 00:00 UTC of `t`'s day.
pub(crate) fn day_start(t: DateTime<Utc>) -> DateTime<Utc> {
    t.date_naive().and_time(chrono::NaiveTime::MIN).and_utc()
}

/// 00:00 UTC of the day after `t`'s.
pub(crate) fn next_midnight(t: DateTime<Utc>) -> DateTime<Utc> {
    let next = t.date_naive().checked_add_days(Days::new(1));
    next.unwrap_or(NaiveDate::MAX)
        .and_time(chrono::NaiveTime::MIN)
        .and_utc()
}

/// Whole seconds (rounded up, at least 1) until the daily caps reset.
pub(crate) fn secs_to_midnight(now: DateTime<Utc>) -> u64 {
    let ms = (next_midnight(now) - now).num_milliseconds().max(0);
    u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn keys_share_one_hash_tag() {
        let ns = Namespace::parse("sb").unwrap();
        let t = TenantId::default();
        let keys = TenantKeys::new(&ns, t);
        let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert_eq!(
            keys.daily_calls(day),
            format!("sb:caps:{{{t}}}:calls:2026-03-01")
        );
        assert!(keys
            .all(day)
            .iter()
            .all(|k| k.contains(&format!("{{{t}}}"))));
    }

    #[test]
    fn seconds_to_midnight_round_up() {
        assert_eq!(secs_to_midnight(at("2026-03-01T23:59:00Z")), 60);
        assert_eq!(secs_to_midnight(at("2026-03-01T23:59:59.500Z")), 1);
        assert_eq!(secs_to_midnight(at("2026-03-01T00:00:00Z")), 86_400);
        assert_eq!(
            day_start(at("2026-03-01T13:00:00Z")),
            at("2026-03-01T00:00:00Z")
        );
    }
}
