//! The relay: publishes every stored event to JetStream, in global order.
//!
//! # Invariants
//! - The checkpoint moves only after JetStream acknowledged every event up to
//!   it; a crash republishes at most the unacknowledged tail, which the
//!   server drops by `Nats-Msg-Id`.
//! - Events are published in global order on one connection, many in flight
//!   (`jetstream::publish_ordered`): the server stores them in the order
//!   sent, and when any publish fails, everything from the first unacked
//!   event on is published again (the ones already stored are dropped as
//!   duplicates), so a stream's events land in version order.
//! - One relay publishes at a time (leader lock); the others wait.

mod jetstream;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub use self::jetstream::{ensure_stream, publish, publish_ordered, DUPLICATE_WINDOW};
use crate::checkpoint;
use crate::leader;
use crate::metrics::Metrics;
use crate::namespace::Namespace;
use crate::store::{self, Wake};

/// The relay's checkpoint and leader-lock name.
pub const NAME: &str = "relay";
const BATCH: i64 = 500;
/// Wake up this often even without a notification: a transaction that wrote
/// nothing can still have held the horizon back.
const IDLE_WAKE: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What the relay needs.
#[derive(Clone)]
pub struct Relay {
    pub pool: PgPool,
    /// This process's store, to wake on its commits without waiting for a
    /// NOTIFY.
    pub local: Option<store::Store>,
    pub js: async_nats::jetstream::Context,
    pub ns: Namespace,
    pub metrics: Arc<Metrics>,
}

impl Relay {
    /// The relay of `deps`' store, woken by this process's commits too.
    pub fn new(deps: &crate::app::Deps) -> Relay {
        Relay {
            pool: deps.pool.clone(),
            local: Some(deps.store.clone()),
            js: deps.js.clone(),
            ns: deps.ns.clone(),
            metrics: deps.metrics.clone(),
        }
    }

    /// Runs until `shutdown`: waits for leadership, relays while it leads.
    pub async fn run(self, shutdown: CancellationToken) {
        while let Some(mut lead) = leader::acquire(&self.pool, NAME, &shutdown).await {
            tokio::select! {
                r = self.relay_while_leading(&shutdown) => {
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "relay stopped; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                _ = lead.lost() => tracing::warn!("relay lost leadership"),
                _ = shutdown.cancelled() => return,
            }
        }
    }

    async fn relay_while_leading(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let mut backoff = Backoff::default();
        loop {
            match ensure_stream(&self.js, &self.ns).await {
                Ok(_) => break,
                Err(e) => backoff.wait("ensure stream", &e).await,
            }
        }
        let local = self.local.as_ref().map(|s| s.feed());
        let mut wake = Wake::new(&self.pool, local, None).await?;
        let mut at = checkpoint::load(&self.pool, NAME).await?;
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let batch = store::read_global(&self.pool, at, BATCH).await?;
            if batch.is_empty() {
                self.metrics.relay_lag.set(0);
                wake.wait(IDLE_WAKE).await?;
                continue;
            }
            let mut from = 0;
            let mut backoff = Backoff::default();
            while from < batch.len() {
                match publish_ordered(&self.js, &self.ns, &batch[from..]).await {
                    Ok(()) => from = batch.len(),
                    Err((acked, e)) => {
                        from += acked;
                        backoff.wait("publish", &e).await;
                    }
                }
            }
            self.metrics.relay_published.inc_by(batch.len() as u64);
            for e in &batch {
                let delay = crate::metrics::seconds_since(e.envelope.recorded_at);
                self.metrics.relay_delay.observe(delay);
            }
            at = batch.last().map(|e| e.position).unwrap_or(at);
            checkpoint::save(&self.pool, NAME, at).await?;
            // A full batch means more is waiting: measure how much.
            let lag = if batch.len() as i64 == BATCH {
                store::count_after(&self.pool, at, 1_000_000).await?
            } else {
                0
            };
            self.metrics.relay_lag.set(lag);
        }
    }
}

/// Exponential backoff from 100 ms to 30 s.
#[derive(Default)]
pub(crate) struct Backoff {
    attempt: u32,
}

impl Backoff {
    pub(crate) async fn wait(&mut self, what: &str, error: &anyhow::Error) {
        let delay =
            Duration::from_millis(100u64.saturating_mul(1 << self.attempt.min(9))).min(MAX_BACKOFF);
        self.attempt += 1;
        tracing::warn!(what, error = %error, retry_in_ms = delay.as_millis() as u64, "retrying");
        tokio::time::sleep(delay).await;
    }
}
