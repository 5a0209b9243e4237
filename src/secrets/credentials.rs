//! Sealing `PlainCredentials` into the `EncryptedCredentials` that events
//! and read tables hold, and opening them again.
//!
//! The sealed form is base64(nonce || AES-256-GCM-SIV ciphertext)
//! of a JSON object of strings, under associated data binding tenant id,
//! provider id and data key id: a ciphertext copied to another provider or
//! tenant, or relabelled with another key id, does not open.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use events::{EncryptedCredentials, ProviderId, TenantId};
use zeroize::Zeroizing;

use super::plain::Exposed;
use super::{cipher, mask, DataKey, PlainCredentials, SecretError};

fn credentials_aad(tenant_id: TenantId, provider_id: ProviderId, key_id: &str) -> Vec<u8> {
    let parts: [&[u8]; 3] = [
        tenant_id.as_bytes(),
        provider_id.as_bytes(),
        key_id.as_bytes(),
    ];
    cipher::aad("switchboard/credentials/v1", &parts)
}

/// Seals `creds` for one provider of one tenant under `key`, and masks them.
pub fn seal(
    key: &DataKey,
    tenant_id: TenantId,
    provider_id: ProviderId,
    creds: &PlainCredentials,
) -> Result<EncryptedCredentials, SecretError> {
    // Worst case JSON escapes a byte as 6 (`\u00XX`): size the buffer so it
    // never reallocates and leaves a plaintext copy behind.
    let bound = 2 + creds
        .iter_exposed()
        .map(|(k, v)| 6 * (k.len() + v.len()) + 6)
        .sum::<usize>();
    let mut json = Zeroizing::new(Vec::with_capacity(bound));
    serde_json::to_writer(&mut *json, &Exposed(creds)).map_err(|_| SecretError::Encrypt)?;
    let aad = credentials_aad(tenant_id, provider_id, key.id());
    let sealed = cipher::seal(key.bytes(), &aad, &json)?;
    Ok(EncryptedCredentials {
        key_id: key.id().to_owned(),
        ciphertext: STANDARD.encode(sealed),
        masked: mask::mask(creds),
    })
}

/// Opens credentials sealed by `seal` for this tenant and provider.
pub fn open(
    key: &DataKey,
    tenant_id: TenantId,
    provider_id: ProviderId,
    sealed: &EncryptedCredentials,
) -> Result<PlainCredentials, SecretError> {
    if sealed.key_id != key.id() {
        return Err(SecretError::KeyMismatch);
    }
    let bytes = STANDARD
        .decode(&sealed.ciphertext)
        .map_err(|_| SecretError::Malformed("ciphertext is not base64"))?;
    let aad = credentials_aad(tenant_id, provider_id, key.id());
    let json = cipher::open(key.bytes(), &aad, &bytes).ok_or(SecretError::Decrypt)?;
    serde_json::from_slice(&json)
        .map_err(|_| SecretError::Malformed("credentials are not an object of strings"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    const TOKEN: &str = "CANARY-token-\"quoted\"-\u{1}-é";

    fn twilio() -> PlainCredentials {
        let mut c = PlainCredentials::new();
        c.insert("account_sid", "AC0123456789abcdef0123456789ab9f3a");
        c.insert("auth_token", TOKEN);
        c
    }

    fn shown(c: &EncryptedCredentials) -> String {
        serde_json::to_string(c).unwrap()
    }

    #[test]
    fn round_trip_and_mask() {
        let key = DataKey::generate();
        let (tenant, provider) = (TenantId::new(), ProviderId::new());
        let sealed = seal(&key, tenant, provider, &twilio()).unwrap();
        assert_eq!(sealed.key_id, key.id());
        assert_eq!(sealed.masked["account_sid"], "AC…9f3a");
        assert_eq!(sealed.masked["auth_token"], "********");
        assert!(!shown(&sealed).contains("CANARY"));
        assert!(!shown(&sealed).contains("0123456789abcdef"));
        let opened = open(&key, tenant, provider, &sealed).unwrap();
        assert_eq!(opened.expose("auth_token"), Some(TOKEN));
        assert_eq!(
            opened.keys().collect::<Vec<_>>(),
            ["account_sid", "auth_token"]
        );
        // Fresh nonce each time.
        let again = seal(&key, tenant, provider, &twilio()).unwrap();
        assert_ne!(again.ciphertext, sealed.ciphertext);
    }

    #[test]
    fn moved_ciphertext_does_not_open() {
        let key = DataKey::generate();
        let (tenant, provider) = (TenantId::new(), ProviderId::new());
        let sealed = seal(&key, tenant, provider, &twilio()).unwrap();
        for (t, p) in [(tenant, ProviderId::new()), (TenantId::new(), provider)] {
            let err = open(&key, t, p, &sealed).unwrap_err();
            assert!(matches!(err, SecretError::Decrypt), "{err}");
        }
        let other = DataKey::generate();
        let relabeled = EncryptedCredentials {
            key_id: other.id().to_owned(),
            ..sealed.clone()
        };
        assert!(matches!(
            open(&other, tenant, provider, &relabeled),
            Err(SecretError::Decrypt)
        ));
        assert!(matches!(
            open(&other, tenant, provider, &sealed),
            Err(SecretError::KeyMismatch)
        ));
    }

    #[test]
    fn tampered_or_malformed_ciphertext_fails() {
        let key = DataKey::generate();
        let (tenant, provider) = (TenantId::new(), ProviderId::new());
        let mut sealed = seal(&key, tenant, provider, &twilio()).unwrap();
        let mut raw = STANDARD.decode(&sealed.ciphertext).unwrap();
        raw[20] ^= 1;
        sealed.ciphertext = STANDARD.encode(&raw);
        assert!(matches!(
            open(&key, tenant, provider, &sealed),
            Err(SecretError::Decrypt)
        ));
        sealed.ciphertext = "not base64!".into();
        assert!(matches!(
            open(&key, tenant, provider, &sealed),
            Err(SecretError::Malformed(_))
        ));
        sealed.ciphertext = STANDARD.encode([0u8; 8]);
        assert!(matches!(
            open(&key, tenant, provider, &sealed),
            Err(SecretError::Decrypt)
        ));
    }

    #[test]
    fn errors_redact_values() {
        let key = DataKey::generate();
        let sealed = seal(&key, TenantId::default(), ProviderId::default(), &twilio()).unwrap();
        let err = open(
            &key,
            TenantId::default(),
            ProviderId::from(Uuid::max()),
            &sealed,
        )
        .unwrap_err();
        assert!(!format!("{err} {err:?}").contains("CANARY"));
    }
}
