//! `GET /api/v1/audit/streams/{id}?at=`: a stream's state at a past moment
//! is what the API showed at that moment.

use events::TenantId;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::app::{Resp, TestApp};
use crate::audit::seq;

async fn state(app: &TestApp, token: &str, id: &str, at: &str) -> Resp {
    app.get(&format!("/api/v1/audit/streams/{id}?at={at}"), token)
        .await
}

fn z(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[tokio::test]
async fn audit_state_at_a_past_moment_is_what_was_seen_then() {
    let app = TestApp::spawn().await;
    let a = TenantId::new();
    let ta = app.admin(a);
    let id = app.twilio(&ta, "secret-token-1").await;
    let before = Utc::now() - chrono::Duration::seconds(60);
    let seen = app
        .get(&format!("/api/v1/telephony/providers/{id}"), &ta)
        .await
        .body;
    let seen_at = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let r = app
        .patch(
            &format!("/api/v1/telephony/providers/{id}"),
            &ta,
            json!({"label": "Second"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    for at in [z(seen_at), "1".to_owned()] {
        let r = state(&app, &ta, &id, &at).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let s = &r.body["state"];
        assert_eq!(s["label"], seen["label"], "at {at}");
        assert_eq!(s["provider"], seen["provider"]);
        assert_eq!(s["credentials"]["masked"], seen["credentials"]);
        assert_eq!(s["version"], seen["version"]);
        assert_eq!(s["created_at"], seen["created_at"]);
        assert_eq!(r.body["version"], 1);
        assert_eq!(r.body["stream_type"], "provider");
        assert_eq!(
            seq(&r.body["events"]),
            [("ProviderCreated".to_owned(), id.clone())]
        );
        assert!(!r.body.to_string().contains("secret-token-1"));
    }
    for at in ["2".to_owned(), z(Utc::now())] {
        let r = state(&app, &ta, &id, &at).await;
        assert_eq!(r.body["state"]["label"], "Second");
        assert_eq!(r.body["events"].as_array().unwrap().len(), 2);
    }
    let latest = app.get(&format!("/api/v1/audit/streams/{id}"), &ta).await;
    assert_eq!(latest.body["version"], 2);
    let r = state(&app, &ta, &id, &z(before)).await;
    assert_eq!(
        (r.body["version"].clone(), r.body["state"].clone()),
        (json!(0), Value::Null)
    );

    // `at` that is neither a time nor a version is a 400 naming it.
    for bad in ["yesterday", "0", "-3"] {
        let r = state(&app, &ta, &id, bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.body["errors"][0]["field"], "at");
    }
    // Another tenant's stream is answered like a missing one.
    let other = app.admin(TenantId::new());
    let theirs = app
        .get(&format!("/api/v1/audit/streams/{id}"), &other)
        .await;
    let missing = app
        .get(&format!("/api/v1/audit/streams/{}", Uuid::new_v4()), &other)
        .await;
    assert_eq!(
        (theirs.status, missing.status),
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
    );
    assert_eq!(theirs.body, missing.body);
    app.stop().await;
}
