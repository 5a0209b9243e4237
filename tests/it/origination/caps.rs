//! Cost caps through the whole path: races, boundaries, kill switches, a
//! moved clock across midnight, and Redis losing its counters.

use std::sync::Arc;

use chrono::{Duration as TimeDelta, TimeZone, Timelike, Utc};
use reqwest::StatusCode;
use serde_json::json;
use switchboard::clock::ManualClock;

use super::{dials, originate, set_limits, sim, tenant_with_number, wait_status};
use crate::app::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_max_holds_for_50_simultaneous_originates_on_4_workers() {
    let mut app = TestApp::spawn_opts(&["--originate-wait", "15s"], None, false).await;
    for _ in 0..4 {
        let w = app.worker(None);
        app.run_worker(w);
    }
    // Calls stay up until hung up.
    sim(
        &app,
        json!({"ring_delay_ms": 10, "answer_delay_ms": 10, "call_hold_ms": 600000}),
    );
    let from = "+12025550123";
    let t = tenant_with_number(&app, from).await;
    const K: usize = 5;
    set_limits(&app, &t, K as u32, 1000, 100_000, 100_000).await;
    let tasks: Vec<_> = (0..50)
        .map(|_| super::originate_detached(&app, &t, from))
        .collect();
    let mut ok = Vec::new();
    let mut refused = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::OK => ok.push(body["call_id"].as_str().unwrap().to_owned()),
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(body["dimension"], "concurrent");
                assert_eq!(body["limit"], K);
                assert_eq!(body["status"], "rejected");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((ok.len(), refused), (K, 50 - K));
    assert_eq!(dials(&app).len(), K);
    let usage = app.get("/api/v1/call-limits/usage", &t).await.body;
    assert_eq!(usage["concurrent"], K);
    // Once the calls end, the slots are free again.
    let sim_url = app.sim.as_ref().unwrap().base_url();
    for call in &ok {
        wait_status(&app, &t, call, "answered").await;
        let r = reqwest::Client::new()
            .post(format!("{sim_url}/calls/{call}/hangup"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        wait_status(&app, &t, call, "completed").await;
    }
    let freed = crate::support::eventually(std::time::Duration::from_secs(10), || async {
        app.get("/api/v1/call-limits/usage", &t).await.body["concurrent"] == 0
    })
    .await;
    assert!(freed, "slots released after the calls ended");
    let r = originate(&app, &t, from).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_limit_at_zero_refuses_at_once_and_dials_nothing() {
    let app = TestApp::spawn().await;
    let from = "+12025550123";
    let t = tenant_with_number(&app, from).await;
    for (dimension, limits) in [
        ("concurrent", [0, 100, 100, 100]),
        ("calls_per_minute", [100, 0, 100, 100]),
        ("daily_calls", [100, 100, 0, 100]),
        ("daily_minutes", [100, 100, 100, 0]),
    ] {
        set_limits(&app, &t, limits[0], limits[1], limits[2], limits[3]).await;
        let r = originate(&app, &t, from).await;
        assert_eq!(
            r.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{dimension}: {}",
            r.body
        );
        assert_eq!(
            (r.body["dimension"].as_str(), r.body["limit"].as_u64()),
            (Some(dimension), Some(0))
        );
        assert!(r.headers.contains_key("retry-after"));
        assert!(r.headers["ratelimit-policy"]
            .to_str()
            .unwrap()
            .contains(&format!("\"{dimension}\";q=0")));
        assert!(r.headers["ratelimit"].to_str().unwrap().contains(";r=0;t="));
        let call = app
            .get(
                &format!("/api/v1/calls/{}", r.body["call_id"].as_str().unwrap()),
                &t,
            )
            .await
            .body;
        assert_eq!(
            (
                call["status"].as_str(),
                call["rejection"]["dimension"].as_str()
            ),
            (Some("rejected"), Some(dimension))
        );
    }
    assert!(dials(&app).is_empty(), "nothing dialed");
    let usage = app.get("/api/v1/call-limits/usage", &t).await.body;
    assert_eq!(
        (usage["concurrent"].as_u64(), usage["daily_calls"].as_u64()),
        (Some(0), Some(0)),
        "no counter moved"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_minute_and_daily_caps_refuse_at_their_boundary_and_reset_at_midnight() {
    // The caps' clock starts at the real time (the store records real time)
    // and is then moved: across a minute, and past 00:00 UTC.
    let start = Utc::now();
    let clock = Arc::new(ManualClock::new(start));
    let app = TestApp::spawn_opts(&[], Some(clock.clone()), true).await;
    sim(
        &app,
        json!({"ring_delay_ms": 5, "answer_delay_ms": 5, "call_duration_s": 61, "call_hold_ms": 10}),
    );
    let from = "+12025550123";
    let t = tenant_with_number(&app, from).await;

    // calls_per_minute = 3: the 4th in the window is refused.
    set_limits(&app, &t, 100, 3, 100, 1000).await;
    for _ in 0..3 {
        assert_eq!(originate(&app, &t, from).await.status, StatusCode::OK);
    }
    let r = originate(&app, &t, from).await;
    assert_eq!(
        (r.status, r.body["dimension"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("calls_per_minute"))
    );
    assert_eq!(r.body["current"], 3);
    let retry = r.body["retry_after_s"].as_u64().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        r.headers["retry-after"].to_str().unwrap(),
        retry.to_string()
    );
    clock.advance(TimeDelta::seconds(61));
    assert_eq!(
        originate(&app, &t, from).await.status,
        StatusCode::OK,
        "the window slid"
    );

    // daily_calls_max = 5 (4 admitted so far today): one more, then refused
    // until midnight.
    set_limits(&app, &t, 100, 100, 5, 1000).await;
    assert_eq!(originate(&app, &t, from).await.status, StatusCode::OK);
    let r = originate(&app, &t, from).await;
    assert_eq!(
        (r.status, r.body["dimension"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("daily_calls"))
    );
    let now = switchboard::clock::Clock::now(&*clock);
    let to_midnight = 86_400 - u64::from(now.num_seconds_from_midnight());
    assert!(
        r.body["retry_after_s"]
            .as_u64()
            .unwrap()
            .abs_diff(to_midnight)
            <= 1
    );

    // daily_minutes: 5 calls of 61 s ended today = 10 billed minutes.
    let minutes_done = crate::support::eventually(std::time::Duration::from_secs(15), || async {
        app.get("/api/v1/call-limits/usage", &t).await.body["daily_minutes"] == 10
    })
    .await;
    assert!(minutes_done, "billed minutes counted");
    set_limits(&app, &t, 100, 100, 100, 11).await;
    assert_eq!(
        originate(&app, &t, from).await.status,
        StatusCode::OK,
        "10 < 11 still admits"
    );
    set_limits(&app, &t, 100, 100, 100, 10).await;
    let r = originate(&app, &t, from).await;
    assert_eq!(
        (r.status, r.body["dimension"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("daily_minutes"))
    );

    // Past 00:00 UTC both daily counters start again.
    let tomorrow = Utc.from_utc_datetime(
        &(start.date_naive() + TimeDelta::days(1))
            .and_hms_opt(0, 0, 1)
            .unwrap(),
    );
    clock.set(tomorrow);
    set_limits(&app, &t, 100, 100, 1, 10).await;
    let r = originate(&app, &t, from).await;
    assert_eq!(r.status, StatusCode::OK, "a new day: {}", r.body);
    let r = originate(&app, &t, from).await;
    assert_eq!(
        (r.status, r.body["dimension"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("daily_calls"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_losing_its_counters_midrun_rebuilds_them_and_the_caps_hold() {
    let app = TestApp::spawn().await;
    sim(
        &app,
        json!({"ring_delay_ms": 5, "answer_delay_ms": 5, "call_hold_ms": 600000}),
    );
    let from = "+12025550123";
    let t = tenant_with_number(&app, from).await;
    set_limits(&app, &t, 3, 1000, 1000, 1000).await;
    for _ in 0..3 {
        assert_eq!(originate(&app, &t, from).await.status, StatusCode::OK);
    }
    // FLUSHALL would also wipe the keys of tests running beside this one on
    // the same Redis; deleting every key of this test's namespace is the
    // same loss for this install.
    let mut redis = app.deps.redis.clone();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", app.env.ns))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut redis)
        .await
        .unwrap();
    for _ in 0..4 {
        let r = originate(&app, &t, from).await;
        assert_eq!(
            (r.status, r.body["dimension"].as_str()),
            (StatusCode::TOO_MANY_REQUESTS, Some("concurrent"))
        );
    }
    let usage = app.get("/api/v1/call-limits/usage", &t).await.body;
    assert_eq!(
        (usage["concurrent"].as_u64(), usage["daily_calls"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(dials(&app).len(), 3);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_flushall_midrun_rebuilds_the_counters_and_the_caps_hold() {
    // A Redis of this test's own, so FLUSHALL wipes nobody else's keys.
    let redis = crate::support::RedisProcess::start();
    let mut env = crate::support::TestEnv::new().await;
    env.redis_url = redis.url();
    let app = TestApp::spawn_on(env, &[], None, true).await;
    sim(
        &app,
        json!({"ring_delay_ms": 5, "answer_delay_ms": 5, "call_hold_ms": 600000}),
    );
    let from = "+12025550123";
    let t = tenant_with_number(&app, from).await;
    set_limits(&app, &t, 2, 1000, 1000, 1000).await;
    for _ in 0..2 {
        assert_eq!(originate(&app, &t, from).await.status, StatusCode::OK);
    }
    let mut conn = app.deps.redis.clone();
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|_| super::originate_detached(&app, &t, from))
        .collect();
    for task in tasks {
        assert_eq!(
            task.await.unwrap().0,
            StatusCode::TOO_MANY_REQUESTS,
            "the two live calls still count"
        );
    }
    assert_eq!(dials(&app).len(), 2);
    let usage = app.get("/api/v1/call-limits/usage", &t).await.body;
    assert_eq!(usage["concurrent"], 2);
    app.stop().await;
    drop(redis);
}

/// Redis out of reach is a dependency's trouble: the usage endpoint answers
/// a 503 problem with Retry-After, never an untyped 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_out_of_reach_is_a_503_problem() {
    let redis = crate::support::RedisProcess::start();
    let mut env = crate::support::TestEnv::new().await;
    env.redis_url = redis.url();
    let app = TestApp::spawn_on(env, &[], None, true).await;
    let t = app.admin(events::TenantId::new());
    assert_eq!(
        app.get("/api/v1/call-limits/usage", &t).await.status,
        StatusCode::OK
    );
    drop(redis);
    let r = app.get("/api/v1/call-limits/usage", &t).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(r.body["status"], 503);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_numbers_own_daily_cap_refuses_past_it_and_bad_values_change_nothing() {
    let app = TestApp::spawn().await;
    let (from, spare) = ("+12025550123", "+12025550124");
    let t = tenant_with_number(&app, from).await;
    let pid = app.get("/api/v1/telephony/providers", &t).await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .attach(&t, spare, &pid, Some(uuid::Uuid::new_v4()))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let numbers = app.get("/api/v1/telephony/numbers", &t).await.body;
    let id_of = |e164: &str| {
        numbers["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["e164"] == e164)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let path = format!("/api/v1/telephony/numbers/{}", id_of(from));
    // Bad values: a 400 naming the field, and the number is as it was.
    for bad in [json!(-1), json!("2"), json!(1.5), json!(2_000_000_000u64)] {
        let r = app.patch(&path, &t, json!({"daily_calls_max": bad})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        assert!(r.body.to_string().contains("daily_calls_max"), "{}", r.body);
    }
    let before = app.get(&path, &t).await.body;
    assert_eq!(
        (before["version"].as_i64(), &before["daily_calls_max"]),
        (Some(1), &json!(null))
    );
    let r = app.patch(&path, &t, json!({"daily_calls_max": 2})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["daily_calls_max"], 2);
    // Setting it again to the same value appends nothing.
    let same = app.patch(&path, &t, json!({"daily_calls_max": 2})).await;
    assert_eq!(same.body["version"], r.body["version"]);
    for _ in 0..2 {
        let ok = originate(&app, &t, from).await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    }
    let refused = originate(&app, &t, from).await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.body
    );
    assert_eq!(
        (
            refused.body["dimension"].as_str(),
            refused.body["limit"].as_u64(),
            refused.body["current"].as_u64()
        ),
        (Some("number_daily_calls"), Some(2), Some(2))
    );
    assert!(refused.headers.contains_key("retry-after"));
    // The tenant's other number still dials; clearing the cap frees this one.
    assert_eq!(originate(&app, &t, spare).await.status, StatusCode::OK);
    let cleared = app.patch(&path, &t, json!({"daily_calls_max": null})).await;
    assert_eq!(cleared.body["daily_calls_max"], json!(null));
    assert_eq!(originate(&app, &t, from).await.status, StatusCode::OK);
    assert_eq!(dials(&app).len(), 4, "the refused call was never dialed");
    app.stop().await;
}

/// A requested call (no worker runs), then another handler's rejection
/// appended past this process's cache: its store still folds the call as
/// requested. Returns the request's envelope.
async fn requested_then_rejected_elsewhere(app: &TestApp) -> events::Envelope {
    use events::{Dimension, Event, OriginateRejected, StreamType};
    use switchboard::commands::call::{CallState, Phase};
    use switchboard::store::{self, ExpectedVersion, StreamAppend};

    let from = "+12025550123";
    let t = tenant_with_number(app, from).await;
    let r = originate(app, &t, from).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "no worker runs: {}", r.body);
    let call_id: uuid::Uuid = r.body["call_id"].as_str().unwrap().parse().unwrap();
    let requested = store::read_stream(&app.env.pool, call_id, None)
        .await
        .unwrap()
        .remove(0)
        .envelope;
    let rejected = Event::OriginateRejected(OriginateRejected {
        dimension: Dimension::Concurrent,
        limit: 1,
        current: 1,
        retry_after_s: 1,
        blocked: None,
    });
    let sa = StreamAppend {
        stream_type: StreamType::Call,
        stream_id: requested.stream_id,
        expected: ExpectedVersion::from_version(1),
        events: vec![rejected],
    };
    let meta = crate::support::meta(requested.tenant_id);
    store::append(&app.env.pool, meta, &[sa]).await.unwrap();
    let cached = app.deps.store.load(requested.stream_id, CallState::apply);
    assert_eq!(cached.await.unwrap().state.phase, Phase::Requested);
    requested
}

/// Limits no test call here comes near.
fn roomy() -> switchboard::domain::limits::CallLimits {
    switchboard::domain::limits::CallLimits {
        concurrent_max: 10,
        calls_per_minute: 10,
        daily_calls_max: 10,
        daily_minutes_max: 100,
    }
}

fn counters(u: &switchboard::caps::Usage) -> (u64, u64, u64) {
    (u.concurrent, u.calls_last_minute, u.daily_calls)
}

/// A handler reserves a call (its process has it cached as requested), then
/// finds another handler's rejection in the store when it claims. The call
/// never was one: its reservation is taken back from every counter, so
/// Redis holds what a rebuild from the store would (claims only), and the
/// tenant is not refused below its caps for calls it never placed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reservation_that_lost_to_a_rejection_counts_against_nothing() {
    let app = TestApp::spawn_opts(&["--originate-wait", "1s"], None, false).await;
    let requested = requested_then_rejected_elsewhere(&app).await;
    let worker = app.worker(None);
    let handled = worker.handle(&requested).await.unwrap();
    assert_eq!(handled, switchboard::worker::Handled::AlreadyDone);
    let usage = worker.caps.usage(requested.tenant_id).await.unwrap();
    assert_eq!(
        counters(&usage),
        (0, 0, 0),
        "the lost reservation counts against nothing"
    );
    assert!(number_count_is_zero(&worker, &requested).await);
    assert!(dials(&app).is_empty());
    app.stop().await;
}

/// Whether the call's number has no admission counted today: a reserve
/// under a number cap of one is admitted.
async fn number_count_is_zero(
    worker: &switchboard::worker::Worker,
    requested: &events::Envelope,
) -> bool {
    use events::{CallId, Event};
    use switchboard::caps::{Admission, NumberCap};
    let Ok(Event::OriginateRequested(req)) = Event::decode(
        &requested.event_type,
        requested.schema_version,
        &requested.data,
    ) else {
        panic!("not a request")
    };
    let limits = roomy();
    let cap = Some(NumberCap {
        number_id: req.number_id,
        daily_calls_max: Some(1),
    });
    let probe = worker
        .caps
        .reserve_from(requested.tenant_id, CallId::new(), &limits, cap);
    probe.await.unwrap() == Admission::Admitted
}

/// The same reservation, left behind by a handler that crashed before it
/// could take it back: the `caps-release` step for the published rejection
/// takes it back (reading the call's number from the store only then).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reservation_a_crashed_handler_left_is_taken_back_by_the_releaser() {
    use events::{CallId, Event};
    use switchboard::caps::NumberCap;

    let app = TestApp::spawn_opts(&["--originate-wait", "1s"], None, false).await;
    let requested = requested_then_rejected_elsewhere(&app).await;
    let Event::OriginateRequested(req) = Event::decode(
        &requested.event_type,
        requested.schema_version,
        &requested.data,
    )
    .unwrap() else {
        panic!("not a request")
    };
    let tenant = requested.tenant_id;
    let worker = app.worker(None);
    let limits = roomy();
    let number = Some(NumberCap {
        number_id: req.number_id,
        daily_calls_max: None,
    });
    let call = CallId::from(requested.stream_id);
    let reserved = worker.caps.reserve_from(tenant, call, &limits, number);
    assert_eq!(
        reserved.await.unwrap(),
        switchboard::caps::Admission::Admitted
    );
    assert_eq!(
        counters(&worker.caps.usage(tenant).await.unwrap()),
        (1, 1, 1)
    );

    let rejection = switchboard::store::read_stream(&app.env.pool, call, None)
        .await
        .unwrap()
        .remove(1)
        .envelope;
    assert_eq!(rejection.event_type, "OriginateRejected");
    let payload = serde_json::to_vec(&rejection).unwrap();
    worker.release_for(&payload).await.unwrap();
    assert_eq!(
        counters(&worker.caps.usage(tenant).await.unwrap()),
        (0, 0, 0)
    );
    assert!(number_count_is_zero(&worker, &requested).await);
    // A redelivery changes nothing (the probe's own call is counted now).
    let probed = counters(&worker.caps.usage(tenant).await.unwrap());
    worker.release_for(&payload).await.unwrap();
    assert_eq!(counters(&worker.caps.usage(tenant).await.unwrap()), probed);
    assert!(dials(&app).is_empty());
    app.stop().await;
}
