//! The hand-off: a call requested in a process with a worker starts there at
//! commit, before the relay publishes it; JetStream's later delivery of the
//! same call dials nothing more and is acknowledged.

use std::time::Duration;

use events::TenantId;
use reqwest::StatusCode;
use serde_json::{json, Value};
use switchboard::roles::{self, Roles};
use uuid::Uuid;

use crate::app::settings_for;
use crate::support::{eventually, TestEnv};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_requested_beside_a_worker_is_dialed_before_the_relay_publishes_it_and_once() {
    let env = TestEnv::new().await;
    // Gateway, projectors and worker, with the built-in simulator; no relay,
    // so nothing reaches JetStream until one starts below.
    let roles = Roles {
        relay: false,
        ..Roles::all()
    };
    let settings = settings_for(&env, vec!["--originate-wait".into(), "10s".into()]);
    let deps = env.deps().await;
    let app = roles::start(&settings, deps.clone(), roles).await.unwrap();
    let sim = app.sim.clone().expect("the built-in simulator");
    sim.state()
        .update_config(serde_json::from_value(json!({"ring_delay_ms": 600000})).unwrap())
        .unwrap();
    let base = format!("http://{}", app.addr);
    let token = crate::app::token_for(TenantId::new(), &switchboard::auth::Scope::ALL);
    let c = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        c.post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let p: Value = post(
        "/api/v1/telephony/providers",
        json!({"provider": "twilio", "label": "p",
               "credentials": {"account_sid": format!("AC{}", "0f".repeat(16)), "auth_token": "t"}}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let n = post(
        "/api/v1/telephony/numbers",
        json!({"e164": "+12025550123", "provider": "twilio", "credentials_id": p["id"],
               "agent_id": Uuid::new_v4()}),
    )
    .await
    .unwrap();
    assert_eq!(n.status(), StatusCode::CREATED);

    let r = post(
        "/api/v1/calls/originate",
        json!({"from_number": "+12025550123", "to_number": "+14155550100"}),
    )
    .await
    .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "dispatched with no relay running"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "dispatched");
    assert_eq!((sim.dials().len(), sim.requests()), (1, 1));
    let stream = env.ns.events_stream();
    let mut info = deps.js.get_stream(&stream).await.unwrap();
    assert_eq!(
        info.info().await.unwrap().state.messages,
        0,
        "nothing was published: the call came by the hand-off"
    );

    // A relay starts (another process): the worker gets the call from
    // JetStream too, finds it done, and acknowledges it without a dial.
    let relay = roles::start(
        &settings_for(&env, vec![]),
        env.deps().await,
        Roles {
            relay: true,
            ..Roles::default()
        },
    )
    .await
    .unwrap();
    let settled = eventually(Duration::from_secs(20), || {
        let (js, stream) = (deps.js.clone(), stream.clone());
        async move {
            let consumer: async_nats::jetstream::consumer::PullConsumer = js
                .get_stream(&stream)
                .await
                .unwrap()
                .get_consumer(switchboard::worker::ORIGINATE_CONSUMER)
                .await
                .unwrap();
            let i = consumer.cached_info();
            i.delivered.stream_sequence > 0 && i.num_ack_pending == 0 && i.num_pending == 0
        }
    })
    .await;
    assert!(settled, "the delivery was acknowledged");
    assert_eq!(
        (sim.dials().len(), sim.requests()),
        (1, 1),
        "and dialed nothing"
    );
    assert!(deps.calls_in_hand.is_empty(), "no call is left in hand");

    relay.roles.stop().await;
    app.roles.stop().await;
    let js = deps.js.clone();
    env.cleanup(Some(&js)).await;
}

/// A worker of another process that left a call to its claimer, and has
/// that claim in its cache, reads the call again before it decides: by the
/// time it looks again the call is done, and it asks the Call Processor
/// nothing, even once the claim is older than the ack wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_seen_in_another_process_is_read_again_before_dialing_beside_it() {
    use switchboard::worker::{CrashPoint, Handled};
    let app = crate::app::TestApp::spawn_opts(&["--originate-wait", "1s"], None, false).await;
    super::sim(&app, json!({"ring_delay_ms": 600000}));
    let from = "+12025550123";
    let t = super::tenant_with_number(&app, from).await;
    // No worker runs: the call waits, requested.
    let r = super::originate(&app, &t, from).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let call_id: Uuid = r.body["call_id"].as_str().unwrap().parse().unwrap();
    let requested = switchboard::store::read_stream(&app.env.pool, call_id, None)
        .await
        .unwrap()
        .remove(0)
        .envelope;
    // Worker A claims it here, and stops there.
    let a = app.worker(Some(CrashPoint::AfterClaim));
    assert_eq!(a.handle(&requested).await.unwrap(), Handled::Crashed);
    // Worker B, in another process (its own store and cache), leaves it to A.
    let mut b = app.worker(None);
    b.deps = app.env.deps().await;
    assert!(matches!(
        b.handle(&requested).await.unwrap(),
        Handled::HeldElsewhere(_)
    ));
    // A (restarted, same id) dials and records the dispatch.
    let mut a_again = app.worker(None);
    a_again.worker_id = a.worker_id.clone();
    assert_eq!(
        a_again.handle(&requested).await.unwrap(),
        Handled::Dispatched
    );
    // B looks again once the ack wait has passed: its cache still says
    // "claimed by A", the store says dispatched.
    b.ack_wait = Duration::ZERO;
    assert_eq!(b.handle(&requested).await.unwrap(), Handled::AlreadyDone);
    let sim = app.sim.as_ref().unwrap();
    assert_eq!((sim.dials().len(), sim.requests()), (1, 1));
    app.stop().await;
}
