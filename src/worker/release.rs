//! Freeing cap slots when calls end (`CallEnded`), fail to dial
//! (`OriginateFailed`) or were refused (`OriginateRejected`). Driven by a durable consumer, so a crash between the
//! end and the release only delays it; `Caps::release` counts each call
//! once, so redeliveries change nothing.

use events::{CallId, Envelope, Event};

use super::Worker;

impl Worker {
    pub(super) async fn release_for(&self, payload: &[u8]) -> anyhow::Result<()> {
        let env: Envelope = serde_json::from_slice(payload)?;
        let event = Event::decode(&env.event_type, env.schema_version, &env.data)?;
        let billed = match event {
            Event::CallEnded(e) => e.billed_minutes,
            // A rejected call holds no slot, unless a racing handler reserved
            // one before the rejection won; releasing a call that holds
            // nothing changes nothing.
            Event::OriginateFailed(_) | Event::OriginateRejected(_) => 0,
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
}
