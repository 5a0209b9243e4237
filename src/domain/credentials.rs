//! Validating provider credentials before anything is stored.

use std::collections::BTreeMap;

use events::ProviderKind;

use super::fields::{FieldError, Fields};

/// The keys each provider requires (and the only keys it accepts).
pub fn required_keys(kind: ProviderKind) -> &'static [&'static str] {
    match kind {
        ProviderKind::Twilio => &["account_sid", "auth_token"],
        ProviderKind::Plivo | ProviderKind::Vobiz => &["auth_id", "auth_token"],
    }
}

/// Keys a provider may carry besides its required ones: Twilio's API key
/// pair (both or neither). With it, REST requests authenticate as the key
/// (which a tenant can revoke on its own); callbacks are still signed with
/// the account's auth token, so that stays required.
pub fn optional_keys(kind: ProviderKind) -> &'static [&'static str] {
    match kind {
        ProviderKind::Twilio => &["api_key_sid", "api_key_secret"],
        ProviderKind::Plivo | ProviderKind::Vobiz => &[],
    }
}

/// A Twilio SID: `prefix` (`AC` for an account, `SK` for an API key) then
/// 32 hex digits.
pub fn is_twilio_sid(prefix: &str, s: &str) -> bool {
    s.len() == 34 && s.starts_with(prefix) && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Reads `credentials` for `kind` from a request: every required key present
/// as a non-empty string, no unknown key, a Twilio SID of the right form.
/// Errors are named `credentials.<key>`. Error messages never repeat values.
pub fn parse_credentials(
    parent: &mut Fields<'_>,
    kind: Option<ProviderKind>,
) -> Option<BTreeMap<String, String>> {
    let mut f = parent.nested("credentials")?;
    let Some(kind) = kind else {
        // Without a valid provider the keys cannot be judged.
        parent.absorb(f);
        return None;
    };
    let (keys, optional) = (required_keys(kind), optional_keys(kind));
    let known: Vec<&str> = keys.iter().chain(optional).copied().collect();
    f.deny_unknown(&known);
    let mut out = BTreeMap::new();
    for key in keys {
        if let Some(v) = f.string(key, 512) {
            out.insert((*key).to_owned(), v);
        }
    }
    for key in optional {
        if let Some(v) = f.opt_string(key, 512) {
            out.insert((*key).to_owned(), v);
        }
    }
    if kind == ProviderKind::Twilio {
        if let Some(sid) = out.get("account_sid") {
            if !is_twilio_sid("AC", sid) {
                f.error("account_sid", "must be AC followed by 32 hex digits");
            }
        }
        if let Some(sid) = out.get("api_key_sid") {
            if !is_twilio_sid("SK", sid) {
                f.error("api_key_sid", "must be SK followed by 32 hex digits");
            }
        }
        // A pair: name the half that is missing (if the other was given).
        for (have, missing) in [
            ("api_key_sid", "api_key_secret"),
            ("api_key_secret", "api_key_sid"),
        ] {
            if f.has(have) && !f.has(missing) {
                f.error(missing, "api_key_sid and api_key_secret go together");
            }
        }
    }
    let ok = f.errors.is_empty();
    parent.absorb(f);
    ok.then_some(out)
}

/// Errors as a list, for tests.
pub fn check(
    kind: ProviderKind,
    body: &serde_json::Value,
) -> Result<BTreeMap<String, String>, Vec<FieldError>> {
    let map = body.as_object().cloned().unwrap_or_default();
    let mut f = Fields::new(&map);
    let out = parse_credentials(&mut f, Some(kind));
    f.finish()?;
    Ok(out.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(r: Result<BTreeMap<String, String>, Vec<FieldError>>) -> Vec<String> {
        r.unwrap_err().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn half_a_twilio_config_names_the_missing_field() {
        let r = check(
            ProviderKind::Twilio,
            &json!({"credentials": {"account_sid": format!("AC{}", "a".repeat(32))}}),
        );
        assert_eq!(fields(r), ["credentials.auth_token"]);
    }

    #[test]
    fn empty_non_string_and_unknown_keys_are_named() {
        let r = check(
            ProviderKind::Plivo,
            &json!({"credentials": {"auth_id": "", "auth_token": 5, "extra": "x"}}),
        );
        assert_eq!(
            fields(r),
            [
                "credentials.extra",
                "credentials.auth_id",
                "credentials.auth_token"
            ]
        );
    }

    #[test]
    fn twilio_sid_must_be_ac_and_32_hex() {
        for bad in [
            "AC123",
            "XX0123456789abcdef0123456789abcdef",
            &format!("AC{}", "g".repeat(32)),
        ] {
            let r = check(
                ProviderKind::Twilio,
                &json!({"credentials": {"account_sid": bad, "auth_token": "t"}}),
            );
            assert_eq!(fields(r), ["credentials.account_sid"], "{bad}");
        }
        let ok = check(
            ProviderKind::Twilio,
            &json!({"credentials": {"account_sid": format!("AC{}", "0f".repeat(16)), "auth_token": "t"}}),
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn a_twilio_api_key_comes_as_a_pair_with_an_sk_sid() {
        let sid = format!("AC{}", "0f".repeat(16));
        let key = format!("SK{}", "1e".repeat(16));
        let ok = check(
            ProviderKind::Twilio,
            &json!({"credentials": {"account_sid": sid, "auth_token": "t", "api_key_sid": key, "api_key_secret": "s"}}),
        );
        assert_eq!(ok.unwrap().len(), 4);
        let half = check(
            ProviderKind::Twilio,
            &json!({"credentials": {"account_sid": sid, "auth_token": "t", "api_key_sid": key}}),
        );
        assert_eq!(fields(half), ["credentials.api_key_secret"]);
        let bad = check(
            ProviderKind::Twilio,
            &json!({"credentials": {"account_sid": sid, "auth_token": "t", "api_key_sid": sid, "api_key_secret": "s"}}),
        );
        assert_eq!(fields(bad), ["credentials.api_key_sid"]);
        let plivo = check(
            ProviderKind::Plivo,
            &json!({"credentials": {"auth_id": "a", "auth_token": "t", "api_key_secret": "s"}}),
        );
        assert_eq!(fields(plivo), ["credentials.api_key_secret"]);
    }

    #[test]
    fn vobiz_needs_auth_id_and_token() {
        let r = check(ProviderKind::Vobiz, &json!({"credentials": {}}));
        assert_eq!(fields(r), ["credentials.auth_id", "credentials.auth_token"]);
        let r = check(ProviderKind::Vobiz, &json!({"credentials": "nope"}));
        assert_eq!(fields(r), ["credentials"]);
    }
}
