//! `switchboard callproc`: the SPEC §7 Call Processor for real carriers.
//!
//! It takes the same `POST /telephony/originate` the simulator does, places
//! the call through the tenant's carrier (Twilio, Plivo, Vobiz) on that
//! carrier's own wire format with the credentials the worker sent, and turns
//! the carrier's status callbacks into Switchboard's signed callbacks.
//!
//! - `dials`: the durable call_id → carrier state in PostgreSQL, written
//!   before the carrier is asked. Carriers take no idempotency key, so this
//!   row is what makes one call_id one POST (see its state machine).
//! - `originate`: the contract endpoint: claim, post, or reconcile a POST
//!   whose answer was lost by listing the carrier's calls, never re-posting.
//! - `callbacks`: carrier status callbacks, verified with the carrier's own
//!   signature, mapped to our statuses and forwarded, signed.
//! - `twilio`, `plivo` (Plivo and Vobiz): each carrier's wire format,
//!   error numbers and signature scheme.
//! - `outcome`: what a carrier answer means for "may a call exist now?".
//! - `seal`: the callback-signing token kept sealed beside the dial.
//!
//! # Invariants
//! - A call_id is posted to a carrier at most once, unless the carrier's own
//!   answer (a rate-limit refusal, a refused connection) or its call list
//!   proves no call was created.
//! - Credentials are used for the request and dropped; the only one kept is
//!   the callback-signing token, sealed. Logs, errors and answers carry none
//!   (carrier error texts are redacted before they leave).
//! - A callback is forwarded only if the carrier's signature verifies.

mod callbacks;
pub mod dials;
mod originate;
pub mod outcome;
pub mod plivo;
mod seal;
pub mod settings;
pub mod twilio;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Utc};
use events::{CallId, ProviderKind};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use seal::SealKey;
pub use settings::CarrierSettings;

/// How far a carrier's clock (its `date_created`) may be behind ours when a
/// reconcile matches calls to a lost POST.
pub const CLOCK_SKEW: chrono::Duration = chrono::Duration::seconds(5);

/// One call to place, carrier-agnostic.
#[derive(Debug)]
pub struct Dial<'a> {
    pub call_id: CallId,
    pub from: &'a str,
    pub to: &'a str,
    /// `{public_url}/carriers/{carrier}/{call_id}`; each carrier's callbacks
    /// hang below it.
    pub callback_base: String,
    pub ring_timeout_s: u32,
    pub twiml: &'a str,
}

impl Dial<'_> {
    pub fn callback_url(&self, leaf: &str) -> String {
        format!("{}/{leaf}", self.callback_base)
    }
}

/// A call the carrier lists, found while reconciling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub carrier_call_id: String,
    pub created: DateTime<Utc>,
}

/// A carrier status callback, in our vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallStatus {
    pub carrier_call_id: String,
    pub status: &'static str,
    pub duration_s: Option<u64>,
    pub timestamp: Option<DateTime<Utc>>,
}

/// What every request handler shares.
#[derive(Clone)]
pub struct Adapter {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    carriers: reqwest::Client,
    callbacks: reqwest::Client,
    settings: CarrierSettings,
    public_url: String,
    callback_secret: SecretString,
    seal: SealKey,
}

impl Adapter {
    pub fn new(
        pool: PgPool,
        settings: CarrierSettings,
        callback_secret: SecretString,
        public_url: String,
    ) -> Self {
        let client = |timeout: Duration| {
            reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                // A redirect could carry Basic credentials to another host.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client with the built-in rustls roots always builds")
        };
        let seal = SealKey::derive(callback_secret.expose_secret().as_bytes());
        Adapter {
            inner: Arc::new(Inner {
                pool,
                carriers: client(settings.carrier_timeout),
                callbacks: client(Duration::from_secs(10)),
                public_url: public_url.trim_end_matches('/').to_owned(),
                settings,
                callback_secret,
                seal,
            }),
        }
    }

    /// How long the owner of a dial may take: one carrier request with its
    /// timeout, then the margin before another request may reconcile it.
    fn lease(&self) -> Duration {
        self.inner.settings.carrier_timeout + self.inner.settings.reconcile_margin
    }

    fn base_url(&self, kind: ProviderKind) -> &str {
        let s = &self.inner.settings;
        match kind {
            ProviderKind::Twilio => &s.twilio_url,
            ProviderKind::Plivo => &s.plivo_url,
            ProviderKind::Vobiz => &s.vobiz_url,
        }
        .trim_end_matches('/')
    }

    fn callback_base(&self, kind: ProviderKind, call_id: CallId) -> String {
        format!(
            "{}/carriers/{}/{call_id}",
            self.inner.public_url,
            kind.as_str()
        )
    }
}

/// The adapter's routes.
pub fn router(adapter: Adapter) -> Router {
    Router::new()
        .route("/telephony/originate", post(originate::originate))
        .route("/carriers/twilio/{call_id}/status", post(callbacks::twilio))
        .route(
            "/carriers/plivo/{call_id}/{event}",
            post(callbacks::plivo).get(callbacks::plivo),
        )
        .route(
            "/carriers/vobiz/{call_id}/{event}",
            post(callbacks::vobiz).get(callbacks::vobiz),
        )
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .with_state(adapter)
}

/// Serves the adapter on `listener` until `shutdown`; the bound address.
pub async fn spawn(
    listener: TcpListener,
    adapter: Adapter,
    shutdown: CancellationToken,
) -> SocketAddr {
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let app = router(adapter);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "carrier adapter stopped");
        }
    });
    tracing::info!(%addr, "carrier adapter listening");
    addr
}

/// `switchboard callproc`: migrate, listen, serve until `stop` (the CLI's
/// SIGINT/SIGTERM) completes.
pub async fn run(
    settings: &crate::config::Settings,
    carrier: CarrierSettings,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let secret = settings.callback_secret()?;
    let pool = crate::db::prepare(&settings.db.url, settings.db.max_connections).await?;
    let listener = TcpListener::bind(carrier.listen).await?;
    let addr = listener.local_addr()?;
    let public_url = carrier
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let adapter = Adapter::new(pool, carrier, secret, public_url.clone());
    let shutdown = CancellationToken::new();
    spawn(listener, adapter, shutdown.clone()).await;
    println!("carrier adapter listening on http://{addr} (carriers call back at {public_url})");
    stop.await;
    shutdown.cancel();
    Ok(())
}
