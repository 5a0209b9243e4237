//! The gateway's side of the write path: run a command for a principal.
//!
//! A write answers once its events are durable; it does not wait for the
//! projections. Read-your-writes is kept on the read side instead
//! (`fresh.rs`): a read waits until the projections it reads have applied
//! what its tenant committed before it began. The answer to a write is made
//! from the command's own folded state, so nothing in it needs a projection.

use super::{ApiError, Gateway};
use crate::auth::Principal;
use crate::store::CommandMeta;
use crate::write::{self, Command, Ran};

impl Gateway {
    /// Runs `cmd` as `p`.
    pub async fn run<C: Command>(&self, p: &Principal, cmd: &C) -> Result<Ran<C::State>, ApiError> {
        let meta = CommandMeta::new(p.tenant_id, p.actor.clone());
        self.run_as(&meta, cmd).await
    }

    /// `run` as a given command (an actor other than a token's).
    pub async fn run_as<C: Command>(
        &self,
        meta: &CommandMeta,
        cmd: &C,
    ) -> Result<Ran<C::State>, ApiError> {
        let ran = write::run(&self.deps.store, meta, cmd).await?;
        self.deps
            .metrics
            .events_appended
            .inc_by(ran.written.len() as u64);
        Ok(ran)
    }
}

impl From<crate::secrets::SecretError> for ApiError {
    fn from(e: crate::secrets::SecretError) -> Self {
        ApiError::internal(e)
    }
}
