//! The status callback a Call Processor sends (SPEC §7): its body and one
//! signed POST of it. The simulator and the carrier adapter both send
//! these, each with its own retry policy.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::signature::{sign, SIGNATURE_HEADER};

/// `{call_id, provider_call_id, status, timestamp, duration_s?}`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport<'a> {
    pub call_id: &'a str,
    pub provider_call_id: &'a str,
    pub status: &'a str,
    pub timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<u64>,
}

impl StatusReport<'_> {
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a status always serializes")
    }
}

/// RFC 3339 with milliseconds, as the callbacks carry it.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One POST of `body` to `url`, signed now. `Err` says why (no URL in it).
pub async fn post_signed(
    http: &reqwest::Client,
    url: &str,
    secret: &[u8],
    body: &[u8],
) -> Result<(), String> {
    let signature = sign(secret, Utc::now().timestamp(), body);
    let sent = http
        .post(url)
        .header(SIGNATURE_HEADER, signature)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_vec())
        .send()
        .await;
    match sent {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(format!("HTTP {}", resp.status().as_u16())),
        Err(e) => Err(e.without_url().to_string()),
    }
}
