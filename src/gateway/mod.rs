//! The HTTP gateway: JWT-authenticated `/api/v1` routes that validate
//! requests, run commands against the event store and read projections.
//!
//! # Invariants
//! - The tenant comes only from the verified token; every query and every
//!   command is scoped to it, and another tenant's resource is answered
//!   exactly like a missing one (404).
//! - Bad input is a 4xx that names the field and appends nothing.
//! - Handlers extract, run a `crate::commands` command through the one write
//!   path (`Gateway::run`: load, decide, append, retry on conflict, wait
//!   for the projections so the caller reads its own write), and render.
//! - Every error leaves through `ApiError`, the one mapping to HTTP.

mod audit;
pub mod callbacks;
mod calls;
mod console;
mod destinations;
pub mod error;
mod etag;
pub mod feed;
mod fresh;
mod idempotency;
pub mod json;
mod limits;
mod list;
mod metrics_layer;
mod numbers;
pub mod openapi;
mod outcomes;
mod providers;
mod resource;
mod write;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::Method;
use axum::routing::get;
use axum::Router;

use crate::app::Deps;
use crate::auth::{Scope, Verifier};
use crate::domain::CallLimits;
use crate::secrets::Secrets;
pub use error::ApiError;

/// What every handler shares: cheap to clone (axum clones the state for
/// every request; cloning each dependency, a secret and strings among them,
/// and dropping them again was 4 % of the originate path's CPU).
#[derive(Clone)]
pub struct Gateway(Arc<GatewayState>);

impl std::ops::Deref for Gateway {
    type Target = GatewayState;
    fn deref(&self) -> &GatewayState {
        &self.0
    }
}

impl From<GatewayState> for Gateway {
    fn from(state: GatewayState) -> Gateway {
        Gateway(Arc::new(state))
    }
}

/// The gateway's dependencies and settings (`Gateway` shares one).
pub struct GatewayState {
    pub deps: Deps,
    pub verifier: Arc<Verifier>,
    pub secrets: Arc<Secrets>,
    /// Caps of a tenant that never set its own.
    pub default_limits: CallLimits,
    /// How long a write waits for its projections before answering, so a
    /// read right after it sees it.
    pub read_your_writes: Duration,
    /// Live counters for `/call-limits/usage`.
    pub caps: crate::caps::Caps,
    /// Verifies Call Processor callbacks.
    pub callback_secret: secrecy::SecretString,
    /// How long an originate waits for its outcome before answering 202.
    pub originate_wait: Duration,
    /// Originates waiting for their outcome (`spawn_followers` feeds it).
    pub outcomes: Arc<outcomes::Outcomes>,
    /// (tenant, e164) → number id, as last resolved; an originate refused
    /// on a remembered id resolves it again.
    pub caller_ids: Arc<quick_cache::sync::Cache<(events::TenantId, String), events::NumberId>>,
    /// The live event feed's tail of the store (`spawn_followers` runs it).
    pub feed: Arc<feed::Hub>,
}

impl FromRef<Gateway> for Arc<Verifier> {
    fn from_ref(gw: &Gateway) -> Arc<Verifier> {
        gw.verifier.clone()
    }
}

/// The `/api/v1` routes.
pub fn router(gw: Gateway) -> Router {
    let api = Router::new()
        .route(
            "/api/v1/telephony/providers",
            get(providers::list).post(providers::create),
        )
        .route(
            "/api/v1/telephony/providers/{id}",
            get(providers::get_one)
                .patch(providers::update)
                .delete(providers::delete),
        )
        .route(
            "/api/v1/telephony/numbers",
            get(numbers::list).post(numbers::create),
        )
        .route(
            "/api/v1/telephony/numbers/{id}",
            get(numbers::get_one)
                .patch(numbers::update)
                .delete(numbers::delete),
        )
        .route(
            "/api/v1/call-limits",
            get(limits::get_limits)
                .patch(limits::patch_limits)
                .put(limits::put_limits),
        )
        .route("/api/v1/call-limits/usage", get(limits::usage))
        .route(
            "/api/v1/destinations",
            get(destinations::get_destinations).put(destinations::put_destinations),
        )
        .route(
            "/api/v1/calls/originate",
            axum::routing::post(calls::originate),
        )
        .route("/api/v1/calls", get(calls::list_calls))
        .route("/api/v1/calls/{call_id}", get(calls::get_call))
        .route("/api/v1/audit/events", get(audit::events))
        .route("/api/v1/audit/streams/{stream_id}", get(audit::stream))
        .route("/api/v1/audit/verify", get(audit::verify))
        .route("/api/v1/events/stream", get(feed::stream))
        .route("/api/v1/openapi.json", get(openapi::serve))
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(
            gw.clone(),
            idempotency::layer,
        ))
        .layer(DefaultBodyLimit::max(json::BODY_LIMIT));
    let internal = Router::new().route(callbacks::PATH, axum::routing::post(callbacks::call_event));
    let metrics = gw.deps.metrics.clone();
    api.merge(internal)
        .merge(console::router())
        .with_state(gw)
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics_layer::record,
        ))
}

/// The scope a write needs, for each write route (`None`: no such write,
/// the router answers 404 or 405): what the idempotency layer checks before
/// it replays a stored answer. Each handler checks the same scope again
/// (`gateway_writes::idempotency_key_is_authorized_before_it_replays`
/// holds them together).
pub(crate) fn write_scope(method: &Method, path: &str) -> Option<Scope> {
    let path = path.strip_prefix("/api/v1/")?;
    let segments: Vec<&str> = path.split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["telephony", "providers" | "numbers"])
        | ("PATCH" | "DELETE", ["telephony", "providers" | "numbers", _]) => {
            Some(Scope::TelephonyWrite)
        }
        ("PATCH" | "PUT", ["call-limits"]) | ("PUT", ["destinations"]) => Some(Scope::LimitsWrite),
        ("POST", ["calls", "originate"]) => Some(Scope::CallsWrite),
        _ => None,
    }
}

async fn fallback() -> ApiError {
    ApiError::NotFound("route")
}

impl Gateway {
    /// The gateway the settings call for, on `deps`.
    pub fn from_settings(
        settings: &crate::config::Settings,
        deps: Deps,
        caps: crate::caps::Caps,
    ) -> anyhow::Result<Gateway> {
        let verifier = Verifier::from_settings(settings, || settings.jwt_secret())?;
        let ring = crate::secrets::MasterKeyring::from_secret(&settings.master_key()?)
            .map_err(|e| anyhow::anyhow!("SWITCHBOARD_MASTER_KEY: {e}"))?;
        Ok(Gateway::from(GatewayState {
            deps,
            verifier: Arc::new(verifier),
            secrets: Arc::new(Secrets::new(ring)),
            default_limits: settings.default_limits(),
            read_your_writes: Duration::from_secs(5),
            caps,
            callback_secret: settings.callback_secret()?,
            originate_wait: settings.originate_wait,
            outcomes: Arc::default(),
            caller_ids: Arc::new(quick_cache::sync::Cache::new(100_000)),
            feed: Arc::new(feed::Hub::new(
                settings.feed_heartbeat,
                settings.feed_buffer,
            )),
        }))
    }

    /// Starts what feeds the gateway's waits: call outcomes (from this
    /// process's commits and from NATS) and other processes' projection
    /// progress. They run in the pipeline stage, so requests still draining
    /// when the HTTP stage stops get their answers.
    pub fn spawn_followers(&self, sup: &mut crate::supervisor::Supervisor) {
        use crate::supervisor::Stage;
        let d = &self.deps;
        let (outcomes, store) = (self.outcomes.clone(), d.store.clone());
        sup.spawn_loop(Stage::Pipeline, "gateway:outcomes-store", |stop| {
            outcomes.follow_store(store, stop)
        });
        let (outcomes, nats, ns) = (self.outcomes.clone(), d.nats.clone(), d.ns.clone());
        sup.spawn_loop(Stage::Pipeline, "gateway:outcomes-nats", |stop| {
            outcomes.follow_nats(nats, ns, stop)
        });
        let (feed, deps) = (self.feed.clone(), d.clone());
        sup.spawn_loop(Stage::Pipeline, "gateway:event-feed", |stop| {
            feed.follow(deps, stop)
        });
        // Open feeds end when the HTTP stage stops, or its graceful
        // shutdown would wait on them forever.
        let feed = self.feed.clone();
        sup.spawn_loop(Stage::Http, "gateway:event-feed-close", |stop| async move {
            stop.cancelled().await;
            feed.close();
        });
        let (progress, pool) = (d.progress.clone(), d.pool.clone());
        sup.spawn_loop(Stage::Pipeline, "gateway:progress", |stop| async move {
            progress.listen(pool, stop).await
        });
    }
}
