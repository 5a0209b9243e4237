//! The masked view of credentials that responses and events may show
//! (SPEC §4).
//!
//! Identifiers (`account_sid`, `auth_id`, `api_key_sid`) keep their first 2 and last 4
//! characters so an operator can tell accounts apart (`AC…9f3a`); one of 6
//! characters or fewer would be shown almost whole that way, so it is masked
//! fully. Every other key is treated as a token and shown as `********`,
//! which also hides its length; an unknown key is a token by default so a new
//! secret field can never leak through the mask.

use std::collections::BTreeMap;

use super::PlainCredentials;

/// What a token, or a too-short identifier, is shown as.
pub const MASK: &str = "********";

/// Credential keys that name an account rather than authenticate it.
pub const IDENTIFIER_KEYS: [&str; 3] = ["account_sid", "auth_id", "api_key_sid"];

/// The masked form of one credential value.
pub fn mask_value(key: &str, value: &str) -> String {
    if !IDENTIFIER_KEYS.contains(&key) {
        return MASK.to_owned();
    }
    let count = value.chars().count();
    if count <= 6 {
        return MASK.to_owned();
    }
    let head: String = value.chars().take(2).collect();
    let tail: String = value.chars().skip(count - 4).collect();
    format!("{head}…{tail}")
}

/// The masked form of every credential, keyed as the plaintext is.
pub fn mask(credentials: &PlainCredentials) -> BTreeMap<String, String> {
    credentials
        .iter_exposed()
        .map(|(k, v)| (k.to_owned(), mask_value(k, v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_keep_head_and_tail() {
        let sid = "AC0123456789abcdef0123456789ab9f3a";
        assert_eq!(mask_value("account_sid", sid), "AC…9f3a");
        assert_eq!(mask_value("auth_id", "MAXXXXXXXXXXXXXXXX42"), "MA…XX42");
        assert_eq!(mask_value("auth_id", "abcdefg"), "ab…defg");
        // Counted in characters, never cut inside one.
        assert_eq!(mask_value("auth_id", "ééabcdèè"), "éé…cdèè");
    }

    #[test]
    fn short_identifiers_are_masked_fully() {
        assert_eq!(mask_value("auth_id", "abcdef"), MASK);
        assert_eq!(mask_value("account_sid", "AC1"), MASK);
        assert_eq!(mask_value("auth_id", ""), MASK);
    }

    #[test]
    fn tokens_and_unknown_keys_are_masked_fully() {
        assert_eq!(mask_value("auth_token", "CANARY-secret-token-value"), MASK);
        assert_eq!(mask_value("api_key", "CANARY-secret-token-value"), MASK);
        assert_eq!(mask_value("Account_Sid", "CANARY-secret-token-value"), MASK);
    }

    #[test]
    fn masks_a_whole_set() {
        let creds: PlainCredentials = [
            ("account_sid", "AC0123456789abcdef0123456789ab9f3a"),
            ("auth_token", "CANARY-token"),
        ]
        .into_iter()
        .collect();
        let masked = mask(&creds);
        assert_eq!(masked["account_sid"], "AC…9f3a");
        assert_eq!(masked["auth_token"], MASK);
        assert_eq!(masked.len(), 2);
    }
}
