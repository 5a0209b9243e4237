//! Tokens: whatever the claims hold, a token is accepted only when every
//! claim is as the verifier demands, and then the principal is exactly the
//! claims'; no string verifies without the key.

use events::TenantId;
use std::sync::OnceLock;

use proptest::prelude::*;
use secrecy::SecretString;
use serde_json::{json, Value};
use switchboard::auth::acceptable_actor;
use switchboard::auth::Verifier;
use uuid::Uuid;

use super::nasty_string;

const SECRET: &str = "fuzz-secret-fuzz-secret-fuzz-secret!!";

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| Verifier::hs256(&SecretString::from(SECRET), "iss", "aud").unwrap())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claim_value() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        nasty_string(20).prop_map(|s| Some(Value::String(s))),
        any::<i64>().prop_map(|n| Some(json!(n))),
        Just(Some(Value::Null)),
        Just(Some(json!(["x"]))),
    ]
}

fn claims() -> impl Strategy<Value = Value> {
    (
        prop_oneof![Just(Some(json!("iss"))), claim_value()],
        prop_oneof![
            Just(Some(json!("aud"))),
            Just(Some(json!(["x", "aud"]))),
            claim_value()
        ],
        prop_oneof![
            Just(Some(json!("agent-7"))),
            Just(Some(json!("SYSTEM:x"))),
            claim_value()
        ],
        prop_oneof![
            (-100_000i64..100_000).prop_map(|d| Some(json!(now() + d))),
            claim_value()
        ],
        prop_oneof![
            (-100_000i64..100_000).prop_map(|d| Some(json!(now() + d))),
            claim_value()
        ],
        prop_oneof![
            Just(Some(json!(Uuid::new_v4()))),
            Just(Some(json!(Uuid::nil()))),
            claim_value()
        ],
        prop_oneof![Just(Some(json!("calls:write audit:read"))), claim_value()],
    )
        .prop_map(|(iss, aud, sub, exp, iat, tenant, scope)| {
            let mut m = serde_json::Map::new();
            for (k, v) in [
                ("iss", iss),
                ("aud", aud),
                ("sub", sub),
                ("exp", exp),
                ("iat", iat),
                ("tenant_id", tenant),
                ("scope", scope),
            ] {
                if let Some(v) = v {
                    m.insert(k.to_owned(), v);
                }
            }
            Value::Object(m)
        })
}

fn sign(claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

proptest! {
    #[test]
    fn a_token_is_accepted_only_with_sound_claims(c in claims()) {
        let token = sign(&c);
        if let Ok(p) = verifier().verify(&token) {
            let t = now();
            prop_assert_eq!(&c["iss"], &json!("iss"));
            prop_assert!(c["aud"] == json!("aud") || c["aud"].as_array().is_some_and(|a| a.contains(&json!("aud"))));
            prop_assert!(c["exp"].as_i64().is_some_and(|e| e > t - 120), "expired: {}", c);
            prop_assert!(c.get("iat").is_none_or(|v| v.as_i64().is_some_and(|i| i <= t + 120)), "{}", c);
            let tenant: TenantId = c["tenant_id"].as_str().unwrap().parse().unwrap();
            prop_assert_eq!(p.tenant_id, tenant);
            prop_assert!(tenant != TenantId::SYSTEM);
            let sub = c["sub"].as_str().unwrap();
            prop_assert!(acceptable_actor(sub));
            prop_assert_eq!(p.actor.as_str(), sub);
        }
    }

    #[test]
    fn no_string_verifies_without_the_key(s in prop_oneof![
        nasty_string(200),
        "[A-Za-z0-9_-]{10,60}\\.[A-Za-z0-9_-]{10,200}\\.[A-Za-z0-9_-]{0,60}",
    ]) {
        prop_assert!(verifier().verify(&s).is_err());
    }
}
