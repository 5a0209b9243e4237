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

    /// Every event replaces the tenant's row whole, so a batch writes only
    /// each tenant's last one, in one statement.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        batch: &[(&Envelope, &Event)],
    ) -> Result<(), crate::BatchError> {
        let mut last: Vec<(&Envelope, &events::CallLimitsUpdated)> = Vec::new();
        for (env, event) in batch {
            let Event::CallLimitsUpdated(e) = event else {
                continue;
            };
            match last.iter_mut().find(|(l, _)| l.tenant_id == env.tenant_id) {
                Some(slot) => *slot = (env, e),
                None => last.push((env, e)),
            }
        }
        if last.is_empty() {
            return Ok(());
        }
        let col = |f: fn(&events::CallLimitsUpdated) -> u32| {
            last.iter()
                .map(|(_, e)| i64::from(f(e)))
                .collect::<Vec<_>>()
        };
        sqlx::query(
            "INSERT INTO call_limits (tenant_id, concurrent_max, calls_per_minute, daily_calls_max, daily_minutes_max, updated_at, version)
             SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::timestamptz[], $7::bigint[])
             ON CONFLICT (tenant_id) DO UPDATE SET concurrent_max = EXCLUDED.concurrent_max,
                calls_per_minute = EXCLUDED.calls_per_minute, daily_calls_max = EXCLUDED.daily_calls_max,
                daily_minutes_max = EXCLUDED.daily_minutes_max, updated_at = EXCLUDED.updated_at, version = EXCLUDED.version",
        )
        .bind(last.iter().map(|(env, _)| env.tenant_id).collect::<Vec<_>>())
        .bind(col(|e| e.concurrent_max))
        .bind(col(|e| e.calls_per_minute))
        .bind(col(|e| e.daily_calls_max))
        .bind(col(|e| e.daily_minutes_max))
        .bind(last.iter().map(|(env, _)| env.recorded_at).collect::<Vec<_>>())
        .bind(last.iter().map(|(env, _)| env.version).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await
        .map_err(|e| crate::BatchError {
            at: None,
            error: ProjectionError::Db(e),
        })?;
        Ok(())
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        env: &Envelope,
        event: &Event,
    ) -> Result<(), ProjectionError> {
        self.apply_batch(conn, &[(env, event)])
            .await
            .map_err(|e| e.error)
    }
}
