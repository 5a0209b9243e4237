//! Cost caps against the real Redis and PostgreSQL: each dimension's
//! boundary, kill switches, idempotency, time moved by a ManualClock.
//! Races and rebuilds from the event store are in `caps/rebuild.rs`; a
//! reservation taken back after a rejection in `caps/withdraw.rs`.

mod fixture;
mod number;
mod rebuild;
mod withdraw;

use events::CallId;
use std::time::Duration;

use switchboard::caps::{Admission, Dimension, Refusal, DEFAULT_LEASE};

use fixture::{at, limits, Fixture};

fn refusal(dimension: Dimension, limit: u64, current: u64, retry_after_s: u64) -> Refusal {
    Refusal {
        dimension,
        limit,
        current,
        retry_after_s,
    }
}

#[tokio::test]
async fn concurrent_refuses_at_its_limit_and_a_release_frees_a_slot() {
    let f = Fixture::new(at("2026-03-01T12:00:00Z"), DEFAULT_LEASE).await;
    let l = limits(2, 100, 100, 100);
    let a = f.admit(&l).await;
    f.admit(&l).await;
    assert_eq!(f.refuse(&l).await, refusal(Dimension::Concurrent, 2, 2, 1));
    f.release(a, 0).await;
    f.admit(&l).await;
    assert_eq!(f.usage().await.concurrent, 2);
    f.done().await;
}

#[tokio::test]
async fn calls_per_minute_window_slides_with_the_clock() {
    let f = Fixture::new(at("2026-03-01T12:00:00Z"), DEFAULT_LEASE).await;
    let l = limits(100, 3, 100, 100);
    for _ in 0..3 {
        f.admit(&l).await;
        f.advance(10_000);
    }
    // t0+30 s: admissions at t0, t0+10, t0+20; room at t0+60.
    let cpm = Dimension::CallsPerMinute;
    assert_eq!(f.refuse(&l).await, refusal(cpm, 3, 3, 30));
    f.advance(29_999);
    assert_eq!(f.refuse(&l).await, refusal(cpm, 3, 3, 1));
    f.advance(1); // t0+60 s: the t0 admission leaves the window
    f.admit(&l).await;
    f.advance(500); // window: t0+10, t0+20, t0+60
    assert_eq!(f.refuse(&l).await, refusal(cpm, 3, 3, 10));
    // A lowered limit waits for enough admissions to leave, not just one.
    assert_eq!(
        f.refuse(&limits(100, 1, 100, 100)).await,
        refusal(cpm, 1, 3, 60)
    );
    assert_eq!(f.usage().await.calls_last_minute, 3);
    f.done().await;
}

#[tokio::test]
async fn daily_calls_refuse_at_the_limit_and_reset_at_midnight() {
    let f = Fixture::new(at("2026-03-01T23:59:00Z"), DEFAULT_LEASE).await;
    let l = limits(100, 100, 2, 100);
    f.admit(&l).await;
    f.admit(&l).await;
    assert_eq!(f.refuse(&l).await, refusal(Dimension::DailyCalls, 2, 2, 60));
    f.clock.set(at("2026-03-01T23:59:59.500Z"));
    assert_eq!(f.refuse(&l).await, refusal(Dimension::DailyCalls, 2, 2, 1));
    f.clock.set(at("2026-03-02T00:00:00Z"));
    f.admit(&l).await;
    let u = f.usage().await;
    assert_eq!((u.daily_calls, u.day.to_string()), (1, "2026-03-02".into()));
    f.done().await;
}

#[tokio::test]
async fn daily_minutes_count_ended_calls_and_reset_at_midnight() {
    let f = Fixture::new(at("2026-03-01T23:00:00Z"), DEFAULT_LEASE).await;
    let l = limits(100, 100, 100, 5);
    let a = f.admit(&l).await;
    f.release(a, 4).await;
    let b = f.admit(&l).await; // 4 < 5
    let late = f.admit(&l).await;
    f.release(b, 1).await;
    let minutes = Dimension::DailyMinutes;
    assert_eq!(f.refuse(&l).await, refusal(minutes, 5, 5, 3600));
    f.clock.set(at("2026-03-02T00:00:00Z"));
    // A late end callback counts on the day the call ended, not today.
    let ended = at("2026-03-01T23:59:59Z");
    f.caps.release(f.tenant, late, ended, 7).await.unwrap();
    assert_eq!(f.usage().await.daily_minutes, 0);
    let c = f.admit(&l).await;
    f.release(c, 5).await;
    assert_eq!(f.refuse(&l).await, refusal(minutes, 5, 5, 86_400));
    f.done().await;
}

#[tokio::test]
async fn zero_refuses_at_once_and_changes_no_key() {
    let f = Fixture::new(at("2026-03-01T12:00:00Z"), Duration::from_secs(600)).await;
    let open = limits(100, 100, 100, 100);
    let a = f.admit(&open).await;
    f.admit(&open).await;
    f.release(a, 3).await;
    // The unreleased call's lease lapses and both admissions leave the
    // window: a refusal must not even prune them.
    f.advance(11 * 60_000);
    let before = f.dump().await;
    assert!(before.len() >= 6, "{before:?}");
    let cases = [
        (
            limits(0, 100, 100, 100),
            refusal(Dimension::Concurrent, 0, 0, 1),
        ),
        (
            limits(100, 0, 100, 100),
            refusal(Dimension::CallsPerMinute, 0, 0, 60),
        ),
        (
            limits(100, 100, 0, 100),
            refusal(Dimension::DailyCalls, 0, 2, 42_540),
        ),
        (
            limits(100, 100, 100, 0),
            refusal(Dimension::DailyMinutes, 0, 3, 42_540),
        ),
        (limits(0, 0, 0, 0), refusal(Dimension::Concurrent, 0, 0, 1)),
    ];
    for (l, want) in cases {
        assert_eq!(f.refuse(&l).await, want);
    }
    assert_eq!(f.dump().await, before, "a refusal changed a key");
    f.done().await;
}

#[tokio::test]
async fn reserve_and_release_are_idempotent_per_call() {
    let f = Fixture::new(at("2026-03-01T12:00:00Z"), DEFAULT_LEASE).await;
    let l = limits(1, 100, 100, 100);
    let call = CallId::new();
    for _ in 0..3 {
        // Redelivery: admitted again without counting, even at the limit.
        assert_eq!(f.reserve(call, &l).await, Admission::Admitted);
    }
    let u = f.usage().await;
    assert_eq!(
        (u.concurrent, u.calls_last_minute, u.daily_calls),
        (1, 1, 1)
    );
    f.release(call, 3).await;
    f.release(call, 3).await;
    f.release(CallId::new(), 9).await; // never admitted: no-op
    assert_eq!(f.reserve(call, &l).await, Admission::Admitted); // done
    let u = f.usage().await;
    assert_eq!((u.concurrent, u.daily_calls, u.daily_minutes), (0, 1, 3));
    f.done().await;
}

#[tokio::test]
async fn a_lapsed_lease_frees_its_concurrent_slot() {
    let f = Fixture::new(at("2026-03-01T12:00:00Z"), Duration::from_secs(600)).await;
    let l = limits(1, 100, 100, 100);
    let lost = f.admit(&l).await;
    f.advance(599_999);
    assert_eq!(f.refuse(&l).await, refusal(Dimension::Concurrent, 1, 1, 1));
    f.advance(1);
    assert_eq!(f.usage().await.concurrent, 0);
    f.admit(&l).await;
    // Its end callback arrives after all: minutes count, the slot is not
    // freed twice.
    f.release(lost, 2).await;
    let u = f.usage().await;
    assert_eq!((u.concurrent, u.daily_minutes), (1, 2));
    f.done().await;
}
