//! What a token says (`Claims`), what it may do (`Scope`), and who is asking
//! once it has been verified (`Principal`). Handlers only ever see a
//! `Principal`: the tenant comes from the verified token and nowhere else
//! (SPEC §3).

use events::TenantId;
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use super::AuthError;

/// The JWT payload Switchboard reads and mints. Registered claims follow
/// RFC 7519; `tenant_id` and `scope` are ours (`scope` is space-separated,
/// as in RFC 8693 §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: Audience,
    /// The actor recorded on every event the request causes.
    pub sub: String,
    #[serde(deserialize_with = "numeric_date")]
    pub exp: i64,
    #[serde(
        default,
        deserialize_with = "opt_numeric_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub nbf: Option<i64>,
    #[serde(
        default,
        deserialize_with = "opt_numeric_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub iat: Option<i64>,
    pub tenant_id: TenantId,
    /// Absent means no scopes: the token authenticates but authorizes nothing.
    #[serde(default)]
    pub scope: String,
}

/// `aud` may be one string or an array of them (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

/// RFC 7519 NumericDate may carry a fraction; whole seconds are enough here.
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    n.as_i64()
        .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
        .ok_or_else(|| serde::de::Error::custom("not a NumericDate"))
}

fn opt_numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    numeric_date(d).map(Some)
}

/// The permissions a token can grant (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Scope {
    TelephonyRead,
    TelephonyWrite,
    CallsWrite,
    LimitsWrite,
    AuditRead,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::TelephonyRead,
        Scope::TelephonyWrite,
        Scope::CallsWrite,
        Scope::LimitsWrite,
        Scope::AuditRead,
    ];

    /// The wire name, e.g. `calls:write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::TelephonyRead => "telephony:read",
            Scope::TelephonyWrite => "telephony:write",
            Scope::CallsWrite => "calls:write",
            Scope::LimitsWrite => "limits:write",
            Scope::AuditRead => "audit:read",
        }
    }

    /// `None` for a name Switchboard does not know. Exact match: scopes are
    /// case-sensitive.
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope name Switchboard does not know; strict parsing (the `token`
/// command) reports it, token verification ignores it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope `{0}` (known: telephony:read, telephony:write, calls:write, limits:write, audit:read)")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::parse(s).ok_or_else(|| UnknownScope(s.to_owned()))
    }
}

impl TryFrom<String> for Scope {
    type Error = UnknownScope;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> String {
        s.as_str().to_owned()
    }
}

/// Longest `sub` recorded as an actor.
pub const MAX_ACTOR_LEN: usize = 255;

/// Whether a token's `sub` may be recorded as the actor of events. The audit
/// trail must show who acted, unambiguously: no surrounding whitespace, no
/// control or invisible (format) characters that render as nothing, at most
/// 255 bytes, and never the service's own `system:` identity, however it
/// is spelled (case, spacing, a full-width colon).
pub fn acceptable_actor(sub: &str) -> bool {
    if sub.is_empty() || sub.len() > MAX_ACTOR_LEN || sub.trim() != sub {
        return false;
    }
    if sub.chars().any(|c| c.is_control() || is_invisible(c)) {
        return false;
    }
    let folded: String = sub
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    !(folded.starts_with("system:") || folded.starts_with("system\u{ff1a}"))
}

/// Unicode format characters (general category Cf) and the other code
/// points that render as nothing: zero-width spaces and joiners, bidi
/// controls, word joiners, the BOM, tag characters.
fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFFB | 0x1D173..=0x1D17A | 0xE0000..=0xE0FFF)
}

/// Who is making a request, established only by a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Every read and write is confined to this tenant.
    pub tenant_id: TenantId,
    /// The token's `sub`; recorded as the actor of resulting events.
    pub actor: String,
    pub scopes: BTreeSet<Scope>,
}

impl Principal {
    /// Builds the principal from verified claims. Unknown scope names are
    /// ignored rather than rejected, so a token from a shared identity
    /// provider may carry scopes meant for other services.
    pub fn from_claims(claims: &Claims) -> Principal {
        Principal {
            tenant_id: claims.tenant_id,
            actor: claims.sub.clone(),
            scopes: claims
                .scope
                .split_whitespace()
                .filter_map(Scope::parse)
                .collect(),
        }
    }

    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// `Err(AuthError::MissingScope)` (403) unless the token granted `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), AuthError> {
        if self.has(scope) {
            Ok(())
        } else {
            Err(AuthError::MissingScope(scope))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn actors_are_visible_and_never_the_system() {
        for ok in [
            "agent-7",
            "ops@example.com",
            "Agent Smith",
            "systems-team",
            "Ärztin",
        ] {
            assert!(acceptable_actor(ok), "{ok:?}");
        }
        for bad in [
            "",
            " a",
            "a\t",
            "SyStEm:x",
            "system\u{3000}:x",
            "a\u{feff}",
            "a\u{e0041}",
        ] {
            assert!(!acceptable_actor(bad), "{bad:?}");
        }
    }

    #[test]
    fn scopes_round_trip_and_unknown_names_fail_strict_parsing() {
        for s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>(), Ok(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert!("calls:Write".parse::<Scope>().is_err());
        assert_eq!(Scope::parse("admin"), None);
    }

    #[test]
    fn principal_ignores_unknown_scopes_and_requires_granted_ones() {
        let claims: Claims = serde_json::from_value(serde_json::json!({
            "iss": "i", "aud": ["a", "b"], "sub": "agent-7", "exp": 1.7e9,
            "tenant_id": Uuid::now_v7(), "scope": "calls:write  openid audit:read",
        }))
        .unwrap();
        assert_eq!(claims.exp, 1_700_000_000);
        assert_eq!(claims.aud, Audience::Many(vec!["a".into(), "b".into()]));
        let p = Principal::from_claims(&claims);
        assert_eq!(p.actor, "agent-7");
        assert_eq!(
            p.scopes,
            BTreeSet::from([Scope::CallsWrite, Scope::AuditRead])
        );
        assert!(p.require(Scope::CallsWrite).is_ok());
        assert!(matches!(
            p.require(Scope::LimitsWrite),
            Err(AuthError::MissingScope(Scope::LimitsWrite))
        ));
    }
}
