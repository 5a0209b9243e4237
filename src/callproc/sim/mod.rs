//! The Call Processor simulator (SPEC §7): `switchboard callproc-sim` and
//! the in-process stand-in `switchboard serve` uses when no
//! `SWITCHBOARD_CALL_PROCESSOR_URL` is set.
//!
//! It implements the contract (idempotent originate, signed status
//! callbacks), can be told to fail, time out, reject, or end calls busy /
//! no-answer / failed, and records every dial so a test can prove each
//! `call_id` was dialed exactly once. Routes:
//! - `POST /telephony/originate`: the contract.
//! - `GET /dials`: `{dials: [...], requests: n, live: n, peak_live: n}`.
//! - `GET /config`, `PUT /config`: the behaviour (a `ConfigPatch`,
//!   durations in ms).
//! - `POST /calls/{call_id}/hangup`: end a live call now.
//!
//! It never logs or returns credential values: they are parsed into
//! `PlainCredentials` and dropped, and the dial log holds no credentials.

mod callbacks;
mod config;
mod originate;
mod state;

use std::net::SocketAddr;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{ConfigPatch, Outcome, OutcomeMix, SimConfig};
pub use state::{Dial, SimState};

/// The simulator's routes over `state`.
pub fn router(state: SimState) -> Router {
    Router::new()
        .route("/telephony/originate", post(originate::originate))
        .route("/dials", get(dials))
        .route("/config", get(get_config).put(put_config))
        .route("/calls/{call_id}/hangup", post(hangup))
        .with_state(state)
}

/// Serves the simulator on `listener` until `shutdown`, which also stops
/// calls in progress and held answers.
pub async fn spawn(
    listener: TcpListener,
    config: SimConfig,
    shutdown: CancellationToken,
) -> SimHandle {
    let mut addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let state = SimState::new(config, shutdown.clone());
    let app = router(state.clone());
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "call processor simulator stopped");
        }
    });
    tracing::info!(%addr, "call processor simulator listening");
    SimHandle { state, addr }
}

/// A running simulator, for in-process use and tests.
#[derive(Debug, Clone)]
pub struct SimHandle {
    state: SimState,
    addr: SocketAddr,
}

impl SimHandle {
    /// `http://host:port`, the `CALL_PROCESSOR_URL` to use.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every dial so far, in order.
    pub fn dials(&self) -> Vec<Dial> {
        self.state.dials()
    }

    /// Originate requests received so far (repeats and refusals included).
    pub fn requests(&self) -> u64 {
        self.state.requests()
    }

    /// The shared state, e.g. to change the behaviour in process.
    pub fn state(&self) -> &SimState {
        &self.state
    }
}

async fn dials(State(state): State<SimState>) -> Json<Value> {
    let (live, peak_live) = state.live();
    Json(json!({
        "dials": state.dials(), "requests": state.requests(),
        "live": live, "peak_live": peak_live,
    }))
}

async fn get_config(State(state): State<SimState>) -> Json<Value> {
    Json(state.config().view())
}

async fn put_config(State(state): State<SimState>, Json(patch): Json<ConfigPatch>) -> Response {
    match state.update_config(patch) {
        Ok(config) => Json(config.view()).into_response(),
        Err(message) => originate::error(StatusCode::BAD_REQUEST, message),
    }
}

async fn hangup(State(state): State<SimState>, Path(call_id): Path<String>) -> Response {
    if state.hang_up(&call_id) {
        Json(json!({ "hung_up": true })).into_response()
    } else {
        originate::error(StatusCode::NOT_FOUND, "no live call with this call_id")
    }
}
