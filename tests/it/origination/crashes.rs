//! No double dial: workers killed mid-call, a Call Processor that times out,
//! redeliveries and racing workers.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use switchboard::worker::{CrashPoint, Handled};

use super::{dials, originate, outcomes, sim, tenant_with_number, wait_status};
use crate::app::TestApp;
use crate::support::eventually;

/// Each call_id at most once in the dial log, and every claimed call with
/// exactly one outcome (dispatched or failed, never both).
async fn assert_no_double_dial(app: &TestApp, calls: usize) {
    let d = dials(app);
    let unique: std::collections::HashSet<&String> = d.iter().collect();
    assert_eq!(unique.len(), d.len(), "a call was dialed twice: {d:?}");
    assert_eq!(d.len(), calls);
    for (call, claimed, n) in outcomes(app).await {
        // A claimed call ends dispatched or failed, never both; a refused
        // one has no dial outcome at all.
        assert_eq!(
            n,
            i64::from(claimed),
            "call {call} (claimed: {claimed}) has {n} outcomes"
        );
    }
}

async fn crash_then_recover(point: CrashPoint) {
    let mut app = TestApp::spawn_opts(
        &["--worker-ack-wait", "1s", "--originate-wait", "15s"],
        None,
        false,
    )
    .await;
    sim(&app, json!({"ring_delay_ms": 600000}));
    let from = "+12025550123";
    let t = tenant_with_number(&app, from).await;
    // A worker that dies at `point` on its first call.
    let doomed = app.run_worker_to_crash(app.worker(Some(point)));
    let pending = super::originate_detached(&app, &t, from);
    // Once it has died, a healthy worker comes up; JetStream redelivers.
    tokio::time::timeout(Duration::from_secs(30), doomed)
        .await
        .expect("the worker reaches its crash point")
        .unwrap();
    let healthy = app.worker(None);
    app.run_worker(healthy);
    let (status, body) = pending.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{point:?}: {body}");
    let call_id = body["call_id"].as_str().unwrap();
    wait_status(&app, &t, call_id, "dispatched").await;
    assert_no_double_dial(&app, 1).await;
    // More calls through the healthy worker: still one dial each.
    for _ in 0..3 {
        assert_eq!(originate(&app, &t, from).await.status, StatusCode::OK);
    }
    assert_no_double_dial(&app, 4).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_between_claim_and_dispatch_does_not_cause_a_second_dial() {
    crash_then_recover(CrashPoint::AfterClaim).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_between_dial_and_record_does_not_cause_a_second_dial() {
    crash_then_recover(CrashPoint::AfterDial).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_between_dispatch_and_ack_does_not_cause_a_second_dial() {
    crash_then_recover(CrashPoint::BeforeAck).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_processor_timing_out_is_retried_with_the_same_key() {
    let app =
        TestApp::spawn_with(&["--call-processor-timeout", "150ms", "--dial-give-up", "1s"]).await;
    sim(
        &app,
        json!({"ring_delay_ms": 600000, "timeout_rate": 1.0, "timeout_delay_ms": 1000}),
    );
    let from = "+12025550123";
    let t = tenant_with_number(&app, from).await;
    for _ in 0..3 {
        let r = originate(&app, &t, from).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    assert_no_double_dial(&app, 3).await;
    assert!(
        app.sim.as_ref().unwrap().requests() >= 6,
        "the client retried"
    );
    // A Call Processor that keeps failing: the call fails, nothing dialed.
    sim(&app, json!({"timeout_rate": 0.0, "fail_rate": 1.0}));
    let r = originate(&app, &t, from).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
    assert_eq!(
        (r.body["status"].as_str(), r.body["retryable"].as_bool()),
        (Some("failed"), Some(true))
    );
    assert_no_double_dial(&app, 3).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redelivered_and_raced_messages_dial_once() {
    let app = TestApp::spawn_opts(&["--originate-wait", "1s"], None, false).await;
    sim(&app, json!({"ring_delay_ms": 600000}));
    let from = "+12025550123";
    let t = tenant_with_number(&app, from).await;
    // No worker runs: the call waits as requested (202).
    let r = originate(&app, &t, from).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert!(r.headers["location"]
        .to_str()
        .unwrap()
        .ends_with(r.body["call_id"].as_str().unwrap()));
    let call_id: uuid::Uuid = r.body["call_id"].as_str().unwrap().parse().unwrap();
    let requested = switchboard::store::read_stream(&app.env.pool, call_id, None)
        .await
        .unwrap()
        .remove(0)
        .envelope;
    // Eight workers handle the same message at once, then again. Those that
    // find it claimed by another a moment ago leave it to that one: the
    // Call Processor is asked once.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (w, env) = (app.worker(None), requested.clone());
        tasks.push(tokio::spawn(async move { w.handle(&env).await.unwrap() }));
    }
    let mut dispatched = 0;
    for task in tasks {
        match task.await.unwrap() {
            Handled::Dispatched => dispatched += 1,
            Handled::AlreadyDone | Handled::HeldElsewhere(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(dispatched, 1);
    assert_eq!(
        app.sim.as_ref().unwrap().requests(),
        1,
        "one request, one dial"
    );
    assert_eq!(
        app.worker(None).handle(&requested).await.unwrap(),
        Handled::AlreadyDone
    );
    assert_no_double_dial(&app, 1).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn caps_hold_and_nothing_is_dialed_twice_while_workers_die_under_load() {
    let mut app = TestApp::spawn_opts(
        &["--worker-ack-wait", "1s", "--originate-wait", "20s"],
        None,
        false,
    )
    .await;
    sim(&app, json!({"ring_delay_ms": 600000}));
    let from = "+12025550123";
    let t = tenant_with_number(&app, from).await;
    const K: usize = 6;
    super::set_limits(&app, &t, K as u32, 1000, 100_000, 100_000).await;
    // Three workers that each die on their first call, at a different
    // point, beside two healthy ones.
    for point in [
        CrashPoint::AfterClaim,
        CrashPoint::AfterDial,
        CrashPoint::BeforeAck,
    ] {
        let w = app.worker(Some(point));
        app.run_worker(w);
    }
    for _ in 0..2 {
        let w = app.worker(None);
        app.run_worker(w);
    }
    let tasks: Vec<_> = (0..40)
        .map(|_| super::originate_detached(&app, &t, from))
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap().0 {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    // The calls stay up: at most K were ever admitted, each dialed once.
    assert!(ok <= K, "{ok} calls admitted with concurrent_max {K}");
    let d = dials(&app);
    assert!(d.len() <= K, "{} dials with concurrent_max {K}", d.len());
    assert!(ok >= 1);
    assert_eq!(
        d.len(),
        ok,
        "every dispatched call was dialed once and answered 200"
    );
    assert_no_double_dial(&app, d.len()).await;
    let usage = app.get("/api/v1/call-limits/usage", &t).await.body;
    assert!(usage["concurrent"].as_u64().unwrap() <= K as u64);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_dial_is_retried_with_the_same_key_until_the_call_processor_answers() {
    let app = TestApp::spawn_with(&[
        "--call-processor-timeout",
        "150ms",
        "--dial-give-up",
        "60s",
        "--originate-wait",
        "1s",
    ])
    .await;
    sim(&app, json!({"ring_delay_ms": 600000, "fail_rate": 1.0}));
    let from = "+12025550123";
    let t = tenant_with_number(&app, from).await;
    // The Call Processor is down: no outcome within the wait, so 202, and
    // the call is not recorded as failed.
    let r = originate(&app, &t, from).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let call_id = r.body["call_id"].as_str().unwrap().to_owned();
    // Past the first delivery's attempts: the message came back and was
    // tried again.
    let sim_ = app.sim.as_ref().unwrap();
    let attempts = u64::from(app.settings.call_processor.attempts);
    assert!(
        eventually(Duration::from_secs(30), || async {
            sim_.requests() > attempts
        })
        .await,
        "redelivered and tried again"
    );
    let now = app.get(&format!("/api/v1/calls/{call_id}"), &t).await.body;
    assert_eq!(
        now["status"], "requested",
        "still being retried, not failed"
    );
    assert!(dials(&app).is_empty());
    // It comes back: the next delivery dials, once.
    sim(&app, json!({"fail_rate": 0.0}));
    wait_status(&app, &t, &call_id, "dispatched").await;
    assert_no_double_dial(&app, 1).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_the_client_gave_up_replays_pending_instead_of_a_second_call() {
    // No worker: the originate waits for an outcome that does not come.
    let app = TestApp::spawn_opts(&["--originate-wait", "30s"], None, false).await;
    let from = "+12025550123";
    let t = tenant_with_number(&app, from).await;
    let body = json!({"from_number": from, "to_number": "+14155550100"});
    let send = |timeout: Duration| {
        reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap()
            .post(format!("{}/api/v1/calls/originate", app.base))
            .bearer_auth(&t)
            .header("Idempotency-Key", "call-once")
            .json(&body)
            .send()
    };
    // The client gives up while the server still waits (or the server dies:
    // either way the final answer is never stored).
    assert!(send(Duration::from_millis(700)).await.is_err());
    let r = send(Duration::from_secs(5)).await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    let replay: serde_json::Value = r.json().await.unwrap();
    assert_eq!(replay["status"], "pending");
    let calls: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT stream_id FROM events WHERE event_type = 'OriginateRequested'")
            .fetch_all(&app.env.pool)
            .await
            .unwrap();
    assert_eq!(calls.len(), 1, "one call, whatever the retries");
    assert_eq!(replay["call_id"], calls[0].to_string());
    app.stop().await;
}
