//! Secrets (SPEC §8): provider credentials encrypted with AES-256-GCM-SIV
//! under a per-tenant data key, data keys wrapped by a versioned master key.
//!
//! - `master`: the master keyring from `SWITCHBOARD_MASTER_KEY`.
//! - `data_key`: tenant data keys and wrapping them under a master key.
//! - `tenant_keys`: the table of wrapped data keys: create on first use,
//!   load, rewrap under a new master key, shred.
//! - `plain`: `PlainCredentials`, the only holder of plaintext.
//! - `credentials`: sealing them into the `EncryptedCredentials` events carry.
//! - `mask`: the masked view responses show (SPEC §4).
//! - `redact`: scrubbing outside text (carrier errors) of credentials and
//!   token-shaped runs before it is stored or printed.
//! - `cipher`: the AEAD primitive and associated-data framing.
//!
//! # Invariants
//! - Events and tables hold ciphertext and masked values only.
//! - Every ciphertext is bound by its associated data to its tenant, provider
//!   and key id; moved elsewhere it fails to open.
//! - Plaintext and key bytes live in zeroizing buffers, are redacted in
//!   `Debug`, and never appear in a `SecretError`.
//! - A shredded data key is gone from `tenant_keys`; what it sealed is
//!   unreadable from then on: no call judged after the shred commits opens
//!   it. A worker that kept the key unwrapped for dials
//!   (`open_for_provider`) refuses it from then on and forgets it at the
//!   tenant's next call, at eviction or at restart; until then its bytes
//!   are still in that worker's memory, unused.

pub(crate) mod cipher;
pub mod cli;
mod credentials;
mod data_key;
mod mask;
mod master;
pub mod ops;
mod plain;
pub mod redact;
mod rotate;
mod tenant_keys;

use events::{EncryptedCredentials, ProviderId, TenantId};
use std::sync::Arc;

use sqlx::{PgExecutor, PgPool};

pub use credentials::{open, seal};
pub use data_key::DataKey;
pub use mask::{mask, mask_value, IDENTIFIER_KEYS, MASK};
pub use master::MasterKeyring;
pub use plain::PlainCredentials;
// Plaintext on purpose, for two places only: sealing, and the dial request.
pub(crate) use plain::Exposed;
pub use tenant_keys::{get_or_create_data_key, load_tenant_key, rewrap_all};

/// What can go wrong with secrets. Messages name keys and kids (which are not
/// secret), never plaintext, key bytes or configured values.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("no master key configured")]
    NoMasterKey,
    /// `entry` is 1-based; `reason` is a fixed text, never the entry.
    #[error("invalid master key entry {entry}: {reason}")]
    InvalidMasterKey { entry: usize, reason: &'static str },
    #[error("master key {0} is not configured")]
    UnknownMasterKid(String),
    #[error("tenant key {0} not found")]
    KeyNotFound(String),
    #[error("tenant key {0} is shredded")]
    Shredded(String),
    /// Wrong master key for the row, or the row was altered or moved.
    #[error("tenant key {0} cannot be unwrapped")]
    Unwrap(String),
    /// A live key vanished between insert and read (a concurrent shred).
    #[error("tenant has no live key")]
    NoLiveKey,
    #[error("credentials were sealed under another key")]
    KeyMismatch,
    /// Wrong key, or the ciphertext was altered or moved to another record.
    #[error("credentials cannot be decrypted")]
    Decrypt,
    #[error("malformed credentials: {0}")]
    Malformed(&'static str),
    #[error("encryption failed")]
    Encrypt,
    #[error("secrets store: {0}")]
    Db(#[from] sqlx::Error),
}

/// The secrets service: the keyring plus the high-level operations handlers
/// need. Cheap to clone.
#[derive(Clone)]
pub struct Secrets {
    ring: Arc<MasterKeyring>,
    /// Tenants' data keys as unwrapped for dials (`open_for_provider`),
    /// by tenant and key id; bounded, zeroized when they go.
    data_keys: Arc<quick_cache::sync::Cache<(TenantId, String), Arc<DataKey>>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("ring", &self.ring)
            .finish_non_exhaustive()
    }
}

/// Data keys a process keeps unwrapped: one a tenant, as a rule.
const DATA_KEYS_KEPT: usize = 10_000;

impl Secrets {
    pub fn new(ring: MasterKeyring) -> Self {
        Secrets {
            ring: Arc::new(ring),
            data_keys: Arc::new(quick_cache::sync::Cache::new(DATA_KEYS_KEPT)),
        }
    }

    pub fn keyring(&self) -> &MasterKeyring {
        &self.ring
    }

    /// Seals credentials for a provider under the tenant's live data key,
    /// creating it on first use (`ops::live_or_create_key`: the key and its
    /// `TenantKeyCreated`, recorded as `actor`, commit before the seal).
    pub async fn seal_for_provider(
        &self,
        pool: &PgPool,
        tenant_id: TenantId,
        provider_id: ProviderId,
        creds: &PlainCredentials,
        actor: &str,
    ) -> anyhow::Result<EncryptedCredentials> {
        let key = ops::live_or_create_key(pool, &self.ring, tenant_id, actor).await?;
        Ok(seal(&key, tenant_id, provider_id, creds)?)
    }

    /// Opens a provider's credentials for a dial; `Shredded` once the
    /// tenant's key is.
    ///
    /// The data key is read and unwrapped once per process and kept, not
    /// for every call. `shredded` is the key ids the tenant stream records
    /// as shredded, read from the store beside the call's other state just
    /// before (the worker's judged read): `TenantKeyShredded` commits in
    /// the shred's own transaction, so a key shredded before the call was
    /// judged is refused here whether it is kept or not. A key not kept is
    /// read from `tenant_keys`, which refuses a shredded one too. A caller
    /// must pass the shredded ids read fresh: with none, a kept key is used
    /// as it is (the tests that pass `&[]` shred nothing).
    pub async fn open_for_provider(
        &self,
        db: impl PgExecutor<'_>,
        tenant_id: TenantId,
        provider_id: ProviderId,
        sealed: &EncryptedCredentials,
        shredded: &[String],
    ) -> Result<PlainCredentials, SecretError> {
        let slot = (tenant_id, sealed.key_id.clone());
        if shredded.contains(&sealed.key_id) {
            self.data_keys.remove(&slot);
            return Err(SecretError::Shredded(sealed.key_id.clone()));
        }
        let key = match self.data_keys.get(&slot) {
            Some(key) => key,
            None => {
                let key =
                    Arc::new(load_tenant_key(db, &self.ring, tenant_id, &sealed.key_id).await?);
                self.data_keys.insert(slot, key.clone());
                key
            }
        };
        open(&key, tenant_id, provider_id, sealed)
    }

    /// Drops the kept unwrapped copies of `tenant_id`'s keys `key_ids`
    /// (shredded ones: the worker's judged read names them).
    pub fn forget(&self, tenant_id: TenantId, key_ids: &[String]) {
        for key_id in key_ids {
            self.data_keys.remove(&(tenant_id, key_id.clone()));
        }
    }

    /// `rewrap_all` with this keyring.
    pub async fn rewrap_all(&self, pool: &PgPool) -> Result<u64, SecretError> {
        rewrap_all(pool, &self.ring).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_debug_shows_kids_only() {
        let value = MasterKeyring::generate_dev_value();
        let secrets = Secrets::new(MasterKeyring::parse(&value).unwrap());
        let shown = format!("{secrets:?}");
        let b64 = value.split_once(':').unwrap().1;
        assert!(
            shown.contains("mk1") && !shown.contains(&b64[..12]),
            "{shown}"
        );
        assert_eq!(secrets.keyring().primary_kid(), "mk1");
    }
}
