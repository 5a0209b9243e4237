//! The rule of the `calls` table, as a fold of one call's row
//! (`rows::RowTable`): status only moves forward by rank, the first end state
//! is final, and every event appends to the timeline.

use chrono::{DateTime, Utc};
use events::{CallId, NumberId, TenantId};
use events::{Envelope, Event};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::rows::{columns, RowTable};
use crate::timeline::Timeline;
use crate::{missing_row, ProjectionError};

/// A row of `calls`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Row {
    call_id: CallId,
    tenant_id: TenantId,
    session_id: Uuid,
    from_number: String,
    to_number: String,
    agent_id: Uuid,
    number_id: NumberId,
    provider: String,
    provider_call_id: Option<String>,
    status: String,
    status_rank: i32,
    rejection: Option<Value>,
    error: Option<String>,
    created_at: DateTime<Utc>,
    answered_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    duration_s: Option<i64>,
    billed_minutes: Option<i64>,
    hangup_cause: Option<String>,
    timeline: Timeline,
    version: i64,
}

impl RowTable for Row {
    const TABLE: &'static str = "calls";
    columns! {
        call_id: "uuid",
        tenant_id: "uuid",
        session_id: "uuid",
        from_number: "text",
        to_number: "text",
        agent_id: "uuid",
        number_id: "uuid",
        provider: "text",
        provider_call_id: "text",
        status: "text",
        status_rank: "int",
        rejection: "jsonb",
        error: "text",
        created_at: "timestamptz",
        answered_at: "timestamptz",
        ended_at: "timestamptz",
        duration_s: "bigint",
        billed_minutes: "bigint",
        hangup_cause: "text",
        timeline: "jsonb",
        version: "bigint",
    }

    fn id(&self) -> Uuid {
        self.call_id.uuid()
    }

    /// Applies `event` to the call's row (`None`: no row yet).
    fn fold(
        row: Option<Row>,
        env: &Envelope,
        event: &Event,
    ) -> Result<Option<Row>, ProjectionError> {
        if let Event::OriginateRequested(r) = event {
            if row.is_some() {
                return Err(ProjectionError::Invariant(format!(
                    "{} for a call the table holds already (stream {})",
                    env.event_type, env.stream_id
                )));
            }
            return Ok(Some(Row {
                call_id: CallId::from(env.stream_id),
                tenant_id: env.tenant_id,
                session_id: r.session_id,
                from_number: r.from_number.clone(),
                to_number: r.to_number.clone(),
                agent_id: r.agent_id,
                number_id: r.number_id,
                provider: r.provider.as_str().to_owned(),
                provider_call_id: None,
                status: "requested".to_owned(),
                status_rank: 0,
                rejection: None,
                error: None,
                created_at: env.recorded_at,
                answered_at: None,
                ended_at: None,
                duration_s: None,
                billed_minutes: None,
                hangup_cause: None,
                timeline: Timeline::first(&env.event_type, &env.recorded_at),
                version: env.version,
            }));
        }
        let status = match event {
            Event::OriginateRejected(_) => Some("rejected"),
            Event::OriginateDispatched(_) => Some("dispatched"),
            Event::OriginateFailed(_) => Some("failed"),
            Event::CallRinging(_) => Some("ringing"),
            Event::CallAnswered(_) => Some("answered"),
            Event::CallEnded(e) => Some(e.status.as_str()),
            Event::OriginateClaimed(_) => None,
            _ => return Ok(row),
        };
        let Some(mut r) = row else {
            return Err(missing_row("call", env));
        };
        if let Some(s) = status {
            let rank = events::CallStatus::parse(s).map_or(4, events::CallStatus::rank);
            if r.status_rank < 4 && rank >= r.status_rank {
                r.status = s.to_owned();
                r.status_rank = rank;
            }
        }
        match event {
            Event::OriginateRejected(x) => r.rejection = Some(json!(x)),
            Event::OriginateFailed(f) => r.error = Some(f.error.clone()),
            Event::OriginateDispatched(d) => r.provider_call_id = Some(d.provider_call_id.clone()),
            Event::CallAnswered(_) => r.answered_at = Some(env.recorded_at),
            Event::CallEnded(e) => {
                r.ended_at = Some(env.recorded_at);
                r.duration_s = Some(e.duration_s as i64);
                r.billed_minutes = Some(e.billed_minutes as i64);
                r.hangup_cause = Some(e.hangup_cause.clone());
            }
            _ => {}
        }
        r.timeline.push(&env.event_type, &env.recorded_at);
        r.version = env.version;
        Ok(Some(r))
    }

    const ON_CONFLICT: &'static str =
        "ON CONFLICT (call_id) DO UPDATE SET provider_call_id = EXCLUDED.provider_call_id, \
         status = EXCLUDED.status, status_rank = EXCLUDED.status_rank, \
         rejection = EXCLUDED.rejection, error = EXCLUDED.error, \
         answered_at = EXCLUDED.answered_at, ended_at = EXCLUDED.ended_at, \
         duration_s = EXCLUDED.duration_s, billed_minutes = EXCLUDED.billed_minutes, \
         hangup_cause = EXCLUDED.hangup_cause, timeline = EXCLUDED.timeline, \
         version = EXCLUDED.version";
}
