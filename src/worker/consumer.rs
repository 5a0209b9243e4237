//! The JetStream side: durable pull consumers and the loops that feed them.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, PullConsumer};
use async_nats::jetstream::AckKind;
use events::Envelope;
use futures::StreamExt;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::process::{Attempt, Handled};
use super::Worker;
use crate::commands::call::CallState;
use crate::relay::ensure_stream;
use crate::store::{Head, StoredEvent};

/// Shared by every worker: JetStream hands each message to one of them.
pub const ORIGINATE_CONSUMER: &str = "originate";
/// The slot releasers, one per event type that frees a slot (nats-server 2.9
/// filters a consumer on one subject): a consumer of every call event would
/// be handed, and would decode and acknowledge, five events a call for
/// nothing.
pub const RELEASE_CONSUMERS: [(&str, &str); 3] = [
    ("caps-release-ended", "CallEnded"),
    ("caps-release-failed", "OriginateFailed"),
    ("caps-release-rejected", "OriginateRejected"),
];
/// How long a delivery left to another worker's claim waits before it
/// looks again (`Handled::HeldElsewhere`).
const DEFER_STEP: Duration = Duration::from_secs(1);

/// The single releaser of earlier versions, removed on start (its work is
/// the new ones', which start from the stream's beginning; releases are
/// idempotent).
const LEGACY_RELEASE_CONSUMER: &str = "caps-release";

/// Creates (or finds) the durable consumers: the originate one, and the
/// releasers.
pub async fn ensure_consumers(w: &Worker) -> anyhow::Result<(PullConsumer, Vec<PullConsumer>)> {
    let ns = &w.deps.ns;
    let stream = ensure_stream(&w.deps.js, ns, w.deps.stream_replicas).await?;
    let originate = stream
        .get_or_create_consumer(
            ORIGINATE_CONSUMER,
            pull::Config {
                durable_name: Some(ORIGINATE_CONSUMER.into()),
                filter_subject: ns.call_events("OriginateRequested"),
                ack_policy: AckPolicy::Explicit,
                ack_wait: w.ack_wait,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("originate consumer: {e}"))?;
    let mut release = Vec::new();
    for (name, event_type) in RELEASE_CONSUMERS {
        release.push(
            stream
                .get_or_create_consumer(
                    name,
                    pull::Config {
                        durable_name: Some(name.into()),
                        filter_subject: ns.call_events(event_type),
                        ack_policy: AckPolicy::Explicit,
                        ack_wait: Duration::from_secs(30),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| anyhow::anyhow!("release consumer {name}: {e}"))?,
        );
    }
    let _ = stream.delete_consumer(LEGACY_RELEASE_CONSUMER).await;
    Ok((originate, release))
}

impl Worker {
    /// Runs both consumers until `shutdown` (or, in tests, a crash point).
    /// On `shutdown` it stops pulling and finishes the calls it holds; what
    /// is still unfinished when the supervisor's grace runs out is aborted
    /// and redelivered to another worker (never dialed twice: see "No
    /// double dial" in ARCHITECTURE.md).
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            match self.run_once(&shutdown).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "worker stopped; restarting");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
        }
    }

    async fn run_once(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let (originate, release) = tokio::select! {
            c = ensure_consumers(self) => c?,
            _ = shutdown.cancelled() => return Ok(()),
        };
        // The releaser is this role's too: it ends with the originate loop
        // (dropping the set aborts it).
        let mut own = tokio::task::JoinSet::new();
        let (w, stop) = (self.clone(), shutdown.clone());
        own.spawn(async move { w.release_loop(release, stop).await });
        self.originate_loop(originate, shutdown).await
    }

    async fn originate_loop(
        &self,
        consumer: PullConsumer,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let permits = Arc::new(Semaphore::new(self.concurrency.max(1)));
        // Pull no more than this worker can start: a message that waits in a
        // local buffer gets no progress acks, and would be redelivered to
        // another worker while still queued here.
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(self.concurrency.max(1))
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!("originate messages: {e}"))?;
        // One task per message, owned here: when this loop ends, so do they.
        let mut calls = JoinSet::new();
        let crashed = CancellationToken::new();
        // Shared by the calls' tasks: cloning the worker itself per message
        // (its dependencies, strings and all) showed in the profile.
        let me = Arc::new(self.clone());
        // Calls the gateway of this process requests, handed over the moment
        // they commit (see `hand_off`).
        let mut local = Some(self.deps.store.feed());
        let pulled = loop {
            // Finished handlings are reaped as we go, so the set stays small.
            while calls.try_join_next().is_some() {}
            let next = tokio::select! {
                m = messages.next() => m,
                b = committed(&mut local) => {
                    match b {
                        Ok(batch) => me.hand_off(&batch, &permits, &crashed, &mut calls),
                        // Missed batches: JetStream delivers those calls.
                        Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => local = None,
                    }
                    continue;
                }
                _ = shutdown.cancelled() => break Ok(()),
                _ = crashed.cancelled() => return Ok(()),
            };
            let Some(msg) = next else { break Ok(()) };
            let msg = match msg {
                Ok(m) => m,
                Err(e) => break Err(anyhow::anyhow!("originate message: {e}")),
            };
            let (w, crash, permits) = (me.clone(), crashed.clone(), permits.clone());
            calls.spawn(async move { w.serve_message(msg, permits, crash).await });
        };
        // Stopping (or the stream broke): finish the calls held.
        tokio::select! {
            _ = async { while calls.join_next().await.is_some() {} } => {}
            _ = crashed.cancelled() => {}
        }
        pulled
    }

    /// The hand-off: each call requested in this process starts at once,
    /// on the `OriginateRequested` its gateway just committed, instead of
    /// after the relay has published it and JetStream has delivered it
    /// here (docs/BENCHMARKS.md, fifth session, has what that saves). JetStream still delivers it: that delivery waits
    /// for the call's turn, finds it done and acknowledges it, or finishes
    /// what the hand-off could not (an error, a crash), so the message stays
    /// the guarantee and the hand-off is only the fast way. A worker of
    /// another process that gets the delivery meanwhile leaves the call to
    /// its claimer (`Handled::HeldElsewhere`). A worker with no free permit
    /// takes nothing: the call waits for JetStream, as every call did.
    fn hand_off(
        self: &Arc<Self>,
        batch: &[StoredEvent],
        permits: &Arc<Semaphore>,
        crash: &CancellationToken,
        calls: &mut JoinSet<()>,
    ) {
        for e in batch {
            if e.envelope.event_type != "OriginateRequested" || e.envelope.version != 1 {
                continue;
            }
            // The call's state is this committed event: kept now, the
            // handling below (and the callbacks after it) read nothing to
            // learn it. A message from NATS is never folded so; this is
            // the store's own record of what this process wrote.
            let _ = self.deps.store.advance(
                e.envelope.stream_id,
                CallState::default(),
                Head::NONE,
                std::slice::from_ref(e),
                CallState::apply,
            );
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                return;
            };
            let (w, crash, cause) = (self.clone(), crash.clone(), e.envelope.clone());
            calls.spawn(async move {
                let Some(_turn) = w.deps.calls_in_hand.try_take(cause.stream_id) else {
                    return;
                };
                // Never the last attempt (the message is); a call another
                // process's worker claimed first is left to it.
                let attempt = Attempt {
                    last: false,
                    may_defer: true,
                };
                match w.handle_delivery(&cause, attempt).await {
                    Ok(Handled::Crashed) => crash.cancel(),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, call_id = %cause.stream_id, "handed-off call not finished; JetStream delivers it again");
                    }
                }
                drop(permit);
            });
        }
    }

    /// Deliveries of one message that may still leave a call to the worker
    /// that claimed it: those that fit in an ack wait, one `DEFER_STEP` each.
    /// Counted in deliveries, not by the claim's age, so no clock decides
    /// how long a dead claimer holds a call up.
    fn deferrals(&self) -> i64 {
        i64::try_from(self.ack_wait.as_millis() / DEFER_STEP.as_millis())
            .unwrap_or(i64::MAX)
            .max(1)
    }

    /// One delivery: handled in the call's turn and under a permit, with
    /// progress acks meanwhile, then acked, or nak'ed with a growing delay
    /// to retry later.
    async fn serve_message(
        &self,
        msg: async_nats::jetstream::Message,
        permits: Arc<Semaphore>,
        crash: CancellationToken,
    ) {
        // From the moment the message is here, tell JetStream we are on it
        // (a dial can outlast the ack wait, and a message may wait for a
        // free permit): it is not handed to another worker meanwhile.
        let progress = async {
            let every = (self.ack_wait / 3).max(Duration::from_millis(100));
            loop {
                tokio::time::sleep(every).await;
                let _ = msg.ack_with(AckKind::Progress).await;
            }
        };
        let work = async {
            let cause: Envelope = serde_json::from_slice(&msg.payload)?;
            let _turn = self.deps.calls_in_hand.wait(cause.stream_id).await;
            let _permit = permits.acquire_owned().await;
            let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
            let attempt = Attempt {
                last: false,
                may_defer: delivered <= self.deferrals(),
            };
            self.handle_delivery(&cause, attempt).await
        };
        let handled = tokio::select! {
            h = work => h,
            _ = progress => unreachable!("the progress loop never ends"),
        };
        match handled {
            Ok(Handled::Crashed) => crash.cancel(),
            Ok(Handled::HeldElsewhere(left)) => {
                // Not an error: look again in about a dial's time. Short,
                // because the message counts against the consumer's
                // acknowledgements pending until then.
                let delay = left.min(DEFER_STEP);
                let _ = msg.ack_with(AckKind::Nak(Some(delay))).await;
            }
            Ok(_) => {
                if let Err(e) = msg.ack().await {
                    tracing::warn!(error = %e, "ack failed; the call will be redelivered and skipped");
                }
            }
            Err(e) => {
                // Back off further on each delivery, up to 30 s.
                let delivered = msg.info().map(|i| i.delivered).unwrap_or(1).clamp(1, 30) as u64;
                tracing::warn!(error = %e, delivered, "originate not finished; retrying later");
                let delay = Duration::from_millis(500 * delivered).min(Duration::from_secs(30));
                let _ = msg.ack_with(AckKind::Nak(Some(delay))).await;
            }
        }
    }

    /// Frees slots as calls end, until `shutdown`; a broken message stream
    /// is opened again (a dead releaser would hold slots until their lease).
    async fn release_loop(&self, consumers: Vec<PullConsumer>, shutdown: CancellationToken) {
        let mut loops = tokio::task::JoinSet::new();
        for consumer in consumers {
            let (w, stop) = (self.clone(), shutdown.clone());
            loops.spawn(async move { w.release_one(consumer, stop).await });
        }
        while loops.join_next().await.is_some() {}
    }

    async fn release_one(&self, consumer: PullConsumer, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.release_some(&consumer, &shutdown).await {
                tracing::warn!(error = %e, "release consumer interrupted; reopening");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            if shutdown.is_cancelled() {
                return;
            }
        }
    }

    async fn release_some(
        &self,
        consumer: &PullConsumer,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!("release messages: {e}"))?;
        loop {
            let next = tokio::select! {
                n = messages.next() => n,
                _ = shutdown.cancelled() => return Ok(()),
            };
            let msg = match next {
                Some(Ok(m)) => m,
                Some(Err(e)) => anyhow::bail!("release message: {e}"),
                None => anyhow::bail!("release message stream ended"),
            };
            match self.release_for(&msg.payload).await {
                Ok(()) => {
                    let _ = msg.ack().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "releasing a cap slot failed; retrying");
                    let _ = msg
                        .ack_with(AckKind::Nak(Some(Duration::from_millis(500))))
                        .await;
                }
            }
        }
    }
}

/// The next batch this process committed; never, once the feed is gone.
async fn committed(
    feed: &mut Option<broadcast::Receiver<Arc<[StoredEvent]>>>,
) -> Result<Arc<[StoredEvent]>, RecvError> {
    match feed {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
