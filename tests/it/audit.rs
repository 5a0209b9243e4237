//! The audit API through HTTP: a scripted history replays in exactly its
//! order, filtered and paged, never showing another tenant's events.

use events::TenantId;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchboard::auth::Scope;
use uuid::Uuid;

use crate::app::TestApp;

/// (type, stream_id) of each item.
pub fn seq(items: &Value) -> Vec<(String, String)> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap().to_owned();
            (s("type"), s("stream_id"))
        })
        .collect()
}

/// (type, stream_id) of the events `q` selects for `token`.
async fn only(app: &TestApp, token: &str, q: &str) -> Vec<(String, String)> {
    let r = app.get(&format!("/api/v1/audit/events?{q}"), token).await;
    assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.body);
    seq(&r.body["items"])
}

/// Every page of `path` (which carries its own filters) with `limit`.
async fn all_pages(app: &TestApp, token: &str, path: &str, limit: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{path}{sep}limit={limit}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let r = app.get(&url, token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let page = r.body["items"].as_array().unwrap();
        assert!(page.len() <= limit);
        items.extend(page.iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

#[tokio::test]
async fn audit_replays_a_scripted_history_in_order() {
    let app = TestApp::spawn().await;
    let (a, b) = (TenantId::new(), TenantId::new());
    let (ta, tb) = (app.admin(a), app.admin(b));
    let p1 = app.twilio(&ta, "secret-a1").await;
    let r = app
        .patch(
            &format!("/api/v1/telephony/providers/{p1}"),
            &ta,
            json!({"label": "Renamed"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let pb = app.twilio(&tb, "secret-b1").await;
    let r = app
        .attach(&ta, "+12025550147", &p1, Some(Uuid::new_v4()))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let n1 = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .patch("/api/v1/call-limits", &ta, json!({"concurrent_max": 3}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .patch(
            &format!("/api/v1/telephony/numbers/{n1}"),
            &ta,
            json!({"inbound_enabled": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let limits = events::call_limits_stream_id(a).to_string();
    let expected: Vec<(String, String)> = [
        // The tenant's data key is created (and announced) just before the
        // first credentials are sealed under it.
        ("TenantKeyCreated", &a.to_string()),
        ("ProviderCreated", &p1),
        ("ProviderRelabeled", &p1),
        ("NumberAttached", &n1),
        ("CallLimitsUpdated", &limits),
        ("NumberDirectionsChanged", &n1),
    ]
    .iter()
    .map(|(t, s)| (t.to_string(), s.to_string()))
    .collect();
    let mut all = Value::Null;
    for _ in 0..400 {
        all = app.get("/api/v1/audit/events?limit=500", &ta).await.body["items"].clone();
        if all.as_array().is_some_and(|a| a.len() >= expected.len()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(seq(&all), expected);
    let first = &all[0];
    for k in [
        "event_id",
        "schema_version",
        "stream_type",
        "version",
        "tenant_id",
        "global_position",
        "recorded_at",
        "command_id",
        "correlation_id",
        "causation_id",
        "actor",
        "data",
        "prev_hash",
        "hash",
    ] {
        assert!(first.get(k).is_some(), "envelope has {k}");
    }
    assert_eq!(first["tenant_id"], a.to_string());
    assert!(
        !all.to_string().contains("secret-a1"),
        "no plaintext credential"
    );

    // Filters.
    assert_eq!(
        only(&app, &ta, &format!("stream_id={p1}")).await,
        expected[1..3].to_vec()
    );
    assert_eq!(
        only(&app, &ta, "type=NumberAttached").await,
        expected[3..4].to_vec()
    );
    let t = |i: usize| all[i]["recorded_at"].as_str().unwrap().to_owned();
    assert_eq!(
        only(&app, &ta, &format!("since={}&until={}", t(3), t(5))).await,
        expected[3..5].to_vec()
    );
    assert_eq!(
        only(&app, &ta, &format!("since={}", t(4))).await,
        expected[4..].to_vec()
    );
    assert_eq!(
        only(&app, &ta, &format!("type=NumberAttached&stream_id={p1}")).await,
        vec![]
    );

    // Cursor paging, two at a time, through `cursor` and through `after`.
    let paged = all_pages(&app, &ta, "/api/v1/audit/events", 2).await;
    assert_eq!(seq(&Value::Array(paged)), expected);
    let r = app.get("/api/v1/audit/events?limit=2", &ta).await;
    let c = r.body["next_cursor"].as_str().unwrap();
    let r = app
        .get(&format!("/api/v1/audit/events?limit=2&after={c}"), &ta)
        .await;
    assert_eq!(seq(&r.body["items"]), expected[2..4].to_vec());

    // The other tenant sees only its own history, and none of it leaks here.
    let theirs = seq(&app.get("/api/v1/audit/events", &tb).await.body["items"]);
    assert_eq!(
        theirs.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        ["TenantKeyCreated", "ProviderCreated"]
    );
    assert_eq!(theirs[1].1, pb);
    assert!(!seq(&all)
        .iter()
        .any(|(_, s)| *s == pb || *s == b.to_string()));
    assert_eq!(only(&app, &ta, &format!("stream_id={pb}")).await, vec![]);

    // Bad input names the field; the scope is required.
    for (q, field) in [
        ("since=yesterday", "since"),
        ("cursor=zz", "cursor"),
        ("stream_id=x", "stream_id"),
        ("limit=501", "limit"),
        ("colour=red", "colour"),
    ] {
        let r = app.get(&format!("/api/v1/audit/events?{q}"), &ta).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(r.body["errors"][0]["field"], field, "{q}");
    }
    let reader = app.token(a, &[Scope::TelephonyRead]);
    assert_eq!(
        app.get("/api/v1/audit/events", &reader).await.status,
        StatusCode::FORBIDDEN
    );
    app.stop().await;
}
