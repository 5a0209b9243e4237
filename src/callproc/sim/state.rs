//! The simulator's shared state: its configuration, the dial log, and the
//! calls still in progress (so they can be hung up).
//!
//! The dial log is the test oracle for "each `call_id` is dialed exactly
//! once", so checking for an earlier dial and recording a new one happen
//! under one lock: concurrent repeats of a `call_id` cannot both dial.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use events::ProviderKind;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::config::{ConfigPatch, SimConfig};

/// One placed call, as `GET /dials` lists it. Holds no credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dial {
    pub call_id: String,
    pub provider_call_id: String,
    pub at: DateTime<Utc>,
    pub from_number: String,
    pub to_number: String,
    pub provider: ProviderKind,
}

/// What recording a dial found.
pub(super) enum Recorded {
    /// Dialed now; the token hangs the call up.
    New(CancellationToken),
    /// Dialed before, with this provider call id.
    Existing(String),
}

/// Shared by the handlers and call tasks. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SimState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: RwLock<SimConfig>,
    log: Mutex<Log>,
    requests: AtomicU64,
    http: reqwest::Client,
    shutdown: CancellationToken,
}

#[derive(Debug, Default)]
struct Log {
    dials: Vec<Dial>,
    by_call: HashMap<String, usize>,
    /// Calls not yet ended: call_id -> hang-up token.
    live: HashMap<String, CancellationToken>,
    /// The most calls live at once so far (the simulator's own record, the
    /// judge of `concurrent_max` in the fault suite).
    peak_live: usize,
}

impl SimState {
    /// Call tasks stop (without further callbacks) when `shutdown` fires.
    pub fn new(config: SimConfig, shutdown: CancellationToken) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client without TLS always builds");
        SimState {
            inner: Arc::new(Inner {
                config: RwLock::new(config),
                log: Mutex::new(Log::default()),
                requests: AtomicU64::new(0),
                http,
                shutdown,
            }),
        }
    }

    /// A snapshot of the current behaviour.
    pub fn config(&self) -> SimConfig {
        self.inner.config.read().expect("config lock").clone()
    }

    /// Applies a patch atomically; on error nothing changes.
    pub fn update_config(&self, patch: ConfigPatch) -> Result<SimConfig, &'static str> {
        let mut config = self.inner.config.write().expect("config lock");
        let mut next = config.clone();
        patch.apply(&mut next)?;
        *config = next.clone();
        Ok(next)
    }

    /// Every dial, in the order placed.
    pub fn dials(&self) -> Vec<Dial> {
        self.log().dials.clone()
    }

    /// Calls live now, and the most live at once so far.
    pub fn live(&self) -> (usize, usize) {
        let log = self.log();
        (log.live.len(), log.peak_live)
    }

    /// Originate requests received, repeats and refusals included.
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::SeqCst)
    }

    pub(super) fn count_request(&self) {
        self.inner.requests.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(super) fn shutdown(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// The provider call id of an earlier dial of `call_id`.
    pub(super) fn existing(&self, call_id: &str) -> Option<String> {
        let log = self.log();
        let i = *log.by_call.get(call_id)?;
        Some(log.dials[i].provider_call_id.clone())
    }

    /// Records `dial` unless its `call_id` was dialed already.
    pub(super) fn record(&self, dial: Dial) -> Recorded {
        let mut log = self.log();
        if let Some(&i) = log.by_call.get(&dial.call_id) {
            return Recorded::Existing(log.dials[i].provider_call_id.clone());
        }
        let hangup = CancellationToken::new();
        log.live.insert(dial.call_id.clone(), hangup.clone());
        log.peak_live = log.peak_live.max(log.live.len());
        let index = log.dials.len();
        log.by_call.insert(dial.call_id.clone(), index);
        log.dials.push(dial);
        Recorded::New(hangup)
    }

    /// Ends a live call now; false if it is not live.
    pub(super) fn hang_up(&self, call_id: &str) -> bool {
        match self.log().live.remove(call_id) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// Forgets a call that ended on its own.
    pub(super) fn ended(&self, call_id: &str) {
        self.log().live.remove(call_id);
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.inner.log.lock().expect("dial log lock")
    }
}
