//! Outbound origination end to end, through HTTP and NATS, against the
//! simulator: the seed's flow, cost caps under races, no double dial.

mod callbacks;
mod caps;
mod crashes;
mod destinations;
mod forged;
mod handoff;

use events::TenantId;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchboard::callproc::sim::ConfigPatch;
use uuid::Uuid;

use crate::app::{Resp, TestApp};

/// A tenant with a Twilio provider and `from` attached, pinned to an agent.
pub async fn tenant_with_number(app: &TestApp, from: &str) -> String {
    let t = app.admin(TenantId::new());
    let pid = app.twilio(&t, "tok").await;
    let r = app.attach(&t, from, &pid, Some(Uuid::new_v4())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    t
}

pub async fn set_limits(app: &TestApp, t: &str, c: u32, cpm: u32, daily: u32, minutes: u32) {
    let body = json!({"concurrent_max": c, "calls_per_minute": cpm, "daily_calls_max": daily, "daily_minutes_max": minutes});
    let r = app
        .send(
            reqwest::Method::PUT,
            "/api/v1/call-limits",
            Some(t),
            Some(body),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

pub fn sim(app: &TestApp, patch: Value) {
    let patch: ConfigPatch = serde_json::from_value(patch).unwrap();
    app.sim
        .as_ref()
        .unwrap()
        .state()
        .update_config(patch)
        .unwrap();
}

pub async fn originate(app: &TestApp, t: &str, from: &str) -> Resp {
    app.post(
        "/api/v1/calls/originate",
        t,
        json!({"from_number": from, "to_number": "+14155550100"}),
    )
    .await
}

/// Originates from `from` on a task of its own (for races and for requests
/// that wait while the test does something else): (status, body).
pub fn originate_detached(
    app: &TestApp,
    t: &str,
    from: &str,
) -> tokio::task::JoinHandle<(StatusCode, Value)> {
    let (base, t) = (app.base.clone(), t.to_owned());
    let body = json!({"from_number": from, "to_number": "+14155550100"});
    tokio::spawn(async move {
        let r = reqwest::Client::new()
            .post(format!("{base}/api/v1/calls/originate"))
            .bearer_auth(t)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json::<Value>().await.unwrap_or(Value::Null))
    })
}

pub fn dials(app: &TestApp) -> Vec<String> {
    app.sim
        .as_ref()
        .unwrap()
        .dials()
        .into_iter()
        .map(|d| d.call_id.to_string())
        .collect()
}

/// Waits until GET /calls/{id} reports `status`.
pub async fn wait_status(app: &TestApp, t: &str, call_id: &str, status: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        last = app.get(&format!("/api/v1/calls/{call_id}"), t).await.body;
        if last["status"] == status {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("call {call_id} never reached {status}: {last}");
}

/// Per call: whether it was claimed (admitted), and how many dial outcomes
/// the store holds for it (Dispatched or Failed).
pub async fn outcomes(app: &TestApp) -> Vec<(Uuid, bool, i64)> {
    sqlx::query_as(
        "SELECT stream_id, bool_or(event_type = 'OriginateClaimed'), \
         count(*) FILTER (WHERE event_type IN ('OriginateDispatched', 'OriginateFailed')) \
         FROM events WHERE stream_type = 'call' GROUP BY stream_id",
    )
    .fetch_all(&app.env.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_flow_with_events_on_nats_in_order() {
    use futures::StreamExt;
    let app = TestApp::spawn().await;
    sim(
        &app,
        json!({"ring_delay_ms": 20, "answer_delay_ms": 20, "call_duration_s": 61, "call_hold_ms": 50}),
    );
    let from = "+12025550123";
    let t = tenant_with_number(&app, from).await;
    let tenant = app.env.pool.clone();
    drop(tenant);
    let mut sub = app
        .deps
        .nats
        .subscribe(format!("{}.events.*.call.>", app.env.ns))
        .await
        .unwrap();
    let r = originate(&app, &t, from).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "dispatched");
    let call_id = r.body["call_id"].as_str().unwrap().to_owned();
    assert!(r.body["provider_call_id"]
        .as_str()
        .unwrap()
        .starts_with("SIM"));
    assert!(Uuid::parse_str(r.body["session_id"].as_str().unwrap()).is_ok());
    // A read right after the answer sees the dispatch.
    let now = app.get(&format!("/api/v1/calls/{call_id}"), &t).await.body;
    assert_ne!(now["status"], "requested");
    let call = wait_status(&app, &t, &call_id, "completed").await;
    assert_eq!(
        (call["duration_s"].as_i64(), call["billed_minutes"].as_i64()),
        (Some(61), Some(2))
    );
    assert_eq!(call["hangup_cause"], "normal_clearing");
    let types: Vec<&str> = call["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    let want = [
        "OriginateRequested",
        "OriginateClaimed",
        "OriginateDispatched",
        "CallRinging",
        "CallAnswered",
        "CallEnded",
    ];
    assert_eq!(types, want);
    // The subscriber saw the same events, in order, on the call's subjects.
    let mut seen = Vec::new();
    while seen.len() < want.len() {
        let msg = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap()
            .unwrap();
        let env: events::Envelope = serde_json::from_slice(&msg.payload).unwrap();
        assert_eq!(msg.subject.as_str(), env.subject(app.env.ns.as_str()));
        if env.stream_id.to_string() == call_id {
            seen.push(env.event_type.clone());
        }
    }
    assert_eq!(seen, want);
    // Lists, filters, usage.
    let list = app.get("/api/v1/calls?status=completed", &t).await.body;
    assert_eq!(list["items"][0]["call_id"], call_id.as_str());
    assert_eq!(
        app.get("/api/v1/calls?status=ringing", &t).await.body["items"],
        json!([])
    );
    let usage = app.get("/api/v1/call-limits/usage", &t).await.body;
    assert_eq!(
        (
            usage["daily_calls"].as_u64(),
            usage["daily_minutes"].as_u64()
        ),
        (Some(1), Some(2))
    );
    // Another tenant's view of the call: not found.
    let other = app.admin(TenantId::new());
    assert_eq!(
        app.get(&format!("/api/v1/calls/{call_id}"), &other)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(dials(&app), [call_id]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_id_rules_and_bad_input() {
    let app = TestApp::spawn().await;
    let from = "+12025550123";
    let a = tenant_with_number(&app, from).await;
    let b = app.admin(TenantId::new());
    let count = app.event_count().await;
    // Held by another tenant vs held by nobody: the very same answer.
    let held = originate(&app, &b, from).await;
    let unknown = originate(&app, &b, "+12025550999").await;
    assert_eq!(held.status, StatusCode::FORBIDDEN);
    assert_eq!(
        held.body["type"],
        "https://switchboard.dev/problems/caller-id-not-allowed"
    );
    assert_eq!((held.status, &held.body), (unknown.status, &unknown.body));
    // Outbound disabled: the same.
    let nid = app.get("/api/v1/telephony/numbers", &a).await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.patch(
        &format!("/api/v1/telephony/numbers/{nid}"),
        &a,
        json!({"outbound_enabled": false}),
    )
    .await;
    let off = originate(&app, &a, from).await;
    assert_eq!((off.status, &off.body), (unknown.status, &unknown.body));
    app.patch(
        &format!("/api/v1/telephony/numbers/{nid}"),
        &a,
        json!({"outbound_enabled": true}),
    )
    .await;
    let count_after_patches = app.event_count().await;
    // Bad to_number, bad from_number, another agent than the pinned one.
    let r = app
        .post(
            "/api/v1/calls/originate",
            &a,
            json!({"from_number": from, "to_number": "0800"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["errors"][0]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("to_number"))
    );
    let r = app
        .post(
            "/api/v1/calls/originate",
            &a,
            json!({"from_number": "x", "to_number": "+14155550100"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .post(
            "/api/v1/calls/originate",
            &a,
            json!({"from_number": from, "to_number": "+14155550100", "agent_id": Uuid::new_v4()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = app
        .post(
            "/api/v1/calls/originate",
            &a,
            json!({"from_number": from, "to_number": "+14155550100", "metadata": 5}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .post(
            "/api/v1/calls/originate",
            &a,
            json!({"from_number": from, "to_number": "+14155550100", "metadata": {"k": ["x\u{0}"]}}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["errors"][0]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("metadata"))
    );
    let scopeless = app.token(TenantId::new(), &[switchboard::auth::Scope::TelephonyRead]);
    assert_eq!(
        originate(&app, &scopeless, from).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.event_count().await,
        count_after_patches,
        "no refused originate appended anything"
    );
    assert_eq!(count + 2, count_after_patches);
    assert!(dials(&app).is_empty());
    app.stop().await;
}
