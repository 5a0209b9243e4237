//! A JWKS-configured verifier: keys chosen by kid, each pinned to its own
//! algorithm, HS256 off.

use jsonwebtoken::{Algorithm, EncodingKey};
use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

use super::tests::*;
use super::*;
use crate::auth::test_keys::*;

#[test]
fn jwks_accepts_a_token_for_each_kid() {
    let v = jwks_verifier();
    let ec = EncodingKey::from_ec_pem(EC_P256_PRIVATE_PEM.as_bytes()).unwrap();
    let tokens = [
        sign(Algorithm::RS256, Some("rsa-1"), &rsa_key(), &claims()),
        sign(Algorithm::EdDSA, Some("ed-1"), &ed_key(), &claims()),
        sign(Algorithm::ES256, Some("ec-1"), &ec, &claims()),
    ];
    for t in tokens {
        assert_eq!(v.verify(&t).unwrap().actor, "agent-1");
    }
    let expired = with(claims(), "exp", json!(now() - 60));
    let t = sign(Algorithm::RS256, Some("rsa-1"), &rsa_key(), &expired);
    assert_eq!(v.verify(&t), Err(AuthError::Expired));
}

#[test]
fn jwks_turns_hs256_off_including_the_rsa_public_key_confusion() {
    let v = jwks_verifier();
    let pem_as_secret = EncodingKey::from_secret(RSA_PUBLIC_PEM.as_bytes());
    let confused = sign(Algorithm::HS256, Some("rsa-1"), &pem_as_secret, &claims());
    assert_eq!(v.verify(&confused), Err(AuthError::AlgorithmNotAllowed));
    // The same with a single-key JWKS, where no kid is needed.
    let rsa_only = json!({"keys": [{"kty": "RSA", "n": RSA_N, "e": RSA_E}]}).to_string();
    let single = Verifier::from_jwks_json(&rsa_only, ISS, AUD).unwrap();
    let confused = sign(Algorithm::HS256, None, &pem_as_secret, &claims());
    assert_eq!(
        single.verify(&confused),
        Err(AuthError::AlgorithmNotAllowed)
    );
    assert_eq!(
        single.verify(&hs(&claims())),
        Err(AuthError::AlgorithmNotAllowed)
    );
    // HS256 tokens minted with the dev secret.
    assert_eq!(v.verify(&hs(&claims())), Err(AuthError::MissingKid));
}

#[test]
fn jwks_keys_are_chosen_by_kid_and_keep_their_own_algorithm() {
    let v = jwks_verifier();
    let t = sign(Algorithm::RS256, Some("nope"), &rsa_key(), &claims());
    assert_eq!(v.verify(&t), Err(AuthError::UnknownKid));
    let t = sign(Algorithm::RS256, None, &rsa_key(), &claims());
    assert_eq!(v.verify(&t), Err(AuthError::MissingKid));
    // A header naming another key's kid cannot switch the algorithm.
    let t = sign(Algorithm::RS256, Some("ed-1"), &rsa_key(), &claims());
    assert_eq!(v.verify(&t), Err(AuthError::AlgorithmNotAllowed));
    let t = sign(Algorithm::PS256, Some("rsa-1"), &rsa_key(), &claims());
    assert_eq!(v.verify(&t), Err(AuthError::AlgorithmNotAllowed));
    // A single-key JWKS serves tokens without a kid, but a kid must match.
    let rsa_only = json!({"keys": [{"kty": "RSA", "n": RSA_N, "e": RSA_E}]}).to_string();
    let single = Verifier::from_jwks_json(&rsa_only, ISS, AUD).unwrap();
    let t = sign(Algorithm::RS256, None, &rsa_key(), &claims());
    assert!(single.verify(&t).is_ok());
    let t = sign(Algorithm::RS256, Some("rsa-1"), &rsa_key(), &claims());
    assert_eq!(single.verify(&t), Err(AuthError::UnknownKid));
}

#[test]
fn settings_choose_jwks_over_the_secret() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: Settings,
    }
    let path = std::env::temp_dir().join(format!("switchboard-jwks-{}.json", Uuid::new_v4()));
    std::fs::write(&path, jwks_json()).unwrap();
    let cli = Cli::parse_from(["t", "--jwt-jwks", path.to_str().unwrap()]);
    let v = Verifier::from_settings(&cli.settings, || panic!("secret not needed")).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(v.verify(&hs(&claims())), Err(AuthError::MissingKid));
    let cli = Cli::parse_from(["t"]);
    let v = Verifier::from_settings(&cli.settings, || Ok(SecretString::from(SECRET))).unwrap();
    assert!(v.verify(&hs(&claims())).is_ok());
}
