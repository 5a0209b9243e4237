//! The gateway's side of the write path: run a command for a principal,
//! then wait until the projections that show it have applied it, so a read
//! right after the answer sees the write.

use super::{ApiError, Gateway};
use crate::auth::Principal;
use crate::store::{CommandMeta, Position, StoredEvent};
use crate::write::{self, Command, Ran};

impl Gateway {
    /// Runs `cmd` as `p` and waits (bounded) for `projections`.
    pub async fn run<C: Command>(
        &self,
        p: &Principal,
        cmd: &C,
        projections: &[&str],
    ) -> Result<Ran<C::State>, ApiError> {
        let meta = CommandMeta::new(p.tenant_id, p.actor.clone());
        self.run_as(&meta, cmd, projections).await
    }

    /// `run` as a given command (an actor other than a token's).
    pub async fn run_as<C: Command>(
        &self,
        meta: &CommandMeta,
        cmd: &C,
        projections: &[&str],
    ) -> Result<Ran<C::State>, ApiError> {
        let ran = write::run(&self.deps.store, meta, cmd).await?;
        self.deps
            .metrics
            .events_appended
            .inc_by(ran.written.len() as u64);
        self.read_your_write(&ran.written, projections).await;
        Ok(ran)
    }

    /// Waits (bounded) until `projections` have applied `written`.
    pub async fn read_your_write(&self, written: &[StoredEvent], projections: &[&str]) {
        let Some(last) = written.iter().map(|e| e.position).max() else {
            return;
        };
        self.wait_for_projections(last, projections).await;
    }

    async fn wait_for_projections(&self, at: Position, projections: &[&str]) {
        let names: Vec<String> = projections
            .iter()
            .map(|p| format!("projection:{p}"))
            .collect();
        let caught_up = self
            .deps
            .progress
            .wait_for(&self.deps.pool, &names, at, self.read_your_writes)
            .await;
        if !caught_up {
            tracing::warn!(
                ?projections,
                "projections did not catch up in time; reads may lag this write"
            );
        }
    }
}

impl From<crate::secrets::SecretError> for ApiError {
    fn from(e: crate::secrets::SecretError) -> Self {
        ApiError::internal(e)
    }
}
