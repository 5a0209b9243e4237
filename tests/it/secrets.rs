//! Secrets: a canary auth_token never leaves in plaintext, and a ciphertext
//! moved to another record does not decrypt.

use events::{ProviderId, TenantId};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::json;
use switchboard::secrets::{MasterKeyring, Secrets};
use uuid::Uuid;

use crate::app::TestApp;

const CANARY: &str = "CANARY-7f3a9c-do-not-leak";

/// A tracing writer into a shared buffer: every log line of this test
/// process (nextest runs each test in its own process).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_token_never_appears_anywhere() {
    let logs = Captured::default();
    let writer = logs.clone();
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .try_init();
    let app = TestApp::spawn().await;
    // Everything published on this namespace's subjects.
    let mut sub = app
        .deps
        .nats
        .subscribe(format!("{}.events.>", app.env.ns))
        .await
        .unwrap();
    let nats_seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = nats_seen.clone();
    let reader = tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            seen.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&m.payload).into_owned());
        }
    });
    let t = app.admin(TenantId::new());
    let pid = app.twilio(&t, CANARY).await;
    // Rotate to another canary-bearing token, fail validation with one, read.
    let r = app
        .patch(
            &format!("/api/v1/telephony/providers/{pid}"),
            &t,
            json!({"credentials": {"account_sid": format!("AC{}", "1".repeat(32)), "auth_token": format!("{CANARY}-2")}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .patch(
            &format!("/api/v1/telephony/providers/{pid}"),
            &t,
            json!({"credentials": {"account_sid": CANARY, "auth_token": CANARY, "extra": CANARY}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    app.get(&format!("/api/v1/telephony/providers/{pid}"), &t)
        .await;
    app.get("/api/v1/telephony/providers", &t).await;
    let count = app.event_count().await;
    // Wait for the relay to publish everything.
    crate::support::eventually(std::time::Duration::from_secs(10), || async {
        nats_seen.lock().unwrap().len() as i64 >= count
    })
    .await;
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    for body in app.bodies.lock().unwrap().iter() {
        assert!(
            !body.contains(CANARY),
            "a response carried the canary: {body}"
        );
    }
    let stored: Vec<String> = sqlx::query_scalar("SELECT data::text FROM events")
        .fetch_all(&app.env.pool)
        .await
        .unwrap();
    assert!(
        stored.iter().all(|d| !d.contains(CANARY)),
        "an event payload carried the canary"
    );
    let tables: Vec<String> = sqlx::query_scalar("SELECT to_jsonb(p)::text FROM providers p")
        .fetch_all(&app.env.pool)
        .await
        .unwrap();
    assert!(
        tables.iter().all(|d| !d.contains(CANARY)),
        "a read table carried the canary"
    );
    let published = nats_seen.lock().unwrap().clone();
    assert!(
        published.len() as i64 >= count,
        "the relay published the events"
    );
    assert!(
        published.iter().all(|m| !m.contains(CANARY)),
        "a NATS message carried the canary"
    );
    assert!(!metrics.contains(CANARY));
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(!logged.is_empty(), "logs were captured");
    assert!(!logged.contains(CANARY), "a log line carried the canary");
    reader.abort();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ciphertext_moved_to_another_provider_or_tenant_fails_to_decrypt() {
    let app = TestApp::spawn().await;
    let (ta, tb) = (TenantId::new(), TenantId::new());
    let (a, b) = (app.admin(ta), app.admin(tb));
    let pa: ProviderId = app.twilio(&a, CANARY).await.parse().unwrap();
    let pa2: ProviderId = app.twilio(&a, "other").await.parse().unwrap();
    let pb: ProviderId = app.twilio(&b, "b").await.parse().unwrap();
    let sealed = |id: Uuid| {
        let pool = app.env.pool.clone();
        async move {
            let data: serde_json::Value = sqlx::query_scalar(
                "SELECT data FROM events WHERE stream_id = $1 AND event_type = 'ProviderCreated'",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
            serde_json::from_value::<events::EncryptedCredentials>(data["credentials"].clone())
                .unwrap()
        }
    };
    let ring = MasterKeyring::from_secret(&app.settings.master_key().unwrap()).unwrap();
    let secrets = Secrets::new(ring);
    let ca = sealed(pa.uuid()).await;
    let opened = secrets
        .open_for_provider(&app.env.pool, ta, pa, &ca, &[])
        .await
        .unwrap();
    assert_eq!(opened.expose("auth_token"), Some(CANARY));
    assert!(
        secrets
            .open_for_provider(&app.env.pool, ta, pa2, &ca, &[])
            .await
            .is_err(),
        "moved to another provider"
    );
    assert!(
        secrets
            .open_for_provider(&app.env.pool, tb, pb, &ca, &[])
            .await
            .is_err(),
        "moved to another tenant"
    );
    let cb = sealed(pb.uuid()).await;
    assert!(secrets
        .open_for_provider(&app.env.pool, ta, pa, &cb, &[])
        .await
        .is_err());
    app.stop().await;
}
