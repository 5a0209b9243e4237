//! List queries: cursor pagination, limits and filters, strictly parsed.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::Serialize;

use super::ApiError;
use crate::domain::FieldError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

/// `{items, next_cursor}`; `next_cursor` is null on the last page.
#[derive(Debug, Serialize)]
pub struct Page<T: Serialize> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Query parameters as given, checked against what a route accepts.
pub struct ListQuery {
    params: HashMap<String, String>,
    pub limit: i64,
}

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::field("query", "is not a valid query string"))?;
        let mut params = HashMap::new();
        let mut errors = Vec::new();
        for (k, v) in pairs {
            if k.contains('\0') || v.contains('\0') {
                errors.push(FieldError::new(
                    k.replace('\0', ""),
                    "must not contain NUL characters",
                ));
                continue;
            }
            if params.insert(k.clone(), v).is_some() {
                errors.push(FieldError::new(k, "given more than once"));
            }
        }
        let limit = match params.get("limit") {
            None => DEFAULT_LIMIT,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    errors.push(FieldError::new(
                        "limit",
                        format!("must be an integer from 1 to {MAX_LIMIT}"),
                    ));
                    DEFAULT_LIMIT
                }
            },
        };
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(ListQuery { params, limit })
    }
}

impl ListQuery {
    /// Refuses any parameter but `limit`, `cursor` and `allowed`.
    pub fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        let mut unknown: Vec<FieldError> = self
            .params
            .keys()
            .filter(|k| {
                !["limit", "cursor"].contains(&k.as_str()) && !allowed.contains(&k.as_str())
            })
            .map(|k| FieldError::new(k.clone(), "unknown query parameter"))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        unknown.sort_by(|a, b| a.field.cmp(&b.field));
        Err(ApiError::Validation(unknown))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    /// A UUID parameter (cursors of id-ordered lists are ids too).
    pub fn uuid(&self, key: &str) -> Result<Option<uuid::Uuid>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => uuid::Uuid::parse_str(v)
                .map(Some)
                .map_err(|_| ApiError::field(key, "must be a UUID")),
        }
    }

    /// Builds the page: one extra row was fetched to know whether more exist.
    pub fn page<T: Serialize, C: ToString>(
        &self,
        mut rows: Vec<T>,
        cursor_of: impl Fn(&T) -> C,
    ) -> Page<T> {
        let more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        let next_cursor = if more {
            rows.last().map(|r| cursor_of(r).to_string())
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}
