//! The extractor and the problem responses, through a real axum router.

use axum::body::{to_bytes, Body};
use axum::http::Request;
use axum::routing::get;
use axum::Router;
use events::TenantId;
use secrecy::SecretString;
use tower::ServiceExt;

use super::*;
use crate::auth::mint_hs256;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

#[derive(Clone)]
struct AppState {
    verifier: Arc<Verifier>,
}

impl FromRef<AppState> for Arc<Verifier> {
    fn from_ref(s: &AppState) -> Self {
        s.verifier.clone()
    }
}

async fn handler(p: Principal) -> Result<String, AuthError> {
    p.require(Scope::CallsWrite)?;
    Ok(p.tenant_id.to_string())
}

/// Status, `WWW-Authenticate`, and the problem body of one request.
async fn call(auth: Option<&str>) -> (StatusCode, String, serde_json::Value) {
    let verifier = Verifier::hs256(&SecretString::from(SECRET), "iss", "aud").unwrap();
    let app = Router::new().route("/", get(handler)).with_state(AppState {
        verifier: Arc::new(verifier),
    });
    let mut req = Request::builder().uri("/");
    if let Some(a) = auth {
        req = req.header(AUTHORIZATION, a);
    }
    let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = res.status();
    let challenge = res
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    if status.is_client_error() {
        assert_eq!(res.headers()[CONTENT_TYPE], "application/problem+json");
    }
    let body = to_bytes(res.into_body(), 1 << 16).await.unwrap();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (status, challenge.unwrap_or_default(), json)
}

fn token(scopes: &[Scope]) -> String {
    let d = std::time::Duration::from_secs(60);
    mint_hs256(
        &SecretString::from(SECRET),
        "iss",
        "aud",
        TenantId::new(),
        "me",
        scopes,
        d,
    )
}

#[tokio::test]
async fn valid_token_with_scope_reaches_the_handler() {
    let (status, _, _) = call(Some(&format!("bearer {}", token(&[Scope::CallsWrite])))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn missing_or_non_bearer_credentials_get_a_bare_challenge() {
    for auth in [
        None,
        Some("Basic dXNlcjpwYXNz"),
        Some("Bearer"),
        Some("Bearer  "),
    ] {
        let (status, challenge, body) = call(auth).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert!(challenge.starts_with("Bearer"), "{auth:?}");
        assert_eq!(
            body["type"],
            "https://switchboard.dev/problems/unauthorized"
        );
        assert_eq!(body["title"], "unauthorized");
        assert_eq!(body["status"], 401);
    }
    assert_eq!(call(None).await.1, "Bearer");
    assert_eq!(call(None).await.2["detail"], "missing bearer token");
}

#[tokio::test]
async fn invalid_token_is_401_and_the_detail_does_not_echo_it() {
    let mut bad = token(&[Scope::CallsWrite]);
    bad.push('x');
    let (status, challenge, body) = call(Some(&format!("Bearer {bad}"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge, "Bearer error=\"invalid_token\"");
    assert_eq!(body["detail"], "token signature is invalid");
    assert!(!body.to_string().contains(&bad[..20]));
}

#[tokio::test]
async fn missing_scope_is_403_naming_the_scope() {
    let (status, challenge, body) =
        call(Some(&format!("Bearer {}", token(&[Scope::AuditRead])))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        challenge,
        "Bearer error=\"insufficient_scope\", scope=\"calls:write\""
    );
    assert_eq!(
        body,
        serde_json::json!({
            "type": "https://switchboard.dev/problems/forbidden",
            "title": "forbidden",
            "status": 403,
            "detail": "token lacks the `calls:write` scope",
        })
    );
}

#[test]
fn several_authorization_headers_are_refused() {
    let mut h = HeaderMap::new();
    h.append(AUTHORIZATION, HeaderValue::from_static("Bearer a"));
    h.append(AUTHORIZATION, HeaderValue::from_static("Bearer b"));
    assert_eq!(bearer(&h), Err(AuthError::NotBearer));
    h.remove(AUTHORIZATION);
    h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer a b"));
    assert_eq!(bearer(&h), Err(AuthError::Malformed));
}
