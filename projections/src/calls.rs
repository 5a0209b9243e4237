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
use serde_json::json;
use sqlx::PgConnection;

use crate::{missing_row, Projection, ProjectionError};
// `apply` is the rule event by event; `calls_batch` is the same rule a batch
// at a time, which the runner uses.

pub struct Calls;

/// A status's rank (`CallStatus::rank`; anything unknown counts as an end).
fn rank(status: &str) -> i32 {
    events::CallStatus::parse(status).map_or(4, events::CallStatus::rank)
}

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
        CREATE INDEX IF NOT EXISTS calls_tenant ON calls (tenant_id, call_id DESC);
        -- Added with CallEnded v2; tables made before it gain the column.
        ALTER TABLE calls ADD COLUMN IF NOT EXISTS hangup_cause TEXT;"
    }

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        batch: &[(&Envelope, &Event)],
    ) -> Result<(), crate::BatchError> {
        if batch.len() < crate::BATCH_FORM_FROM {
            return crate::one_by_one(self, conn, batch).await;
        }
        crate::calls_batch::apply_batch(conn, batch).await
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        env: &Envelope,
        event: &Event,
    ) -> Result<(), ProjectionError> {
        let step = json!([{"type": env.event_type, "at": env.recorded_at}]);
        if let Event::OriginateRequested(r) = event {
            sqlx::query(
                "INSERT INTO calls (call_id, tenant_id, session_id, from_number, to_number, agent_id, number_id,
                    provider, status, status_rank, created_at, timeline, version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'requested', 0, $9, $10, $11)",
            )
            .bind(env.stream_id)
            .bind(env.tenant_id)
            .bind(r.session_id)
            .bind(&r.from_number)
            .bind(&r.to_number)
            .bind(r.agent_id)
            .bind(r.number_id)
            .bind(r.provider.as_str())
            .bind(env.recorded_at)
            .bind(&step)
            .bind(env.version)
            .execute(&mut *conn)
            .await?;
            return Ok(());
        }
        let status = match event {
            Event::OriginateRejected(_) => Some("rejected"),
            Event::OriginateDispatched(_) => Some("dispatched"),
            Event::OriginateFailed(_) => Some("failed"),
            Event::CallRinging(_) => Some("ringing"),
            Event::CallAnswered(_) => Some("answered"),
            Event::CallEnded(e) => Some(e.status.as_str()),
            Event::OriginateClaimed(_) => None,
            _ => return Ok(()),
        };
        let (rejection, error, provider_call_id, ended) = match event {
            Event::OriginateRejected(r) => (Some(json!(r)), None, None, None),
            Event::OriginateFailed(f) => (None, Some(f.error.clone()), None, None),
            Event::OriginateDispatched(d) => (None, None, Some(d.provider_call_id.clone()), None),
            Event::CallEnded(e) => (None, None, None, Some(e)),
            _ => (None, None, None, None),
        };
        let updated = sqlx::query(
            "UPDATE calls SET
                status = CASE WHEN $2::text IS NOT NULL AND status_rank < 4 AND $3 >= status_rank THEN $2 ELSE status END,
                status_rank = CASE WHEN $2::text IS NOT NULL AND status_rank < 4 AND $3 >= status_rank THEN $3 ELSE status_rank END,
                rejection = coalesce($4, rejection),
                error = coalesce($5, error),
                provider_call_id = coalesce($6, provider_call_id),
                answered_at = CASE WHEN $7 THEN $8 ELSE answered_at END,
                ended_at = CASE WHEN $9::bigint IS NOT NULL THEN $8 ELSE ended_at END,
                duration_s = coalesce($9, duration_s),
                billed_minutes = coalesce($10, billed_minutes),
                hangup_cause = coalesce($13, hangup_cause),
                timeline = timeline || $11,
                version = $12
             WHERE call_id = $1",
        )
        .bind(env.stream_id)
        .bind(status)
        .bind(status.map(rank).unwrap_or(0))
        .bind(rejection)
        .bind(error)
        .bind(provider_call_id)
        .bind(matches!(event, Event::CallAnswered(_)))
        .bind(env.recorded_at)
        .bind(ended.map(|e| e.duration_s as i64))
        .bind(ended.map(|e| e.billed_minutes as i64))
        .bind(&step)
        .bind(env.version)
        .bind(ended.map(|e| e.hangup_cause.clone()))
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if updated == 1 {
            Ok(())
        } else {
            Err(missing_row("call", env))
        }
    }
}
