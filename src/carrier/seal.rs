//! Sealing the one credential a dial keeps: the carrier token that signs
//! its status callbacks, so callbacks still verify after a restart.
//!
//! The key is derived from the callback secret the adapter already holds
//! (HMAC-SHA256 of a fixed label), so running the adapter takes no second
//! secret; the ciphertext is bound to its call_id, so a sealed token copied
//! to another row does not open.

use events::CallId;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::secrets::cipher;

const LABEL: &str = "switchboard carrier_dials.sealed_auth v1";

/// The sealing key, wiped on drop.
pub struct SealKey(Zeroizing<[u8; 32]>);

impl SealKey {
    pub fn derive(callback_secret: &[u8]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(callback_secret).expect("HMAC takes any key");
        mac.update(LABEL.as_bytes());
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&mac.finalize().into_bytes());
        SealKey(key)
    }

    pub fn seal(&self, call_id: CallId, token: &str) -> Vec<u8> {
        cipher::seal(&self.0, &aad(call_id), token.as_bytes())
            .expect("AES-GCM-SIV seals any short plaintext")
    }

    /// The token, or `None` if the row was not sealed for this call_id
    /// under this key (a changed callback secret, a tampered row).
    pub fn open(&self, call_id: CallId, sealed: &[u8]) -> Option<Zeroizing<String>> {
        let plain = cipher::open(&self.0, &aad(call_id), sealed)?;
        std::str::from_utf8(&plain)
            .ok()
            .map(|s| Zeroizing::new(s.to_owned()))
    }
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey([redacted])")
    }
}

fn aad(call_id: CallId) -> Vec<u8> {
    cipher::aad("carrier-dial-auth", &[call_id.as_bytes().as_slice()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_only_for_its_call_and_key() {
        let key = SealKey::derive(b"secret");
        let call = CallId::new();
        let sealed = key.seal(call, "tok-123");
        assert_eq!(key.open(call, &sealed).unwrap().as_str(), "tok-123");
        assert!(key.open(CallId::new(), &sealed).is_none());
        assert!(SealKey::derive(b"other").open(call, &sealed).is_none());
        assert!(!sealed.windows(7).any(|w| w == b"tok-123"));
    }
}
