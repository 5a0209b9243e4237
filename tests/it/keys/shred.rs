//! Shredding one tenant: its calls fail undialed (a data key the worker
//! kept unwrapped included), everyone else's work.

use events::{Event, TenantId};
use reqwest::StatusCode;
use serde_json::json;
use switchboard::secrets::ops;
use uuid::Uuid;

use super::stream;
use crate::app::TestApp;

async fn originate(app: &TestApp, token: &str, from: &str) -> crate::app::Resp {
    let body = json!({"from_number": from, "to_number": "+14155550100"});
    app.post("/api/v1/calls/originate", token, body).await
}

fn dialed(app: &TestApp, call_id: &serde_json::Value) -> usize {
    let id = call_id.as_str().unwrap();
    app.sim
        .as_ref()
        .unwrap()
        .dials()
        .iter()
        .filter(|d| d.call_id == id)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shredding_a_tenant_kills_its_credentials_and_no_one_elses() {
    let app = TestApp::spawn().await;
    let (ta, tb) = (TenantId::new(), TenantId::new());
    let (a, b) = (app.admin(ta), app.admin(tb));
    for (token, from) in [(&a, "+12025550101"), (&b, "+12025550102")] {
        let provider = app.twilio(token, "secret-token").await;
        let r = app
            .attach(token, from, &provider, Some(Uuid::new_v4()))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let pool = &app.env.pool;
    // A call before the shred: the worker now keeps the tenant's data key
    // unwrapped, and must stop using it once it is shredded.
    let r = originate(&app, &a, "+12025550101").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "dispatched");
    let shredded = ops::shred_tenant(pool, ta, "carol").await.unwrap();
    assert_eq!(shredded.len(), 1);

    let r = originate(&app, &a, "+12025550101").await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
    assert_eq!(r.body["status"], "failed", "{}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("credentials"),
        "{}",
        r.body
    );
    assert_eq!(dialed(&app, &r.body["call_id"]), 0, "nothing was dialed");
    let r = originate(&app, &b, "+12025550102").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "dispatched");
    assert_eq!(dialed(&app, &r.body["call_id"]), 1);

    let events = stream(pool, ta.uuid()).await;
    let (last, event) = events.last().unwrap();
    let shred = Event::TenantKeyShredded(events::TenantKeyShredded {
        key_id: shredded[0].clone(),
    });
    assert_eq!((event, last.envelope.actor.as_str()), (&shred, "carol"));
    assert!(
        ops::shred_tenant(pool, ta, "carol")
            .await
            .unwrap()
            .is_empty(),
        "nothing live is left"
    );
    assert_eq!(
        stream(pool, ta.uuid()).await.len(),
        events.len(),
        "and nothing is recorded"
    );

    // A provider created afterwards is sealed under a fresh key and works.
    let provider = app.twilio(&a, "new-token").await;
    let r = app
        .attach(&a, "+12025550103", &provider, Some(Uuid::new_v4()))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let (_, created) = stream(pool, ta.uuid()).await.pop().unwrap();
    let Event::TenantKeyCreated(created) = created else {
        panic!("{created:?}")
    };
    assert_ne!(created.key_id, shredded[0]);
    assert_eq!(
        originate(&app, &a, "+12025550103").await.status,
        StatusCode::OK
    );
    let r = originate(&app, &a, "+12025550101").await;
    assert_eq!(
        r.status,
        StatusCode::BAD_GATEWAY,
        "old secrets stay dead: {}",
        r.body
    );
    app.stop().await;
}
