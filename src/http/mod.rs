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

/// Every request gets an `x-request-id` (the client's, or a new UUID), echoed
/// in the response and carried by the request's tracing span, so a logged
/// failure can be matched to the call that saw it. Only the method and path
/// are logged: query strings and bodies may carry client data.
pub fn with_request_ids(router: Router) -> Router {
    use axum::http::{HeaderName, Request};
    use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
    use tower_http::trace::TraceLayer;
    let header = HeaderName::from_static("x-request-id");
    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
        let id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
    });
    router
        .layer(PropagateRequestIdLayer::new(header.clone()))
        .layer(trace)
        .layer(SetRequestIdLayer::new(header, MakeRequestUuid))
}
