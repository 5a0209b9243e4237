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

    // Asked without the number: it says one is needed and changes nothing.
    let asked = f.caps.withdraw(f.tenant, lost, CountedNumber::Unknown);
    assert_eq!(asked.await.unwrap(), Withdrawal::NeedsNumber);
    assert_eq!(f.usage().await, before);

    let known = CountedNumber::Known(Some(number));
    let done = f.caps.withdraw(f.tenant, lost, known);
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
        let again = f.caps.withdraw(f.tenant, call, known);
        assert_eq!(again.await.unwrap(), Withdrawal::NotHeld);
    }
    f.release(lost, 0).await;
    assert_eq!(f.usage().await, counted);
    // A call that ended (released) is a call: it is not withdrawn.
    f.release(kept, 0).await;
    let ended = f.caps.withdraw(f.tenant, kept, CountedNumber::Known(None));
    assert_eq!(ended.await.unwrap(), Withdrawal::NotHeld);
    assert_eq!(f.usage().await.daily_calls, counted.daily_calls);
    f.done().await;
}

#[tokio::test]
async fn caps_a_withdrawal_after_midnight_takes_back_the_day_the_call_was_counted_on() {
    let f = Fixture::new(at("2026-03-01T23:59:59.500Z"), DEFAULT_LEASE).await;
    let l = limits(10, 10, 10, 100);
    let number = NumberId::new();
    let call = CallId::new();
    let r = f
        .caps
        .reserve_from(f.tenant, call, &l, from(number, 5))
        .await;
    assert_eq!(r.unwrap(), Admission::Admitted);
    // Two minutes on (out of the one-minute window), a call of the new day.
    f.advance(120_000);
    let today = f
        .caps
        .reserve_from(f.tenant, CallId::new(), &l, from(number, 5));
    assert_eq!(today.await.unwrap(), Admission::Admitted);
    assert_eq!(f.clock.now().date_naive().to_string(), "2026-03-02");
    let w = f
        .caps
        .withdraw(f.tenant, call, CountedNumber::Known(Some(number)));
    assert_eq!(w.await.unwrap(), Withdrawal::Withdrawn);
    // The new day keeps its call; the old one, and its number, have none.
    assert_eq!(f.usage().await.daily_calls, 1);
    assert_eq!(raw(&f, ":calls:2026-03-01", None).await, Some(0));
    assert_eq!(raw(&f, ":calls:2026-03-02", None).await, Some(1));
    let n = number.to_string();
    assert_eq!(raw(&f, ":numcalls:2026-03-01", Some(&n)).await, Some(0));
    assert_eq!(raw(&f, ":numcalls:2026-03-02", Some(&n)).await, Some(1));
    f.done().await;
}

#[tokio::test]
async fn caps_a_withdrawal_by_a_host_whose_clock_is_behind_midnight_takes_back_the_next_day() {
    // Reserved on a host already past midnight, withdrawn on one 2 s behind.
    let f = Fixture::new(at("2026-03-02T00:00:01Z"), DEFAULT_LEASE).await;
    let l = limits(10, 10, 10, 100);
    let call = f.admit(&l).await;
    f.advance(-2_000);
    assert_eq!(f.clock.now().date_naive().to_string(), "2026-03-01");
    let w = f.caps.withdraw(f.tenant, call, CountedNumber::Known(None));
    assert_eq!(w.await.unwrap(), Withdrawal::Withdrawn);
    assert_eq!(raw(&f, ":calls:2026-03-02", None).await, Some(0));
    f.done().await;
}

#[tokio::test]
async fn caps_a_rejected_call_that_held_nothing_counts_nothing_when_reserved_after() {
    let f = Fixture::new(at("2026-03-01T12:00:00Z"), DEFAULT_LEASE).await;
    let l = limits(10, 10, 10, 100);
    let call = CallId::new();
    // The rejection is withdrawn before a slower handler reserves the call.
    let w = f.caps.withdraw(f.tenant, call, CountedNumber::Unknown);
    assert_eq!(w.await.unwrap(), Withdrawal::NotHeld);
    let before = f.usage().await;
    assert_eq!(f.reserve(call, &l).await, Admission::Admitted);
    assert_eq!(f.usage().await, before, "the late reserve counted nothing");
    // Remembered for ten minutes, then pruned by an admission.
    for (advance_ms, remembered) in [(9 * 60_000, Some("done")), (2 * 60_000, None)] {
        f.advance(advance_ms);
        f.admit(&l).await;
        let held: Option<String> = redis::cmd("HGET")
            .arg(key(&f, ":calls").await.unwrap())
            .arg(call.to_string())
            .query_async(&mut f.redis.clone())
            .await
            .unwrap();
        assert_eq!(held.as_deref(), remembered);
    }
    f.done().await;
}

/// This namespace's key ending in `suffix`.
async fn key(f: &Fixture, suffix: &str) -> Option<String> {
    f.keys().await.into_iter().find(|k| k.ends_with(suffix))
}

/// A counter (`field` None) or a hash field, as a number.
async fn raw(f: &Fixture, suffix: &str, field: Option<&str>) -> Option<i64> {
    let key = key(f, suffix).await?;
    let mut conn = f.redis.clone();
    let v: Option<i64> = match field {
        None => redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap(),
        Some(field) => redis::cmd("HGET")
            .arg(&key)
            .arg(field)
            .query_async(&mut conn)
            .await
            .unwrap(),
    };
    v
}
