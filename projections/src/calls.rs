//! The `calls` read table: each outbound call's current status and its
//! timeline.
//!
//! Status only moves forward (requested < dispatched < ringing < answered <
//! an end state, with rejected and failed as ends of their own), and the
//! first end state is final: a callback may be recorded before the dial's
//! own outcome, and the table must not step back (or from one end to
//! another) when the later event arrives.

use async_trait::async_trait;
use events::{Envelope, Event, StreamType};
use sqlx::PgConnection;

use crate::{Projection, ProjectionError};

pub struct Calls;

#[async_trait]
impl Projection for Calls {
    fn name(&self) -> &'static str {
        "calls"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["calls"]
    }

    fn stream_types(&self) -> &'static [StreamType] {
        &[StreamType::Call]
    }

    fn schema_sql(&self) -> &'static str {
        "CREATE TABLE IF NOT EXISTS calls (
            call_id          UUID PRIMARY KEY,
            tenant_id        UUID NOT NULL,
            session_id       UUID NOT NULL,
            from_number      TEXT NOT NULL,
            to_number        TEXT NOT NULL,
            agent_id         UUID NOT NULL,
            number_id        UUID NOT NULL,
            provider         TEXT NOT NULL,
            provider_call_id TEXT,
            status           TEXT NOT NULL,
            status_rank      INTEGER NOT NULL,
            rejection        JSONB,
            error            TEXT,
            created_at       TIMESTAMPTZ NOT NULL,
            answered_at      TIMESTAMPTZ,
            ended_at         TIMESTAMPTZ,
            duration_s       BIGINT,
            billed_minutes   BIGINT,
            hangup_cause     TEXT,
            timeline         JSONB NOT NULL,
            version          BIGINT NOT NULL
        );
        -- Added with CallEnded v2; tables made before it gain the column.
        ALTER TABLE calls ADD COLUMN IF NOT EXISTS hangup_cause TEXT;"
    }

    fn index_sql(&self) -> &'static str {
        "CREATE INDEX IF NOT EXISTS calls_tenant ON calls (tenant_id, call_id DESC);"
    }

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        batch: &[(&Envelope, &Event)],
    ) -> Result<(), crate::BatchError> {
        crate::rows::apply::<crate::call_row::Row>(conn, batch).await
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        env: &Envelope,
        event: &Event,
    ) -> Result<(), ProjectionError> {
        crate::rows::apply_one::<crate::call_row::Row>(conn, env, event).await
    }
}
