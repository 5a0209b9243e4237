//! `audit rebuild` under load: while a client keeps creating providers and
//! numbers through HTTP, projections are rebuilt and swapped in; afterwards
//! the live tables equal a rebuild from the store (no event missed or
//! applied twice) and the projection keeps serving new writes.

use events::TenantId;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchboard::{audit, checkpoint, projection};
use uuid::Uuid;

use crate::app::TestApp;
use crate::support::{eventually, last_position};

/// Keeps writing until `stop`: a provider, a number on it, reads of both
/// tables, a relabel.
/// Counts finished rounds in `rounds`; returns how many providers and
/// numbers it created.
async fn writer(
    base: String,
    token: String,
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicU32>,
    seed: u32,
) -> (u32, u32) {
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let (mut providers, mut numbers) = (0, 0);
    while !stop.load(Ordering::Relaxed) {
        let r = post(
            "/api/v1/telephony/providers",
            json!({"provider": "twilio", "label": format!("w{providers}"),
                "credentials": {"account_sid": format!("AC{}", "1f".repeat(16)), "auth_token": "t"}}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let id = r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        providers += 1;
        let e164 = format!("+1415{seed:01}{:06}", numbers);
        let r = post(
            "/api/v1/telephony/numbers",
            json!({"e164": e164, "provider": "twilio", "credentials_id": id, "agent_id": Uuid::new_v4()}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        numbers += 1;
        // Reads of the read tables keep working while they are swapped.
        for path in [
            "/api/v1/telephony/providers?limit=5",
            "/api/v1/telephony/numbers?limit=5",
        ] {
            let r = client
                .get(format!("{base}{path}"))
                .bearer_auth(&token)
                .send()
                .await;
            assert_eq!(r.unwrap().status(), StatusCode::OK, "{path}");
        }
        let r = client
            .patch(format!("{base}/api/v1/telephony/providers/{id}"))
            .bearer_auth(&token)
            .json(&json!({"label": format!("relabeled-{id}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        rounds.fetch_add(1, Ordering::Relaxed);
    }
    (providers, numbers)
}

async fn table_json(app: &TestApp, schema: &str, table: &str) -> Value {
    sqlx::query_scalar(&format!(
        "SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]') FROM {schema}.{table} t"
    ))
    .fetch_one(&app.env.pool)
    .await
    .unwrap()
}

async fn oid(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT '{table}'::regclass::oid::bigint"))
        .fetch_one(&app.env.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn audit_rebuild_under_concurrent_writes_equals_the_live_projection() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::new();
    let token = app.admin(tenant);
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU32::new(0));
    let writers: Vec<_> = (1..=3)
        .map(|seed| {
            let (base, token) = (app.base.clone(), token.clone());
            tokio::spawn(writer(base, token, stop.clone(), rounds.clone(), seed))
        })
        .collect();
    let written = || rounds.load(Ordering::Relaxed);
    let started = eventually(Duration::from_secs(20), || async { written() >= 3 }).await;
    assert!(started, "the writers got going");

    // Rebuild and swap both projections, round after round, until writes
    // have been seen to complete while rebuilds were running.
    let pool = &app.env.pool;
    let mut swaps = Vec::new();
    let first = written();
    for round in 0.. {
        for name in ["providers", "numbers"] {
            let before = oid(&app, name).await;
            let mut batches = 0;
            let report = audit::rebuild::rebuild(pool, name, &mut |_| batches += 1)
                .await
                .unwrap_or_else(|e| panic!("rebuild {name} (round {round}): {e:#}"));
            assert!(batches > 0);
            assert_ne!(oid(&app, name).await, before, "{name} was swapped");
            swaps.push(report);
        }
        if round >= 1 && written() > first {
            break;
        }
        assert!(round < 50, "no write completed during the rebuilds");
    }
    // A few more writes land on the swapped-in tables, then writes stop.
    let last = written();
    let more = eventually(Duration::from_secs(20), || async { written() >= last + 3 }).await;
    assert!(more, "writes continue after the swaps");
    stop.store(true, Ordering::Relaxed);
    let (mut providers, mut numbers) = (0, 0);
    for w in writers {
        let (p, n) = w.await.unwrap();
        providers += p;
        numbers += n;
    }

    // Writes have stopped: let the live projectors catch up, then compare
    // with a rebuild from nothing.
    let end = last_position(pool).await;
    for p in projection::all() {
        let name = projection::checkpoint_name(&*p);
        let caught_up = eventually(Duration::from_secs(20), || async {
            checkpoint::load(pool, &name).await.unwrap() >= end
        })
        .await;
        assert!(caught_up, "{name} caught up");
    }
    let rows = checkpoint::all(pool).await.unwrap();
    assert!(rows.iter().all(|c| c.status == "running"), "{rows:?}");
    for name in ["providers", "numbers"] {
        let p = audit::rebuild::find(name).unwrap();
        let schema = format!("fresh_{name}");
        projection::rebuild_to_schema(pool, &*p, &schema, Some(end))
            .await
            .unwrap();
        let live = table_json(&app, "public", name).await;
        assert_eq!(live, table_json(&app, &schema, name).await, "{name}");
        let expected = if name == "providers" {
            providers
        } else {
            numbers
        };
        assert_eq!(live.as_array().unwrap().len(), expected as usize, "{name}");
    }
    for name in ["providers", "numbers"] {
        let leftover: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rebuild\\_' || $1 || '%'",
        )
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(leftover, 0, "the copy's schema is gone");
    }

    // The swapped-in projection keeps working.
    let id = app.twilio(&token, "after-swap").await;
    let r = app
        .get(&format!("/api/v1/telephony/providers/{id}"), &token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .attach(&token, "+12025550188", &id, Some(Uuid::new_v4()))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let number = r.body["id"].as_str().unwrap();
    let r = app
        .get(&format!("/api/v1/telephony/numbers/{number}"), &token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    eprintln!("swaps: {swaps:?}");
    app.stop().await;
}
