//! Scale-out: every role in its own "process" (its own `roles::start`), two
//! relays and two projector sets as hot standbys, two workers; calls go
//! through, and when the leading relay and projectors die, the standbys
//! carry on.

use events::TenantId;
use reqwest::StatusCode;
use serde_json::json;
use switchboard::callproc::sim::{self, SimConfig};
use switchboard::roles::{self, Roles};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::app::{settings_for, CALLBACK_SECRET};
use crate::support::TestEnv;

struct Proc {
    started: roles::Started,
}

async fn start(env: &TestEnv, roles: Roles, extra: &[String]) -> Proc {
    let settings = settings_for(env, extra.to_vec());
    let started = roles::start(&settings, env.deps().await, roles)
        .await
        .unwrap();
    Proc { started }
}

impl Proc {
    async fn kill(self) {
        self.started.roles.stop().await;
    }
}

fn only(f: impl FnOnce(&mut Roles)) -> Roles {
    let mut r = Roles::default();
    f(&mut r);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn roles_in_separate_processes_with_standbys() {
    let env = TestEnv::new().await;
    let sim_stop = CancellationToken::new();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = sim::spawn(
        l,
        SimConfig::with_secret(CALLBACK_SECRET.to_owned().into()),
        sim_stop.clone(),
    )
    .await;
    sim.state()
        .update_config(
            serde_json::from_value(
                json!({"ring_delay_ms": 10, "answer_delay_ms": 10, "call_hold_ms": 20}),
            )
            .unwrap(),
        )
        .unwrap();

    let gateway = start(&env, only(|r| r.gateway = true), &[]).await;
    let base = format!("http://{}", gateway.started.addr);
    let worker_flags = [
        "--public-url".to_owned(),
        base.clone(),
        "--call-processor-url".to_owned(),
        sim.base_url(),
    ];
    let relay_a = start(&env, only(|r| r.relay = true), &[]).await;
    let proj_a = start(&env, only(|r| r.projectors = true), &[]).await;
    let relay_b = start(&env, only(|r| r.relay = true), &[]).await;
    let proj_b = start(&env, only(|r| r.projectors = true), &[]).await;
    let w1 = start(&env, only(|r| r.worker = true), &worker_flags).await;
    let w2 = start(&env, only(|r| r.worker = true), &worker_flags).await;

    let token = crate::app::token_for(TenantId::new(), &switchboard::auth::Scope::ALL);
    let c = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        c.post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let p: serde_json::Value = post(
        "/api/v1/telephony/providers",
        json!({"provider": "plivo", "label": "p", "credentials": {"auth_id": "MAXXXXXXXX", "auth_token": "t"}}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let n = post(
        "/api/v1/telephony/numbers",
        json!({"e164": "+12025550123", "provider": "plivo", "credentials_id": p["id"], "agent_id": Uuid::new_v4()}),
    )
    .await
    .unwrap();
    assert_eq!(
        n.status(),
        StatusCode::CREATED,
        "the projector process served the read-your-write"
    );
    let originate = || {
        post(
            "/api/v1/calls/originate",
            json!({"from_number": "+12025550123", "to_number": "+14155550100"}),
        )
    };
    let r = originate().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // The leaders die (whichever of each pair leads, one of them is gone
    // and the other must carry on); calls still go through.
    relay_a.kill().await;
    proj_a.kill().await;
    w1.kill().await;
    for _ in 0..3 {
        // 200, or 202 when the message the dead worker held waits for its
        // redelivery longer than the originate waits (under load): either
        // way the call must go through.
        let r = originate().await.unwrap();
        assert!(
            [StatusCode::OK, StatusCode::ACCEPTED].contains(&r.status()),
            "{}",
            r.status()
        );
        let body: serde_json::Value = r.json().await.unwrap();
        let url = format!("{base}/api/v1/calls/{}", body["call_id"].as_str().unwrap());
        let through = crate::support::eventually(std::time::Duration::from_secs(30), || async {
            let got: serde_json::Value = c
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            got["status"] != "requested"
        })
        .await;
        assert!(through, "the standbys carry the call through");
    }
    assert_eq!(sim.dials().len(), 4);
    for p in [relay_b, proj_b, w2, gateway] {
        p.kill().await;
    }
    sim_stop.cancel();
    let js = env.deps().await.js;
    env.cleanup(Some(&js)).await;
}

#[tokio::test]
async fn misconfigured_roles_refuse_to_start() {
    let env = TestEnv::new().await;
    // Production never dials into the built-in simulator.
    let prod = settings_for(&env, vec!["--env".into(), "production".into()]);
    let r = roles::start(&prod, env.deps().await, Roles::all()).await;
    let err = r.err().expect("refused").to_string();
    assert!(err.contains("SWITCHBOARD_CALL_PROCESSOR_URL"), "{err}");
    // A worker alone cannot receive callbacks: it must name a gateway.
    let alone = settings_for(
        &env,
        vec!["--call-processor-url".into(), "http://127.0.0.1:9".into()],
    );
    let r = roles::start(&alone, env.deps().await, only(|r| r.worker = true)).await;
    let err = r.err().expect("refused").to_string();
    assert!(err.contains("SWITCHBOARD_PUBLIC_URL"), "{err}");
    env.cleanup(None).await;
}
