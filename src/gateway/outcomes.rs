//! Routing call outcomes to the originate requests waiting for them.
//!
//! One router per gateway process, fed two ways: the events this process
//! commits (the store's feed: a worker in the same process answers without
//! a trip through the relay and NATS), and one NATS subscription per outcome
//! type for workers elsewhere. A NATS message is only a hint that the store
//! has news: NATS distributes events, it is not the truth, so the request
//! reads the outcome from the store (a forged or stale message answers
//! nothing). The request also looks in the store once before it gives up,
//! so neither feed is ever the only way to learn an outcome.

use events::{CallId, Envelope};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::namespace::Namespace;
use crate::store::Store;

/// The event types that end an originate request's wait.
pub const OUTCOME_TYPES: [&str; 3] = [
    "OriginateDispatched",
    "OriginateRejected",
    "OriginateFailed",
];

/// What reaches a waiting request.
#[derive(Debug, Clone)]
pub enum Delivered {
    /// An outcome this process committed: read from the store already.
    Committed(Box<Envelope>),
    /// NATS carried an outcome for the call: look in the store.
    Hint,
}

type Waiting = HashMap<CallId, oneshot::Sender<Delivered>>;

/// Requests waiting for their call's outcome, by call id.
#[derive(Default)]
pub struct Outcomes {
    waiting: Mutex<Waiting>,
}

/// A registered wait; dropping it unregisters.
pub struct Expected<'a> {
    outcomes: &'a Outcomes,
    call_id: CallId,
    pub rx: oneshot::Receiver<Delivered>,
}

impl Drop for Expected<'_> {
    fn drop(&mut self) {
        self.outcomes.lock().remove(&self.call_id);
    }
}

impl Outcomes {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a wait for `call_id` (before its request is appended, so
    /// the outcome cannot slip past).
    pub fn expect(&self, call_id: CallId) -> Expected<'_> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(call_id, tx);
        Expected {
            outcomes: self,
            call_id,
            rx,
        }
    }

    fn deliver(&self, env: &Envelope) {
        if !OUTCOME_TYPES.contains(&env.event_type.as_str()) {
            return;
        }
        if let Some(tx) = self.lock().remove(&CallId::from(env.stream_id)) {
            let _ = tx.send(Delivered::Committed(Box::new(env.clone())));
        }
    }

    fn hint(&self, call_id: CallId) {
        if let Some(tx) = self.lock().remove(&call_id) {
            let _ = tx.send(Delivered::Hint);
        }
    }

    /// Follows what this process commits, until `shutdown`.
    pub async fn follow_store(self: Arc<Self>, store: Store, shutdown: CancellationToken) {
        let mut feed = store.feed();
        loop {
            let batch = tokio::select! {
                b = feed.recv() => b,
                _ = shutdown.cancelled() => return,
            };
            match batch {
                Ok(events) => events.iter().for_each(|e| self.deliver(&e.envelope)),
                // Missed batches are found by NATS or the store check.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// Follows the outcomes on NATS, until `shutdown`; resubscribes when a
    /// subscription ends.
    pub async fn follow_nats(
        self: Arc<Self>,
        nats: async_nats::Client,
        ns: Namespace,
        shutdown: CancellationToken,
    ) {
        loop {
            let mut subs = Vec::new();
            for t in OUTCOME_TYPES {
                match nats.subscribe(ns.call_events(t)).await {
                    Ok(s) => subs.push(s),
                    Err(e) => tracing::warn!(error = %e, "outcome subscription failed"),
                }
            }
            let mut all = futures::stream::select_all(subs);
            loop {
                let msg = tokio::select! {
                    m = all.next() => m,
                    _ = shutdown.cancelled() => return,
                };
                let Some(msg) = msg else { break };
                // `<ns>.events.<tenant>.call.<call_id>.<type>`: only the
                // call id is read; the request takes the outcome from the
                // store.
                if let Some(id) = Namespace::stream_id_in(&msg.subject) {
                    self.hint(CallId::from(id));
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}
