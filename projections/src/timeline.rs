//! A call's timeline (`calls.timeline`, a JSON array of `{"type", "at"}`
//! steps) kept as the JSON text PostgreSQL stores, not as a tree of
//! `serde_json::Value`s: a step is appended as text, and the column is
//! written and read as that text. Building, serializing and dropping a
//! tree of maps for every step was a fifth of a rebuild's apply loop.
//!
//! The text is JSON by construction: it is either PostgreSQL's own output
//! of the `jsonb` column or built here from serialized steps.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueFormat, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type, TypeInfo, ValueRef};

/// The JSON text of a timeline array.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Timeline(String);

#[derive(Serialize)]
struct Step<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    at: &'a DateTime<Utc>,
}

impl Timeline {
    /// A timeline of one step.
    pub(crate) fn first(event_type: &str, at: &DateTime<Utc>) -> Timeline {
        let mut t = Timeline(String::from("[]"));
        t.push(event_type, at);
        t
    }

    /// Appends a step.
    pub(crate) fn push(&mut self, event_type: &str, at: &DateTime<Utc>) {
        let s = &mut self.0;
        let end = s.trim_end().len();
        s.truncate(end);
        // The text always ends with the array's `]`; drop it, append, close.
        s.pop();
        if !s.trim_end().ends_with('[') {
            s.push_str(", ");
        }
        let step = Step { event_type, at };
        // A struct of a string and a timestamp always serializes.
        if let Ok(text) = serde_json::to_string(&step) {
            s.push_str(&text);
        }
        s.push(']');
    }

    /// The timeline as a JSON value (for tests and callers that read it).
    #[cfg(test)]
    pub(crate) fn value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }
}

impl Type<Postgres> for Timeline {
    fn type_info() -> PgTypeInfo {
        <Value as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <Value as Type<Postgres>>::compatible(ty)
    }
}

impl PgHasArrayType for Timeline {
    fn array_type_info() -> PgTypeInfo {
        <Value as PgHasArrayType>::array_type_info()
    }
}

impl Encode<'_, Postgres> for Timeline {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        // jsonb's binary form: a version byte (1), then the JSON text. The
        // upsert binds `jsonb[]`, so the column is never plain `json`.
        buf.push(1);
        buf.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
}

impl<'r> Decode<'r, Postgres> for Timeline {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        let jsonb = value.type_info().name() == "JSONB";
        let mut bytes = value.as_bytes()?;
        if value.format() == PgValueFormat::Binary && jsonb {
            match bytes.split_first() {
                Some((1, rest)) => bytes = rest,
                _ => return Err("unsupported jsonb format version".into()),
            }
        }
        Ok(Timeline(std::str::from_utf8(bytes)?.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn steps_append_as_the_json_a_tree_would_give() {
        let at: DateTime<Utc> = "2026-12-07T08:00:00.123456Z".parse().unwrap();
        let mut t = Timeline::first("OriginateRequested", &at);
        t.push("Call\"Ended", &at);
        assert_eq!(
            t.value(),
            json!([{"type": "OriginateRequested", "at": at}, {"type": "Call\"Ended", "at": at}])
        );
    }

    #[test]
    fn a_step_appends_to_postgres_own_output() {
        let at: DateTime<Utc> = "2026-12-07T08:00:00Z".parse().unwrap();
        for stored in ["[]", "[ ]", "[{\"at\": \"x\", \"type\": \"A\"}]  "] {
            let mut t = Timeline(stored.to_owned());
            t.push("B", &at);
            let v = t.value();
            let steps = v.as_array().unwrap();
            assert_eq!(steps.last().unwrap(), &json!({"type": "B", "at": at}));
        }
    }
}
