//! Caps under races, and rebuilt from the event store after Redis lost them.

use events::{CallEnded, CallId, Event, OriginateClaimed, OriginateFailed, StreamType};
use std::collections::HashSet;

use chrono::Utc;
use switchboard::caps::{snapshot_from_store, Admission, CallState, Dimension, DEFAULT_LEASE};
use switchboard::clock::Clock;
use switchboard::store::{self, ExpectedVersion, StreamAppend};

use super::fixture::{at, limits, Fixture};
use crate::support::meta;

/// Appends `event` to call stream `call` at version `after + 1`.
async fn append(f: &Fixture, call: CallId, after: i64, event: Event) {
    let sa = StreamAppend {
        stream_type: StreamType::Call,
        stream_id: call.uuid(),
        expected: ExpectedVersion::from_version(after),
        events: vec![event],
    };
    store::append(&f.env.pool, meta(f.tenant), &[sa])
        .await
        .expect("append");
}

fn claimed() -> Event {
    Event::OriginateClaimed(OriginateClaimed {
        worker_id: "w1".into(),
    })
}

fn ended(minutes: u64) -> Event {
    Event::CallEnded(CallEnded {
        status: "completed".into(),
        duration_s: minutes * 60,
        billed_minutes: minutes,
        hangup_cause: "normal_clearing".into(),
    })
}

/// What a worker does: reserve, then claim the call in the store.
async fn admit_and_claim(f: &Fixture, l: &switchboard::domain::limits::CallLimits) -> CallId {
    let call = f.admit(l).await;
    append(f, call, 0, claimed()).await;
    call
}

#[tokio::test]
async fn caps_fifty_racing_reserves_admit_exactly_the_limit() {
    let f = Fixture::new(at("2026-03-01T12:00:00Z"), DEFAULT_LEASE).await;
    let l = limits(7, 100, 100, 100);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (caps, tenant) = (f.caps.clone(), f.tenant);
            tokio::spawn(async move { caps.reserve(tenant, CallId::new(), &l).await })
        })
        .collect();
    let mut admitted = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Admission::Admitted => admitted += 1,
            Admission::Refused(r) => {
                assert_eq!(
                    (r.dimension, r.limit, r.current),
                    (Dimension::Concurrent, 7, 7)
                );
            }
        }
    }
    assert_eq!(admitted, 7);
    assert_eq!(f.usage().await.concurrent, 7);

    // Ten workers racing for one call: all told "admitted", counted once.
    let other = Fixture::new(at("2026-03-01T12:00:00Z"), DEFAULT_LEASE).await;
    let call = CallId::new();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (caps, tenant) = (other.caps.clone(), other.tenant);
            tokio::spawn(async move { caps.reserve(tenant, call, &l).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), Admission::Admitted);
    }
    let u = other.usage().await;
    assert_eq!((u.concurrent, u.daily_calls), (1, 1));
    other.done().await;
    f.done().await;
}

#[tokio::test]
async fn caps_flushed_keys_are_rebuilt_from_the_store() {
    // The store records real time, so the clock starts at real time.
    let f = Fixture::new(Utc::now(), DEFAULT_LEASE).await;
    let l = limits(2, 100, 5, 100);
    let active = admit_and_claim(&f, &l).await;
    let finished = admit_and_claim(&f, &l).await;
    append(&f, finished, 1, ended(4)).await;
    f.release(finished, 4).await;
    let failed = admit_and_claim(&f, &l).await;
    let err = OriginateFailed {
        error: "boom".into(),
        retryable: false,
    };
    append(&f, failed, 1, Event::OriginateFailed(err)).await;
    f.release(failed, 0).await;
    let before = f.usage().await;
    assert_eq!(
        (
            before.concurrent,
            before.calls_last_minute,
            before.daily_calls,
            before.daily_minutes
        ),
        (1, 3, 3, 4)
    );

    let snap = snapshot_from_store(&f.env.pool, f.tenant, f.clock.now(), DEFAULT_LEASE)
        .await
        .unwrap();
    assert_eq!(
        snap.active.iter().map(|a| a.0).collect::<Vec<_>>(),
        vec![active]
    );
    let states: HashSet<_> = snap.calls.iter().map(|c| (c.call_id, c.state)).collect();
    assert!(states.contains(&(finished, CallState::Done)));
    assert!(states.contains(&(failed, CallState::Done)));
    assert!(states.contains(&(active, CallState::Admitted)));

    f.flush().await;
    assert_eq!(f.usage().await, before, "usage rebuilt from the store");
    // Idempotency survived: a repeated end does not count again, and a
    // redelivered reserve is not counted again.
    f.release(finished, 4).await;
    assert_eq!(f.reserve(active, &l).await, Admission::Admitted);
    assert_eq!(f.usage().await, before);

    f.flush().await;
    let d = admit_and_claim(&f, &l).await; // rebuilt on reserve; 2nd slot
    let full = f.refuse(&l).await;
    assert_eq!(
        (full.dimension, full.limit, full.current),
        (Dimension::Concurrent, 2, 2)
    );

    f.flush().await;
    let full = f.refuse(&l).await;
    assert_eq!((full.dimension, full.current), (Dimension::Concurrent, 2));
    f.release(active, 2).await; // admitted in the rebuilt state: counts
    append(&f, active, 1, ended(2)).await;
    append(&f, d, 1, ended(1)).await;
    f.release(d, 1).await;
    assert_eq!(f.usage().await.daily_minutes, 7);
    admit_and_claim(&f, &l).await; // the 5th call today
    f.flush().await;
    let full = f.refuse(&l).await;
    assert_eq!(
        (full.dimension, full.limit, full.current),
        (Dimension::DailyCalls, 5, 5)
    );
    f.done().await;
}

/// The issue asks for FLUSHALL in the middle of a run. FLUSHALL would also
/// wipe the keys of the tests running in parallel on this Redis, so this
/// test deletes its own namespace's keys (SCAN MATCH `<ns>:*` + DEL), which
/// is what FLUSHALL does to this tenant.
#[tokio::test]
async fn caps_flushall_mid_run_racing_workers_rebuild_and_caps_hold() {
    let f = Fixture::new(Utc::now(), DEFAULT_LEASE).await;
    let l = limits(5, 100, 100, 100);
    for _ in 0..3 {
        admit_and_claim(&f, &l).await;
    }
    f.flush().await;
    // Thirty workers meet the missing counters at once; each rebuild waits
    // for the tenant's lock, and only one snapshot is loaded.
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let (caps, tenant) = (f.caps.clone(), f.tenant);
            tokio::spawn(async move { caps.reserve(tenant, CallId::new(), &l).await })
        })
        .collect();
    let mut admitted = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() == Admission::Admitted {
            admitted += 1;
        }
    }
    assert_eq!(
        admitted, 2,
        "3 active calls from the store + 2 = the limit of 5"
    );
    let u = f.usage().await;
    assert_eq!((u.concurrent, u.daily_calls), (5, 5));
    f.done().await;
}
