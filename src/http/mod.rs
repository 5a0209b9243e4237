//! The HTTP surface: routes outside `/api` (health, metrics) and, composed
//! in, the gateway's API.

mod health;

use axum::routing::get;
use axum::Router;

use crate::app::Deps;

/// The routes every process serves.
pub fn ops_router(deps: Deps) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .with_state(deps)
}

/// Serves `router` on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
