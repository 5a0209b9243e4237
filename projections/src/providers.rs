//! The `providers` read table: a tenant's carrier accounts, credentials as
//! ciphertext and masked view only.

use async_trait::async_trait;
use events::{Envelope, Event, StreamType};
use sqlx::PgConnection;

use crate::{missing_row, Projection, ProjectionError};

pub struct Providers;

#[async_trait]
impl Projection for Providers {
    fn name(&self) -> &'static str {
        "providers"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["providers"]
    }

    fn stream_types(&self) -> &'static [StreamType] {
        &[StreamType::Provider]
    }

    fn schema_sql(&self) -> &'static str {
        "CREATE TABLE IF NOT EXISTS providers (
            id          UUID PRIMARY KEY,
            tenant_id   UUID NOT NULL,
            provider    TEXT NOT NULL,
            label       TEXT NOT NULL,
            key_id      TEXT NOT NULL,
            ciphertext  TEXT NOT NULL,
            masked      JSONB NOT NULL,
            created_at  TIMESTAMPTZ NOT NULL,
            updated_at  TIMESTAMPTZ NOT NULL,
            version     BIGINT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS providers_tenant ON providers (tenant_id, id);"
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        env: &Envelope,
        event: &Event,
    ) -> Result<(), ProjectionError> {
        let updated = match event {
            Event::ProviderCreated(e) => sqlx::query(
                "INSERT INTO providers (id, tenant_id, provider, label, key_id, ciphertext, masked, created_at, updated_at, version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)",
            )
            .bind(env.stream_id)
            .bind(env.tenant_id)
            .bind(e.provider.as_str())
            .bind(&e.label)
            .bind(&e.credentials.key_id)
            .bind(&e.credentials.ciphertext)
            .bind(sqlx::types::Json(&e.credentials.masked))
            .bind(env.recorded_at)
            .bind(env.version)
            .execute(&mut *conn)
            .await?
            .rows_affected(),
            Event::ProviderRelabeled(e) => sqlx::query(
                "UPDATE providers SET label = $2, updated_at = $3, version = $4 WHERE id = $1",
            )
            .bind(env.stream_id)
            .bind(&e.label)
            .bind(env.recorded_at)
            .bind(env.version)
            .execute(&mut *conn)
            .await?
            .rows_affected(),
            Event::ProviderCredentialsRotated(e) => sqlx::query(
                "UPDATE providers SET key_id = $2, ciphertext = $3, masked = $4, updated_at = $5, version = $6 WHERE id = $1",
            )
            .bind(env.stream_id)
            .bind(&e.credentials.key_id)
            .bind(&e.credentials.ciphertext)
            .bind(sqlx::types::Json(&e.credentials.masked))
            .bind(env.recorded_at)
            .bind(env.version)
            .execute(&mut *conn)
            .await?
            .rows_affected(),
            Event::ProviderDeleted(_) => sqlx::query("DELETE FROM providers WHERE id = $1")
                .bind(env.stream_id)
                .execute(&mut *conn)
                .await?
                .rows_affected(),
            _ => return Ok(()),
        };
        if updated == 1 {
            Ok(())
        } else {
            Err(missing_row("provider", env))
        }
    }
}
