//! A number's own daily cap: checked and counted in the same atomic step as
//! the tenant's four, so neither overshoots, and rebuilt from the store.

use events::{CallId, Event, NumberId, OriginateClaimed, OriginateRequested, ProviderId};
use events::{ProviderKind, StreamType};

use chrono::Utc;
use switchboard::caps::{snapshot_from_store, Admission, Dimension, NumberCap, DEFAULT_LEASE};
use switchboard::clock::Clock;
use switchboard::store::{self, ExpectedVersion, StreamAppend};
use uuid::Uuid;

use super::fixture::{at, limits, Fixture};
use crate::support::meta;

fn capped(number_id: NumberId, max: Option<u32>) -> Option<NumberCap> {
    Some(NumberCap {
        number_id,
        daily_calls_max: max,
    })
}

#[tokio::test]
async fn caps_fifty_racing_reserves_on_one_number_admit_exactly_its_cap() {
    let f = Fixture::new(at("2026-03-01T12:00:00Z"), DEFAULT_LEASE).await;
    let l = limits(100, 100, 100, 100);
    let (hot, other) = (NumberId::new(), NumberId::new());
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (caps, tenant) = (f.caps.clone(), f.tenant);
            tokio::spawn(async move {
                let call = CallId::new();
                (
                    call,
                    caps.reserve_from(tenant, call, &l, capped(hot, Some(5)))
                        .await,
                )
            })
        })
        .collect();
    let mut admitted = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (call, Ok(Admission::Admitted)) => admitted.push(call),
            (_, Ok(Admission::Refused(r))) => {
                assert_eq!(
                    (r.dimension, r.limit, r.current),
                    (Dimension::NumberDailyCalls, 5, 5)
                );
                assert!(r.retry_after_s >= 1, "until midnight UTC");
            }
            (_, Err(e)) => panic!("{e}"),
        }
    }
    assert_eq!(admitted.len(), 5, "never past the number's cap");
    // A refusal counted nothing: the tenant saw five admissions.
    assert_eq!(f.usage().await.daily_calls, 5);
    // Reserving an admitted call again is idempotent, even at the cap.
    let again = f
        .caps
        .reserve_from(f.tenant, admitted[0], &l, capped(hot, Some(5)));
    assert_eq!(again.await.unwrap(), Admission::Admitted);
    // Another number of the tenant is not held back by this one.
    let elsewhere = f
        .caps
        .reserve_from(f.tenant, CallId::new(), &l, capped(other, Some(5)));
    assert_eq!(elsewhere.await.unwrap(), Admission::Admitted);
    // 0 stops the number; no cap (None) lets it go up to the tenant's caps.
    let stopped = f
        .caps
        .reserve_from(f.tenant, CallId::new(), &l, capped(other, Some(0)));
    assert!(
        matches!(stopped.await.unwrap(), Admission::Refused(r) if r.dimension == Dimension::NumberDailyCalls)
    );
    let free = f
        .caps
        .reserve_from(f.tenant, CallId::new(), &l, capped(hot, None));
    assert_eq!(free.await.unwrap(), Admission::Admitted);
    // The tenant's own caps are checked first and named first.
    let tight = limits(100, 100, 7, 100);
    let r = f
        .caps
        .reserve_from(f.tenant, CallId::new(), &tight, capped(hot, Some(5)));
    assert!(
        matches!(r.await.unwrap(), Admission::Refused(r) if r.dimension == Dimension::DailyCalls)
    );
    f.env.cleanup(None).await;
}

/// What a worker does for a call from `number`: reserve, then the request
/// and the claim in the store.
async fn admit_and_claim(f: &Fixture, number: NumberId, max: Option<u32>) -> CallId {
    let call = CallId::new();
    let l = limits(100, 100, 100, 100);
    let admitted = f.caps.reserve_from(f.tenant, call, &l, capped(number, max));
    assert_eq!(admitted.await.unwrap(), Admission::Admitted);
    let requested = Event::OriginateRequested(OriginateRequested {
        from_number: "+12025550123".into(),
        to_number: "+14155550100".into(),
        agent_id: Uuid::new_v4(),
        number_id: number,
        provider: ProviderKind::Twilio,
        credentials_id: ProviderId::new(),
        session_id: Uuid::now_v7(),
        metadata: serde_json::Value::Null,
    });
    let claimed = Event::OriginateClaimed(OriginateClaimed {
        worker_id: "w1".into(),
    });
    let sa = StreamAppend {
        stream_type: StreamType::Call,
        stream_id: call.uuid(),
        expected: ExpectedVersion::NoStream,
        events: vec![requested, claimed],
    };
    store::append(&f.env.pool, meta(f.tenant), &[sa])
        .await
        .expect("append");
    call
}

#[tokio::test]
async fn caps_a_numbers_count_is_rebuilt_from_the_store() {
    // The store records real time, so the clock starts at real time.
    let f = Fixture::new(Utc::now(), DEFAULT_LEASE).await;
    let (hot, other) = (NumberId::new(), NumberId::new());
    for _ in 0..3 {
        admit_and_claim(&f, hot, Some(3)).await;
    }
    admit_and_claim(&f, other, None).await;
    let snap = snapshot_from_store(&f.env.pool, f.tenant, f.clock.now(), DEFAULT_LEASE)
        .await
        .unwrap();
    assert_eq!(snap.number_calls.get(&hot), Some(&3));
    assert_eq!(snap.number_calls.get(&other), Some(&1));
    // Redis loses everything; the next reserve rebuilds and still refuses.
    f.flush().await;
    let l = limits(100, 100, 100, 100);
    let r = f
        .caps
        .reserve_from(f.tenant, CallId::new(), &l, capped(hot, Some(3)));
    assert!(
        matches!(r.await.unwrap(), Admission::Refused(r) if r.dimension == Dimension::NumberDailyCalls && r.current == 3),
        "the rebuilt count holds the cap"
    );
    let r = f
        .caps
        .reserve_from(f.tenant, CallId::new(), &l, capped(other, Some(2)));
    assert_eq!(r.await.unwrap(), Admission::Admitted, "1 of 2 used");
    f.env.cleanup(None).await;
}
