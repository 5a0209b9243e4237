//! The `tenant_keys` table: where wrapped data keys live, and the operations
//! on it (create on first use, load, rewrap, shred).
//!
//! A tenant has at most one live (unshredded) key; a partial unique index
//! enforces it, which is what makes creation race-safe without locks. A
//! shredded row keeps its ids but no key bytes, so a read can tell
//! "shredded" from "never existed" and nothing can unwrap it again.
//!
//! A backup of this table taken before a shred still holds the wrapped key,
//! so it is unreadable only once its master key is gone: rotate, `rewrap_all`,
//! then remove the old kid from the configuration and the key store.

use events::TenantId;
use sqlx::{PgConnection, PgExecutor, PgPool};

use super::data_key::{unwrap, wrap};
use super::{DataKey, MasterKeyring, SecretError};

/// Rows `rewrap_all` reads per batch.
const REWRAP_BATCH: i64 = 256;

/// The tenant's live key, creating it on first use; `true` when created now.
///
/// Race-safe: the insert is `ON CONFLICT DO NOTHING` against the one-live-key
/// index, so of two concurrent callers one inserts and the other waits for it
/// to commit and then reads its key. Run it inside the transaction that
/// appends `TenantKeyCreated`, so a rolled-back command leaves no key behind.
/// After `shred_tenant`, the next call creates a new key with a new id.
pub async fn get_or_create_data_key(
    conn: &mut PgConnection,
    ring: &MasterKeyring,
    tenant_id: TenantId,
) -> Result<(DataKey, bool), SecretError> {
    if let Some(key) = live_key(&mut *conn, ring, tenant_id).await? {
        return Ok((key, false));
    }
    let key = DataKey::generate();
    let (kid, wrapped) = wrap(ring, tenant_id, &key)?;
    let inserted = sqlx::query(
        "INSERT INTO tenant_keys (tenant_id, key_id, master_kid, wrapped) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id) WHERE shredded_at IS NULL DO NOTHING",
    )
    .bind(tenant_id)
    .bind(key.id())
    .bind(&kid)
    .bind(&wrapped)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok((key, true));
    }
    // Another caller created it first (and has committed): use theirs.
    let theirs = live_key(&mut *conn, ring, tenant_id).await?;
    Ok((theirs.ok_or(SecretError::NoLiveKey)?, false))
}

/// The tenant's live key, if it has one.
pub async fn live_key(
    conn: impl PgExecutor<'_>,
    ring: &MasterKeyring,
    tenant_id: TenantId,
) -> Result<Option<DataKey>, SecretError> {
    let row: Option<(String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT key_id, master_kid, wrapped FROM tenant_keys \
         WHERE tenant_id = $1 AND shredded_at IS NULL",
    )
    .bind(tenant_id)
    .fetch_optional(conn)
    .await?;
    row.map(|(key_id, kid, wrapped)| unwrap(ring, tenant_id, &key_id, &kid, &wrapped))
        .transpose()
}

/// Loads and unwraps one key of a tenant, live or not.
pub async fn load_tenant_key(
    db: impl PgExecutor<'_>,
    ring: &MasterKeyring,
    tenant_id: TenantId,
    key_id: &str,
) -> Result<DataKey, SecretError> {
    let row: Option<(String, Vec<u8>, bool)> = sqlx::query_as(
        "SELECT master_kid, wrapped, shredded_at IS NOT NULL FROM tenant_keys \
         WHERE tenant_id = $1 AND key_id = $2",
    )
    .bind(tenant_id)
    .bind(key_id)
    .fetch_optional(db)
    .await?;
    match row {
        None => Err(SecretError::KeyNotFound(key_id.to_owned())),
        Some((_, _, true)) => Err(SecretError::Shredded(key_id.to_owned())),
        Some((kid, wrapped, false)) => unwrap(ring, tenant_id, key_id, &kid, &wrapped),
    }
}

/// Re-wraps every live key not yet under the primary master kid; returns how
/// many were moved. Each key is updated on its own, guarded by its old kid
/// and `shredded_at IS NULL`, so a concurrent rewrap or shred wins cleanly
/// and a shredded key is never written back. Stops at the first key that
/// does not unwrap (e.g. its master kid is no longer configured).
pub async fn rewrap_all(pool: &PgPool, ring: &MasterKeyring) -> Result<u64, SecretError> {
    let primary = ring.primary_kid();
    let mut after = (TenantId::SYSTEM, String::new());
    let mut moved = 0;
    loop {
        let rows: Vec<(TenantId, String, String, Vec<u8>)> = sqlx::query_as(
            "SELECT tenant_id, key_id, master_kid, wrapped FROM tenant_keys \
             WHERE shredded_at IS NULL AND master_kid <> $1 AND (tenant_id, key_id) > ($2, $3) \
             ORDER BY tenant_id, key_id LIMIT $4",
        )
        .bind(primary)
        .bind(after.0)
        .bind(&after.1)
        .bind(REWRAP_BATCH)
        .fetch_all(pool)
        .await?;
        let Some(last) = rows.last() else {
            return Ok(moved);
        };
        after = (last.0, last.1.clone());
        for (tenant_id, key_id, old_kid, wrapped) in rows {
            let key = unwrap(ring, tenant_id, &key_id, &old_kid, &wrapped)?;
            let (kid, rewrapped) = wrap(ring, tenant_id, &key)?;
            moved += sqlx::query(
                "UPDATE tenant_keys SET master_kid = $1, wrapped = $2 \
                 WHERE tenant_id = $3 AND key_id = $4 AND master_kid = $5 AND shredded_at IS NULL",
            )
            .bind(&kid)
            .bind(&rewrapped)
            .bind(tenant_id)
            .bind(&key_id)
            .bind(&old_kid)
            .execute(pool)
            .await?
            .rows_affected();
        }
    }
}

/// Destroys the tenant's live keys: `wrapped` becomes empty and
/// `shredded_at` is set; returns the key ids shredded now (empty if none
/// were live), for `TenantKeyShredded` events. Only through
/// `ops::shred_tenant`, in the transaction that appends those events: the
/// worker's kept data keys are refused by them, not by this row.
pub async fn shred_tenant(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
) -> Result<Vec<String>, SecretError> {
    let ids = sqlx::query_scalar(
        "UPDATE tenant_keys SET wrapped = ''::bytea, shredded_at = now() \
         WHERE tenant_id = $1 AND shredded_at IS NULL RETURNING key_id",
    )
    .bind(tenant_id)
    .fetch_all(db)
    .await?;
    Ok(ids)
}
