//! The HTTP side of authentication: `AuthError`, its RFC 9457 responses,
//! and the `Principal` extractor that reads `Authorization: Bearer …`.
//!
//! All status and body mapping lives in `AuthError::status` and its
//! `IntoResponse`, so a central error type can later wrap it unchanged.
//! Details are fixed sentences: they never echo the token or its claims.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{Principal, Scope, Verifier};

/// Why a request is not authenticated (401) or not authorized (403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    MissingToken,
    #[error("expected exactly one `Authorization: Bearer` header")]
    NotBearer,
    #[error("token is malformed")]
    Malformed,
    /// `alg: none`, or an algorithm other than the one pinned to the key.
    #[error("token algorithm is not allowed")]
    AlgorithmNotAllowed,
    #[error("token has no kid and several keys are configured")]
    MissingKid,
    #[error("token kid matches no configured key")]
    UnknownKid,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token was issued in the future")]
    IssuedInFuture,
    #[error("token issuer is not accepted")]
    WrongIssuer,
    #[error("token audience is not accepted")]
    WrongAudience,
    #[error("token lacks the `{0}` claim")]
    MissingClaim(&'static str),
    #[error("token claim `{0}` is invalid")]
    InvalidClaim(&'static str),
    /// Authenticated, but the token does not grant this scope (403).
    #[error("token lacks the `{0}` scope")]
    MissingScope(Scope),
}

impl AuthError {
    /// 403 for a missing scope, 401 for everything else (SPEC §3).
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::MissingScope(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The RFC 6750 §3 challenge: no error code when no bearer credentials
    /// were presented, `invalid_token` or `insufficient_scope` otherwise.
    fn challenge(&self) -> String {
        match self {
            AuthError::MissingToken | AuthError::NotBearer => "Bearer".to_owned(),
            AuthError::MissingScope(s) => {
                format!("Bearer error=\"insufficient_scope\", scope=\"{s}\"")
            }
            _ => "Bearer error=\"invalid_token\"".to_owned(),
        }
    }
}

impl IntoResponse for AuthError {
    /// An RFC 9457 problem: `type` .../unauthorized or .../forbidden.
    fn into_response(self) -> Response {
        let status = self.status();
        let title = if status == StatusCode::FORBIDDEN {
            "forbidden"
        } else {
            "unauthorized"
        };
        let body = serde_json::json!({
            "type": format!("https://switchboard.dev/problems/{title}"),
            "title": title,
            "status": status.as_u16(),
            "detail": self.to_string(),
        });
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Ok(challenge) = HeaderValue::from_str(&self.challenge()) {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

/// Reads the bearer token; several `Authorization` headers are refused
/// rather than guessing which one counts. The scheme is case-insensitive
/// (RFC 9110 §11.1).
pub fn bearer(headers: &HeaderMap) -> Result<&str, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(AuthError::MissingToken)?;
    if values.next().is_some() {
        return Err(AuthError::NotBearer);
    }
    let value = value.to_str().map_err(|_| AuthError::NotBearer)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::NotBearer);
    }
    let token = token.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(AuthError::Malformed);
    }
    Ok(token)
}

/// Any handler taking a `Principal` is authenticated. The verified
/// principal is kept in the request extensions, so a second extraction
/// (say, by a middleware and then the handler) does not verify again.
impl<S> FromRequestParts<S> for Principal
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let verifier = Arc::<Verifier>::from_ref(state);
        let principal = bearer(&parts.headers)
            .and_then(|token| verifier.verify(token))
            .inspect_err(|e| tracing::debug!(reason = %e, "request not authenticated"))?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

#[cfg(test)]
mod tests;
