//! Credentials of each carrier: exactly the carrier's keys, each a non-blank
//! string without NUL of at most 512 characters; a Twilio SID is `AC` and 32
//! hex digits. No error message repeats a value.

use events::ProviderKind;
use proptest::prelude::*;
use serde_json::{Map, Value};
use switchboard::domain::credentials::{check, required_keys};

use super::nasty_string;

fn json_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        nasty_string(40).prop_map(Value::String),
        "AC[0-9a-fA-F]{32}".prop_map(Value::String),
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
        "[a-z_]{1,12}",
    ];
    proptest::collection::btree_map(key, json_value(), 0..4).prop_map(|m| m.into_iter().collect())
}

fn text_ok(v: &Value) -> bool {
    matches!(v, Value::String(s) if !s.contains('\0') && !s.trim().is_empty() && s.chars().count() <= 512)
}

fn oracle(kind: ProviderKind, creds: &Map<String, Value>) -> bool {
    let keys = required_keys(kind);
    if creds.len() != keys.len() || !keys.iter().all(|k| creds.get(*k).is_some_and(text_ok)) {
        return false;
    }
    match (kind, creds.get("account_sid")) {
        (ProviderKind::Twilio, Some(Value::String(sid))) => {
            sid.len() == 34
                && sid.starts_with("AC")
                && sid[2..].bytes().all(|b| b.is_ascii_hexdigit())
        }
        _ => true,
    }
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
