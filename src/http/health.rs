//! `/healthz`, `/readyz` and `/metrics`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::app::Deps;
use crate::{checkpoint, db};

/// Alive: the process answers.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready: PostgreSQL, NATS and Redis reachable, migrations applied, and no
/// projection stopped on an event it cannot apply. Each is reported.
pub async fn readyz(State(deps): State<Deps>) -> impl IntoResponse {
    let postgres = match db::migrations_applied(&deps.pool).await {
        Ok(true) => json!({"ok": true}),
        Ok(false) => json!({"ok": false, "error": "migrations not applied"}),
        Err(_) => json!({"ok": false, "error": "unreachable"}),
    };
    let nats_ok = matches!(
        deps.nats.connection_state(),
        async_nats::connection::State::Connected
    );
    let nats = json!({"ok": nats_ok});
    let mut redis_conn = deps.redis.clone();
    let pong: Result<String, _> = redis::cmd("PING").query_async(&mut redis_conn).await;
    let redis = json!({"ok": pong.is_ok()});
    let mut stopped = Vec::new();
    if let Ok(rows) = checkpoint::all(&deps.pool).await {
        for row in rows.into_iter().filter(|r| r.status == "stopped") {
            stopped.push(json!({"name": row.name, "error": row.error}));
        }
    }
    let projections = json!({"ok": stopped.is_empty(), "stopped": stopped});
    let ready = [&postgres, &nats, &redis, &projections]
        .iter()
        .all(|c| c["ok"] == json!(true));
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ready { "ready" } else { "not ready" },
            "checks": {"postgres": postgres, "nats": nats, "redis": redis, "projections": projections}
        })),
    )
}

/// Prometheus text exposition.
pub async fn metrics(State(deps): State<Deps>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        deps.metrics.encode(),
    )
}
