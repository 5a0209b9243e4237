//! ETag and If-Match: every resource has a version; writes can be made
//! conditional on it.

use axum::http::{header, HeaderMap, HeaderValue};

use super::ApiError;

/// The strong ETag of a resource at `version`.
pub fn etag(version: i64) -> (header::HeaderName, HeaderValue) {
    let v = HeaderValue::from_str(&format!("\"{version}\""))
        .unwrap_or(HeaderValue::from_static("\"0\""));
    (header::ETAG, v)
}

/// The version an `If-Match` header requires: `None` when absent, empty or `*`.
pub fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let s = v.to_str().map_err(|_| bad())?.trim();
    // An empty value names no version: as if the header were absent.
    if s == "*" || s.is_empty() {
        return Ok(None);
    }
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .filter(|s| !s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<i64>().ok())
        .map(Some)
        .ok_or_else(bad)
}

fn bad() -> ApiError {
    ApiError::field("If-Match", "must be a quoted version, e.g. \"3\", or *")
}
