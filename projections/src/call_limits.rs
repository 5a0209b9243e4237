//! The `call_limits` read table: each tenant's cost caps as last set. A
//! tenant with no row has the configured defaults.

use async_trait::async_trait;
use events::{Envelope, Event, StreamType};
use sqlx::PgConnection;

use crate::{Projection, ProjectionError};

pub struct CallLimits;

#[async_trait]
impl Projection for CallLimits {
    fn name(&self) -> &'static str {
        "call_limits"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["call_limits"]
    }

    fn stream_types(&self) -> &'static [StreamType] {
        &[StreamType::CallLimits]
    }

    fn schema_sql(&self) -> &'static str {
        "CREATE TABLE IF NOT EXISTS call_limits (
            tenant_id         UUID PRIMARY KEY,
            concurrent_max    BIGINT NOT NULL,
            calls_per_minute  BIGINT NOT NULL,
            daily_calls_max   BIGINT NOT NULL,
            daily_minutes_max BIGINT NOT NULL,
            updated_at        TIMESTAMPTZ NOT NULL,
            version           BIGINT NOT NULL
        );"
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        env: &Envelope,
        event: &Event,
    ) -> Result<(), ProjectionError> {
        let Event::CallLimitsUpdated(e) = event else {
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO call_limits (tenant_id, concurrent_max, calls_per_minute, daily_calls_max, daily_minutes_max, updated_at, version)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant_id) DO UPDATE SET concurrent_max = EXCLUDED.concurrent_max,
                calls_per_minute = EXCLUDED.calls_per_minute, daily_calls_max = EXCLUDED.daily_calls_max,
                daily_minutes_max = EXCLUDED.daily_minutes_max, updated_at = EXCLUDED.updated_at, version = EXCLUDED.version",
        )
        .bind(env.tenant_id)
        .bind(i64::from(e.concurrent_max))
        .bind(i64::from(e.calls_per_minute))
        .bind(i64::from(e.daily_calls_max))
        .bind(i64::from(e.daily_minutes_max))
        .bind(env.recorded_at)
        .bind(env.version)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}
