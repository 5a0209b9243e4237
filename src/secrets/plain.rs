//! `PlainCredentials`: provider credentials in the clear, the only place
//! plaintext lives.
//!
//! Values are zeroized on drop, `Debug` shows key names only, and the type is
//! neither `Clone` nor `Serialize`, so plaintext cannot slip into a log line,
//! an event or a response by accident. Deserializing reads each value
//! straight into an exactly-sized zeroizing buffer (serde_json's scratch
//! buffer for escaped strings is the one copy outside our control).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, Serializer};
use zeroize::{ZeroizeOnDrop, Zeroizing};

/// Credential key -> value. Values are zeroized on drop, redacted in `Debug`.
#[derive(Default)]
pub struct PlainCredentials {
    entries: BTreeMap<String, Zeroizing<String>>,
}

impl ZeroizeOnDrop for PlainCredentials {}

impl PlainCredentials {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key`; the value's buffer is moved in (not copied) and a replaced
    /// value is zeroized.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.entries
            .insert(key.into(), Zeroizing::new(value.into()));
    }

    /// The plaintext of one value: for the dial that needs it, nothing else.
    pub fn expose(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(|v| v.as_str())
    }

    /// Every key and plaintext value, in key order.
    pub fn iter_exposed(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The credential key names (not secret).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for PlainCredentials {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut creds = PlainCredentials::new();
        for (k, v) in iter {
            creds.insert(k, v);
        }
        creds
    }
}

impl fmt::Debug for PlainCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainCredentials")
            .field("keys", &self.keys().collect::<Vec<_>>())
            .field("values", &"[redacted]")
            .finish()
    }
}

/// Reads a JSON object of strings. Beware: serde's error for a non-string
/// value may quote that value, so never show a deserialization error to a
/// client or a log; validate the shape first or report a fixed message.
impl<'de> Deserialize<'de> for PlainCredentials {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(CredentialsVisitor)
    }
}

struct CredentialsVisitor;

impl<'de> Visitor<'de> for CredentialsVisitor {
    type Value = PlainCredentials;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut creds = PlainCredentials::new();
        while let Some((k, v)) = map.next_entry::<String, SecretValue>()? {
            creds.entries.insert(k, v.0);
        }
        Ok(creds)
    }
}

/// A string value read straight into a zeroizing buffer of exact size.
struct SecretValue(Zeroizing<String>);

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SecretValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E>(self, v: &str) -> Result<SecretValue, E> {
                let mut s = Zeroizing::new(String::with_capacity(v.len()));
                s.push_str(v);
                Ok(SecretValue(s))
            }
            fn visit_string<E>(self, v: String) -> Result<SecretValue, E> {
                Ok(SecretValue(Zeroizing::new(v)))
            }
        }
        deserializer.deserialize_string(V)
    }
}

/// The plaintext JSON: written only into a zeroizing buffer (sealing) and
/// into the dial request to the Call Processor (`callproc::wire`).
pub(crate) struct Exposed<'a>(pub(crate) &'a PlainCredentials);

impl Serialize for Exposed<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter_exposed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_values() {
        let creds: PlainCredentials = [("auth_id", "MA-CANARY-id"), ("auth_token", "CANARY-token")]
            .into_iter()
            .collect();
        let shown = format!("{creds:?}");
        assert_eq!(
            shown,
            r#"PlainCredentials { keys: ["auth_id", "auth_token"], values: "[redacted]" }"#
        );
        assert!(!format!("{creds:#?}").contains("CANARY"));
    }

    #[test]
    fn insert_replaces_and_exposes() {
        let mut creds = PlainCredentials::new();
        assert!(creds.is_empty());
        creds.insert("auth_token", "one");
        creds.insert("auth_token", String::from("two"));
        assert_eq!(creds.expose("auth_token"), Some("two"));
        assert_eq!(creds.expose("auth_id"), None);
        assert_eq!(
            creds.iter_exposed().collect::<Vec<_>>(),
            [("auth_token", "two")]
        );
    }

    #[test]
    fn reads_an_object_of_strings_only() {
        let creds: PlainCredentials =
            serde_json::from_str(r#"{"auth_id":"MA123","auth_token":"t\u00e9"}"#).unwrap();
        assert_eq!(creds.expose("auth_token"), Some("té"));
        assert_eq!(creds.len(), 2);
        assert!(serde_json::from_str::<PlainCredentials>(r#"{"auth_token":5}"#).is_err());
        assert!(serde_json::from_str::<PlainCredentials>(r#"["a"]"#).is_err());
        assert!(PlainCredentials::new().is_empty());
    }
}
