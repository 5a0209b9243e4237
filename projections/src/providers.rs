//! The `providers` read table: a tenant's carrier accounts, credentials as
//! ciphertext and masked view only.

use async_trait::async_trait;
use events::{Envelope, Event, StreamType};
use events::{ProviderId, TenantId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::rows::columns;
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
        );"
    }

    fn index_sql(&self) -> &'static str {
        "CREATE INDEX IF NOT EXISTS providers_tenant ON providers (tenant_id, id);"
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

/// A row of `providers`.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    id: ProviderId,
    tenant_id: TenantId,
    provider: String,
    label: String,
    key_id: String,
    ciphertext: String,
    masked: serde_json::Value,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    version: i64,
}

impl crate::rows::RowTable for Row {
    const TABLE: &'static str = "providers";
    columns! {
        id: "uuid",
        tenant_id: "uuid",
        provider: "text",
        label: "text",
        key_id: "text",
        ciphertext: "text",
        masked: "jsonb",
        created_at: "timestamptz",
        updated_at: "timestamptz",
        version: "bigint",
    }

    fn id(&self) -> Uuid {
        self.id.uuid()
    }

    /// What `Providers::apply` does to the row.
    fn fold(
        row: Option<Self>,
        env: &Envelope,
        event: &Event,
    ) -> Result<Option<Self>, ProjectionError> {
        let missing = || missing_row("provider", env);
        let masked = |m: &std::collections::BTreeMap<String, String>| {
            serde_json::to_value(m).unwrap_or_default()
        };
        Ok(match event {
            Event::ProviderCreated(e) => {
                if row.is_some() {
                    return Err(ProjectionError::Invariant(format!(
                        "{} for a provider the table holds already (stream {})",
                        env.event_type, env.stream_id
                    )));
                }
                Some(Row {
                    id: ProviderId::from(env.stream_id),
                    tenant_id: env.tenant_id,
                    provider: e.provider.as_str().to_owned(),
                    label: e.label.clone(),
                    key_id: e.credentials.key_id.clone(),
                    ciphertext: e.credentials.ciphertext.clone(),
                    masked: masked(&e.credentials.masked),
                    created_at: env.recorded_at,
                    updated_at: env.recorded_at,
                    version: env.version,
                })
            }
            Event::ProviderRelabeled(e) => {
                let mut r = row.ok_or_else(missing)?;
                r.label = e.label.clone();
                r.updated_at = env.recorded_at;
                r.version = env.version;
                Some(r)
            }
            Event::ProviderCredentialsRotated(e) => {
                let mut r = row.ok_or_else(missing)?;
                r.key_id = e.credentials.key_id.clone();
                r.ciphertext = e.credentials.ciphertext.clone();
                r.masked = masked(&e.credentials.masked);
                r.updated_at = env.recorded_at;
                r.version = env.version;
                Some(r)
            }
            Event::ProviderDeleted(_) => {
                row.ok_or_else(missing)?;
                None
            }
            _ => row,
        })
    }

    const ON_CONFLICT: &'static str =
        "ON CONFLICT (id) DO UPDATE SET label = EXCLUDED.label, key_id = EXCLUDED.key_id, \
             ciphertext = EXCLUDED.ciphertext, masked = EXCLUDED.masked, \
             updated_at = EXCLUDED.updated_at, version = EXCLUDED.version";
}
