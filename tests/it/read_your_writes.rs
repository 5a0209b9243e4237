//! Read-your-writes is kept by the reads: a write answers once durable,
//! without waiting for any projection, and a read of a read table waits
//! until its projection has applied the tenant's earlier writes, even when
//! the projector runs in another process.

use std::time::{Duration, Instant};

use events::TenantId;
use reqwest::StatusCode;
use serde_json::{json, Value};
use switchboard::auth::Scope;
use switchboard::roles::{self, Roles};

use crate::app::{settings_for, token_for};
use crate::support::TestEnv;

async fn start(env: &TestEnv, roles: Roles) -> roles::Started {
    roles::start(&settings_for(env, vec![]), env.deps().await, roles)
        .await
        .expect("start")
}

async fn get(client: reqwest::Client, url: String, token: String) -> (StatusCode, Value) {
    let r = client.get(url).bearer_auth(token).send().await.unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_answers_without_projectors_and_the_read_after_it_waits_for_them() {
    let env = TestEnv::new().await;
    let gateway = start(
        &env,
        Roles {
            gateway: true,
            ..Roles::default()
        },
    )
    .await;
    let base = format!("http://{}/api/v1", gateway.addr);
    let token = token_for(TenantId::new(), &Scope::ALL);
    let client = reqwest::Client::new();

    // No projector runs anywhere: a write that waited for one would sit
    // out the whole read-your-writes bound (5 s) before answering.
    let at = Instant::now();
    let created = client
        .post(format!("{base}/telephony/providers"))
        .bearer_auth(&token)
        .json(&json!({"provider": "vobiz", "label": "Read after",
                      "credentials": {"auth_id": "VBXXXXXXXX", "auth_token": "v"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert!(
        at.elapsed() < Duration::from_secs(4),
        "the write waited for a projection ({:?})",
        at.elapsed()
    );
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let limits = client
        .patch(format!("{base}/call-limits"))
        .bearer_auth(&token)
        .json(&json!({"daily_calls_max": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(limits.status(), StatusCode::OK);

    // The tables exist (so a read that gave up would answer stale, not
    // fail), but no projector has applied anything.
    for p in [
        &projections::providers::Providers as &dyn projections::Projection,
        &projections::call_limits::CallLimits,
    ] {
        switchboard::projection::ensure_schema(&env.pool, p)
            .await
            .unwrap();
    }
    // The reads wait: the provider's table has not applied the write.
    let read =
        |path: String| tokio::spawn(get(client.clone(), format!("{base}{path}"), token.clone()));
    let one = read(format!("/telephony/providers/{id}"));
    let list = read("/telephony/providers".to_owned());
    let caps = read("/call-limits".to_owned());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !one.is_finished() && !list.is_finished() && !caps.is_finished(),
        "a read answered before its projection applied the write"
    );

    // Projectors start in another process; the reads see the writes.
    let projectors = start(
        &env,
        Roles {
            projectors: true,
            ..Roles::default()
        },
    )
    .await;
    let (status, body) = one.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["label"], "Read after");
    let (status, body) = list.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"][0]["id"], id.as_str());
    let (status, body) = caps.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["daily_calls_max"], 7);

    // Once the table is up to date, a read waits for nothing.
    let at = Instant::now();
    let (status, _) = read(format!("/telephony/providers/{id}")).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(at.elapsed() < Duration::from_secs(4));

    projectors.roles.stop().await;
    gateway.roles.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_does_not_wait_for_a_stopped_projection() {
    let env = TestEnv::new().await;
    let gateway = start(
        &env,
        Roles {
            gateway: true,
            ..Roles::default()
        },
    )
    .await;
    // The providers projection stopped at a poison event: it will not
    // apply anything until an operator mends it (see `projector.rs`).
    switchboard::projection::ensure_schema(&env.pool, &projections::providers::Providers)
        .await
        .unwrap();
    sqlx::query("INSERT INTO checkpoints (name, status, error) VALUES ($1, 'stopped', 'poison')")
        .bind("projection:providers")
        .execute(&env.pool)
        .await
        .unwrap();
    let base = format!("http://{}/api/v1", gateway.addr);
    let token = token_for(TenantId::new(), &Scope::ALL);
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{base}/telephony/providers"))
        .bearer_auth(&token)
        .json(&json!({"provider": "vobiz", "label": "Stuck",
                      "credentials": {"auth_id": "VBXXXXXXXX", "auth_token": "v"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);

    // Waiting could not help: the read answers from the table as it
    // stands, at once, instead of after the whole bound.
    let at = Instant::now();
    let (status, body) = get(client, format!("{base}/telephony/providers"), token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        at.elapsed() < Duration::from_secs(4),
        "the read waited for a stopped projection ({:?})",
        at.elapsed()
    );
    gateway.roles.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_that_is_down_holds_up_one_read_not_every_read() {
    let env = TestEnv::new().await;
    let gateway = start(
        &env,
        Roles {
            gateway: true,
            ..Roles::default()
        },
    )
    .await;
    // No projector runs anywhere, and none has stopped at a poison event:
    // as far as this process can tell, one may yet come.
    switchboard::projection::ensure_schema(&env.pool, &projections::providers::Providers)
        .await
        .unwrap();
    let base = format!("http://{}/api/v1", gateway.addr);
    let token = token_for(TenantId::new(), &Scope::ALL);
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{base}/telephony/providers"))
        .bearer_auth(&token)
        .json(&json!({"provider": "vobiz", "label": "Down",
                      "credentials": {"auth_id": "VBXXXXXXXX", "auth_token": "v"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let list = format!("{base}/telephony/providers");

    // The first read sits out the bound, then answers from the table as
    // it stands; the reads after it do not wait again.
    let at = Instant::now();
    let (status, _) = get(client.clone(), list.clone(), token.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        at.elapsed() >= Duration::from_secs(4),
        "the first read waited"
    );
    let at = Instant::now();
    let (status, _) = get(client.clone(), list.clone(), token.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        at.elapsed() < Duration::from_secs(3),
        "a second read waited again for a projection that did not move ({:?})",
        at.elapsed()
    );
    gateway.roles.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_list_after_an_originate_waits_for_the_calls_projection() {
    let env = TestEnv::new().await;
    // While the test holds the calls projector's leadership, the app's own
    // calls projector cannot run.
    let never = tokio_util::sync::CancellationToken::new();
    let lead = switchboard::leader::acquire(&env.pool, "projection:calls", &never)
        .await
        .expect("leadership");
    let app = crate::app::TestApp::spawn_on(env, &[], None, true).await;
    let t = crate::origination::tenant_with_number(&app, "+12025550123").await;
    let body = json!({"from_number": "+12025550123", "to_number": "+14155550100"});
    let r = app.post("/api/v1/calls/originate", &t, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let call_id = r.body["call_id"].as_str().unwrap().to_owned();

    let list = tokio::spawn(get(
        app.client.clone(),
        format!("{}/api/v1/calls", app.base),
        t.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !list.is_finished(),
        "the list answered before the calls projection applied the call"
    );
    drop(lead);
    let (status, body) = list.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["call_id"] == call_id.as_str()),
        "the list shows the call: {body}"
    );
    app.stop().await;
}
