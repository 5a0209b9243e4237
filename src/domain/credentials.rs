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

/// A Twilio account SID: `AC` then 32 hex digits.
fn is_twilio_sid(s: &str) -> bool {
    s.len() == 34 && s.starts_with("AC") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
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
    let keys = required_keys(kind);
    f.deny_unknown(keys);
    let mut out = BTreeMap::new();
    for key in keys {
        if let Some(v) = f.string(key, 512) {
            out.insert((*key).to_owned(), v);
        }
    }
    if kind == ProviderKind::Twilio {
        if let Some(sid) = out.get("account_sid") {
            if !is_twilio_sid(sid) {
                f.error("account_sid", "must be AC followed by 32 hex digits");
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
    fn vobiz_needs_auth_id_and_token() {
        let r = check(ProviderKind::Vobiz, &json!({"credentials": {}}));
        assert_eq!(fields(r), ["credentials.auth_id", "credentials.auth_token"]);
        let r = check(ProviderKind::Vobiz, &json!({"credentials": "nope"}));
        assert_eq!(fields(r), ["credentials"]);
    }
}
