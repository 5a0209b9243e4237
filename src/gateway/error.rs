//! The one error type of the HTTP API, mapped to RFC 9457 problem+json in
//! one place.
//!
//! # Design
//! Handlers return `ApiError`; `IntoResponse` below is the only code that
//! turns an error into a status and a body. A 5xx body says nothing of its
//! cause: the cause is logged here, with the request's correlation, and the
//! client gets a generic detail. No variant carries a client's secret: field
//! errors name fields and never repeat values.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::auth::AuthError;
use crate::commands::Rejection;
use crate::domain::FieldError;
use crate::store::StoreError;

const TYPE_BASE: &str = "https://switchboard.dev/problems/";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid request")]
    Validation(Vec<FieldError>),
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A Call Processor callback without a valid signature.
    #[error("callback signature is missing, invalid or stale")]
    BadSignature,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("version {current} is current")]
    PreconditionFailed { current: i64 },
    #[error("idempotency key reused with a different request")]
    IdempotencyMismatch,
    #[error("a request with this idempotency key is still in progress")]
    IdempotencyInProgress,
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    #[error("from_number is not a caller ID this tenant may use")]
    CallerIdNotAllowed,
    /// A cap refused the call; the body carries the details.
    #[error("cost cap exceeded")]
    CapExceeded {
        body: Map<String, Value>,
        headers: HeaderMap,
    },
    /// The tenant's destination policy refused the call; the body names
    /// the country and the rule.
    #[error("{detail}")]
    DestinationBlocked {
        detail: String,
        body: Map<String, Value>,
    },
    /// The Call Processor refused or failed the call; the body says which.
    #[error("the Call Processor refused or failed the call")]
    BadGateway {
        detail: String,
        body: Map<String, Value>,
    },
    #[error("service unavailable")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn field(field: &str, message: &str) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) => StatusCode::BAD_REQUEST,
            ApiError::Auth(e) => e.status(),
            ApiError::BadSignature => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) | ApiError::IdempotencyInProgress => StatusCode::CONFLICT,
            ApiError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::IdempotencyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::CallerIdNotAllowed | ApiError::DestinationBlocked { .. } => {
                StatusCode::FORBIDDEN
            }
            ApiError::CapExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn slug(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "validation",
            ApiError::Auth(e) if e.status() == StatusCode::FORBIDDEN => "forbidden",
            ApiError::Auth(_) | ApiError::BadSignature => "unauthorized",
            ApiError::NotFound(_) => "not-found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PreconditionFailed { .. } => "precondition-failed",
            ApiError::IdempotencyMismatch => "idempotency-key-reused",
            ApiError::IdempotencyInProgress => "idempotency-key-in-progress",
            ApiError::PayloadTooLarge => "payload-too-large",
            ApiError::UnsupportedMediaType => "unsupported-media-type",
            ApiError::CallerIdNotAllowed => "caller-id-not-allowed",
            ApiError::DestinationBlocked { .. } => "destination-blocked",
            ApiError::CapExceeded { .. } => "cap-exceeded",
            ApiError::BadGateway { .. } => "call-processor-error",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::Validation(errors) => {
                let names: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                format!("invalid fields: {}", names.join(", "))
            }
            ApiError::Auth(e) => e.to_string(),
            ApiError::BadGateway { detail, .. } => detail.clone(),
            ApiError::Unavailable(_) => "a dependency is unavailable; retry later".into(),
            ApiError::Internal(_) => "internal error".into(),
            other => other.to_string(),
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::NotFound(what) => ApiError::NotFound(what),
            Rejection::Invalid(errors) => ApiError::Validation(errors),
            Rejection::Conflict(d) => ApiError::Conflict(d),
            Rejection::PreconditionFailed { current } => ApiError::PreconditionFailed { current },
            Rejection::CallerIdNotAllowed => ApiError::CallerIdNotAllowed,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            // `write::run` decides again on fresh state after a conflict;
            // this is one that kept conflicting. The client may retry.
            StoreError::Conflict { .. } => ApiError::Conflict("concurrent update; retry".into()),
            // Says nothing of who holds it.
            StoreError::Claimed => ApiError::Conflict("e164 is already registered".into()),
            StoreError::Referenced => {
                ApiError::Conflict(crate::commands::delete_provider::REFERENCED.into())
            }
            StoreError::Db(e) => e.into(),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<crate::write::RunError> for ApiError {
    fn from(e: crate::write::RunError) -> Self {
        match e {
            crate::write::RunError::Rejected(r) => r.into(),
            crate::write::RunError::Store(e) => e.into(),
        }
    }
}

impl From<crate::caps::CapsError> for ApiError {
    fn from(e: crate::caps::CapsError) -> Self {
        use crate::caps::CapsError;
        match e {
            // Redis out of reach, or its counters lost again and again:
            // a dependency's trouble, retry later.
            CapsError::Redis(e) => ApiError::Unavailable(e.to_string()),
            CapsError::Unstable => ApiError::Unavailable(e.to_string()),
            CapsError::Store(e) => e.into(),
            e @ CapsError::Reply(_) => ApiError::Internal(e.into()),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            // The database is out of reach, not wrong: 503, retry later.
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                ApiError::Unavailable(e.to_string())
            }
            e => ApiError::Internal(e.into()),
        }
    }
}

/// A problem+json response with `extra` members.
pub fn problem(
    status: StatusCode,
    slug: &str,
    title: &str,
    detail: &str,
    extra: Map<String, Value>,
) -> Response {
    let mut body = json!({
        "type": format!("{TYPE_BASE}{slug}"),
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    if let Value::Object(m) = &mut body {
        m.extend(extra);
    }
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Auth(e) = self {
            // Auth keeps its own problem body and RFC 6750 challenge.
            return e.into_response();
        }
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = ?self, "request failed");
        }
        if let ApiError::Unavailable(_) = &self {
            let mut resp = problem(
                status,
                self.slug(),
                "service unavailable",
                &self.detail(),
                Map::new(),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return resp;
        }
        let title = status.canonical_reason().unwrap_or("error").to_lowercase();
        let mut extra = Map::new();
        let mut headers = HeaderMap::new();
        match &self {
            ApiError::Validation(errors) => {
                extra.insert("errors".into(), json!(errors));
            }
            ApiError::PreconditionFailed { current } => {
                extra.insert("current_version".into(), json!(current));
            }
            ApiError::CapExceeded { body, headers: h } => {
                extra.extend(body.clone());
                headers = h.clone();
            }
            ApiError::BadGateway { body, .. } | ApiError::DestinationBlocked { body, .. } => {
                extra.extend(body.clone())
            }
            _ => {}
        }
        let mut resp = problem(status, self.slug(), &title, &self.detail(), extra);
        resp.headers_mut().extend(headers);
        resp
    }
}
