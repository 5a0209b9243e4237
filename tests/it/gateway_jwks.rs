//! A gateway configured with a JWKS: keys chosen by kid, each pinned to its
//! own algorithm, and HS256 off, all through HTTP.

use events::TenantId;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::app::{TestApp, JWT_SECRET};

#[path = "../../src/auth/test_keys.rs"]
#[allow(dead_code)]
mod keys;

fn claims(tenant: TenantId) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    json!({"iss": "switchboard-dev", "aud": "switchboard", "sub": "svc", "exp": now + 600,
           "tenant_id": tenant, "scope": "telephony:read"})
}

fn sign(
    alg: Algorithm,
    kid: Option<&str>,
    key: &EncodingKey,
    claims: &serde_json::Value,
) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, key).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_keys_by_kid_and_no_hs256() {
    let jwks = json!({"keys": [
        {"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig", "n": keys::RSA_N, "e": keys::RSA_E},
        {"kty": "OKP", "kid": "ed-1", "crv": "Ed25519", "x": keys::ED25519_X},
    ]});
    let path = std::env::temp_dir().join(format!("sb-jwks-{}.json", Uuid::new_v4().simple()));
    std::fs::write(&path, jwks.to_string()).unwrap();
    let app = TestApp::spawn_with(&["--jwt-jwks", path.to_str().unwrap()]).await;
    let tenant = TenantId::new();
    let c = claims(tenant);
    let rsa = EncodingKey::from_rsa_pem(keys::RSA_PRIVATE_PEM.as_bytes()).unwrap();
    let ed = EncodingKey::from_ed_pem(keys::ED25519_PRIVATE_PEM.as_bytes()).unwrap();
    let list = "/api/v1/telephony/providers";
    for (name, token) in [
        (
            "RS256 rsa-1",
            sign(Algorithm::RS256, Some("rsa-1"), &rsa, &c),
        ),
        ("EdDSA ed-1", sign(Algorithm::EdDSA, Some("ed-1"), &ed, &c)),
    ] {
        assert_eq!(app.get(list, &token).await.status, StatusCode::OK, "{name}");
    }
    for (name, token) in [
        // HS/RS confusion: the RSA public key's bytes as an HMAC secret.
        (
            "HS256 with the RSA public key",
            sign(
                Algorithm::HS256,
                Some("rsa-1"),
                &EncodingKey::from_secret(keys::RSA_PUBLIC_PEM.as_bytes()),
                &c,
            ),
        ),
        (
            "HS256 with the old secret",
            sign(
                Algorithm::HS256,
                None,
                &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
                &c,
            ),
        ),
        (
            "unknown kid",
            sign(Algorithm::RS256, Some("rsa-9"), &rsa, &c),
        ),
        (
            "no kid with two keys",
            sign(Algorithm::RS256, None, &rsa, &c),
        ),
        (
            "EdDSA key named as RSA",
            sign(Algorithm::EdDSA, Some("rsa-1"), &ed, &c),
        ),
        (
            "RSA key named as EdDSA",
            sign(Algorithm::RS256, Some("ed-1"), &rsa, &c),
        ),
    ] {
        let r = app.get(list, &token).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}");
    }
    app.stop().await;
    let _ = std::fs::remove_file(&path);
}
