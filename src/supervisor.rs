//! Roles with a lifecycle: every long-running task of a process is a named
//! role in a stage, and the process stops its stages in order.
//!
//! A role is a future that runs until its stage's token is cancelled. A role
//! that ends before that (an error, a panic, or an unexpected return) is a
//! failure: the supervisor logs which role it was and why, stops the whole
//! process in order, and `run` returns the failure, so `serve` exits non-zero
//! naming the role instead of limping on without it.
//!
//! # Shutdown order
//! Each stage is stopped, and its tasks awaited (up to [`GRACE`], then
//! aborted), before the next is told to stop:
//! 1. [`Stage::Http`]: the listener stops accepting and finishes the requests
//!    in flight — which may still wait for a dial or a projection, so
//!    everything after it still runs;
//! 2. [`Stage::Worker`]: stops pulling and finishes the calls it holds;
//! 3. [`Stage::Pipeline`]: relay, projectors and the gateway's followers
//!    publish and project what was committed until now;
//! 4. [`Stage::Simulator`]: the built-in Call Processor, last, since a
//!    worker finishing a dial still talks to it.
//!
//! # Invariants
//! - Tasks live in the `JoinSet` of their stage: dropping the supervisor
//!   aborts every one of them (nothing outlives the process's roles).
//! - A role never watches a token of a later stage, so stopping stage N
//!   never waits on anything stage N+1 has stopped.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long one stage may take to stop before its tasks are aborted.
pub const GRACE: Duration = Duration::from_secs(15);

/// The stages of a process, in shutdown order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Http,
    Worker,
    Pipeline,
    Simulator,
}

impl Stage {
    pub const ORDER: [Stage; 4] = [
        Stage::Http,
        Stage::Worker,
        Stage::Pipeline,
        Stage::Simulator,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Http => "http",
            Stage::Worker => "worker",
            Stage::Pipeline => "pipeline",
            Stage::Simulator => "simulator",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A role that ended before its stage was stopped.
#[derive(Debug)]
pub struct RoleFailed {
    pub role: String,
    pub reason: String,
}

impl std::fmt::Display for RoleFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "role {} failed: {}", self.role, self.reason)
    }
}

impl std::error::Error for RoleFailed {}

struct StageTasks {
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

/// The roles of one process.
pub struct Supervisor {
    stages: Vec<StageTasks>,
    failed_tx: mpsc::UnboundedSender<RoleFailed>,
    failed_rx: mpsc::UnboundedReceiver<RoleFailed>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    pub fn new() -> Self {
        let (failed_tx, failed_rx) = mpsc::unbounded_channel();
        Supervisor {
            stages: Stage::ORDER
                .iter()
                .map(|_| StageTasks {
                    stop: CancellationToken::new(),
                    tasks: JoinSet::new(),
                })
                .collect(),
            failed_tx,
            failed_rx,
        }
    }

    /// The token the roles of `stage` stop on.
    pub fn token(&self, stage: Stage) -> CancellationToken {
        self.stages[stage.index()].stop.clone()
    }

    /// Runs `role` in `stage`. It should run until `self.token(stage)` is
    /// cancelled; ending sooner fails the process.
    pub fn spawn<F>(&mut self, stage: Stage, role: impl Into<String>, fut: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let role = role.into();
        let s = &mut self.stages[stage.index()];
        let (stop, failed) = (s.stop.clone(), self.failed_tx.clone());
        s.tasks.spawn(async move {
            let reason = match AssertUnwindSafe(fut).catch_unwind().await {
                Ok(Ok(())) => "exited".to_owned(),
                Ok(Err(e)) => format!("{e:#}"),
                Err(panic) => format!("panicked: {}", panic_message(&panic)),
            };
            if !stop.is_cancelled() {
                let _ = failed.send(RoleFailed { role, reason });
            }
        });
    }

    /// Runs `role`, a loop that handles its own errors and returns only
    /// when the token it is given (its stage's) is cancelled.
    pub fn spawn_loop<F, Fut>(&mut self, stage: Stage, role: impl Into<String>, role_loop: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let fut = role_loop(self.token(stage));
        self.spawn(stage, role, async move {
            fut.await;
            Ok(())
        });
    }

    /// Runs until `shutdown` is cancelled or a role fails, then stops every
    /// stage in order. Returns the failure, if that is what ended it.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), RoleFailed> {
        let failed = tokio::select! {
            _ = shutdown.cancelled() => None,
            f = self.failed_rx.recv() => f,
        };
        if let Some(f) = &failed {
            tracing::error!(role = %f.role, reason = %f.reason, "role failed; shutting down");
        }
        self.stop_in_order().await;
        failed.map_or(Ok(()), Err)
    }

    /// Stops every stage in order (as `run` does on shutdown).
    pub async fn stop(mut self) {
        self.stop_in_order().await;
    }

    async fn stop_in_order(&mut self) {
        for (stage, s) in Stage::ORDER.iter().zip(self.stages.iter_mut()) {
            s.stop.cancel();
            let drained = tokio::time::timeout(GRACE, async {
                while s.tasks.join_next().await.is_some() {}
            })
            .await;
            if drained.is_err() {
                tracing::warn!(
                    stage = stage.as_str(),
                    "stage did not stop in time; aborting it"
                );
                s.tasks.shutdown().await;
            }
            tracing::info!(stage = stage.as_str(), "stopped");
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn stages_stop_in_order_each_after_the_one_before() {
        let mut sup = Supervisor::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        // Registered in reverse, to show the order is the stages', not the spawns'.
        for stage in Stage::ORDER.iter().rev() {
            let (stop, log, stage) = (sup.token(*stage), log.clone(), *stage);
            sup.spawn(stage, stage.as_str(), async move {
                stop.cancelled().await;
                // A slow drain: the next stage must not start stopping yet.
                tokio::time::sleep(Duration::from_millis(20)).await;
                log.lock().unwrap().push(stage.as_str());
                Ok(())
            });
        }
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        sup.run(shutdown).await.unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            ["http", "worker", "pipeline", "simulator"]
        );
    }

    #[tokio::test]
    async fn a_role_that_fails_stops_the_process_and_is_named() {
        let mut sup = Supervisor::new();
        let pipeline = sup.token(Stage::Pipeline);
        sup.spawn(Stage::Pipeline, "relay", async move {
            pipeline.cancelled().await;
            Ok(())
        });
        sup.spawn(Stage::Worker, "worker", async {
            anyhow::bail!("consumer gone")
        });
        let err = sup.run(CancellationToken::new()).await.unwrap_err();
        assert_eq!(err.role, "worker");
        assert!(err.to_string().contains("consumer gone"), "{err}");
    }

    #[tokio::test]
    async fn a_panicking_role_is_a_failure_too() {
        let mut sup = Supervisor::new();
        sup.spawn(Stage::Http, "http", async {
            panic!("boom");
        });
        let err = sup.run(CancellationToken::new()).await.unwrap_err();
        assert_eq!(
            (err.role.as_str(), err.reason.as_str()),
            ("http", "panicked: boom")
        );
    }
}
