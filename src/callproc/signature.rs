//! Status callback signatures (SPEC §7).
//!
//! `Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`
//! keyed with `SWITCHBOARD_CALLBACK_SECRET`. The timestamp is inside the MAC,
//! so a captured callback cannot be replayed with a fresh `t`; the age check
//! bounds how long a captured one stays replayable at all. MACs are compared
//! in constant time (`Mac::verify_slice`) so a forger learns nothing from
//! response timing. Several `v1=` entries are accepted (any may match), which
//! lets a sender sign with an old and a new secret during a rotation.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Switchboard-Signature";

/// How far from now a signature's timestamp may be, either way (5 minutes).
pub const DEFAULT_MAX_AGE_S: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// Why a callback's signature was refused. Every variant means 401; the
/// messages are fixed and never echo the header or body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing signature")]
    Missing,
    #[error("malformed signature: {0}")]
    Malformed(&'static str),
    #[error("signature does not match")]
    Mismatch,
    #[error("signature is too old")]
    TooOld,
    #[error("signature is from the future")]
    InFuture,
}

fn mac(secret: &[u8], t: i64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value signing `body` at unix time `t`.
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    let tag = mac(secret, t, body).finalize().into_bytes();
    format!("t={t},v1={}", hex::encode(tag))
}

/// Checks a header value against `body`: well formed, a matching MAC, and a
/// timestamp within `max_age_s` of `now_unix` (use `DEFAULT_MAX_AGE_S`).
pub fn verify(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now_unix: i64,
    max_age_s: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed("expected key=value"))?;
        match k {
            "t" if t.is_none() => {
                let secs = v
                    .parse::<i64>()
                    .map_err(|_| SignatureError::Malformed("bad timestamp"))?;
                t = Some(secs);
            }
            "t" => return Err(SignatureError::Malformed("repeated timestamp")),
            "v1" => tags.push(hex::decode(v).map_err(|_| SignatureError::Malformed("bad hex"))?),
            // Unknown schemes are ignored, so a v2 can be added alongside.
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed("no timestamp"))?;
    if tags.is_empty() {
        return Err(SignatureError::Malformed("no v1 signature"));
    }
    let expected = mac(secret, t, body);
    if !tags
        .iter()
        .any(|tag| expected.clone().verify_slice(tag).is_ok())
    {
        return Err(SignatureError::Mismatch);
    }
    if now_unix.saturating_sub(t) > max_age_s {
        return Err(SignatureError::TooOld);
    }
    if t.saturating_sub(now_unix) > max_age_s {
        return Err(SignatureError::InFuture);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"callback-secret";
    const BODY: &[u8] = br#"{"call_id":"c1","status":"ringing"}"#;
    const NOW: i64 = 1_700_000_000;

    fn check(header: Option<&str>, now: i64) -> Result<(), SignatureError> {
        verify(SECRET, header, BODY, now, DEFAULT_MAX_AGE_S)
    }

    #[test]
    fn signature_round_trips() {
        let header = sign(SECRET, NOW, BODY);
        assert!(header.starts_with(&format!("t={NOW},v1=")));
        assert_eq!(header.len(), format!("t={NOW},v1=").len() + 64);
        assert_eq!(check(Some(&header), NOW), Ok(()));
        assert_eq!(check(Some(&header), NOW + 300), Ok(()));
        assert_eq!(check(Some(&header), NOW - 300), Ok(()));
    }

    #[test]
    fn signature_matches_a_known_vector() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key
        let header = sign(b"key", NOW, br#"{"a":1}"#);
        let expected = "a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03";
        assert_eq!(header, format!("t={NOW},v1={expected}"));
    }

    #[test]
    fn signature_refuses_missing_and_malformed() {
        assert_eq!(check(None, NOW), Err(SignatureError::Missing));
        for bad in [
            "",
            "t=1",
            "v1=00",
            "t=x,v1=00",
            "t=1,v1=zz",
            "garbage",
            "t=1,t=2,v1=00",
        ] {
            assert!(
                matches!(check(Some(bad), NOW), Err(SignatureError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn signature_refuses_wrong_mac() {
        let other = sign(b"other-secret", NOW, BODY);
        assert_eq!(check(Some(&other), NOW), Err(SignatureError::Mismatch));
        let header = sign(SECRET, NOW, BODY);
        let tampered = verify(SECRET, Some(&header), b"{}", NOW, DEFAULT_MAX_AGE_S);
        assert_eq!(tampered, Err(SignatureError::Mismatch));
        // The timestamp is signed: moving it breaks the MAC.
        let moved = header.replacen(&NOW.to_string(), &(NOW + 1).to_string(), 1);
        assert_eq!(check(Some(&moved), NOW), Err(SignatureError::Mismatch));
        let truncated = &header[..header.len() - 2];
        assert_eq!(check(Some(truncated), NOW), Err(SignatureError::Mismatch));
    }

    #[test]
    fn signature_refuses_old_and_future() {
        let header = sign(SECRET, NOW, BODY);
        assert_eq!(check(Some(&header), NOW + 301), Err(SignatureError::TooOld));
        assert_eq!(
            check(Some(&header), NOW - 301),
            Err(SignatureError::InFuture)
        );
    }

    #[test]
    fn signature_accepts_any_of_several_v1() {
        let good = sign(SECRET, NOW, BODY);
        let tag = good.split_once(",v1=").unwrap().1;
        let header = format!("t={NOW},v1={},v1={tag}", "00".repeat(32));
        assert_eq!(check(Some(&header), NOW), Ok(()));
    }
}
