//! Reading a JSON object field by field, collecting every problem.
//!
//! Request bodies are read into a `serde_json` map first and then field by
//! field, rather than straight into a struct, so that a 400 can name every
//! bad field at once (serde stops at the first) and unknown fields are
//! reported by name.

use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

/// One bad field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The refusal of an unknown provider kind, wherever one is read.
pub const PROVIDER_KINDS: &str = "must be one of twilio, plivo, vobiz";

/// A request object being read; problems accumulate in `errors`.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    prefix: String,
    pub errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Fields {
            map,
            prefix: String::new(),
            errors: Vec::new(),
        }
    }

    fn name(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub fn error(&mut self, key: &str, message: impl Into<String>) {
        let field = self.name(key);
        self.errors.push(FieldError::new(field, message));
    }

    /// Reports every key not in `known`.
    pub fn deny_unknown(&mut self, known: &[&str]) {
        let mut unknown: Vec<&String> = self
            .map
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .collect();
        unknown.sort();
        for k in unknown {
            let field = self.name(k);
            self.errors.push(FieldError::new(field, "unknown field"));
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    /// A required non-empty string.
    pub fn string(&mut self, key: &str, max_len: usize) -> Option<String> {
        match self.map.get(key) {
            None | Some(Value::Null) => {
                self.error(key, "is required");
                None
            }
            Some(v) => self.string_value(key, v, max_len),
        }
    }

    /// An optional string: absent is `None`; present must be valid.
    pub fn opt_string(&mut self, key: &str, max_len: usize) -> Option<String> {
        let v = self.map.get(key)?;
        self.string_value(key, v, max_len)
    }

    fn string_value(&mut self, key: &str, v: &Value, max_len: usize) -> Option<String> {
        match v {
            Value::String(s) if s.contains('\0') => {
                // PostgreSQL text cannot hold NUL.
                self.error(key, "must not contain NUL characters");
                None
            }
            Value::String(s) if s.trim().is_empty() => {
                self.error(key, "must not be empty");
                None
            }
            Value::String(s) if s.chars().count() > max_len => {
                self.error(key, format!("must be at most {max_len} characters"));
                None
            }
            Value::String(s) => Some(s.clone()),
            _ => {
                self.error(key, "must be a string");
                None
            }
        }
    }

    /// An optional boolean.
    pub fn opt_bool(&mut self, key: &str) -> Option<bool> {
        match self.map.get(key)? {
            Value::Bool(b) => Some(*b),
            _ => {
                self.error(key, "must be true or false");
                None
            }
        }
    }

    /// An optional UUID; `Some(None)` when present and null.
    pub fn opt_nullable_uuid<T: From<Uuid>>(&mut self, key: &str) -> Option<Option<T>> {
        match self.map.get(key)? {
            Value::Null => Some(None),
            Value::String(s) => match Uuid::parse_str(s) {
                Ok(u) => Some(Some(u.into())),
                Err(_) => {
                    self.error(key, "must be a UUID");
                    None
                }
            },
            _ => {
                self.error(key, "must be a UUID string or null");
                None
            }
        }
    }

    /// A required UUID.
    pub fn uuid<T: From<Uuid>>(&mut self, key: &str) -> Option<T> {
        if self.map.get(key).is_none_or(Value::is_null) {
            self.error(key, "is required");
            return None;
        }
        self.opt_nullable_uuid(key).flatten()
    }

    /// A required provider kind (`twilio`, `plivo` or `vobiz`).
    pub fn provider_kind(&mut self, key: &str) -> Option<events::ProviderKind> {
        let s = self.string(key, 32)?;
        let kind = events::ProviderKind::parse(&s);
        if kind.is_none() {
            self.error(key, PROVIDER_KINDS);
        }
        kind
    }

    /// A required E.164 number.
    pub fn e164(&mut self, key: &str) -> Option<super::E164> {
        let s = self.string(key, 32)?;
        match super::E164::parse(&s) {
            Ok(n) => Some(n),
            Err(m) => {
                self.error(key, m);
                None
            }
        }
    }

    /// A required point in time, as Call Processors and carriers send it:
    /// an RFC 3339 string (`2026-12-03T06:00:00.250Z`, any offset) or integer
    /// Unix seconds (a JSON integer, or a string of digits), from 1970 to 9999.
    pub fn timestamp(&mut self, key: &str) -> Option<chrono::DateTime<chrono::Utc>> {
        const MESSAGE: &str = "must be an RFC 3339 date-time or integer Unix seconds";
        let parsed = match self.map.get(key) {
            None | Some(Value::Null) => {
                self.error(key, "is required");
                return None;
            }
            Some(v) => parse_timestamp(v),
        };
        if parsed.is_none() {
            self.error(key, MESSAGE);
        }
        parsed
    }

    /// An optional integer in `0..=max`.
    pub fn opt_u32(&mut self, key: &str, max: u32) -> Option<u32> {
        let v = self.map.get(key)?;
        // JSON has one number type: 5.0 is the integer 5 (as JSON Schema's
        // `integer` says); 5.5 is not an integer.
        let whole = v.as_u64().or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::from(max) as f64)
                .map(|f| f as u64)
        });
        match whole {
            Some(n) if n <= u64::from(max) => Some(n as u32),
            _ => {
                self.error(key, format!("must be an integer from 0 to {max}"));
                None
            }
        }
    }

    /// An optional integer from 0 to `max`, or null (`Some(None)`).
    pub fn opt_nullable_u32(&mut self, key: &str, max: u32) -> Option<Option<u32>> {
        match self.map.get(key)? {
            Value::Null => Some(None),
            _ => match self.opt_u32(key, max) {
                Some(n) => Some(Some(n)),
                None => {
                    // opt_u32 named the field; say null is allowed too.
                    if let Some(last) = self.errors.last_mut() {
                        last.message = format!("must be an integer from 0 to {max}, or null");
                    }
                    None
                }
            },
        }
    }

    /// Finishes: the errors, if any.
    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }

    /// Reads a nested object under `key.`; its errors join this one's.
    pub fn nested(&mut self, key: &str) -> Option<Fields<'a>> {
        match self.map.get(key) {
            Some(Value::Object(m)) => Some(Fields {
                map: m,
                prefix: format!("{}{key}.", self.prefix),
                errors: Vec::new(),
            }),
            None | Some(Value::Null) => {
                self.error(key, "is required");
                None
            }
            _ => {
                self.error(key, "must be an object");
                None
            }
        }
    }

    /// Takes over the errors of a nested reader.
    pub fn absorb(&mut self, nested: Fields<'_>) {
        self.errors.extend(nested.errors);
    }
}

/// Whether any string (or key) in `v` holds a NUL, which PostgreSQL's text
/// and jsonb cannot store.
/// See `Fields::timestamp`.
pub fn parse_timestamp(v: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    // 9999-12-31T23:59:59Z: beyond it RFC 3339 has no spelling.
    const MAX_UNIX: i64 = 253_402_300_799;
    let from_unix = |n: i64| {
        (0..=MAX_UNIX)
            .contains(&n)
            .then(|| chrono::DateTime::from_timestamp(n, 0))
            .flatten()
    };
    match v {
        Value::Number(n) => n.as_i64().and_then(from_unix),
        Value::String(s)
            if !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            s.parse().ok().and_then(from_unix)
        }
        Value::String(s) if s.len() <= 64 => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc)),
        _ => None,
    }
}

pub fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::parse_timestamp;

    #[test]
    fn timestamps_are_rfc3339_or_unix_seconds() {
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        assert_eq!(
            parse_timestamp(&json!("2026-12-03T06:00:00.250Z")),
            Some(at("2026-12-03T06:00:00.250Z"))
        );
        assert_eq!(
            parse_timestamp(&json!("2026-12-03T07:00:00+01:00")),
            Some(at("2026-12-03T06:00:00Z"))
        );
        assert_eq!(
            parse_timestamp(&json!(1_796_277_600)),
            Some(at("2026-12-03T06:00:00Z"))
        );
        assert_eq!(
            parse_timestamp(&json!("1796277600")),
            Some(at("2026-12-03T06:00:00Z"))
        );
        for bad in [
            json!(""),
            json!("yesterday"),
            json!("2026-12-03"),
            json!(-1),
            json!(1.5),
            json!(253_402_300_800_i64),
            json!("99999999999999999999"),
            json!(true),
            json!({}),
        ] {
            assert_eq!(parse_timestamp(&bad), None, "{bad}");
        }
    }
}
