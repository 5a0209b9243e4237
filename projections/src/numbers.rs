//! The `numbers` read table: the phone numbers each tenant holds.

use async_trait::async_trait;
use events::{Envelope, Event, StreamType};
use sqlx::PgConnection;

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
            created_at       TIMESTAMPTZ NOT NULL,
            updated_at       TIMESTAMPTZ NOT NULL,
            version          BIGINT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS numbers_tenant ON numbers (tenant_id, id);
        CREATE INDEX IF NOT EXISTS numbers_e164 ON numbers (e164);"
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        env: &Envelope,
        event: &Event,
    ) -> Result<(), ProjectionError> {
        let updated = match event {
            Event::NumberAttached(e) => sqlx::query(
                "INSERT INTO numbers (id, tenant_id, e164, provider, credentials_id, agent_id, inbound_enabled,
                    outbound_enabled, created_at, updated_at, version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)",
            )
            .bind(env.stream_id)
            .bind(env.tenant_id)
            .bind(&e.e164)
            .bind(e.provider.as_str())
            .bind(e.credentials_id)
            .bind(e.agent_id)
            .bind(e.inbound_enabled)
            .bind(e.outbound_enabled)
            .bind(env.recorded_at)
            .bind(env.version)
            .execute(&mut *conn)
            .await?
            .rows_affected(),
            Event::NumberAgentAssigned(e) => sqlx::query(
                "UPDATE numbers SET agent_id = $2, updated_at = $3, version = $4 WHERE id = $1",
            )
            .bind(env.stream_id)
            .bind(e.agent_id)
            .bind(env.recorded_at)
            .bind(env.version)
            .execute(&mut *conn)
            .await?
            .rows_affected(),
            Event::NumberDirectionsChanged(e) => sqlx::query(
                "UPDATE numbers SET inbound_enabled = $2, outbound_enabled = $3, updated_at = $4, version = $5 WHERE id = $1",
            )
            .bind(env.stream_id)
            .bind(e.inbound_enabled)
            .bind(e.outbound_enabled)
            .bind(env.recorded_at)
            .bind(env.version)
            .execute(&mut *conn)
            .await?
            .rows_affected(),
            Event::NumberReleased(_) => sqlx::query("DELETE FROM numbers WHERE id = $1")
                .bind(env.stream_id)
                .execute(&mut *conn)
                .await?
                .rows_affected(),
            _ => return Ok(()),
        };
        if updated == 1 {
            Ok(())
        } else {
            Err(missing_row("number", env))
        }
    }
}
