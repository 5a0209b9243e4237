//! Status callbacks: signatures, repeats, reordering.

use reqwest::StatusCode;
use serde_json::json;
use switchboard::callproc::{sign, SIGNATURE_HEADER};

use super::{originate, sim, tenant_with_number, wait_status};
use crate::app::{TestApp, CALLBACK_SECRET};

async fn post_callback(
    app: &TestApp,
    body: &serde_json::Value,
    signature: Option<String>,
) -> StatusCode {
    let bytes = serde_json::to_vec(body).unwrap();
    let mut req = app
        .client
        .post(format!(
            "{}{}",
            app.base,
            switchboard::gateway::callbacks::PATH
        ))
        .header("content-type", "application/json")
        .body(bytes);
    if let Some(s) = signature {
        req = req.header(SIGNATURE_HEADER, s);
    }
    req.send().await.unwrap().status()
}

fn signed(body: &serde_json::Value, t: i64, secret: &str) -> String {
    sign(secret.as_bytes(), t, &serde_json::to_vec(body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_are_verified_and_applied_once_in_any_order() {
    let app = TestApp::spawn().await;
    // The simulator stays silent: this test plays the Call Processor.
    sim(&app, json!({"ring_delay_ms": 600000}));
    let from = "+12025550123";
    let t = tenant_with_number(&app, from).await;
    let r = originate(&app, &t, from).await;
    assert_eq!(r.status, StatusCode::OK);
    let (call_id, pcid) = (
        r.body["call_id"].as_str().unwrap(),
        r.body["provider_call_id"].as_str().unwrap(),
    );
    let now = chrono::Utc::now().timestamp();
    let body = |status: &str, d: Option<u64>| {
        // Both spellings carriers use: RFC 3339 for some, Unix seconds for
        // others (answered, say).
        let ts = if status == "answered" {
            json!(chrono::Utc::now().timestamp())
        } else {
            json!(chrono::Utc::now().to_rfc3339())
        };
        let mut b = json!({"call_id": call_id, "provider_call_id": pcid, "status": status,
                           "timestamp": ts});
        if let Some(d) = d {
            b["duration_s"] = json!(d);
        }
        b
    };
    let count = app.event_count().await;
    let ringing = body("ringing", None);
    assert_eq!(
        post_callback(&app, &ringing, None).await,
        StatusCode::UNAUTHORIZED,
        "unsigned"
    );
    let wrong = signed(&ringing, now, "not-the-secret");
    assert_eq!(
        post_callback(&app, &ringing, Some(wrong)).await,
        StatusCode::UNAUTHORIZED,
        "badly signed"
    );
    let stale = signed(&ringing, now - 301, CALLBACK_SECRET);
    assert_eq!(
        post_callback(&app, &ringing, Some(stale)).await,
        StatusCode::UNAUTHORIZED,
        "stale"
    );
    let tampered = signed(&body("answered", None), now, CALLBACK_SECRET);
    assert_eq!(
        post_callback(&app, &ringing, Some(tampered)).await,
        StatusCode::UNAUTHORIZED,
        "signed another body"
    );
    assert_eq!(
        app.event_count().await,
        count,
        "refused callbacks append nothing"
    );

    // Out of order and repeated: completed first, then answered, ringing,
    // completed again, failed.
    for (status, d) in [
        ("completed", Some(125)),
        ("answered", None),
        ("ringing", None),
        ("completed", Some(125)),
        ("failed", None),
    ] {
        let b = body(status, d);
        let sig = signed(&b, chrono::Utc::now().timestamp(), CALLBACK_SECRET);
        assert_eq!(
            post_callback(&app, &b, Some(sig)).await,
            StatusCode::OK,
            "{status}"
        );
    }
    let call = wait_status(&app, &t, call_id, "completed").await;
    assert_eq!(
        (call["duration_s"].as_i64(), call["billed_minutes"].as_i64()),
        (Some(125), Some(3))
    );
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE stream_id = $1::uuid AND event_type = 'CallEnded'",
    )
    .bind(call_id)
    .fetch_one(&app.env.pool)
    .await
    .unwrap();
    assert_eq!(ended, 1, "one CallEnded");
    // Malformed or unknown calls.
    let unknown = json!({"call_id": uuid::Uuid::now_v7(), "provider_call_id": "x", "status": "ringing", "timestamp": 1796277600});
    let sig = signed(&unknown, chrono::Utc::now().timestamp(), CALLBACK_SECRET);
    assert_eq!(
        post_callback(&app, &unknown, Some(sig)).await,
        StatusCode::NOT_FOUND
    );
    let bad = json!({"call_id": call_id, "provider_call_id": pcid, "status": "exploded", "timestamp": "2026-12-03T06:00:00Z"});
    let sig = signed(&bad, chrono::Utc::now().timestamp(), CALLBACK_SECRET);
    assert_eq!(
        post_callback(&app, &bad, Some(sig)).await,
        StatusCode::BAD_REQUEST
    );
    for ts in [json!("t"), json!("2026-12-03"), json!(-5), json!(1.5)] {
        let bad = json!({"call_id": call_id, "provider_call_id": pcid, "status": "ringing", "timestamp": ts});
        let sig = signed(&bad, chrono::Utc::now().timestamp(), CALLBACK_SECRET);
        assert_eq!(
            post_callback(&app, &bad, Some(sig)).await,
            StatusCode::BAD_REQUEST,
            "timestamp {ts}"
        );
    }
    app.stop().await;
}
