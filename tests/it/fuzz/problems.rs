//! Problem bodies: whatever a field name or message holds, the response is
//! RFC 9457 JSON whose `status` is the HTTP status, with the problem
//! content type, and a 5xx never carries its cause.

use axum::response::IntoResponse;
use proptest::prelude::*;
use switchboard::domain::FieldError;
use switchboard::gateway::ApiError;

use super::nasty_string;

fn error() -> impl Strategy<Value = ApiError> {
    prop_oneof![
        proptest::collection::vec((nasty_string(30), nasty_string(60)), 0..4).prop_map(|v| {
            ApiError::Validation(v.into_iter().map(|(f, m)| FieldError::new(f, m)).collect())
        }),
        nasty_string(80).prop_map(ApiError::Conflict),
        any::<i64>().prop_map(|current| ApiError::PreconditionFailed { current }),
        nasty_string(80).prop_map(ApiError::Unavailable),
        nasty_string(80).prop_map(|s| ApiError::Internal(anyhow::anyhow!(s))),
        (0u8..6).prop_map(|i| match i {
            0 => ApiError::NotFound("provider"),
            1 => ApiError::IdempotencyMismatch,
            2 => ApiError::PayloadTooLarge,
            3 => ApiError::UnsupportedMediaType,
            4 => ApiError::CallerIdNotAllowed,
            _ => ApiError::BadSignature,
        }),
    ]
}

proptest! {
    #[test]
    fn every_error_renders_a_problem(e in error()) {
        let secret = match &e {
            ApiError::Internal(cause) => Some(cause.to_string()),
            ApiError::Unavailable(cause) => Some(cause.clone()),
            _ => None,
        };
        let resp = e.into_response();
        let status = resp.status();
        prop_assert!(status.is_client_error() || status.is_server_error());
        prop_assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "application/problem+json"
        );
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let bytes = rt.block_on(axum::body::to_bytes(resp.into_body(), 1 << 20)).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
        prop_assert_eq!(body["status"].as_u64(), Some(u64::from(status.as_u16())));
        prop_assert!(body["type"].is_string() && body["title"].is_string());
        if let Some(cause) = secret.filter(|c| c.len() >= 8) {
            prop_assert!(!String::from_utf8_lossy(&bytes).contains(&cause), "a 5xx echoes its cause");
        }
    }
}
