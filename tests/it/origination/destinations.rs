//! The destination policy through the whole path: a country allowlist,
//! premium-rate and satellite numbers refused unless allowed, each refusal a
//! 403 naming the country with an `OriginateRejected` in the store, nothing
//! dialed and no cap counted; bad policies change nothing.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{dials, tenant_with_number};
use crate::app::{Resp, TestApp};

async fn call(app: &TestApp, t: &str, to: &str) -> Resp {
    let body = json!({"from_number": "+12025550123", "to_number": to});
    app.post("/api/v1/calls/originate", t, body).await
}

async fn put(app: &TestApp, t: &str, body: Value) -> Resp {
    app.send(
        Method::PUT,
        "/api/v1/destinations",
        Some(t),
        Some(body),
        &[],
    )
    .await
}

fn assert_blocked(r: &Resp, country: &str, rule: &str) {
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(
        r.body["type"],
        "https://switchboard.dev/problems/destination-blocked"
    );
    assert_eq!(
        (r.body["country"].as_str(), r.body["rule"].as_str()),
        (Some(country), Some(rule))
    );
    assert!(
        r.body["detail"].as_str().unwrap().contains(country),
        "{}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_destination_policy_refuses_with_the_country_and_counts_nothing() {
    let app = TestApp::spawn().await;
    let t = tenant_with_number(&app, "+12025550123").await;
    // The default: every country, but no premium-rate or satellite number.
    let d = app.get("/api/v1/destinations", &t).await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(
        (
            &d.body["allowed_countries"],
            &d.body["allow_premium_rate"],
            &d.body["version"]
        ),
        (&json!([]), &json!(false), &json!(0))
    );
    assert_eq!(call(&app, &t, "+442071838750").await.status, StatusCode::OK);
    let premium = call(&app, &t, "+19005550123").await;
    assert_blocked(&premium, "US", "premium_rate");
    assert_blocked(&call(&app, &t, "+881612345678").await, "001", "satellite");

    // Bad policies: a 400 naming the field, and the policy is as it was.
    for (bad, field) in [
        (
            json!({"allowed_countries": ["usa"], "allow_premium_rate": false, "allow_satellite": false}),
            "allowed_countries",
        ),
        (
            json!({"allowed_countries": ["US"], "allow_premium_rate": "no", "allow_satellite": false}),
            "allow_premium_rate",
        ),
        (
            json!({"allowed_countries": ["US"], "allow_premium_rate": false}),
            "allow_satellite",
        ),
        (
            json!({"allowed_countries": ["US"], "allow_premium_rate": false, "allow_satellite": false, "x": 1}),
            "x",
        ),
    ] {
        let r = put(&app, &t, bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert!(
            r.body["errors"].to_string().contains(field),
            "{field}: {}",
            r.body
        );
    }
    assert_eq!(app.get("/api/v1/destinations", &t).await.body["version"], 0);

    // An allowlist: the US and Canada only, premium rate allowed.
    let set = put(
        &app,
        &t,
        json!({"allowed_countries": ["US", "CA"], "allow_premium_rate": true, "allow_satellite": false}),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(
        (&set.body["allowed_countries"], &set.body["version"]),
        (&json!(["CA", "US"]), &json!(1))
    );
    let gb = call(&app, &t, "+442071838750").await;
    assert_blocked(&gb, "GB", "country_not_allowed");
    // The refusal is in the call's history.
    let id = gb.body["call_id"].as_str().unwrap();
    let view = app.get(&format!("/api/v1/calls/{id}"), &t).await.body;
    assert_eq!(
        (
            view["status"].as_str(),
            view["rejection"]["dimension"].as_str()
        ),
        (Some("rejected"), Some("destination"))
    );
    assert_eq!(view["rejection"]["blocked"]["country"], "GB");
    assert_eq!(
        call(&app, &t, "+16135550123").await.status,
        StatusCode::OK,
        "Canada"
    );
    assert_eq!(
        call(&app, &t, "+19005550123").await.status,
        StatusCode::OK,
        "premium allowed now"
    );
    // Nothing refused was dialed or counted: 3 dials, 3 calls today.
    assert_eq!(dials(&app).len(), 3);
    let usage = app.get("/api/v1/call-limits/usage", &t).await.body;
    assert_eq!(usage["daily_calls"], 3, "{usage}");
    // Setting the same policy again appends nothing; the audit trail holds it.
    let again = put(
        &app,
        &t,
        json!({"allowed_countries": ["CA", "US"], "allow_premium_rate": true, "allow_satellite": false}),
    )
    .await;
    assert_eq!(again.body["version"], 1);
    let audit = app
        .get("/api/v1/audit/events?type=DestinationsSet", &t)
        .await
        .body;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(1), "{audit}");
    app.stop().await;
}
