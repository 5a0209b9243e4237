//! The `numbers` read table: the phone numbers each tenant holds.

use async_trait::async_trait;
use events::{Envelope, Event, StreamType};
use events::{NumberId, ProviderId, TenantId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::rows::columns;
use crate::{missing_row, Projection, ProjectionError};

pub struct Numbers;

#[async_trait]
impl Projection for Numbers {
    fn name(&self) -> &'static str {
        "numbers"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["numbers"]
    }

    fn stream_types(&self) -> &'static [StreamType] {
        &[StreamType::Number]
    }

    fn schema_sql(&self) -> &'static str {
        "CREATE TABLE IF NOT EXISTS numbers (
            id               UUID PRIMARY KEY,
            tenant_id        UUID NOT NULL,
            e164             TEXT NOT NULL,
            provider         TEXT NOT NULL,
            credentials_id   UUID NOT NULL,
            agent_id         UUID,
            inbound_enabled  BOOLEAN NOT NULL,
            outbound_enabled BOOLEAN NOT NULL,
            daily_calls_max  BIGINT,
            created_at       TIMESTAMPTZ NOT NULL,
            updated_at       TIMESTAMPTZ NOT NULL,
            version          BIGINT NOT NULL
        );
        -- Added with NumberDailyCapSet; tables made before it lack it.
        ALTER TABLE numbers ADD COLUMN IF NOT EXISTS daily_calls_max BIGINT;"
    }

    fn index_sql(&self) -> &'static str {
        "CREATE INDEX IF NOT EXISTS numbers_tenant ON numbers (tenant_id, id);
        CREATE INDEX IF NOT EXISTS numbers_e164 ON numbers (e164);"
    }

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        batch: &[(&Envelope, &Event)],
    ) -> Result<(), crate::BatchError> {
        crate::rows::apply::<Row>(conn, batch).await
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        env: &Envelope,
        event: &Event,
    ) -> Result<(), ProjectionError> {
        crate::rows::apply_one::<Row>(conn, env, event).await
    }
}

/// A row of `numbers`.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    id: NumberId,
    tenant_id: TenantId,
    e164: String,
    provider: String,
    credentials_id: ProviderId,
    agent_id: Option<Uuid>,
    inbound_enabled: bool,
    outbound_enabled: bool,
    daily_calls_max: Option<i64>,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    version: i64,
}

impl crate::rows::RowTable for Row {
    const TABLE: &'static str = "numbers";
    columns! {
        id: "uuid",
        tenant_id: "uuid",
        e164: "text",
        provider: "text",
        credentials_id: "uuid",
        agent_id: "uuid",
        inbound_enabled: "bool",
        outbound_enabled: "bool",
        daily_calls_max: "bigint",
        created_at: "timestamptz",
        updated_at: "timestamptz",
        version: "bigint",
    }

    fn id(&self) -> Uuid {
        self.id.uuid()
    }

    /// What `Numbers::apply` does to the row.
    fn fold(
        row: Option<Self>,
        env: &Envelope,
        event: &Event,
    ) -> Result<Option<Self>, ProjectionError> {
        let missing = || missing_row("number", env);
        Ok(match event {
            Event::NumberAttached(e) => {
                if row.is_some() {
                    return Err(ProjectionError::Invariant(format!(
                        "{} for a number the table holds already (stream {})",
                        env.event_type, env.stream_id
                    )));
                }
                Some(Row {
                    id: NumberId::from(env.stream_id),
                    tenant_id: env.tenant_id,
                    e164: e.e164.clone(),
                    provider: e.provider.as_str().to_owned(),
                    credentials_id: e.credentials_id,
                    agent_id: e.agent_id,
                    inbound_enabled: e.inbound_enabled,
                    outbound_enabled: e.outbound_enabled,
                    daily_calls_max: None,
                    created_at: env.recorded_at,
                    updated_at: env.recorded_at,
                    version: env.version,
                })
            }
            Event::NumberAgentAssigned(e) => {
                let mut r = row.ok_or_else(missing)?;
                r.agent_id = e.agent_id;
                r.updated_at = env.recorded_at;
                r.version = env.version;
                Some(r)
            }
            Event::NumberDirectionsChanged(e) => {
                let mut r = row.ok_or_else(missing)?;
                r.inbound_enabled = e.inbound_enabled;
                r.outbound_enabled = e.outbound_enabled;
                r.updated_at = env.recorded_at;
                r.version = env.version;
                Some(r)
            }
            Event::NumberDailyCapSet(e) => {
                let mut r = row.ok_or_else(missing)?;
                r.daily_calls_max = e.daily_calls_max.map(i64::from);
                r.updated_at = env.recorded_at;
                r.version = env.version;
                Some(r)
            }
            Event::NumberReleased(_) => {
                row.ok_or_else(missing)?;
                None
            }
            _ => row,
        })
    }

    const ON_CONFLICT: &'static str = "ON CONFLICT (id) DO UPDATE SET agent_id = EXCLUDED.agent_id, \
             inbound_enabled = EXCLUDED.inbound_enabled, outbound_enabled = EXCLUDED.outbound_enabled, \
             daily_calls_max = EXCLUDED.daily_calls_max, updated_at = EXCLUDED.updated_at, version = EXCLUDED.version";
}
