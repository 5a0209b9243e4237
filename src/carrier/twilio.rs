//! Twilio's wire format: create a call (form POST to `Calls.json`), find a
//! call after a lost answer (list by To and From), read and verify status
//! callbacks (`X-Twilio-Signature`).
//!
//! Field names and rules follow Twilio's OpenAPI description of the 2010-04-01
//! API (`CreateCallRequest`); the part we use ships as test data in
//! `tests/data/twilio_api_v2010_calls.json` and the fake carrier checks every
//! request against it.

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha1::Sha1;

use super::outcome::{retry_after, transport, CarrierError};
use super::{CallStatus, Dial, Found};
use crate::secrets::PlainCredentials;

/// Statuses a callback is asked for: every one we map.
pub const STATUS_EVENTS: [&str; 4] = ["initiated", "ringing", "answered", "completed"];

/// The header Twilio signs callbacks with.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// Who a REST request acts for and as: the account SID (in the path) and
/// the Basic credentials, the API key pair when the tenant gave one, else
/// the account SID and auth token.
struct Account<'a> {
    sid: &'a str,
    user: &'a str,
    password: &'a str,
}

fn account(creds: &PlainCredentials) -> Result<Account<'_>, CarrierError> {
    let (Some(sid), Some(token)) = (creds.expose("account_sid"), creds.expose("auth_token")) else {
        return Err(CarrierError::Final {
            status: 400,
            error: "twilio credentials need account_sid and auth_token".into(),
        });
    };
    let (user, password) = match (creds.expose("api_key_sid"), creds.expose("api_key_secret")) {
        (Some(key), Some(secret)) => (key, secret),
        _ => (sid, token),
    };
    Ok(Account {
        sid,
        user,
        password,
    })
}

/// The error body Twilio answers with (`code` is its error number).
#[derive(Deserialize)]
struct ErrorBody {
    code: Option<u32>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct CallBody {
    sid: String,
    #[serde(default)]
    date_created: Option<String>,
}

#[derive(Deserialize)]
struct CallPage {
    calls: Vec<CallBody>,
}

/// What one Twilio error means. Numbers from Twilio's error dictionary.
fn classify(
    http: u16,
    code: Option<u32>,
    message: &str,
    headers: &reqwest::header::HeaderMap,
) -> CarrierError {
    let error = match code {
        Some(code) => format!("twilio {code}: {message}"),
        None => format!("twilio HTTP {http}: {message}"),
    };
    match (code, http) {
        // Too many requests / account concurrency: nothing was created.
        (Some(20429 | 10004), _) | (_, 429) => CarrierError::NotPlaced {
            retry_after: retry_after(headers),
            error,
        },
        (Some(21211), _) => CarrierError::Final {
            status: 400,
            error: format!("invalid To number ({error})"),
        },
        (Some(21212 | 21606), _) => CarrierError::Final {
            status: 400,
            error: format!("invalid or unowned From number ({error})"),
        },
        (Some(20003), _) | (_, 401 | 403) => CarrierError::Final {
            status: 401,
            error: format!("carrier authentication failed ({error})"),
        },
        (_, 500..) => CarrierError::Unknown { error },
        _ => CarrierError::Final { status: 422, error },
    }
}

async fn error_of(resp: reqwest::Response) -> CarrierError {
    let http = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let body: Option<ErrorBody> = serde_json::from_str(&text).ok();
    let (code, message) = match body {
        Some(b) => (b.code, b.message.unwrap_or_default()),
        None => (None, String::new()),
    };
    classify(http, code, &message, &headers)
}

/// `POST /2010-04-01/Accounts/{AccountSid}/Calls.json`; the new call's SID.
pub async fn create(
    http: &reqwest::Client,
    base: &str,
    creds: &PlainCredentials,
    dial: &Dial<'_>,
) -> Result<String, CarrierError> {
    let acct = account(creds)?;
    let callback = dial.callback_url("status");
    let timeout = dial.ring_timeout_s.to_string();
    let mut form: Vec<(&str, &str)> = vec![
        ("To", dial.to),
        ("From", dial.from),
        ("Twiml", dial.twiml),
        ("StatusCallback", &callback),
        ("StatusCallbackMethod", "POST"),
        ("Timeout", &timeout),
    ];
    form.extend(STATUS_EVENTS.iter().map(|e| ("StatusCallbackEvent", *e)));
    let resp = http
        .post(format!(
            "{base}/2010-04-01/Accounts/{}/Calls.json",
            acct.sid
        ))
        .basic_auth(acct.user, Some(acct.password))
        .form(&form)
        .send()
        .await
        .map_err(transport)?;
    if !resp.status().is_success() {
        return Err(error_of(resp).await);
    }
    match resp.json::<CallBody>().await {
        Ok(call) if !call.sid.is_empty() => Ok(call.sid),
        // A 2xx we cannot read: the call exists, its id unknown.
        _ => Err(CarrierError::Unknown {
            error: "twilio answered 2xx without a call sid".into(),
        }),
    }
}

/// Calls from `dial.from` to `dial.to` created at or after `since`, oldest
/// first (`GET Calls.json?To=&From=`, one page of 50 is plenty: a lost
/// answer is recent).
pub async fn find(
    http: &reqwest::Client,
    base: &str,
    creds: &PlainCredentials,
    dial: &Dial<'_>,
    since: DateTime<Utc>,
) -> Result<Vec<Found>, CarrierError> {
    let acct = account(creds)?;
    let resp = http
        .get(format!(
            "{base}/2010-04-01/Accounts/{}/Calls.json",
            acct.sid
        ))
        .basic_auth(acct.user, Some(acct.password))
        .query(&[("To", dial.to), ("From", dial.from), ("PageSize", "50")])
        .send()
        .await
        .map_err(|e| CarrierError::NotPlaced {
            retry_after: None,
            error: super::outcome::describe(e),
        })?;
    if !resp.status().is_success() {
        return Err(match error_of(resp).await {
            CarrierError::Final { status, error } => CarrierError::Final { status, error },
            other => CarrierError::NotPlaced {
                retry_after: None,
                error: other.message().to_owned(),
            },
        });
    }
    let page: CallPage = resp.json().await.map_err(|e| CarrierError::NotPlaced {
        retry_after: None,
        error: super::outcome::describe(e),
    })?;
    let mut found: Vec<Found> = page
        .calls
        .into_iter()
        .filter_map(|c| {
            let created = c
                .date_created
                .as_deref()
                .and_then(|d| DateTime::parse_from_rfc2822(d).ok())?
                .with_timezone(&Utc);
            (created >= since - super::CLOCK_SKEW).then_some(Found {
                carrier_call_id: c.sid,
                created,
            })
        })
        .collect();
    found.sort_by_key(|f| f.created);
    Ok(found)
}

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    // Names sorted, each distinct value once in sorted order, as Twilio's
    // own validators build it.
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key");
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    mac
}

/// `base64(HMAC-SHA1(auth_token, url + each param name and value, sorted))`.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let tag = mac(auth_token, url, params).finalize().into_bytes();
    base64::engine::general_purpose::STANDARD.encode(tag)
}

/// Whether `given` is Twilio's signature of this callback (the MAC compared
/// in constant time). Like Twilio's validators, the URL is tried as given,
/// without its port and with the scheme's default port, since proxies and
/// Twilio differ on whether `:443` is part of it.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], given: &str) -> bool {
    let Ok(tag) = base64::engine::general_purpose::STANDARD.decode(given.trim()) else {
        return false;
    };
    url_variants(url)
        .iter()
        .any(|u| mac(auth_token, u, params).verify_slice(&tag).is_ok())
}

fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return out;
    };
    let default = match scheme {
        "https" => "443",
        "http" => "80",
        _ => return out,
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once(':') {
        // With a port: try without it.
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
            out.push(format!("{scheme}://{host}{tail}"));
        }
        _ => out.push(format!("{scheme}://{authority}:{default}{tail}")),
    }
    out
}

fn field<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A status callback's form as Switchboard's status, `None` for statuses
/// that are not ours to report (queued, initiated).
pub fn status(params: &[(String, String)]) -> Result<Option<CallStatus>, &'static str> {
    let sid = field(params, "CallSid").ok_or("CallSid is missing")?;
    let raw = field(params, "CallStatus").ok_or("CallStatus is missing")?;
    let (status, ended) = match raw {
        "queued" | "initiated" => return Ok(None),
        "ringing" => ("ringing", false),
        "in-progress" => ("answered", false),
        "completed" => ("completed", true),
        "busy" => ("busy", true),
        "no-answer" => ("no_answer", true),
        "failed" => ("failed", true),
        "canceled" => ("canceled", true),
        _ => return Err("CallStatus is not a Twilio call status"),
    };
    let duration_s = if ended {
        Some(
            field(params, "CallDuration")
                .map(|d| d.parse::<u64>().map_err(|_| "CallDuration is not a number"))
                .transpose()?
                .unwrap_or(0),
        )
    } else {
        None
    };
    let timestamp = field(params, "Timestamp")
        .and_then(|t| DateTime::parse_from_rfc2822(t).ok())
        .map(|t| t.with_timezone(&Utc));
    Ok(Some(CallStatus {
        carrier_call_id: sid.to_owned(),
        status,
        duration_s,
        timestamp,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn signs_like_twilio() {
        // The vector of Twilio's own validator tests (twilio-python).
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let p = params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
            ("Caller", "+14158675309"),
        ]);
        assert_eq!(signature("12345", url, &p), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert!(verify("12345", url, &p, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert!(verify(
            "12345",
            with_port,
            &p,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(verify("12345", url, &p, "kvajT1Ptam85bY51eRf/AJRuM3w="));
        assert!(!verify("12346", url, &p, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        let repeated = params(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_eq!(
            signature("12345", url, &repeated),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
    }

    #[test]
    fn maps_statuses_and_duration() {
        let done = status(&params(&[
            ("CallSid", "CA1"),
            ("CallStatus", "completed"),
            ("CallDuration", "61"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((done.status, done.duration_s), ("completed", Some(61)));
        let up = status(&params(&[
            ("CallSid", "CA1"),
            ("CallStatus", "in-progress"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((up.status, up.duration_s), ("answered", None));
        let queued = status(&params(&[("CallSid", "CA1"), ("CallStatus", "queued")])).unwrap();
        assert!(queued.is_none());
        assert!(status(&params(&[("CallSid", "CA1"), ("CallStatus", "x")])).is_err());
        let busy = status(&params(&[("CallSid", "CA1"), ("CallStatus", "no-answer")]))
            .unwrap()
            .unwrap();
        assert_eq!((busy.status, busy.duration_s), ("no_answer", Some(0)));
    }

    #[test]
    fn classifies_the_errors_we_know() {
        let h = reqwest::header::HeaderMap::new();
        let is_final = |e: CarrierError| matches!(e, CarrierError::Final { .. });
        assert!(is_final(classify(400, Some(21211), "bad To", &h)));
        assert!(is_final(classify(400, Some(21606), "unowned", &h)));
        assert!(matches!(
            classify(401, Some(20003), "auth", &h),
            CarrierError::Final { status: 401, .. }
        ));
        let mut retry = reqwest::header::HeaderMap::new();
        retry.insert(reqwest::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(
            classify(429, Some(20429), "slow down", &retry),
            CarrierError::NotPlaced {
                retry_after: Some(std::time::Duration::from_secs(3)),
                error: "twilio 20429: slow down".into()
            }
        );
        assert!(matches!(
            classify(400, Some(10004), "concurrency", &h),
            CarrierError::NotPlaced { .. }
        ));
        assert!(matches!(
            classify(503, None, "", &h),
            CarrierError::Unknown { .. }
        ));
    }
}
