//! Loading a JWKS file into keys that each accept exactly one algorithm.
//!
//! The algorithm is pinned here, from the key itself (its `alg`, else its
//! key type and curve), never from a token header: that is what defeats
//! `alg: none` and HS/RS confusion (an attacker signing HS256 with the RSA
//! public key's bytes). Symmetric (`oct`) keys are refused: with a JWKS
//! configured HS256 is off (SPEC §2). RSA keys shorter than 2048 bits are
//! refused by `ring` at verification time.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use anyhow::Context;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// A verification key and the one algorithm it is allowed to verify.
#[derive(Clone)]
pub(crate) struct PinnedKey {
    pub alg: Algorithm,
    pub key: DecodingKey,
}

/// The usable signing keys of a JWKS, by `kid`.
#[derive(Clone)]
pub(crate) struct KeySet {
    by_kid: HashMap<String, PinnedKey>,
    /// Set when the JWKS holds exactly one usable key: tokens without a
    /// `kid` use it. With several keys a token must name its key.
    only: Option<PinnedKey>,
}

/// Why `KeySet::select` found no key; the verifier maps these to 401s.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Select {
    Unknown,
    MissingKid,
}

impl KeySet {
    pub fn load(path: &Path) -> anyhow::Result<KeySet> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading JWKS file {}", path.display()))?;
        KeySet::parse(&text).with_context(|| format!("loading JWKS file {}", path.display()))
    }

    /// Keys that cannot verify signatures here (encryption keys, unknown
    /// types or algorithms, `alg` contradicting the key type) are skipped
    /// with a warning, as identity providers often publish such keys next to
    /// their signing keys; a set left with no usable key is an error, and so
    /// are duplicate `kid`s and a kid-less key among several.
    pub fn parse(json: &str) -> anyhow::Result<KeySet> {
        #[derive(serde::Deserialize)]
        struct Raw {
            keys: Vec<serde_json::Value>,
        }
        let raw: Raw =
            serde_json::from_str(json).context("not a JWKS: expected {\"keys\": [...]}")?;
        let mut usable = Vec::new();
        for (i, value) in raw.keys.into_iter().enumerate() {
            let kid = value.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
            let label = kid.clone().unwrap_or_else(|| format!("#{i}"));
            let pinned = serde_json::from_value::<Jwk>(value)
                .map_err(|e| format!("unparseable JWK: {e}"))
                .and_then(|jwk| pin(&jwk));
            match pinned {
                Ok(key) => usable.push((kid, key)),
                Err(reason) => tracing::warn!(key = %label, %reason, "skipping JWKS key"),
            }
        }
        anyhow::ensure!(!usable.is_empty(), "the JWKS holds no usable signing key");
        let only = (usable.len() == 1).then(|| usable[0].1.clone());
        let mut by_kid = HashMap::new();
        for (kid, key) in usable {
            match kid {
                Some(kid) => {
                    anyhow::ensure!(!by_kid.contains_key(&kid), "duplicate kid `{kid}` in JWKS");
                    by_kid.insert(kid, key);
                }
                None if only.is_some() => {}
                None => anyhow::bail!("every key of a JWKS with several keys needs a kid"),
            }
        }
        Ok(KeySet { by_kid, only })
    }

    /// The key a token's `kid` names, or the only key when it names none.
    pub fn select(&self, kid: Option<&str>) -> Result<&PinnedKey, Select> {
        match kid {
            Some(kid) => self.by_kid.get(kid).ok_or(Select::Unknown),
            None => self.only.as_ref().ok_or(Select::MissingKid),
        }
    }
}

/// The one algorithm a JWK may verify, and its decoding key.
fn pin(jwk: &Jwk) -> Result<PinnedKey, String> {
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return Err("an encryption key (use: enc)".into());
    }
    if let Some(ops) = &jwk.common.key_operations {
        if !ops.contains(&KeyOperations::Verify) {
            return Err("key_ops does not include verify".into());
        }
    }
    // What the key type allows, and its default when the JWK has no `alg`.
    use Algorithm::*;
    let (allowed, default): (&[Algorithm], Algorithm) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (&[RS256, RS384, RS512, PS256, PS384, PS512], RS256),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => (&[ES256], ES256),
            EllipticCurve::P384 => (&[ES384], ES384),
            ref other => return Err(format!("unsupported EC curve {other:?}")),
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            (&[EdDSA], EdDSA)
        }
        AlgorithmParameters::OctetKeyPair(p) => {
            return Err(format!("unsupported OKP curve {:?}", p.curve))
        }
        AlgorithmParameters::OctetKey(_) => {
            return Err("symmetric (oct) keys are refused: HS256 is off with a JWKS".into())
        }
    };
    let alg = match jwk.common.key_algorithm {
        None => default,
        Some(ka) => {
            let alg = Algorithm::from_str(&ka.to_string())
                .map_err(|_| format!("alg {ka} is not a signature algorithm"))?;
            if !allowed.contains(&alg) {
                return Err(format!("alg {ka} does not match the key type"));
            }
            alg
        }
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("bad key material: {e}"))?;
    Ok(PinnedKey { alg, key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::test_keys::*;
    use serde_json::json;

    fn set(keys: serde_json::Value) -> anyhow::Result<KeySet> {
        KeySet::parse(&json!({ "keys": keys }).to_string())
    }

    fn rsa(kid: &str) -> serde_json::Value {
        json!({"kty": "RSA", "kid": kid, "n": RSA_N, "e": RSA_E})
    }

    #[test]
    fn pins_algorithm_from_key_type_or_alg() {
        let ks = set(json!([
            rsa("r"),
            {"kty": "RSA", "kid": "p", "alg": "PS256", "n": RSA_N, "e": RSA_E},
            {"kty": "OKP", "kid": "e", "crv": "Ed25519", "x": ED25519_X},
            {"kty": "EC", "kid": "c", "crv": "P-256", "x": EC_P256_X, "y": EC_P256_Y},
        ]))
        .unwrap();
        let alg = |kid| ks.select(Some(kid)).map(|k| k.alg).unwrap();
        assert_eq!(alg("r"), Algorithm::RS256);
        assert_eq!(alg("p"), Algorithm::PS256);
        assert_eq!(alg("e"), Algorithm::EdDSA);
        assert_eq!(alg("c"), Algorithm::ES256);
        assert_eq!(ks.select(None).err(), Some(Select::MissingKid));
        assert_eq!(ks.select(Some("zz")).err(), Some(Select::Unknown));
    }

    #[test]
    fn skips_unusable_keys_and_rejects_ambiguous_sets() {
        // alg contradicting kty, oct, encryption keys and garbage are skipped.
        let ks = set(json!([
            {"kty": "RSA", "kid": "x", "alg": "ES256", "n": RSA_N, "e": RSA_E},
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": RSA_N, "e": RSA_E},
            {"kty": "RSA", "kid": "o", "alg": "RSA-OAEP", "n": RSA_N, "e": RSA_E},
            {"kty": "weird"},
            rsa("good"),
        ]))
        .unwrap();
        for kid in ["x", "h", "enc", "o"] {
            assert_eq!(ks.select(Some(kid)).err(), Some(Select::Unknown), "{kid}");
        }
        // The single usable key also serves tokens without a kid.
        assert_eq!(ks.select(None).unwrap().alg, Algorithm::RS256);

        assert!(set(json!([{"kty": "oct", "k": "c2VjcmV0"}])).is_err());
        assert!(set(json!([rsa("a"), rsa("a")])).is_err());
        assert!(set(json!([rsa("a"), {"kty": "RSA", "n": RSA_N, "e": RSA_E}])).is_err());
        assert!(KeySet::parse("[]").is_err());
        assert!(KeySet::load(Path::new("/nonexistent/jwks.json")).is_err());
    }
}
