//! Hash-chain verification through the API and the CLI's library function:
//! a payload UPDATE, a DELETE and a swap of two events made directly in the
//! table are each found and named, and the CLI exits with an error.

use clap::Parser;
use events::TenantId;
use reqwest::StatusCode;
use serde_json::{json, Value};
use switchboard::audit::verify;
use switchboard::cli::Cli;
use switchboard::store::{self, StoredEvent};
use uuid::Uuid;

use crate::app::TestApp;

async fn stream(app: &TestApp, id: &str) -> Vec<StoredEvent> {
    let id = Uuid::parse_str(id).unwrap();
    store::read_stream(&app.env.pool, id, None).await.unwrap()
}

async fn exec(app: &TestApp, sql: &str, id: Uuid) {
    sqlx::query(sql)
        .bind(id)
        .execute(&app.env.pool)
        .await
        .unwrap();
}

/// The break the report names for `stream`: (kind, version, event_id).
fn named(report: &Value, stream: &str) -> (String, i64, Option<String>) {
    let b = report["breaks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["stream_id"] == stream)
        .unwrap_or_else(|| panic!("no break for {stream} in {report}"));
    (
        b["kind"].as_str().unwrap().to_owned(),
        b["version"].as_i64().unwrap(),
        b["event_id"].as_str().map(str::to_owned),
    )
}

#[tokio::test]
async fn audit_verify_names_altered_removed_and_reordered_events() {
    let app = TestApp::spawn().await;
    let (a, b) = (TenantId::new(), TenantId::new());
    let (ta, tb) = (app.admin(a), app.admin(b));
    let mut providers = Vec::new();
    for i in 0..3 {
        let id = app.twilio(&ta, "secret").await;
        for label in ["two", "three"] {
            let r = app
                .patch(
                    &format!("/api/v1/telephony/providers/{id}"),
                    &ta,
                    json!({"label": format!("{label}-{i}")}),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK);
        }
        providers.push(id);
    }
    app.twilio(&tb, "secret").await;

    let r = app.get("/api/v1/audit/verify", &ta).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["ok"], true, "{}", r.body);
    // Three providers and the tenant's key stream.
    assert_eq!(r.body["streams_checked"], 4);
    assert_eq!(r.body["events_checked"], 10);
    assert_eq!(r.body["breaks"], json!([]));

    // A payload altered in place.
    let altered = stream(&app, &providers[0]).await[1].envelope.event_id;
    exec(
        &app,
        "UPDATE events SET data = '{\"label\": \"forged\"}' WHERE event_id = $1",
        altered,
    )
    .await;
    // An event removed from the middle.
    let evs = stream(&app, &providers[1]).await;
    exec(
        &app,
        "DELETE FROM events WHERE event_id = $1",
        evs[1].envelope.event_id,
    )
    .await;
    let after_gap = evs[2].envelope.event_id;
    // Two events swapped: versions 2 and 3 trade places.
    let evs = stream(&app, &providers[2]).await;
    let (x, y) = (evs[1].envelope.event_id, evs[2].envelope.event_id);
    let mut tx = app.env.pool.begin().await.unwrap();
    for (id, v) in [(x, 1000), (y, 2), (x, 3)] {
        sqlx::query("UPDATE events SET version = $2 WHERE event_id = $1")
            .bind(id)
            .bind(v as i64)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    let s = |u: Uuid| Some(u.to_string());
    let expect = |report: &Value| {
        assert_eq!(report["ok"], false);
        assert_eq!(report["breaks"].as_array().unwrap().len(), 3, "{report}");
        assert_eq!(
            named(report, &providers[0]),
            ("altered".into(), 2, s(altered))
        );
        assert_eq!(
            named(report, &providers[1]),
            ("missing".into(), 2, s(after_gap))
        );
        assert_eq!(named(report, &providers[2]), ("reordered".into(), 2, s(y)));
    };
    let r = app.get("/api/v1/audit/verify", &ta).await;
    assert_eq!(r.status, StatusCode::OK);
    expect(&r.body);
    let detail = r.body["breaks"][0]["detail"].as_str().unwrap();
    assert!(!detail.is_empty());
    // The other tenant's chains are intact, and it sees none of these.
    let theirs = app.get("/api/v1/audit/verify", &tb).await.body;
    assert_eq!(
        (theirs["ok"].clone(), theirs["breaks"].clone()),
        (json!(true), json!([]))
    );

    // The CLI's library function, over every tenant and over one.
    let all = verify::verify_collect(&app.env.pool, None).await.unwrap();
    assert_eq!(all.streams_checked, 6, "two tenant streams, four providers");
    expect(&serde_json::to_value(&all).unwrap());
    let one = verify::verify_collect(&app.env.pool, Some(a))
        .await
        .unwrap();
    expect(&serde_json::to_value(&one).unwrap());

    // `switchboard audit verify` fails (non-zero exit) on a break, and
    // passes for a tenant whose chains hold.
    let run = |extra: &[&str]| {
        let mut args = vec![
            "switchboard",
            "--database-url",
            &app.env.db_url,
            "audit",
            "verify",
        ];
        args.extend_from_slice(extra);
        switchboard::cli::run(Cli::parse_from(args))
    };
    let err = run(&["--format", "table"]).await.unwrap_err();
    assert!(err.to_string().contains("3 hash chain break"), "{err}");
    run(&["--tenant", &b.to_string()]).await.unwrap();
    app.stop().await;
}
