//! Per-tenant data keys, and wrapping them under a master key.
//!
//! Each tenant's credentials are sealed under its own random 32-byte data key,
//! so destroying that one key (`shred_tenant`) makes the tenant's ciphertext
//! in events, read tables and their backups unreadable while every other
//! tenant keeps working. A data key is stored only wrapped by a master key
//! (AES-256-GCM-SIV, `nonce || ciphertext`), with associated data binding it
//! to its tenant, key id and master kid, so a wrapped key copied to another
//! row does not open. Storage is in `tenant_keys.rs`.

use events::TenantId;
use std::fmt;

use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::Zeroizing;

use super::{cipher, MasterKeyring, SecretError};

/// A tenant's unwrapped data key. Zeroized on drop; `Debug` shows the id only.
pub struct DataKey {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

impl DataKey {
    /// A fresh random key named `dk-` + 16 random hex digits.
    pub fn generate() -> Self {
        let mut name = [0u8; 8];
        OsRng.fill_bytes(&mut name);
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(key.as_mut());
        DataKey {
            id: format!("dk-{}", hex::encode(name)),
            key,
        }
    }

    /// The key id recorded in `EncryptedCredentials::key_id`.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.key
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn wrap_aad(tenant_id: TenantId, key_id: &str, master_kid: &str) -> Vec<u8> {
    let parts: [&[u8]; 3] = [
        tenant_id.as_bytes(),
        key_id.as_bytes(),
        master_kid.as_bytes(),
    ];
    cipher::aad("switchboard/tenant-key/v1", &parts)
}

/// Wraps `key` under the primary master key: `(master_kid, nonce || ct)`.
pub(crate) fn wrap(
    ring: &MasterKeyring,
    tenant_id: TenantId,
    key: &DataKey,
) -> Result<(String, Vec<u8>), SecretError> {
    let (kid, master) = ring.primary();
    let sealed = cipher::seal(master, &wrap_aad(tenant_id, &key.id, kid), key.bytes())?;
    Ok((kid.to_owned(), sealed))
}

/// Unwraps a stored key; an empty `wrapped` means it was shredded.
pub(crate) fn unwrap(
    ring: &MasterKeyring,
    tenant_id: TenantId,
    key_id: &str,
    master_kid: &str,
    wrapped: &[u8],
) -> Result<DataKey, SecretError> {
    if wrapped.is_empty() {
        return Err(SecretError::Shredded(key_id.to_owned()));
    }
    let master = ring
        .key(master_kid)
        .ok_or_else(|| SecretError::UnknownMasterKid(master_kid.to_owned()))?;
    let aad = wrap_aad(tenant_id, key_id, master_kid);
    let plain = cipher::open(master, &aad, wrapped)
        .filter(|p| p.len() == 32)
        .ok_or_else(|| SecretError::Unwrap(key_id.to_owned()))?;
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&plain);
    Ok(DataKey {
        id: key_id.to_owned(),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(value: &str) -> MasterKeyring {
        MasterKeyring::parse(value).unwrap()
    }

    #[test]
    fn wrap_round_trips_and_binds_the_row() {
        let old = MasterKeyring::generate_entry("mk1");
        let ring1 = ring(&old);
        let tenant = TenantId::new();
        let key = DataKey::generate();
        let (kid, wrapped) = wrap(&ring1, tenant, &key).unwrap();
        assert_eq!(kid, "mk1");
        assert_eq!(wrapped.len(), cipher::NONCE_LEN + 32 + cipher::TAG_LEN);
        let back = unwrap(&ring1, tenant, key.id(), &kid, &wrapped).unwrap();
        assert_eq!(back.bytes(), key.bytes());
        assert_eq!(back.id(), key.id());

        let other_tenant = unwrap(&ring1, TenantId::new(), key.id(), &kid, &wrapped);
        assert!(matches!(other_tenant, Err(SecretError::Unwrap(_))));
        let other_id = unwrap(&ring1, tenant, "dk-other", &kid, &wrapped);
        assert!(matches!(other_id, Err(SecretError::Unwrap(_))));
        let unknown = unwrap(&ring1, tenant, key.id(), "mk9", &wrapped);
        assert!(matches!(unknown, Err(SecretError::UnknownMasterKid(k)) if k == "mk9"));
        let shredded = unwrap(&ring1, tenant, key.id(), &kid, &[]);
        assert!(matches!(shredded, Err(SecretError::Shredded(_))));

        // After rotation the old kid still opens, new wraps use the new one.
        let ring2 = ring(&format!("{},{old}", MasterKeyring::generate_entry("mk2")));
        assert!(unwrap(&ring2, tenant, key.id(), &kid, &wrapped).is_ok());
        let (kid2, wrapped2) = wrap(&ring2, tenant, &key).unwrap();
        assert_eq!(kid2, "mk2");
        let relabeled = unwrap(&ring2, tenant, key.id(), "mk1", &wrapped2);
        assert!(
            matches!(relabeled, Err(SecretError::Unwrap(_))),
            "kid is bound"
        );
    }

    #[test]
    fn generated_keys_are_distinct_and_debug_is_redacted() {
        let (a, b) = (DataKey::generate(), DataKey::generate());
        assert_ne!(a.id(), b.id());
        assert_ne!(a.bytes(), b.bytes());
        assert!(a.id().starts_with("dk-") && a.id().len() == 19);
        let canary = DataKey {
            id: "dk-test".into(),
            key: Zeroizing::new(*b"CANARY-data-key-0123456789abcdef"),
        };
        let shown = format!("{canary:?} {canary:#?}");
        assert!(shown.contains("dk-test"));
        assert!(
            !shown.contains("CANARY") && !shown.contains("67, 65"),
            "{shown}"
        );
    }
}
