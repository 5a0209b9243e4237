//! A reservation whose call was rejected (its handler lost the race to
//! another handler's `OriginateRejected`) is taken back from every counter,
//! once, so Redis holds what a rebuild from the store would: the calls that
//! were claimed.

use events::{CallId, NumberId};

use switchboard::caps::{
    Admission, CountedNumber, Dimension, NumberCap, Withdrawal, DEFAULT_LEASE,
};
use switchboard::clock::Clock;

use super::fixture::{at, limits, Fixture};

fn from(number_id: NumberId, max: u32) -> Option<NumberCap> {
    Some(NumberCap {
        number_id,
        daily_calls_max: Some(max),
    })
}

#[tokio::test]
async fn caps_a_rejected_calls_reservation_is_taken_back_from_every_counter_once() {
    let f = Fixture::new(at("2026-03-01T12:00:00Z"), DEFAULT_LEASE).await;
    let l = limits(10, 10, 10, 100);
    let number = NumberId::new();
    let kept = CallId::new();
    let lost = CallId::new();
    for call in [kept, lost] {
        let r = f
            .caps
            .reserve_from(f.tenant, call, &l, from(number, 2))
            .await;
        assert_eq!(r.unwrap(), Admission::Admitted);
    }
    let before = f.usage().await;
    assert_eq!(
        (
            before.concurrent,
            before.calls_last_minute,
            before.daily_calls
        ),
        (2, 2, 2)
    );
    let now = f.clock.now();

    // Asked without the number: it says one is needed and changes nothing.
    let asked = f.caps.withdraw(f.tenant, lost, CountedNumber::Unknown, now);
    assert_eq!(asked.await.unwrap(), Withdrawal::NeedsNumber);
    assert_eq!(f.usage().await, before);

    let known = CountedNumber::Known(Some(number));
    let done = f.caps.withdraw(f.tenant, lost, known, now);
    assert_eq!(done.await.unwrap(), Withdrawal::Withdrawn);
    let after = f.usage().await;
    assert_eq!(
        (after.concurrent, after.calls_last_minute, after.daily_calls),
        (1, 1, 1),
        "as if only `kept` had been reserved"
    );
    // The number's own count went back too: one more call fits its cap of
    // two, the next does not.
    let third = f
        .caps
        .reserve_from(f.tenant, CallId::new(), &l, from(number, 2));
    assert_eq!(third.await.unwrap(), Admission::Admitted);
    match f
        .caps
        .reserve_from(f.tenant, CallId::new(), &l, from(number, 2))
        .await
        .unwrap()
    {
        Admission::Refused(r) => {
            assert_eq!((r.dimension, r.current), (Dimension::NumberDailyCalls, 2))
        }
        Admission::Admitted => panic!("past the number's cap"),
    }

    // Once: again, after a release, or for a call never reserved, nothing.
    let counted = f.usage().await;
    for call in [lost, CallId::new()] {
        let again = f.caps.withdraw(f.tenant, call, known, now);
        assert_eq!(again.await.unwrap(), Withdrawal::NotHeld);
    }
    f.release(lost, 0).await;
    assert_eq!(f.usage().await, counted);
    // A call that ended (released) is a call: it is not withdrawn.
    f.release(kept, 0).await;
    let ended = f
        .caps
        .withdraw(f.tenant, kept, CountedNumber::Known(None), now);
    assert_eq!(ended.await.unwrap(), Withdrawal::NotHeld);
    assert_eq!(f.usage().await.daily_calls, counted.daily_calls);
    f.done().await;
}

#[tokio::test]
async fn caps_a_withdrawal_after_midnight_takes_back_the_day_the_call_was_counted_on() {
    let f = Fixture::new(at("2026-03-01T23:59:59.500Z"), DEFAULT_LEASE).await;
    let l = limits(10, 10, 10, 100);
    let call = f.admit(&l).await;
    assert_eq!(f.usage().await.daily_calls, 1);
    f.advance(1_000);
    f.admit(&l).await;
    let now = f.clock.now();
    assert_eq!(now.date_naive().to_string(), "2026-03-02");
    assert_eq!(f.usage().await.daily_calls, 1, "the new day's own");
    let w = f
        .caps
        .withdraw(f.tenant, call, CountedNumber::Known(None), now);
    assert_eq!(w.await.unwrap(), Withdrawal::Withdrawn);
    // The new day keeps its call; the old one has none left.
    assert_eq!(f.usage().await.daily_calls, 1);
    let old = day_count(&f, "2026-03-01").await;
    assert_eq!(old, Some(0));
    f.done().await;
}

/// The raw admissions counter of `day` (None when the key is gone).
async fn day_count(f: &Fixture, day: &str) -> Option<i64> {
    let key = f
        .keys()
        .await
        .into_iter()
        .find(|k| k.ends_with(&format!(":calls:{day}")))?;
    let v: Option<i64> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut f.redis.clone())
        .await
        .unwrap();
    v
}
