//! Every way a token must be refused, and the ways it must be accepted.

use std::collections::BTreeSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use secrecy::SecretString;
use serde_json::{json, Value};
use uuid::Uuid;

use super::*;
use crate::auth::test_keys::*;
use crate::auth::Scope;

pub(super) const SECRET: &str = "test-secret-test-secret-test-secret!";
pub(super) const ISS: &str = "switchboard-dev";
pub(super) const AUD: &str = "switchboard";
pub(super) const TENANT: &str = "0190b5a4-8f1e-7c3a-9d2b-5e6f7a8b9c0d";

pub(super) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub(super) fn claims() -> Value {
    json!({
        "iss": ISS, "aud": AUD, "sub": "agent-1", "exp": now() + 300, "iat": now(),
        "tenant_id": TENANT, "scope": "calls:write telephony:read openid",
    })
}

pub(super) fn with(mut c: Value, key: &str, value: Value) -> Value {
    c[key] = value;
    c
}

pub(super) fn without(mut c: Value, key: &str) -> Value {
    c.as_object_mut().unwrap().remove(key);
    c
}

pub(super) fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, c: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = kid.map(str::to_owned);
    encode(&h, c, key).unwrap()
}

pub(super) fn hs(c: &Value) -> String {
    sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        c,
    )
}

pub(super) fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_PRIVATE_PEM.as_bytes()).unwrap()
}

pub(super) fn ed_key() -> EncodingKey {
    EncodingKey::from_ed_pem(ED25519_PRIVATE_PEM.as_bytes()).unwrap()
}

/// A token with a hand-written header and signature part.
pub(super) fn raw(header: Value, c: &Value, signature: &str) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.{signature}", part(&header), part(c))
}

pub(super) fn hs_verifier() -> Verifier {
    Verifier::hs256(&SecretString::from(SECRET), ISS, AUD).unwrap()
}

pub(super) fn jwks_json() -> String {
    json!({"keys": [
        {"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig", "n": RSA_N, "e": RSA_E},
        {"kty": "OKP", "kid": "ed-1", "crv": "Ed25519", "x": ED25519_X},
        {"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": EC_P256_X, "y": EC_P256_Y},
    ]})
    .to_string()
}

/// Loads the JWKS from a file, as configured in production.
pub(super) fn jwks_verifier() -> Verifier {
    let path = std::env::temp_dir().join(format!("switchboard-jwks-{}.json", Uuid::new_v4()));
    std::fs::write(&path, jwks_json()).unwrap();
    let v = Verifier::from_jwks_file(&path, ISS, AUD).unwrap();
    let _ = std::fs::remove_file(&path);
    v
}

#[test]
fn valid_hs256_token_is_accepted_with_scopes_parsed() {
    let p = hs_verifier().verify(&hs(&claims())).unwrap();
    assert_eq!(p.tenant_id, Uuid::parse_str(TENANT).unwrap());
    assert_eq!(p.actor, "agent-1");
    assert_eq!(
        p.scopes,
        BTreeSet::from([Scope::CallsWrite, Scope::TelephonyRead])
    );
    // `aud` as an array naming us, no `scope`, past `nbf`, `exp` just within leeway.
    let c = with(claims(), "aud", json!(["other", AUD]));
    let c = with(without(c, "scope"), "nbf", json!(now() - 10));
    let c = with(c, "exp", json!(now() - 1));
    assert!(hs_verifier().verify(&hs(&c)).unwrap().scopes.is_empty());
}

#[test]
fn alg_none_is_rejected() {
    let c = claims();
    for header in [
        json!({"alg": "none"}),
        json!({"alg": "none", "kid": "rsa-1"}),
    ] {
        for sig in ["", "AAAA"] {
            let t = raw(header.clone(), &c, sig);
            assert_eq!(
                hs_verifier().verify(&t),
                Err(AuthError::AlgorithmNotAllowed)
            );
            assert_eq!(
                jwks_verifier().verify(&t),
                Err(AuthError::AlgorithmNotAllowed)
            );
        }
    }
}

#[test]
fn tampering_is_rejected() {
    let t = hs(&claims());
    let (head, sig) = t.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
    bytes[7] ^= 1;
    let flipped = format!("{head}.{}", URL_SAFE_NO_PAD.encode(bytes));
    assert_eq!(hs_verifier().verify(&flipped), Err(AuthError::BadSignature));
    // Another tenant's id under the original signature.
    let forged = with(claims(), "tenant_id", json!(Uuid::now_v7()));
    let t2 = raw(json!({"alg": "HS256", "typ": "JWT"}), &forged, sig);
    assert_eq!(hs_verifier().verify(&t2), Err(AuthError::BadSignature));
    let other = Verifier::hs256(&SecretString::from(SECRET.repeat(2)), ISS, AUD).unwrap();
    assert_eq!(other.verify(&t), Err(AuthError::BadSignature));
}

#[test]
fn garbage_is_rejected() {
    let long = "a".repeat(MAX_TOKEN_BYTES + 1);
    for t in [
        "",
        "garbage",
        "a.b.c",
        "a.b",
        "..",
        "eyJhbGciOiJIUzI1NiJ9",
        &long,
    ] {
        assert_eq!(
            hs_verifier().verify(t),
            Err(AuthError::Malformed),
            "{t:.30}"
        );
    }
    let not_json = format!("{}.e30.", URL_SAFE_NO_PAD.encode("{\"alg\":\"HS256\""));
    assert_eq!(hs_verifier().verify(&not_json), Err(AuthError::Malformed));
    let crit = raw(json!({"alg": "HS256", "crit": ["exp"]}), &claims(), "x");
    assert_eq!(hs_verifier().verify(&crit), Err(AuthError::Malformed));
}

#[test]
fn time_claims_are_enforced() {
    let v = hs_verifier();
    let cases = [
        ("exp", json!(now() - 60), AuthError::Expired),
        ("nbf", json!(now() + 60), AuthError::NotYetValid),
        ("iat", json!(now() + 60), AuthError::IssuedInFuture),
        ("iat", json!("yesterday"), AuthError::InvalidClaim("iat")),
        ("nbf", json!("tomorrow"), AuthError::InvalidClaim("nbf")),
    ];
    for (claim, value, err) in cases {
        assert_eq!(
            v.verify(&hs(&with(claims(), claim, value))),
            Err(err),
            "{claim}"
        );
    }
}

#[test]
fn required_claims_must_be_present() {
    for claim in ["iss", "aud", "exp", "sub"] {
        let t = hs(&without(claims(), claim));
        assert_eq!(
            hs_verifier().verify(&t),
            Err(AuthError::MissingClaim(claim))
        );
    }
    let t = hs(&without(claims(), "tenant_id"));
    assert_eq!(
        hs_verifier().verify(&t),
        Err(AuthError::MissingClaim("tenant_id"))
    );
}

#[test]
fn wrong_or_invalid_claims_are_rejected() {
    let nil = Uuid::nil().to_string();
    let cases = [
        ("iss", json!("someone-else"), AuthError::WrongIssuer),
        ("aud", json!("other"), AuthError::WrongAudience),
        ("aud", json!(["other", "another"]), AuthError::WrongAudience),
        ("iss", json!([ISS]), AuthError::InvalidClaim("iss")),
        (
            "tenant_id",
            json!("not-a-uuid"),
            AuthError::InvalidClaim("tenant_id"),
        ),
        ("tenant_id", json!(42), AuthError::InvalidClaim("tenant_id")),
        (
            "tenant_id",
            json!(nil),
            AuthError::InvalidClaim("tenant_id"),
        ),
        ("sub", json!(""), AuthError::InvalidClaim("sub")),
        ("sub", json!("system:relay"), AuthError::InvalidClaim("sub")),
        (
            "sub",
            json!("SYSTEM:callproc"),
            AuthError::InvalidClaim("sub"),
        ),
        (
            "sub",
            json!(" system:callproc"),
            AuthError::InvalidClaim("sub"),
        ),
        (
            "sub",
            json!("System :callproc"),
            AuthError::InvalidClaim("sub"),
        ),
        (
            "sub",
            json!("system\u{ff1a}callproc"),
            AuthError::InvalidClaim("sub"),
        ),
        (
            "sub",
            json!("\u{200b}system:callproc"),
            AuthError::InvalidClaim("sub"),
        ),
        (
            "sub",
            json!("sys\u{200d}tem:callproc"),
            AuthError::InvalidClaim("sub"),
        ),
        (
            "sub",
            json!("agent\u{202e}7"),
            AuthError::InvalidClaim("sub"),
        ),
        ("sub", json!("agent\n7"), AuthError::InvalidClaim("sub")),
        ("sub", json!("agent-7 "), AuthError::InvalidClaim("sub")),
        (
            "sub",
            json!("a".repeat(256)),
            AuthError::InvalidClaim("sub"),
        ),
        (
            "scope",
            json!(["calls:write"]),
            AuthError::InvalidClaim("scope"),
        ),
    ];
    for (claim, value, err) in cases {
        let t = hs(&with(claims(), claim, value.clone()));
        assert_eq!(hs_verifier().verify(&t), Err(err), "{claim}={value}");
    }
}

#[test]
fn hs256_verifier_refuses_asymmetric_tokens_and_weak_config() {
    let t = sign(Algorithm::RS256, None, &rsa_key(), &claims());
    assert_eq!(
        hs_verifier().verify(&t),
        Err(AuthError::AlgorithmNotAllowed)
    );
    let t = sign(Algorithm::EdDSA, Some("ed-1"), &ed_key(), &claims());
    assert_eq!(
        hs_verifier().verify(&t),
        Err(AuthError::AlgorithmNotAllowed)
    );
    assert!(Verifier::hs256(&SecretString::from("short"), ISS, AUD).is_err());
    assert!(Verifier::hs256(&SecretString::from(SECRET), "", AUD).is_err());
    assert!(!format!("{:?}", hs_verifier()).contains(SECRET));
}
