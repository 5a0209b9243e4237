//! Minting HS256 tokens for development: `switchboard token` and the ready
//! token `switchboard serve` prints. Production deployments mint elsewhere
//! and configure a JWKS, which turns HS256 off.

use events::TenantId;
use std::time::Duration;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};

use super::{Audience, Claims, Scope};

/// Signs a token the HS256 `Verifier` with the same secret, issuer and
/// audience accepts: `iat` now, `exp` now + `ttl`, no `nbf` (so a verifier
/// whose clock runs slightly behind still accepts it), scopes space-separated.
///
/// Infallible: HMAC signing of a serializable struct cannot fail, so this
/// returns the token directly.
pub fn mint_hs256(
    secret: &SecretString,
    issuer: &str,
    audience: &str,
    tenant_id: TenantId,
    sub: &str,
    scopes: &[Scope],
    ttl: Duration,
) -> String {
    let now = chrono::Utc::now().timestamp();
    let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    let mut names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let claims = Claims {
        iss: issuer.to_owned(),
        aud: Audience::One(audience.to_owned()),
        sub: sub.to_owned(),
        exp: now.saturating_add(ttl),
        nbf: None,
        iat: Some(now),
        tenant_id,
        scope: names.join(" "),
    };
    let key = EncodingKey::from_secret(secret.expose_secret().as_bytes());
    encode(&Header::new(Algorithm::HS256), &claims, &key).expect("HS256 signing cannot fail")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::auth::{AuthError, Verifier};

    const SECRET: &str = "dev-secret-dev-secret-dev-secret-0123";

    #[test]
    fn minted_token_round_trips_through_the_verifier() {
        let secret = SecretString::from(SECRET);
        let tenant = TenantId::new();
        let scopes = [Scope::CallsWrite, Scope::TelephonyRead, Scope::CallsWrite];
        let token = mint_hs256(
            &secret,
            "iss",
            "aud",
            tenant,
            "dev",
            &scopes,
            Duration::from_secs(3600),
        );
        let claims = Verifier::hs256(&secret, "iss", "aud")
            .unwrap()
            .verify_claims(&token)
            .unwrap();
        assert_eq!(claims.scope, "calls:write telephony:read");
        assert!(claims.exp - claims.iat.unwrap() == 3600);
        let p = Verifier::hs256(&secret, "iss", "aud")
            .unwrap()
            .verify(&token)
            .unwrap();
        assert_eq!(p.tenant_id, tenant);
        assert_eq!(p.actor, "dev");
        assert_eq!(
            p.scopes,
            BTreeSet::from([Scope::CallsWrite, Scope::TelephonyRead])
        );
    }

    #[test]
    fn token_minted_with_another_secret_is_rejected() {
        let token = mint_hs256(
            &SecretString::from(SECRET.repeat(2)),
            "iss",
            "aud",
            TenantId::new(),
            "dev",
            &[],
            Duration::from_secs(60),
        );
        let v = Verifier::hs256(&SecretString::from(SECRET), "iss", "aud").unwrap();
        assert_eq!(v.verify(&token), Err(AuthError::BadSignature));
    }
}
