//! Scrubbing text that came from outside (a Call Processor's or carrier's
//! error message) before it is stored, published, logged or answered.
//!
//! A carrier that echoes the request (or its credentials) in an error must
//! not get a credential into an event, where it would stay forever. Two
//! passes: every credential value of the tenant is replaced wherever it
//! appears, then anything token-shaped is, since a credential may appear
//! transformed (base64 of `sid:token`, a prefix, another tenant's).

use super::PlainCredentials;

/// What a scrubbed part reads as.
pub const REDACTED: &str = "[redacted]";

/// Shortest credential value replaced by value: shorter ones (`"v"`) would
/// scrub ordinary words, and are caught by nothing anyway.
const MIN_VALUE_LEN: usize = 4;

/// Shortest run of token characters that counts as token-shaped.
const MIN_TOKEN_LEN: usize = 16;

/// `text` with `credentials`' values and token-shaped runs replaced.
pub fn redact(text: &str, credentials: &PlainCredentials) -> String {
    let mut out = text.to_owned();
    let mut values: Vec<&str> = credentials
        .iter_exposed()
        .map(|(_, v)| v)
        .filter(|v| v.len() >= MIN_VALUE_LEN)
        .collect();
    // Longest first, so a value containing another goes whole.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for v in values {
        if out.contains(v) {
            out = out.replace(v, REDACTED);
        }
    }
    redact_tokens(&out)
}

/// `text` with every token-shaped run replaced: at least 16 characters of
/// letters, digits and `-_.+/=~`, holding both a letter and a digit (an
/// API key, a SID, base64, a JWT part; not an ordinary word or number).
pub fn redact_tokens(text: &str) -> String {
    let is_token_char =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/' | '=' | '~');
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let shaped = run.len() >= MIN_TOKEN_LEN
            && run.chars().any(|c| c.is_ascii_alphabetic())
            && run.chars().any(|c| c.is_ascii_digit());
        out.push_str(if shaped { REDACTED } else { run });
        run.clear();
    };
    for c in text.chars() {
        if is_token_char(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> PlainCredentials {
        [
            ("account_sid", "AC0123456789abcdef0123456789abcdef"),
            ("auth_token", "hunter2-canary"),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn credential_values_and_token_shapes_are_scrubbed() {
        let text = "auth failed for AC0123456789abcdef0123456789abcdef with hunter2-canary \
                    (Basic QUMwMTIzOmh1bnRlcjI=)";
        let out = redact(text, &creds());
        assert!(!out.contains("hunter2"), "{out}");
        assert!(!out.contains("AC0123"), "{out}");
        assert!(!out.contains("QUMwMTIz"), "{out}");
        assert_eq!(
            out,
            "auth failed for [redacted] with [redacted] (Basic [redacted])"
        );
    }

    #[test]
    fn ordinary_messages_stay_readable() {
        let text = "invalid 'To' number +14155550100: not a mobile number (code 21211)";
        assert_eq!(redact(text, &creds()), text);
        assert_eq!(
            redact_tokens("call-processor-unavailable"),
            "call-processor-unavailable"
        );
    }
}
