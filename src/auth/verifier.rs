//! Turning a bearer token into a `Principal`, or a reason for a 401.
//!
//! Exactly one key source is active: an HS256 secret, or a JWKS file (then
//! HS256 is off, SPEC §2). Every key accepts one pinned algorithm; the token
//! header's `alg` must equal it and is never used to pick how to verify.

use std::path::Path;
use std::str::FromStr;

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use uuid::Uuid;

use super::jwks::{KeySet, PinnedKey, Select};
use super::{AuthError, Claims, Principal};
use crate::config::Settings;

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds. Small on
/// purpose: enough for NTP-synchronised hosts, far too little to matter as
/// extra token lifetime.
pub const LEEWAY_SECS: u64 = 5;

/// The shortest HS256 secret accepted: HMAC-SHA256's full strength needs
/// 256 bits (RFC 7518 §3.2).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// Tokens longer than this are refused before any parsing or crypto.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Claims the token must carry; `tenant_id` is checked separately.
const REQUIRED: [&str; 4] = ["exp", "iss", "aud", "sub"];

/// Verifies bearer tokens against the configured keys, issuer and audience.
/// Share it as `Arc<Verifier>` (see the `Principal` extractor).
#[derive(Clone)]
pub struct Verifier {
    keys: Keys,
    issuer: String,
    audience: String,
}

#[derive(Clone)]
enum Keys {
    Hs256(PinnedKey),
    Jwks(KeySet),
}

impl std::fmt::Debug for Verifier {
    // By hand, so that no key material can ever reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.keys {
            Keys::Hs256(_) => "hs256",
            Keys::Jwks(_) => "jwks",
        };
        f.debug_struct("Verifier")
            .field("mode", &mode)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl Verifier {
    /// HS256 with a shared secret (its UTF-8 bytes are the HMAC key, as in
    /// `mint_hs256`). Refuses secrets shorter than `MIN_HS256_SECRET_BYTES`.
    pub fn hs256(secret: &SecretString, issuer: &str, audience: &str) -> anyhow::Result<Verifier> {
        let bytes = secret.expose_secret().as_bytes();
        anyhow::ensure!(
            bytes.len() >= MIN_HS256_SECRET_BYTES,
            "SWITCHBOARD_JWT_SECRET must be at least {MIN_HS256_SECRET_BYTES} bytes"
        );
        let key = PinnedKey {
            alg: Algorithm::HS256,
            key: DecodingKey::from_secret(bytes),
        };
        Verifier::new(Keys::Hs256(key), issuer, audience)
    }

    /// RS*/PS*/ES256/ES384/EdDSA keys from a JWKS file, chosen by `kid`.
    pub fn from_jwks_file(path: &Path, issuer: &str, audience: &str) -> anyhow::Result<Verifier> {
        Verifier::new(Keys::Jwks(KeySet::load(path)?), issuer, audience)
    }

    /// As `from_jwks_file`, from the JWKS document itself.
    pub fn from_jwks_json(json: &str, issuer: &str, audience: &str) -> anyhow::Result<Verifier> {
        let keys = KeySet::parse(json).context("loading JWKS")?;
        Verifier::new(Keys::Jwks(keys), issuer, audience)
    }

    /// The verifier the settings call for: the JWKS when
    /// `SWITCHBOARD_JWT_JWKS` is set (and `hs256_secret` is not called),
    /// otherwise HS256 with the secret `hs256_secret` returns (typically
    /// `config::dev_secret`).
    pub fn from_settings(
        settings: &Settings,
        hs256_secret: impl FnOnce() -> anyhow::Result<SecretString>,
    ) -> anyhow::Result<Verifier> {
        let (iss, aud) = (&settings.auth.issuer, &settings.auth.audience);
        match &settings.auth.jwks {
            Some(path) => {
                if settings.auth.jwt_secret.is_some() {
                    tracing::warn!(
                        "SWITCHBOARD_JWT_SECRET is ignored: a JWKS is set, HS256 is off"
                    );
                }
                Verifier::from_jwks_file(path, iss, aud)
            }
            None => Verifier::hs256(&hs256_secret()?, iss, aud),
        }
    }

    fn new(keys: Keys, issuer: &str, audience: &str) -> anyhow::Result<Verifier> {
        anyhow::ensure!(!issuer.is_empty(), "the JWT issuer must not be empty");
        anyhow::ensure!(!audience.is_empty(), "the JWT audience must not be empty");
        Ok(Verifier {
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }

    /// Verifies signature, algorithm, `exp`/`nbf`/`iat`, `iss`, `aud`, `sub`
    /// and `tenant_id`, and returns who the token speaks for.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        self.verify_claims(token)
            .map(|c| Principal::from_claims(&c))
    }

    /// As `verify`, returning all the verified claims.
    pub fn verify_claims(&self, token: &str) -> Result<Claims, AuthError> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Malformed);
        }
        let header = RawHeader::parse(token)?;
        // `none` and names jsonwebtoken does not know are refused whatever
        // the key; every other mismatch with the key's pinned algorithm
        // (HS/RS confusion) below, before any crypto runs. jsonwebtoken
        // checks the same again against `algorithms`.
        let alg = Algorithm::from_str(&header.alg).map_err(|_| AuthError::AlgorithmNotAllowed)?;
        let pinned = match &self.keys {
            Keys::Hs256(key) => key,
            Keys::Jwks(set) => set.select(header.kid.as_deref()).map_err(|e| match e {
                Select::Unknown => AuthError::UnknownKid,
                Select::MissingKid => AuthError::MissingKid,
            })?,
        };
        if alg != pinned.alg {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        let payload =
            jsonwebtoken::decode::<Value>(token, &pinned.key, &self.validation(pinned.alg))
                .map_err(from_jwt_error)?
                .claims;
        check_claims(&payload)?;
        serde_json::from_value(payload).map_err(|_| AuthError::Malformed)
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.algorithms = vec![alg];
        v.set_required_spec_claims(&REQUIRED);
        v.validate_exp = true;
        v.validate_nbf = true;
        v.leeway = LEEWAY_SECS;
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v
    }
}

/// The header fields read before verification, decoded by hand so that an
/// unknown `alg` such as `none` is reported as a disallowed algorithm
/// rather than as garbage.
#[derive(serde::Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
    /// RFC 7515 §4.1.11: a token naming extensions we do not implement
    /// must be refused.
    crit: Option<Value>,
}

impl RawHeader {
    fn parse(token: &str) -> Result<RawHeader, AuthError> {
        let (encoded, _) = token.split_once('.').ok_or(AuthError::Malformed)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| AuthError::Malformed)?;
        let header: RawHeader = serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)?;
        if header.crit.is_some() {
            return Err(AuthError::Malformed);
        }
        Ok(header)
    }
}

fn from_jwt_error(e: jsonwebtoken::errors::Error) -> AuthError {
    match e.kind() {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => AuthError::AlgorithmNotAllowed,
        ErrorKind::MissingRequiredClaim(c) => AuthError::MissingClaim(
            REQUIRED
                .into_iter()
                .find(|r| *r == c.as_str())
                .unwrap_or("exp"),
        ),
        _ => AuthError::Malformed,
    }
}

/// What jsonwebtoken leaves unchecked: `iat` not in the future, claim
/// types it skips when unparseable (`nbf`), and our own claims.
fn check_claims(claims: &Value) -> Result<(), AuthError> {
    let now = jsonwebtoken::get_current_timestamp() as f64;
    let is_date = |v: &Value| v.as_f64().is_some_and(|f| f.is_finite() && f >= 0.0);
    for name in ["nbf", "iat"] {
        if claims.get(name).is_some_and(|v| !is_date(v)) {
            return Err(AuthError::InvalidClaim(name));
        }
    }
    if let Some(iat) = claims.get("iat").and_then(Value::as_f64) {
        if iat > now + LEEWAY_SECS as f64 {
            return Err(AuthError::IssuedInFuture);
        }
    }
    if !claims["iss"].is_string() {
        return Err(AuthError::InvalidClaim("iss"));
    }
    // `system:` actors are the service itself in the audit trail; a token
    // must not be able to claim that identity, nor hide who it is.
    match claims["sub"].as_str() {
        Some(sub) if super::claims::acceptable_actor(sub) => {}
        _ => return Err(AuthError::InvalidClaim("sub")),
    }
    if claims.get("scope").is_some_and(|s| !s.is_string()) {
        return Err(AuthError::InvalidClaim("scope"));
    }
    // The nil UUID is nobody's tenant.
    match claims.get("tenant_id") {
        None => Err(AuthError::MissingClaim("tenant_id")),
        Some(t) => match t.as_str().map(Uuid::parse_str) {
            Some(Ok(id)) if !id.is_nil() => Ok(()),
            _ => Err(AuthError::InvalidClaim("tenant_id")),
        },
    }
}

#[cfg(test)]
mod jwks_tests;
#[cfg(test)]
mod tests;
