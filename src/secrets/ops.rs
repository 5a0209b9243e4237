//! Key operations for operators (`switchboard keys …`), each recorded in the
//! event store with its actor, so the audit trail shows who did what, when.
//!
//! - `rotate` (in `rotate.rs`): add a master key version, made primary;
//!   `MasterKeyAdded {kid}` on the system tenant stream (`Uuid::nil()`).
//! - `rewrap`: move every live tenant data key to the primary master kid;
//!   per key, `TenantKeyRewrapped {key_id, master_kid}` on its tenant stream.
//! - `shred_tenant`: destroy a tenant's data keys; per key,
//!   `TenantKeyShredded {key_id}` on its tenant stream.
//!
//! Each key change commits in one transaction with its event, holding the
//! append lock (`store::AppendTx`) from its start, as the creation of a
//! tenant's first key does (`live_or_create_key`).
//!
//! # Procedure
//! 1. `keys rotate` (dev mode rewrites the data-dir file; otherwise set the
//!    printed value), then restart every process so all of them hold the new
//!    kid: a process without it cannot open keys already rewrapped under it.
//! 2. `keys rewrap`: every live key moves to the new primary.
//! 3. Remove the old entry from the configuration and destroy it. Only then
//!    are backups of `tenant_keys` taken before a shred unreadable too: the
//!    shredded key survives in them, wrapped under the old master key.
//!
//! # After a shred
//! What the tenant's destroyed keys sealed is unreadable for good: its
//! originations fail (`OriginateFailed`, "provider credentials cannot be
//! decrypted: tenant key … is shredded") and nothing is dialed (a call the
//! worker judged just before the shred committed may still be); other tenants
//! are untouched. The tenant is not blocked, though: a provider it creates,
//! or credentials it rotates, afterwards are sealed under a fresh data key
//! (a new key id and `TenantKeyCreated`). Old secrets stay dead; new ones are
//! new. Blocking the tenant altogether is a tenancy decision, not a key one.

use events::{
    Event, StreamType, TenantId, TenantKeyCreated, TenantKeyRewrapped, TenantKeyShredded,
};
use sqlx::{PgConnection, PgPool};

use super::data_key::{unwrap, wrap};
use super::{tenant_keys, DataKey, MasterKeyring, SecretError};
use crate::commands::state::TenantState;
use crate::store::{self, AppendTx, Begin, CommandMeta, ExpectedVersion, StreamAppend};

pub use super::rotate::{current_ring, current_value, rotate, Rotated, SYSTEM_TENANT};

/// Keys `rewrap` lists per page.
const PAGE: i64 = 256;

/// One data key moved to another master kid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrapped {
    pub tenant_id: TenantId,
    pub key_id: String,
    pub from_kid: String,
    pub to_kid: String,
}

/// A key `rewrap` could not move (e.g. its master kid is not configured).
#[derive(Debug)]
pub struct RewrapFailure {
    pub tenant_id: TenantId,
    pub key_id: String,
    pub error: SecretError,
}

/// What `rewrap` did.
#[derive(Debug)]
pub struct RewrapReport {
    /// The primary kid every key was moved to.
    pub master_kid: String,
    pub moved: Vec<Rewrapped>,
    pub failed: Vec<RewrapFailure>,
}

/// An append transaction by `actor` for `tenant`, holding its tenant stream.
pub(super) async fn begin(
    pool: &PgPool,
    tenant: TenantId,
    actor: &str,
) -> anyhow::Result<AppendTx> {
    match AppendTx::begin(pool, CommandMeta::new(tenant, actor), &[tenant.uuid()]).await? {
        Begin::Fresh(tx) => Ok(tx),
        // A fresh command id cannot have been used before.
        Begin::Duplicate(_) => anyhow::bail!("command id collision"),
    }
}

/// Folds tenant stream `id` on `conn`.
pub(super) async fn fold_tenant(
    conn: &mut PgConnection,
    id: TenantId,
) -> anyhow::Result<TenantState> {
    Ok(store::load(conn, id.uuid(), TenantState::apply).await?)
}

async fn append_tenant(
    tx: &mut AppendTx,
    tenant: TenantId,
    events: Vec<Event>,
) -> anyhow::Result<()> {
    let state = fold_tenant(tx.conn(), tenant).await?;
    tx.append(&[StreamAppend {
        stream_type: StreamType::Tenant,
        stream_id: tenant.uuid(),
        expected: ExpectedVersion::from_version(state.version),
        events,
    }])
    .await?;
    Ok(())
}

/// The tenant's live data key; on first use (or after a shred) it is
/// created, with its `TenantKeyCreated`, in one transaction that holds the
/// append lock: two first uses at once create one key.
pub async fn live_or_create_key(
    pool: &PgPool,
    ring: &MasterKeyring,
    tenant: TenantId,
    actor: &str,
) -> anyhow::Result<DataKey> {
    if let Some(key) = tenant_keys::live_key(pool, ring, tenant).await? {
        return Ok(key);
    }
    let mut tx = begin(pool, tenant, actor).await?;
    let (key, created) = tenant_keys::get_or_create_data_key(tx.conn(), ring, tenant).await?;
    if created {
        let key_id = key.id().to_owned();
        append_tenant(
            &mut tx,
            tenant,
            vec![Event::TenantKeyCreated(TenantKeyCreated { key_id })],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(key)
}

/// Moves every live data key not under `ring`'s primary kid to it, each in
/// its own transaction with its `TenantKeyRewrapped`. A key that does not
/// unwrap is reported in `failed` and the rest still move; trouble with the
/// database stops the run (what moved so far stays moved). Safe to re-run.
pub async fn rewrap(
    pool: &PgPool,
    ring: &MasterKeyring,
    actor: &str,
) -> anyhow::Result<RewrapReport> {
    let primary = ring.primary_kid().to_owned();
    let mut report = RewrapReport {
        master_kid: primary.clone(),
        moved: Vec::new(),
        failed: Vec::new(),
    };
    let mut after = (TenantId::SYSTEM, String::new());
    loop {
        let page: Vec<(TenantId, String)> = sqlx::query_as(
            "SELECT tenant_id, key_id FROM tenant_keys \
             WHERE shredded_at IS NULL AND master_kid <> $1 AND (tenant_id, key_id) > ($2, $3) \
             ORDER BY tenant_id, key_id LIMIT $4",
        )
        .bind(&primary)
        .bind(after.0)
        .bind(&after.1)
        .bind(PAGE)
        .fetch_all(pool)
        .await?;
        let Some(last) = page.last() else {
            return Ok(report);
        };
        after = last.clone();
        for (tenant_id, key_id) in page {
            match rewrap_one(pool, ring, actor, tenant_id, &key_id).await? {
                Ok(Some(moved)) => report.moved.push(moved),
                Ok(None) => {}
                Err(error) => report.failed.push(RewrapFailure {
                    tenant_id,
                    key_id,
                    error,
                }),
            }
        }
    }
}

/// One key: `Ok(None)` if it was shredded or moved meanwhile.
async fn rewrap_one(
    pool: &PgPool,
    ring: &MasterKeyring,
    actor: &str,
    tenant: TenantId,
    key_id: &str,
) -> anyhow::Result<Result<Option<Rewrapped>, SecretError>> {
    let mut tx = begin(pool, tenant, actor).await?;
    let row: Option<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT master_kid, wrapped FROM tenant_keys \
         WHERE tenant_id = $1 AND key_id = $2 AND shredded_at IS NULL FOR UPDATE",
    )
    .bind(tenant)
    .bind(key_id)
    .fetch_optional(tx.conn())
    .await?;
    let Some((old_kid, wrapped)) = row.filter(|(kid, _)| kid != ring.primary_kid()) else {
        return Ok(Ok(None)); // dropping `tx` rolls it back
    };
    let rewrapped =
        unwrap(ring, tenant, key_id, &old_kid, &wrapped).and_then(|key| wrap(ring, tenant, &key));
    let (kid, rewrapped) = match rewrapped {
        Ok(r) => r,
        Err(e) => return Ok(Err(e)),
    };
    sqlx::query(
        "UPDATE tenant_keys SET master_kid = $1, wrapped = $2 WHERE tenant_id = $3 AND key_id = $4",
    )
    .bind(&kid)
    .bind(&rewrapped)
    .bind(tenant)
    .bind(key_id)
    .execute(tx.conn())
    .await?;
    let event = Event::TenantKeyRewrapped(TenantKeyRewrapped {
        key_id: key_id.to_owned(),
        master_kid: kid.clone(),
    });
    append_tenant(&mut tx, tenant, vec![event]).await?;
    tx.commit().await?;
    Ok(Ok(Some(Rewrapped {
        tenant_id: tenant,
        key_id: key_id.to_owned(),
        from_kid: old_kid,
        to_kid: kid,
    })))
}

/// Destroys the tenant's live data keys and appends `TenantKeyShredded` per
/// key, in one transaction; returns the key ids shredded (empty when the
/// tenant had no live key: nothing is written then).
pub async fn shred_tenant(
    pool: &PgPool,
    tenant: TenantId,
    actor: &str,
) -> anyhow::Result<Vec<String>> {
    anyhow::ensure!(
        tenant != SYSTEM_TENANT,
        "the system tenant has no data keys"
    );
    let mut tx = begin(pool, tenant, actor).await?;
    let ids = tenant_keys::shred_tenant(tx.conn(), tenant).await?;
    if ids.is_empty() {
        return Ok(ids);
    }
    let events = ids
        .iter()
        .map(|key_id| {
            Event::TenantKeyShredded(TenantKeyShredded {
                key_id: key_id.clone(),
            })
        })
        .collect();
    append_tenant(&mut tx, tenant, events).await?;
    tx.commit().await?;
    Ok(ids)
}
