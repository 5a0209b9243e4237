//! NATS distributes events; the store is the truth. A message on NATS that
//! the store does not back moves nothing: a worker charges the stored
//! tenant and dials only stored calls, and a waiting originate takes its
//! outcome from the store, never from a NATS message.

use events::{CallId, TenantId};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use super::{dials, originate, sim, tenant_with_number};
use crate::app::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_takes_the_call_and_its_tenant_from_the_store() {
    let app = TestApp::spawn_opts(&["--originate-wait", "1s"], None, false).await;
    sim(&app, json!({"ring_delay_ms": 600000}));
    let from = "+12025550123";
    let t = tenant_with_number(&app, from).await;
    let r = originate(&app, &t, from).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "no worker runs: {}", r.body);
    let call_id: CallId = r.body["call_id"].as_str().unwrap().parse().unwrap();
    let requested = switchboard::store::read_stream(&app.env.pool, call_id, None)
        .await
        .unwrap()
        .remove(0)
        .envelope;
    let worker = app.worker(None);

    // A message for a call the store does not hold: nothing dialed.
    let mut ghost = requested.clone();
    ghost.inner.stream_id = Uuid::now_v7();
    ghost.inner.event_id = Uuid::now_v7();
    assert!(worker.handle(&ghost).await.is_err());
    assert!(dials(&app).is_empty());
    assert!(
        switchboard::store::read_stream(&app.env.pool, ghost.stream_id, None)
            .await
            .unwrap()
            .is_empty()
    );

    // A message naming another tenant: the stored tenant is charged and
    // every event the worker writes is the stored tenant's.
    let mut forged = requested.clone();
    let stranger = TenantId::new();
    forged.inner.tenant_id = stranger;
    let handled = worker.handle(&forged).await.unwrap();
    assert_eq!(handled, switchboard::worker::Handled::Dispatched);
    assert_eq!(dials(&app).len(), 1);
    let written = switchboard::store::read_stream(&app.env.pool, call_id, None)
        .await
        .unwrap();
    assert!(written.len() >= 3);
    assert!(written
        .iter()
        .all(|e| e.envelope.tenant_id == requested.tenant_id));
    let stranger_usage = app.worker(None).caps.usage(stranger).await.unwrap();
    assert_eq!(stranger_usage.concurrent, 0, "the stranger is not charged");
    let usage = app
        .worker(None)
        .caps
        .usage(requested.tenant_id)
        .await
        .unwrap();
    assert_eq!(usage.concurrent, 1, "the call's own tenant is");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiting_originate_ignores_an_outcome_the_store_does_not_hold() {
    let app = TestApp::spawn_opts(&["--originate-wait", "2s"], None, false).await;
    let from = "+12025550123";
    let t = tenant_with_number(&app, from).await;
    let pending = super::originate_detached(&app, &t, from);
    // The call as stored, while its request waits (no worker runs).
    let mut call: Option<(Uuid, Uuid)> = None;
    for _ in 0..200 {
        call = sqlx::query_as(
            "SELECT stream_id, tenant_id FROM events WHERE event_type = 'OriginateRequested' LIMIT 1",
        )
        .fetch_optional(&app.env.pool)
        .await
        .unwrap();
        if call.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (call_id, tenant) = call.expect("the call is stored");
    // Forged outcomes on the subject the gateway follows, until it answers.
    let ns = app.deps.ns.clone();
    let nats = app.deps.nats.clone();
    let forger = tokio::spawn(async move {
        let subject = format!("{ns}.events.{tenant}.call.{call_id}.OriginateDispatched");
        let payload = json!({"event_type": "OriginateDispatched", "stream_id": call_id,
            "data": {"provider_call_id": "FORGED"}});
        loop {
            let _ = nats
                .publish(subject.clone(), payload.to_string().into())
                .await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let (status, body) = pending.await.unwrap();
    forger.abort();
    assert_eq!(status, StatusCode::ACCEPTED, "still pending: {body}");
    assert!(!body.to_string().contains("FORGED"), "{body}");
    app.stop().await;
}
