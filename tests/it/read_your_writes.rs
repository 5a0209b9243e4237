//! Read-your-writes is kept by the reads: a write answers once durable,
//! without waiting for any projection, and a read of a read table waits
//! until its projection has applied the tenant's earlier writes, even when
//! the projector runs in another process.

use std::time::{Duration, Instant};

use events::TenantId;
use projections::Projection;
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

/// A process with only the gateway (no projector, relay or worker), one
/// tenant's token, and `tables` created but never projected into (so a
/// read that gave up waiting answers stale rather than failing).
struct GatewayOnly {
    started: roles::Started,
    base: String,
    token: String,
    client: reqwest::Client,
}

impl GatewayOnly {
    async fn start(env: &TestEnv, tables: &[&dyn Projection]) -> GatewayOnly {
        for p in tables {
            switchboard::projection::ensure_schema(&env.pool, *p)
                .await
                .unwrap();
        }
        let gateway = Roles {
            gateway: true,
            ..Roles::default()
        };
        let started = start(env, gateway).await;
        GatewayOnly {
            base: format!("http://{}/api/v1", started.addr),
            started,
            token: token_for(TenantId::new(), &Scope::ALL),
            client: reqwest::Client::new(),
        }
    }

    /// Creates a provider; answers its id.
    async fn provider(&self, label: &str) -> String {
        let created = self
            .client
            .post(format!("{}/telephony/providers", self.base))
            .bearer_auth(&self.token)
            .json(&json!({"provider": "vobiz", "label": label,
                          "credentials": {"auth_id": "VBXXXXXXXX", "auth_token": "v"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        created.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A GET of `path` (under `/api/v1`), on a task of its own.
    fn read(&self, path: &str) -> tokio::task::JoinHandle<(StatusCode, Value)> {
        let url = format!("{}{path}", self.base);
        tokio::spawn(get(self.client.clone(), url, self.token.clone()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_answers_without_projectors_and_the_read_after_it_waits_for_them() {
    let env = TestEnv::new().await;
    let tables: [&dyn Projection; 2] = [
        &projections::providers::Providers,
        &projections::call_limits::CallLimits,
    ];
    let gw = GatewayOnly::start(&env, &tables).await;

    // No projector runs anywhere: a write that waited for one would sit
    // out the whole read-your-writes bound (5 s) before answering.
    let at = Instant::now();
    let id = gw.provider("Read after").await;
    assert!(
        at.elapsed() < Duration::from_secs(4),
        "the write waited for a projection ({:?})",
        at.elapsed()
    );
    let limits = gw
        .client
        .patch(format!("{}/call-limits", gw.base))
        .bearer_auth(&gw.token)
        .json(&json!({"daily_calls_max": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(limits.status(), StatusCode::OK);

    // The reads wait: no projector has applied the writes.
    let one = gw.read(&format!("/telephony/providers/{id}"));
    let list = gw.read("/telephony/providers");
    let caps = gw.read("/call-limits");
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
    let (status, _) = gw
        .read(&format!("/telephony/providers/{id}"))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(at.elapsed() < Duration::from_secs(4));

    projectors.roles.stop().await;
    gw.started.roles.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_does_not_wait_for_a_stopped_projection() {
    let env = TestEnv::new().await;
    let gw = GatewayOnly::start(&env, &[&projections::providers::Providers]).await;
    // The providers projection stopped at a poison event: it will not
    // apply anything until an operator mends it (see `projector.rs`).
    sqlx::query("INSERT INTO checkpoints (name, status, error) VALUES ($1, 'stopped', 'poison')")
        .bind("projection:providers")
        .execute(&env.pool)
        .await
        .unwrap();
    gw.provider("Stuck").await;

    // Waiting could not help: the read answers from the table as it
    // stands, at once, instead of after the whole bound.
    let at = Instant::now();
    let (status, body) = gw.read("/telephony/providers").await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        at.elapsed() < Duration::from_secs(4),
        "the read waited for a stopped projection ({:?})",
        at.elapsed()
    );
    gw.started.roles.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_that_is_down_holds_up_one_read_not_every_read() {
    let env = TestEnv::new().await;
    // No projector runs anywhere, and none has stopped at a poison event:
    // as far as this process can tell, one may yet come.
    let gw = GatewayOnly::start(&env, &[&projections::providers::Providers]).await;
    gw.provider("Down").await;

    // The first read sits out the bound, then answers from the table as
    // it stands; the reads after it do not wait again.
    let at = Instant::now();
    let (status, _) = gw.read("/telephony/providers").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(
        at.elapsed() >= Duration::from_secs(4),
        "the first read waited"
    );
    let at = Instant::now();
    let (status, _) = gw.read("/telephony/providers").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(
        at.elapsed() < Duration::from_secs(3),
        "a second read waited again for a projection that did not move ({:?})",
        at.elapsed()
    );
    gw.started.roles.stop().await;
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
