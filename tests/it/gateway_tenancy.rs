//! Tenant isolation and authentication through HTTP.

use events::TenantId;
use jsonwebtoken::{encode, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::json;
use switchboard::auth::Scope;
use uuid::Uuid;

use crate::app::{TestApp, JWT_SECRET};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_sees_nothing_of_tenant_a() {
    let app = TestApp::spawn().await;
    let (a, b) = (app.admin(TenantId::new()), app.admin(TenantId::new()));
    let agent = Uuid::new_v4();
    let pid = app.twilio(&a, "tok").await;
    let nid = app.attach(&a, "+12025550123", &pid, Some(agent)).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let count = app.event_count().await;
    for path in [
        format!("/api/v1/telephony/providers/{pid}"),
        format!("/api/v1/telephony/numbers/{nid}"),
    ] {
        let missing =
            path.rsplit_once('/').unwrap().0.to_owned() + "/" + &Uuid::now_v7().to_string();
        let r = app.get(&path, &b).await;
        let none = app.get(&missing, &b).await;
        assert_eq!(
            (r.status, &r.body),
            (StatusCode::NOT_FOUND, &none.body),
            "GET {path} answers as if missing"
        );
        let r = app.patch(&path, &b, json!({})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = app.delete(&path, &b).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
    for list in [
        "/api/v1/telephony/providers".to_owned(),
        "/api/v1/telephony/numbers".to_owned(),
        format!("/api/v1/telephony/numbers?agent_id={agent}"),
        "/api/v1/telephony/numbers?provider=twilio".to_owned(),
    ] {
        let r = app.get(&list, &b).await;
        assert_eq!(r.body["items"], json!([]), "{list}");
    }
    // B cannot attach a number on A's provider either, nor learn of it.
    let r = app.attach(&b, "+12025550999", &pid, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // And A's limits are A's.
    app.patch("/api/v1/call-limits", &a, json!({"concurrent_max": 1}))
        .await;
    assert_eq!(
        app.get("/api/v1/call-limits", &b).await.body["concurrent_max"],
        10
    );
    assert_eq!(app.event_count().await, count + 1);
    app.stop().await;
}

fn claims(tenant: TenantId) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    json!({"iss": "switchboard-dev", "aud": "switchboard", "sub": "x", "exp": now + 600, "iat": now,
           "tenant_id": tenant, "scope": "telephony:read"})
}

fn hs(claims: &serde_json::Value) -> String {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_401_and_missing_scopes_403() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::new();
    let b64 = |v: &serde_json::Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let good = hs(&claims(tenant));
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims(tenant))
    );
    let mut tampered = good.clone();
    tampered.pop();
    tampered.push(if good.ends_with('A') { 'B' } else { 'A' });
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = claims(tenant);
        f(&mut c);
        hs(&c)
    };
    let now = chrono::Utc::now().timestamp();
    let cases = [
        ("alg none", none),
        ("tampered", tampered),
        ("garbage", "garbage".to_owned()),
        ("expired", with(&|c| c["exp"] = json!(now - 3600))),
        ("nbf future", with(&|c| c["nbf"] = json!(now + 3600))),
        (
            "no iss",
            with(&|c| {
                c.as_object_mut().unwrap().remove("iss");
            }),
        ),
        (
            "no aud",
            with(&|c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
        ),
        (
            "no exp",
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
        ),
        ("wrong iss", with(&|c| c["iss"] = json!("evil"))),
        ("wrong aud", with(&|c| c["aud"] = json!("other"))),
        (
            "wrong secret",
            encode(
                &Header::default(),
                &claims(tenant),
                &EncodingKey::from_secret(b"another-secret-0123456789abcdef-xx"),
            )
            .unwrap(),
        ),
        (
            "HS384",
            encode(
                &Header::new(jsonwebtoken::Algorithm::HS384),
                &claims(tenant),
                &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
            )
            .unwrap(),
        ),
    ];
    for (name, token) in cases {
        let r = app.get("/api/v1/telephony/providers", &token).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(
            r.headers["content-type"], "application/problem+json",
            "{name}"
        );
    }
    let r = app
        .send(Method::GET, "/api/v1/telephony/providers", None, None, &[])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/api/v1/telephony/providers", &good).await.status,
        StatusCode::OK
    );
    // Missing scopes: 403, nothing appended.
    let count = app.event_count().await;
    let read_only = app.token(tenant, &[Scope::TelephonyRead]);
    let r = app
        .post("/api/v1/telephony/providers", &read_only, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .patch(
            "/api/v1/call-limits",
            &read_only,
            json!({"concurrent_max": 0}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let writer = app.token(tenant, &[Scope::TelephonyWrite]);
    assert_eq!(
        app.get("/api/v1/telephony/numbers", &writer).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.event_count().await, count);
    app.stop().await;
}
