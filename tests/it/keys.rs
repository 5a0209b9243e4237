//! `switchboard keys …` (SPEC §8): rotate adds a master key version and old
//! ciphertexts stay readable; rewrap moves every tenant key to the newest
//! version; shredding one tenant kills its credentials and no one else's.
//! Every change is in the audit trail with its actor.

mod rewrap;
mod rotate;
mod shred;

use clap::Parser;
use events::{EncryptedCredentials, Event, ProviderId, TenantId};
use sqlx::PgPool;
use switchboard::cli::Cli;
use switchboard::config::Settings;
use switchboard::secrets::{MasterKeyring, PlainCredentials, SecretError, Secrets};
use switchboard::store::{self, StoredEvent};
use uuid::Uuid;

use crate::support::TestEnv;

/// Settings for a CLI run against `env`: dev mode (keyring in `dir`) unless
/// `extra` configures a key or production.
pub fn settings(env: &TestEnv, dir: &std::path::Path, extra: &[&str]) -> Settings {
    let mut args = vec!["switchboard", "--database-url", &env.db_url];
    args.extend(["--data-dir", dir.to_str().unwrap()]);
    args.extend(extra);
    args.push("migrate");
    Cli::parse_from(args).settings
}

pub fn temp_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("sbkeys-{}", Uuid::new_v4().simple()))
}

/// Seals a provider's credentials as the gateway does (a key created on
/// first use, with its `TenantKeyCreated`).
pub async fn seal(
    pool: &PgPool,
    ring: MasterKeyring,
    tenant: TenantId,
    provider: ProviderId,
) -> EncryptedCredentials {
    let plain: PlainCredentials = [("auth_token", format!("token-{provider}"))]
        .into_iter()
        .collect();
    Secrets::new(ring)
        .seal_for_provider(pool, tenant, provider, &plain, "t")
        .await
        .unwrap()
}

/// Opens `sealed` with `ring`; the plaintext token, or the error.
pub async fn open(
    pool: &PgPool,
    ring: MasterKeyring,
    t: TenantId,
    p: ProviderId,
    sealed: &EncryptedCredentials,
) -> Result<String, SecretError> {
    let plain = Secrets::new(ring)
        .open_for_provider(pool, t, p, sealed, &[])
        .await?;
    Ok(plain.expose("auth_token").unwrap().to_owned())
}

pub async fn master_kid(pool: &PgPool, tenant: TenantId) -> String {
    sqlx::query_scalar(
        "SELECT master_kid FROM tenant_keys WHERE tenant_id = $1 AND shredded_at IS NULL",
    )
    .bind(tenant)
    .fetch_one(pool)
    .await
    .unwrap()
}

pub async fn stream(pool: &PgPool, id: Uuid) -> Vec<(StoredEvent, Event)> {
    let stored = store::read_stream(pool, id, None).await.unwrap();
    stored
        .into_iter()
        .map(|s| {
            let e = s.event().unwrap();
            (s, e)
        })
        .collect()
}
