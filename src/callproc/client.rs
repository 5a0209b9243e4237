//! The Call Processor client (SPEC §7): places one call per `call_id`.
//!
//! Why it is shaped this way:
//! - Every attempt for a call carries `Idempotency-Key: <call_id>`, so a
//!   retry after a lost answer (timeout, reset connection, 5xx after the dial)
//!   returns the first dial's `provider_call_id` instead of dialing again.
//! - 4xx is the Call Processor refusing the request itself; repeating it
//!   cannot help, so it is final. 5xx, connection errors and timeouts are
//!   retried with capped, jittered exponential backoff, a bounded number of
//!   times, and then reported as retryable `Unavailable`. A 200 without a
//!   readable `provider_call_id` is retried too: the key makes it safe.
//! - The body is the only place plaintext credentials leave the process. It
//!   is serialized straight into a pre-sized zeroizing buffer (wiped when the
//!   last attempt drops it) and never logged; errors carry status codes and
//!   transport errors without URL or body. Redirects are not followed, so a
//!   misconfigured URL cannot forward credentials to another host.

use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use serde::Deserialize;

use super::wire::encode;
pub use super::wire::OriginateRequest;
use crate::secrets::redact::redact;

/// The Call Processor placed (or had already placed) the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialed {
    pub provider_call_id: String,
}

/// Why no call id came back. Messages never contain credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    /// A 4xx (or otherwise unexpected) answer: final, not retried.
    #[error("call processor refused the call (HTTP {status}): {error}")]
    Rejected { status: u16, error: String },
    /// 5xx, timeouts or connection errors on every attempt: retryable later,
    /// with the same `call_id`.
    #[error("call processor unavailable after {attempts} attempt(s): {last}")]
    Unavailable { attempts: u32, last: String },
}

impl DialError {
    /// Whether the dial may be tried again later (with the same `call_id`).
    pub fn retryable(&self) -> bool {
        matches!(self, DialError::Unavailable { .. })
    }
}

/// Longest Call Processor error text kept in a `Rejected`.
const MAX_ERROR_CHARS: usize = 200;

/// The longest `Retry-After` a 5xx answer can make the client wait before
/// its next attempt (a Call Processor passing on a carrier's rate limit).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// A client of one Call Processor. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CallProcessorClient {
    http: reqwest::Client,
    url: String,
    max_attempts: u32,
    backoff_base: Duration,
    backoff_cap: Duration,
}

enum Attempt {
    Done(Dialed),
    Final(DialError),
    /// Why, and how long the Call Processor asked us to wait.
    Retry(String, Option<Duration>),
}

impl CallProcessorClient {
    /// `timeout` bounds each attempt (connect, send, answer); `max_attempts`
    /// bounds the tries per `originate` (at least 1). Backoff between tries
    /// starts at 100 ms, doubles, is capped at 2 s, with jitter.
    pub fn new(base_url: String, timeout: Duration, max_attempts: u32) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client with the built-in rustls roots always builds");
        let url = format!("{}/telephony/originate", base_url.trim_end_matches('/'));
        CallProcessorClient {
            http,
            url,
            max_attempts: max_attempts.max(1),
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(2),
        }
    }

    /// Overrides the backoff: first delay `base`, doubling up to `cap`.
    pub fn with_backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_cap = cap.max(base);
        self
    }

    /// Places the call, retrying transient failures with the same key.
    pub async fn originate(&self, req: &OriginateRequest<'_>) -> Result<Dialed, DialError> {
        let body = encode(req);
        let key = req.call_id.to_string();
        let mut last = String::new();
        let mut asked_wait = None;
        for attempt in 1..=self.max_attempts {
            if attempt > 1 {
                // Never sooner than the Call Processor asked (its carrier's
                // rate limit, a dial another request is placing).
                let wait = self
                    .backoff(attempt - 1)
                    .max(asked_wait.unwrap_or_default());
                tokio::time::sleep(wait).await;
            }
            match self.attempt(&key, body.clone()).await {
                Attempt::Done(dialed) => return Ok(dialed),
                Attempt::Final(DialError::Rejected { status, error }) => {
                    // Redacted before it is cut short: a credential cut in
                    // half would no longer be found.
                    let error = redact(&error, req.credentials);
                    return Err(DialError::Rejected {
                        status,
                        error: error.chars().take(MAX_ERROR_CHARS).collect(),
                    });
                }
                Attempt::Final(err) => return Err(err),
                Attempt::Retry(why, after) => {
                    asked_wait = after.map(|a| a.min(MAX_RETRY_AFTER));
                    let why = redact(&why, req.credentials);
                    tracing::warn!(
                        call_id = %req.call_id,
                        attempt,
                        max_attempts = self.max_attempts,
                        error = %why,
                        "call processor attempt failed"
                    );
                    last = why;
                }
            }
        }
        Err(DialError::Unavailable {
            attempts: self.max_attempts,
            last: redact(&last, req.credentials),
        })
    }

    /// The delay before retry number `retry` (1-based): jittered into
    /// [d/2, d] so workers retrying together spread out.
    fn backoff(&self, retry: u32) -> Duration {
        let doubled = self
            .backoff_base
            .saturating_mul(1u32.checked_shl(retry - 1).unwrap_or(u32::MAX));
        let d = doubled.min(self.backoff_cap);
        d.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
    }

    async fn attempt(&self, key: &str, body: Bytes) -> Attempt {
        let sent = self
            .http
            .post(&self.url)
            .header("Idempotency-Key", key)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            Err(e) => return Attempt::Retry(describe(e), None),
        };
        let status = resp.status();
        if status.is_success() {
            return match resp.json::<DialedWire>().await {
                Ok(w) if !w.provider_call_id.is_empty() => Attempt::Done(Dialed {
                    provider_call_id: w.provider_call_id,
                }),
                Ok(_) => Attempt::Retry("answer without provider_call_id".into(), None),
                Err(e) => Attempt::Retry(describe(e), None),
            };
        }
        if status.is_server_error() {
            let after = retry_after(resp.headers());
            return Attempt::Retry(format!("HTTP {}", status.as_u16()), after);
        }
        let error = match resp.json::<ErrorWire>().await {
            // Bounded before redaction scans it; cut to size after.
            Ok(w) => w.error.chars().take(MAX_ERROR_CHARS * 8).collect(),
            Err(_) => status
                .canonical_reason()
                .unwrap_or("unexpected answer")
                .into(),
        };
        Attempt::Final(DialError::Rejected {
            status: status.as_u16(),
            error,
        })
    }
}

/// `Retry-After` in (possibly fractional) seconds; an HTTP date is not
/// read (neither carriers nor our adapter send one).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs: f64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

#[derive(Deserialize)]
struct DialedWire {
    provider_call_id: String,
}

#[derive(Deserialize)]
struct ErrorWire {
    error: String,
}

/// A transport error without its URL (which could hold userinfo), with its
/// causes. Transport errors never contain the request body.
pub(crate) fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
