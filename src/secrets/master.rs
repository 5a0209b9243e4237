//! The master keyring: the keys that wrap tenant data keys.
//!
//! Read from `SWITCHBOARD_MASTER_KEY` as `kid:base64(32 bytes)` entries,
//! comma-separated, the first being the primary. New data keys are wrapped
//! under the primary; older entries stay so keys wrapped under them still
//! open until `rewrap` moves them to the primary. Key ids (`kid`) are not
//! secret and appear in the `tenant_keys` table and in errors; key bytes are
//! held in zeroizing buffers and never printed, and parse errors name only the
//! entry's position and a fixed reason, never its text.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::SecretError;

/// Longest accepted key id.
const MAX_KID_LEN: usize = 32;

struct MasterKey {
    kid: String,
    key: Zeroizing<[u8; 32]>,
}

/// The configured master keys; the first is the primary. Never empty.
pub struct MasterKeyring {
    keys: Vec<MasterKey>,
}

impl MasterKeyring {
    /// Parses `kid:base64,kid:base64,...`. Blank entries (a trailing comma or
    /// newline) are ignored; kids must be unique and made of ASCII letters,
    /// digits, `-`, `_` or `.`.
    pub fn parse(value: &str) -> Result<Self, SecretError> {
        let mut keys: Vec<MasterKey> = Vec::new();
        let entries = value.split(',').map(str::trim).filter(|e| !e.is_empty());
        for (i, entry) in entries.enumerate() {
            let bad = |reason| SecretError::InvalidMasterKey {
                entry: i + 1,
                reason,
            };
            let (kid, b64) = entry.split_once(':').ok_or(bad("expected kid:base64"))?;
            let (kid, b64) = (kid.trim(), b64.trim());
            if !valid_kid(kid) {
                return Err(bad("invalid kid"));
            }
            if keys.iter().any(|k| k.kid == kid) {
                return Err(bad("duplicate kid"));
            }
            // The decoder's own error names the offending byte: drop it.
            let bytes = Zeroizing::new(STANDARD.decode(b64).map_err(|_| bad("not base64"))?);
            let mut key = Zeroizing::new([0u8; 32]);
            if bytes.len() != key.len() {
                return Err(bad("key must be 32 bytes"));
            }
            key.copy_from_slice(&bytes);
            keys.push(MasterKey {
                kid: kid.to_owned(),
                key,
            });
        }
        if keys.is_empty() {
            return Err(SecretError::NoMasterKey);
        }
        Ok(MasterKeyring { keys })
    }

    /// `parse` for the value as configuration holds it.
    pub fn from_secret(value: &SecretString) -> Result<Self, SecretError> {
        Self::parse(value.expose_secret())
    }

    /// One fresh entry, `mk1:<base64 of 32 random bytes>`, for dev mode.
    pub fn generate_dev_value() -> String {
        Self::generate_entry("mk1")
    }

    /// One fresh entry `kid:<base64 of 32 random bytes>`; prepend it to the
    /// configured value (with a comma) to rotate the primary.
    pub fn generate_entry(kid: &str) -> String {
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(key.as_mut());
        format!("{kid}:{}", STANDARD.encode(key.as_ref()))
    }

    /// A kid not yet in the ring: `mk<N+1>` after the highest `mk<N>`.
    pub fn next_kid(&self) -> String {
        let highest = self
            .keys
            .iter()
            .filter_map(|k| k.kid.strip_prefix("mk")?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        format!("mk{}", highest + 1)
    }

    /// The kid new data keys are wrapped under.
    pub fn primary_kid(&self) -> &str {
        &self.keys[0].kid
    }

    /// Every kid, primary first.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.kid.as_str()).collect()
    }

    pub fn contains(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid == kid)
    }

    /// The primary kid and key.
    pub(crate) fn primary(&self) -> (&str, &[u8; 32]) {
        let k = &self.keys[0];
        (&k.kid, &k.key)
    }

    /// The key for `kid`, if configured.
    pub(crate) fn key(&self, kid: &str) -> Option<&[u8; 32]> {
        self.keys.iter().find(|k| k.kid == kid).map(|k| &*k.key)
    }
}

fn valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl fmt::Debug for MasterKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKeyring")
            .field("kids", &self.kids())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 32 bytes spelling a recognisable canary.
    const CANARY: &[u8; 32] = b"CANARY-master-key-0123456789abcd";

    fn entry(kid: &str, key: &[u8]) -> String {
        format!("{kid}:{}", STANDARD.encode(key))
    }

    #[test]
    fn parses_entries_primary_first() {
        let value = format!("{}, {},", entry("mk2", CANARY), entry("mk1", &[1; 32]));
        let ring = MasterKeyring::parse(&value).unwrap();
        assert_eq!(ring.kids(), ["mk2", "mk1"]);
        assert_eq!(ring.primary_kid(), "mk2");
        assert_eq!(ring.primary().1, CANARY);
        assert_eq!(ring.key("mk1"), Some(&[1; 32]));
        assert!(ring.key("mk3").is_none());
        assert_eq!(ring.next_kid(), "mk3");
    }

    #[test]
    fn generated_values_parse() {
        let value = MasterKeyring::generate_dev_value();
        let ring = MasterKeyring::parse(&value).unwrap();
        assert_eq!(ring.kids(), ["mk1"]);
        let rotated = format!(
            "{},{value}",
            MasterKeyring::generate_entry(&ring.next_kid())
        );
        let ring = MasterKeyring::from_secret(&SecretString::from(rotated)).unwrap();
        assert_eq!(ring.kids(), ["mk2", "mk1"]);
        assert_ne!(ring.key("mk1"), ring.key("mk2"));
    }

    #[test]
    fn errors_never_echo_the_value() {
        let canary_b64 = STANDARD.encode(CANARY);
        let cases = [
            (String::new(), "no master key configured"),
            (" , ".to_owned(), "no master key configured"),
            (canary_b64.clone(), "entry 1: expected kid:base64"),
            (format!("mk1:{canary_b64}!"), "entry 1: not base64"),
            (format!("mk1:%{canary_b64}"), "entry 1: not base64"),
            (entry("mk1", &CANARY[..31]), "entry 1: key must be 32 bytes"),
            (
                entry("mk1", &[CANARY.as_slice(), b"0123"].concat()),
                "entry 1: key must be",
            ),
            (entry("mk 1", CANARY), "entry 1: invalid kid"),
            (format!(":{canary_b64}"), "entry 1: invalid kid"),
            (
                format!("{},{}", entry("a", &[0; 32]), entry("a", CANARY)),
                "entry 2: duplicate kid",
            ),
        ];
        for (value, expected) in cases {
            let err = MasterKeyring::parse(&value).unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(shown.contains(expected), "{value:?} gave {shown}");
            assert!(!shown.contains("CANARY"), "{shown}");
            assert!(!shown.contains(&canary_b64[..8]), "{shown}");
        }
    }

    #[test]
    fn debug_shows_kids_only() {
        let ring = MasterKeyring::parse(&entry("mk1", CANARY)).unwrap();
        let shown = format!("{ring:?} {ring:#?}");
        assert!(shown.contains("mk1"));
        assert!(!shown.contains("CANARY"), "{shown}");
        assert!(!shown.contains(&STANDARD.encode(CANARY)[..8]), "{shown}");
        assert!(!shown.contains("67, 65, 78"), "{shown}"); // "CAN" as bytes
    }
}
