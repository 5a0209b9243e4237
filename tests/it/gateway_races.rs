//! Invariants under races: one holder per e164 across tenants, and never a
//! number on a deleted provider.

use events::TenantId;
use reqwest::StatusCode;
use serde_json::json;

use crate::app::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_attaches_of_one_e164_from_two_tenants_make_one_holder() {
    let app = TestApp::spawn().await;
    let tokens = [app.admin(TenantId::new()), app.admin(TenantId::new())];
    let providers = [
        app.twilio(&tokens[0], "a").await,
        app.twilio(&tokens[1], "b").await,
    ];
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (base, t, p) = (
            app.base.clone(),
            tokens[i % 2].clone(),
            providers[i % 2].clone(),
        );
        tasks.push(tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{base}/api/v1/telephony/numbers"))
                .bearer_auth(t)
                .json(&json!({"e164": "+14155550100", "provider": "twilio", "credentials_id": p}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 1);
    let holders: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'NumberAttached'")
            .fetch_one(&app.env.pool)
            .await
            .unwrap();
    assert_eq!(holders, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attach_racing_delete_provider_never_leaves_a_number_on_a_deleted_provider() {
    let app = TestApp::spawn().await;
    let t = app.admin(TenantId::new());
    for i in 0..200 {
        let pid = app.twilio(&t, "tok").await;
        let (a, b) = (app.base.clone(), app.base.clone());
        let (t1, t2, p1, p2) = (t.clone(), t.clone(), pid.clone(), pid.clone());
        let e164 = format!("+1415555{i:04}");
        let attach = tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{a}/api/v1/telephony/numbers"))
                .bearer_auth(t1)
                .json(&json!({"e164": e164, "provider": "twilio", "credentials_id": p1}))
                .send()
                .await
                .unwrap()
                .status()
        });
        let delete = tokio::spawn(async move {
            reqwest::Client::new()
                .delete(format!("{b}/api/v1/telephony/providers/{p2}"))
                .bearer_auth(t2)
                .send()
                .await
                .unwrap()
                .status()
        });
        let (attached, deleted) = (attach.await.unwrap(), delete.await.unwrap());
        // Either order is fine; both succeeding is not.
        match (attached, deleted) {
            (StatusCode::CREATED, StatusCode::CONFLICT)
            | (StatusCode::NOT_FOUND, StatusCode::NO_CONTENT) => {}
            other => panic!("round {i}: {other:?}"),
        }
    }
    // Across the whole history: no NumberAttached whose provider was deleted
    // while the number was still attached.
    let orphans: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events n JOIN events d ON d.stream_id = (n.data->>'credentials_id')::uuid \
         AND d.event_type = 'ProviderDeleted' WHERE n.event_type = 'NumberAttached' \
         AND NOT EXISTS (SELECT 1 FROM events r WHERE r.stream_id = n.stream_id AND r.event_type = 'NumberReleased')",
    )
    .fetch_one(&app.env.pool)
    .await
    .unwrap();
    assert_eq!(orphans, 0);
    app.stop().await;
}
