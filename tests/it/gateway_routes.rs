//! The happy path of every route, and the seed documentation's cases.

use events::TenantId;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::app::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_numbers_and_limits_happy_paths() {
    let app = TestApp::spawn().await;
    let t = app.admin(TenantId::new());

    // Providers: create, get, list, patch (relabel + rotate), delete.
    let pid = app.twilio(&t, "tok-1").await;
    let r = app
        .get(&format!("/api/v1/telephony/providers/{pid}"), &t)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["etag"], "\"1\"");
    assert_eq!(
        r.headers["x-request-id"].len(),
        36,
        "every response carries a request id"
    );
    assert_eq!(r.body["credentials"]["auth_token"], "********");
    assert_eq!(r.body["credentials"]["account_sid"], "AC…0f0f");
    let r = app
        .post(
            "/api/v1/telephony/providers",
            &t,
            json!({"provider": "plivo", "label": "Plivo", "credentials": {"auth_id": "MAXXXXXXXXXXXXXXXXXX", "auth_token": "p"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let plivo = r.body["id"].as_str().unwrap().to_owned();
    let r = app.get("/api/v1/telephony/providers?limit=1", &t).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let cursor = r.body["next_cursor"].as_str().unwrap().to_owned();
    let r = app
        .get(
            &format!("/api/v1/telephony/providers?limit=1&cursor={cursor}"),
            &t,
        )
        .await;
    assert_eq!(r.body["items"][0]["id"], plivo.as_str());
    assert!(r.body["next_cursor"].is_null());
    let r = app
        .patch(
            &format!("/api/v1/telephony/providers/{plivo}"),
            &t,
            json!({"label": "Plivo backup", "credentials": {"auth_id": "MAYYYYYYYYYYYYYYYYYY", "auth_token": "q"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["label"].as_str(), r.body["version"].as_i64()),
        (Some("Plivo backup"), Some(3))
    );
    assert_eq!(r.body["credentials"]["auth_id"], "MA…YYYY");
    let r = app
        .get(&format!("/api/v1/telephony/providers/{plivo}"), &t)
        .await;
    assert_eq!(
        r.body["label"], "Plivo backup",
        "a read right after a write sees it"
    );
    let r = app
        .delete(&format!("/api/v1/telephony/providers/{plivo}"), &t)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app
        .get(&format!("/api/v1/telephony/providers/{plivo}"), &t)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Numbers: attach, get, list with filters, patch, release.
    let agent = Uuid::new_v4();
    let r = app.attach(&t, "+12025550123", &pid, Some(agent)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let nid = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["inbound_enabled"], true);
    let r = app
        .get(
            &format!("/api/v1/telephony/numbers?agent_id={agent}&provider=twilio"),
            &t,
        )
        .await;
    assert_eq!(r.body["items"][0]["e164"], "+12025550123");
    let r = app
        .get(
            &format!("/api/v1/telephony/numbers?agent_id={}", Uuid::new_v4()),
            &t,
        )
        .await;
    assert_eq!(r.body["items"], json!([]));
    let r = app
        .patch(
            &format!("/api/v1/telephony/numbers/{nid}"),
            &t,
            json!({"outbound_enabled": false}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["outbound_enabled"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    let r = app
        .get(&format!("/api/v1/telephony/numbers/{nid}"), &t)
        .await;
    assert_eq!(r.body["outbound_enabled"], false);
    let r = app
        .delete(&format!("/api/v1/telephony/numbers/{nid}"), &t)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // Released: it can be registered again.
    let r = app.attach(&t, "+12025550123", &pid, None).await;
    assert_eq!(r.status, StatusCode::CREATED);

    // Call limits: defaults, PATCH a subset, PUT all four.
    let r = app.get("/api/v1/call-limits", &t).await;
    assert_eq!(
        (
            r.body["concurrent_max"].as_u64(),
            r.body["daily_minutes_max"].as_u64(),
            r.body["version"].as_i64()
        ),
        (Some(10), Some(600), Some(0))
    );
    let r = app
        .patch("/api/v1/call-limits", &t, json!({"concurrent_max": 20}))
        .await;
    assert_eq!(
        (r.status, r.body["concurrent_max"].as_u64()),
        (StatusCode::OK, Some(20))
    );
    assert_eq!(r.body["calls_per_minute"], 10);
    let all = json!({"concurrent_max": 20, "calls_per_minute": 10, "daily_calls_max": 1000, "daily_minutes_max": 2400});
    let r = app
        .send(
            reqwest::Method::PUT,
            "/api/v1/call-limits",
            Some(&t),
            Some(all),
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.body["daily_minutes_max"].as_u64()),
        (StatusCode::OK, Some(2400))
    );
    let r = app.get("/api/v1/call-limits", &t).await;
    assert_eq!(
        (
            r.body["daily_minutes_max"].as_u64(),
            r.body["version"].as_i64()
        ),
        (Some(2400), Some(2))
    );
    let r = app
        .send(
            reqwest::Method::PUT,
            "/api/v1/call-limits",
            Some(&t),
            Some(json!({"concurrent_max": 1})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "PUT needs all four");

    // OpenAPI and metrics.
    let r = app
        .send(
            reqwest::Method::GET,
            "/api/v1/openapi.json",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(r.body["paths"]["/api/v1/telephony/providers"].is_object());
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("switchboard_http_requests_total{method=\"POST\",route=\"/api/v1/telephony/providers\",status=\"201\"}"));
    assert!(metrics.contains("switchboard_events_appended_total"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_cases() {
    let app = TestApp::spawn().await;
    let t = app.admin(TenantId::new());
    let before = app.event_count().await;

    // Half a Twilio config: 400 naming the missing field, nothing stored.
    let r = app
        .post(
            "/api/v1/telephony/providers",
            &t,
            json!({"provider": "twilio", "label": "half", "credentials": {"account_sid": format!("AC{}", "a".repeat(32))}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    assert_eq!(
        r.body["errors"],
        json!([{"field": "credentials.auth_token", "message": "is required"}])
    );
    assert_eq!(app.event_count().await, before);
    let providers = app.get("/api/v1/telephony/providers", &t).await;
    assert_eq!(providers.body["items"], json!([]));

    // A provider with numbers cannot be deleted until they are released.
    let pid = app.twilio(&t, "tok").await;
    let n1 = app.attach(&t, "+12025550100", &pid, None).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let n2 = app.attach(&t, "+12025550101", &pid, None).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = app.event_count().await;
    let r = app
        .delete(&format!("/api/v1/telephony/providers/{pid}"), &t)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(app.event_count().await, before);
    for n in [&n1, &n2] {
        assert_eq!(
            app.delete(&format!("/api/v1/telephony/numbers/{n}"), &t)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
    }
    assert_eq!(
        app.delete(&format!("/api/v1/telephony/providers/{pid}"), &t)
            .await
            .status,
        StatusCode::NO_CONTENT
    );

    // Bad E.164: no +, 6 digits, 16 digits, letters, a leading 0.
    let pid = app.twilio(&t, "tok").await;
    let before = app.event_count().await;
    for bad in [
        "12025550123",
        "+123456",
        "+1234567890123456",
        "+1202555abcd",
        "+02025550123",
    ] {
        let r = app.attach(&t, bad, &pid, None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.body["errors"][0]["field"], "e164", "{bad}");
    }
    assert_eq!(app.event_count().await, before);

    // An agent reassigned, then detached.
    let (a1, a2) = (Uuid::new_v4(), Uuid::new_v4());
    let n = app.attach(&t, "+12025550123", &pid, Some(a1)).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/telephony/numbers/{n}");
    let r = app
        .patch(&path, &t, json!({"agent_id": a2.to_string()}))
        .await;
    assert_eq!(r.body["agent_id"], a2.to_string());
    assert_eq!(app.get(&path, &t).await.body["agent_id"], a2.to_string());
    let r = app.patch(&path, &t, json!({"agent_id": null})).await;
    assert!(r.body["agent_id"].is_null());
    assert!(app.get(&path, &t).await.body["agent_id"].is_null());
    app.stop().await;
}
