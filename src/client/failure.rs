//! What can go wrong in `switchboard client`, shown readably and mapped to
//! an exit code by class, so a script can branch on the kind of failure
//! without parsing text.

use std::fmt::{self, Write as _};

use serde_json::Value;

/// A failed client command. Its text never carries the token: the token
/// only ever travels in a request header, and no request is echoed.
#[derive(Debug)]
pub enum Failure {
    /// The command line is wrong in a way clap cannot see (a bad file).
    Usage(String),
    /// The gateway could not be reached, or did not answer in time.
    Unreachable(String),
    /// The gateway answered with an error: its RFC 9457 problem body.
    Problem { status: u16, body: Value },
    /// An answer that is not what the API documents, or a local I/O error.
    Other(String),
}

/// The exit codes, by class of failure (README "CLI client").
pub mod exit {
    pub const OK: u8 = 0;
    pub const OTHER: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const AUTH: u8 = 3;
    pub const NOT_FOUND: u8 = 4;
    pub const CONFLICT: u8 = 5;
    pub const INVALID: u8 = 6;
    pub const REFUSED: u8 = 7;
    pub const SERVER: u8 = 8;
    pub const UNREACHABLE: u8 = 9;
}

impl Failure {
    pub fn code(&self) -> u8 {
        match self {
            Failure::Usage(_) => exit::USAGE,
            Failure::Unreachable(_) => exit::UNREACHABLE,
            Failure::Other(_) => exit::OTHER,
            Failure::Problem { status, body } => match status {
                // A refused destination is policy, not a missing scope.
                403 if slug(body) == Some("destination-blocked") => exit::REFUSED,
                401 | 403 => exit::AUTH,
                404 => exit::NOT_FOUND,
                409 | 412 | 428 => exit::CONFLICT,
                429 => exit::REFUSED,
                400..=499 => exit::INVALID,
                _ => exit::SERVER,
            },
        }
    }
}

/// The last segment of a problem's `type` URI (`…/problems/cap-exceeded`).
fn slug(body: &Value) -> Option<&str> {
    body.get("type")?.as_str()?.rsplit('/').next()
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(s) | Failure::Other(s) => f.write_str(s),
            Failure::Unreachable(s) => write!(f, "the gateway did not answer: {s}"),
            Failure::Problem { status, body } => f.write_str(&problem_text(*status, body)),
        }
    }
}

impl std::error::Error for Failure {}

/// A problem body as lines a person reads: status and title, the detail,
/// each field error, then any other member (dimension, retry_after, …).
pub fn problem_text(status: u16, body: &Value) -> String {
    let title = body.get("title").and_then(Value::as_str).unwrap_or("error");
    let mut out = format!("{status} {title}");
    if let Some(detail) = body.get("detail").and_then(Value::as_str) {
        if !detail.is_empty() && detail != title {
            let _ = write!(out, ": {detail}");
        }
    }
    if let Some(errors) = body.get("errors").and_then(Value::as_array) {
        for e in errors {
            let field = e.get("field").and_then(Value::as_str).unwrap_or("?");
            let message = e.get("message").and_then(Value::as_str).unwrap_or("");
            let _ = write!(out, "\n  {field}: {message}");
        }
    }
    if let Some(map) = body.as_object() {
        for (k, v) in map {
            if matches!(
                k.as_str(),
                "type" | "title" | "status" | "detail" | "errors"
            ) {
                continue;
            }
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = write!(out, "\n  {k}: {v}");
        }
    }
    if let Some(t) = slug(body) {
        let _ = write!(out, "\n  (problem: {t})");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problem(status: u16, slug: &str) -> Failure {
        Failure::Problem {
            status,
            body: json!({"type": format!("https://switchboard.dev/problems/{slug}"), "title": "t"}),
        }
    }

    #[test]
    fn exit_codes_follow_the_class_of_failure() {
        assert_eq!(problem(401, "unauthorized").code(), exit::AUTH);
        assert_eq!(problem(403, "forbidden").code(), exit::AUTH);
        assert_eq!(problem(403, "destination-blocked").code(), exit::REFUSED);
        assert_eq!(problem(404, "not-found").code(), exit::NOT_FOUND);
        assert_eq!(problem(412, "precondition-failed").code(), exit::CONFLICT);
        assert_eq!(problem(409, "conflict").code(), exit::CONFLICT);
        assert_eq!(problem(422, "validation").code(), exit::INVALID);
        assert_eq!(problem(400, "validation").code(), exit::INVALID);
        assert_eq!(problem(429, "cap-exceeded").code(), exit::REFUSED);
        assert_eq!(problem(502, "call-processor-error").code(), exit::SERVER);
        assert_eq!(problem(503, "unavailable").code(), exit::SERVER);
        assert_eq!(Failure::Unreachable("x".into()).code(), exit::UNREACHABLE);
    }

    #[test]
    fn a_problem_reads_as_lines_naming_each_field() {
        let body = json!({
            "type": "https://switchboard.dev/problems/validation",
            "title": "unprocessable entity", "status": 422,
            "detail": "invalid fields: e164",
            "errors": [{"field": "e164", "message": "must be E.164"}],
            "current_version": 3,
        });
        assert_eq!(
            problem_text(422, &body),
            "422 unprocessable entity: invalid fields: e164\n  e164: must be E.164\n  current_version: 3\n  (problem: validation)"
        );
    }
}
