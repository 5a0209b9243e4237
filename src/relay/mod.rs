//! The relay: publishes every stored event to JetStream, in global order.
//!
//! # Invariants
//! - The checkpoint moves only after JetStream acknowledged every event up to
//!   it; a crash republishes at most the unacknowledged tail, which the
//!   server drops by `Nats-Msg-Id`.
//! - Events are published in global order on one connection, many in flight
//!   while the next are read, each expecting its predecessor as the stream's
//!   last message (`Nats-Expected-Last-Msg-Id`): the server stores an event
//!   only right after the one before it, so a publish lost in a NATS crash
//!   makes the server refuse every later one instead of storing them ahead
//!   of it. When any publish fails, everything after the checkpoint is
//!   published again (the ones already stored are dropped as duplicates), so
//!   a stream's events land in version order.
//! - One relay publishes at a time (leader lock); the others wait.

mod jetstream;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use self::jetstream::send;
pub use self::jetstream::{ensure_stream, DUPLICATE_WINDOW};
use async_nats::jetstream::context::PublishAckFuture;
use std::future::IntoFuture;

/// A publish's acknowledgement, as a future to poll.
type Ack = <PublishAckFuture as IntoFuture>::IntoFuture;
use crate::checkpoint;
use crate::leader;
use crate::metrics::Metrics;
use crate::namespace::Namespace;
use crate::store::{self, Wake};
use std::collections::VecDeque;

/// The relay's checkpoint and leader-lock name.
pub const NAME: &str = "relay";
const BATCH: i64 = 500;
/// Events published and not yet acknowledged, at most.
const IN_FLIGHT: usize = 4_096;
/// How often the checkpoint is saved while events keep coming.
const SAVE_EVERY: Duration = Duration::from_millis(20);
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
    /// Replicas of the events stream if this relay creates it.
    pub replicas: usize,
    pub metrics: Arc<Metrics>,
}

impl Relay {
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
            match ensure_stream(&self.js, &self.ns, self.replicas).await {
                Ok(_) => break,
                Err(e) => backoff.wait("ensure stream", &e).await,
            }
        }
        let mut wake = Wake::new(&self.pool, self.local.as_ref(), None).await?;
        let mut backoff = Backoff::default();
        loop {
            match self
                .publish_from_checkpoint(shutdown, &mut wake, &mut backoff)
                .await
            {
                Ok(()) => return Ok(()),
                // JetStream trouble: start again from the checkpoint (what
                // was stored since is dropped as duplicates).
                Err(Step::Publish(e)) => backoff.wait("publish", &e).await,
                Err(Step::Store(e)) => return Err(e),
            }
        }
    }

    /// Saves the checkpoint at `acked` (without waiting for the disk: a
    /// lost save republishes a tail JetStream drops as duplicates).
    async fn save(&self, acked: store::Position) -> Result<(), Step> {
        checkpoint::save_without_flush(&self.pool, NAME, acked)
            .await
            .map_err(|e| Step::Store(e.into()))
    }

    /// Reads ahead and publishes without waiting for each acknowledgement:
    /// up to `IN_FLIGHT` events are on their way while the next are read.
    /// Acknowledgements are taken in order, and the checkpoint is saved (at
    /// most every `SAVE_EVERY`, and soon after the relay catches up) at the
    /// last event whose acknowledgement, and every one before it, came.
    async fn publish_from_checkpoint(
        &self,
        shutdown: &CancellationToken,
        wake: &mut Wake,
        backoff: &mut Backoff,
    ) -> Result<(), Step> {
        let store_err = |e: anyhow::Error| Step::Store(e);
        let mut saved = checkpoint::load(&self.pool, NAME)
            .await
            .map_err(|e| store_err(e.into()))?;
        let (mut read_to, mut acked) = (saved, saved);
        let mut last_save = std::time::Instant::now();
        let mut in_flight: VecDeque<(store::StoredEvent, Ack)> = VecDeque::new();
        // The first publish of a run expects nothing: everything up to the
        // checkpoint is stored, and each later one expects its predecessor.
        let mut last_sent = None;
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            // Whether everything stored when last read has been read: a
            // batch short of `BATCH` reached the end, so the relay waits
            // for the next commit instead of reading once more to find
            // nothing (a commit in between has queued a wake already). A
            // full window reads nothing and knows nothing of the end.
            let mut read_all = false;
            if in_flight.len() < IN_FLIGHT {
                let batch = store::read_global(&self.pool, read_to, BATCH)
                    .await
                    .map_err(|e| store_err(e.into()))?;
                read_all = (batch.len() as i64) < BATCH;
                for event in batch {
                    read_to = event.position;
                    let ack = send(&self.js, &self.ns, &event, last_sent)
                        .await
                        .map_err(Step::Publish)?;
                    last_sent = Some(event.envelope.event_id);
                    in_flight.push_back((event, ack.into_future()));
                }
            }
            // Take the acknowledgements that are due: all of them when the
            // window is full or nothing more was read, else those already in.
            while let Some((event, ack)) = in_flight.pop_front() {
                let must_wait = in_flight.len() + 1 >= IN_FLIGHT || read_all;
                let ack = if must_wait {
                    ack.await
                } else {
                    let mut ack = ack;
                    match futures::poll!(&mut ack) {
                        std::task::Poll::Ready(r) => r,
                        std::task::Poll::Pending => {
                            in_flight.push_front((event, ack));
                            break;
                        }
                    }
                };
                ack.map_err(|e| Step::Publish(anyhow::anyhow!("publish ack: {e}")))?;
                acked = event.position;
                // Publishing works again: the next outage backs off from
                // the start, not from where the last one left off.
                backoff.reset();
                self.metrics.relay_published.inc();
                self.metrics
                    .relay_delay
                    .observe(crate::metrics::seconds_since(event.envelope.recorded_at));
            }
            let caught_up = in_flight.is_empty() && read_all;
            // Saved at most every SAVE_EVERY, caught up or not: under load
            // the relay catches up after nearly every commit, and a save per
            // commit was a statement per commit. What a restart re-publishes
            // in between, JetStream drops as duplicates.
            if acked > saved && last_save.elapsed() >= SAVE_EVERY {
                self.save(acked).await?;
                saved = acked;
                last_save = std::time::Instant::now();
                if !caught_up {
                    let lag = store::count_after(&self.pool, acked, 1_000_000)
                        .await
                        .map_err(|e| store_err(e.into()))?;
                    self.metrics.relay_lag.set(lag);
                }
            }
            if caught_up {
                self.metrics.relay_lag.set(0);
                loop {
                    // With a save still due, wake for it when it is, save,
                    // and go on waiting: nothing new was committed, so
                    // there is nothing to read.
                    let due = acked > saved;
                    let idle = if due {
                        SAVE_EVERY.saturating_sub(last_save.elapsed())
                    } else {
                        IDLE_WAKE
                    };
                    let committed = wake
                        .wait(idle, read_to)
                        .await
                        .map_err(|e| store_err(e.into()))?;
                    if committed || !due {
                        break;
                    }
                    self.save(acked).await?;
                    saved = acked;
                    last_save = std::time::Instant::now();
                }
            }
        }
    }
}

/// Why publishing stopped: JetStream (retried here) or the store (the role
/// restarts).
enum Step {
    Publish(anyhow::Error),
    Store(anyhow::Error),
}

/// Exponential backoff from 100 ms to 30 s.
#[derive(Default)]
pub(crate) struct Backoff {
    attempt: u32,
}

impl Backoff {
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    pub(crate) async fn wait(&mut self, what: &str, error: &anyhow::Error) {
        let delay =
            Duration::from_millis(100u64.saturating_mul(1 << self.attempt.min(9))).min(MAX_BACKOFF);
        self.attempt += 1;
        tracing::warn!(what, error = %error, retry_in_ms = delay.as_millis() as u64, "retrying");
        tokio::time::sleep(delay).await;
    }
}
