//! Freeing cap slots when calls end (`CallEnded`) or fail to dial
//! (`OriginateFailed`), and taking back a reservation whose call was
//! refused (`OriginateRejected`). Driven by a durable consumer, so a crash
//! between the end and the release only delays it; `Caps::release` and
//! `Caps::withdraw` count each call once, so redeliveries change nothing.

use events::{CallId, Envelope, Event};

use super::Worker;
use crate::caps::{CountedNumber, Withdrawal};
use crate::commands::call::{CallState, Phase};

impl Worker {
    /// The `caps-release` consumers' step for one message (an event's
    /// JSON envelope): release, withdraw, or nothing.
    pub async fn release_for(&self, payload: &[u8]) -> anyhow::Result<()> {
        let env: Envelope = serde_json::from_slice(payload)?;
        let event = Event::decode(&env.event_type, env.schema_version, &env.data)?;
        let billed = match event {
            Event::CallEnded(e) => e.billed_minutes,
            Event::OriginateFailed(_) => 0,
            // A rejected call holds nothing, unless a racing handler reserved
            // it before the rejection won and did not take that back itself
            // (it crashed): then it is taken back here, whole.
            Event::OriginateRejected(_) => return self.withdraw_for(&env).await,
            _ => return Ok(()),
        };
        self.caps
            .release(
                env.tenant_id,
                CallId::from(env.stream_id),
                env.recorded_at,
                billed,
            )
            .await?;
        Ok(())
    }

    /// Asks Redis first, so the call's number is read from the store only
    /// for the rare rejected call that holds a reservation. The first ask
    /// marks a call that holds nothing as done; it trusts the message that
    /// the call is rejected, as every release trusts its event: only the
    /// relay publishes on event subjects, and only committed events.
    async fn withdraw_for(&self, env: &Envelope) -> anyhow::Result<()> {
        let (tenant, call) = (env.tenant_id, CallId::from(env.stream_id));
        let caps = &self.caps;
        let asked = caps.withdraw(tenant, call, CountedNumber::Unknown).await?;
        if asked == Withdrawal::NeedsNumber {
            // The store, not the message, says the call is rejected before
            // a reservation is taken back (a cached fold may lag: then
            // fresh).
            let store = &self.deps.store;
            let mut loaded = store.load(env.stream_id, CallState::apply).await?;
            if loaded.state.phase != Phase::Rejected {
                loaded = store.load_fresh(env.stream_id, CallState::apply).await?;
            }
            let (Phase::Rejected, Some(req)) = (loaded.state.phase, loaded.state.request.as_ref())
            else {
                anyhow::bail!("call {call} is not stored as a rejected request");
            };
            let number = CountedNumber::Known(Some(req.number_id));
            caps.withdraw(tenant, call, number).await?;
        }
        Ok(())
    }
}
