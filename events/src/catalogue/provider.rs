//! Events of a provider stream: a tenant's carrier account.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The carriers Switchboard can dial through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Twilio,
    Plivo,
    Vobiz,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 3] = [
        ProviderKind::Twilio,
        ProviderKind::Plivo,
        ProviderKind::Vobiz,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Twilio => "twilio",
            ProviderKind::Plivo => "plivo",
            ProviderKind::Vobiz => "vobiz",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Credentials as they may be stored: ciphertext and a masked view, never
/// plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedCredentials {
    /// The tenant data key that sealed them.
    pub key_id: String,
    /// base64 of nonce (12 bytes) followed by the AES-256-GCM-SIV ciphertext
    /// of the credentials JSON object.
    pub ciphertext: String,
    /// What responses show: identifiers cut to their first 2 and last 4
    /// characters, tokens as `********`.
    pub masked: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderCreated {
    pub provider: ProviderKind,
    pub label: String,
    pub credentials: EncryptedCredentials,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderRelabeled {
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderCredentialsRotated {
    pub credentials: EncryptedCredentials,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ProviderDeleted {}
