//! Credentials of each carrier: exactly the carrier's keys (and Twilio's
//! optional API key pair, both or neither), each a non-blank string without
//! NUL of at most 512 characters; a Twilio SID is `AC` and 32 hex digits, an
//! API key SID `SK` and 32. No error message repeats a value.

use events::ProviderKind;
use proptest::prelude::*;
use serde_json::{Map, Value};
use switchboard::domain::credentials::{check, is_twilio_sid, optional_keys, required_keys};

use super::nasty_string;

fn json_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        nasty_string(40).prop_map(Value::String),
        "AC[0-9a-fA-F]{32}".prop_map(Value::String),
        "SK[0-9a-fA-F]{32}".prop_map(Value::String),
        "[a-zA-Z0-9]{1,40}".prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        Just(Value::Null),
        Just(Value::Bool(true)),
    ]
}

fn kind() -> impl Strategy<Value = ProviderKind> {
    prop_oneof![
        Just(ProviderKind::Twilio),
        Just(ProviderKind::Plivo),
        Just(ProviderKind::Vobiz)
    ]
}

fn body() -> impl Strategy<Value = Map<String, Value>> {
    let key = prop_oneof![
        Just("account_sid".to_owned()),
        Just("auth_token".to_owned()),
        Just("auth_id".to_owned()),
        Just("api_key_sid".to_owned()),
        Just("api_key_secret".to_owned()),
        "[a-z_]{1,12}",
    ];
    proptest::collection::btree_map(key, json_value(), 0..5).prop_map(|m| m.into_iter().collect())
}

fn text_ok(v: &Value) -> bool {
    matches!(v, Value::String(s) if !s.contains('\0') && !s.trim().is_empty() && s.chars().count() <= 512)
}

fn oracle(kind: ProviderKind, creds: &Map<String, Value>) -> bool {
    let (keys, optional) = (required_keys(kind), optional_keys(kind));
    let known = |k: &String| keys.contains(&k.as_str()) || optional.contains(&k.as_str());
    if !creds.keys().all(known) || !creds.values().all(text_ok) {
        return false;
    }
    if !keys.iter().all(|k| creds.contains_key(*k)) {
        return false;
    }
    let sid_ok = |key: &str, prefix: &str| match creds.get(key) {
        Some(Value::String(sid)) => is_twilio_sid(prefix, sid),
        _ => true,
    };
    let paired = creds.contains_key("api_key_sid") == creds.contains_key("api_key_secret");
    kind != ProviderKind::Twilio
        || (sid_ok("account_sid", "AC") && sid_ok("api_key_sid", "SK") && paired)
}

proptest! {
    #[test]
    fn credentials_accept_exactly_each_carriers_shape(kind in kind(), creds in body()) {
        let body = serde_json::json!({ "credentials": creds });
        let got = check(kind, &body);
        prop_assert_eq!(got.is_ok(), oracle(kind, &creds), "{:?} {:?}", kind, creds);
        if let Err(errors) = got {
            for e in &errors {
                prop_assert!(e.field.starts_with("credentials"), "{}", e.field);
                for v in creds.values().filter_map(Value::as_str).filter(|v| v.len() >= 3) {
                    prop_assert!(!e.message.contains(v), "message repeats a value: {}", e.message);
                }
            }
        }
    }
}
