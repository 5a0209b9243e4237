//! Authentication and tenancy (SPEC §3): bearer JWTs verified against one
//! pinned algorithm per key, turned into a `Principal` whose `tenant_id`
//! scopes every read and write.
//!
//! - `claims`: the token payload, scopes, and the principal;
//! - `verifier`: HS256 secret or JWKS, and every reason to refuse a token;
//! - `jwks`: loading a JWKS and pinning each key's algorithm;
//! - `mint`: HS256 dev tokens (`switchboard token`);
//! - `extract`: the axum extractor and the 401/403 problem responses.

mod claims;
mod extract;
mod jwks;
mod mint;
mod verifier;

#[cfg(test)]
mod test_keys;

pub use claims::{acceptable_actor, Audience, Claims, Principal, Scope, UnknownScope};
pub use extract::{bearer, AuthError};
pub use mint::mint_hs256;
pub use verifier::{Verifier, LEEWAY_SECS, MIN_HS256_SECRET_BYTES};
