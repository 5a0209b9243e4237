//! Plivo's wire format, and Vobiz's (a Plivo-compatible API at its own base
//! path with header authentication): create a call (JSON POST to
//! `/v1/Account/{auth_id}/Call/`, trailing slash and all), find a call after
//! a lost answer (live, queued and finished calls From → To), read and
//! verify ring / answer / hangup callbacks (signature V3).

use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use events::ProviderKind;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;

use super::outcome::{describe, retry_after, transport, CarrierError};
use super::{CallStatus, Dial, Found};
use crate::secrets::PlainCredentials;

/// Which of the two dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Plivo,
    Vobiz,
}

impl Flavor {
    pub fn of(kind: ProviderKind) -> Self {
        match kind {
            ProviderKind::Vobiz => Flavor::Vobiz,
            _ => Flavor::Plivo,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Flavor::Plivo => "plivo",
            Flavor::Vobiz => "vobiz",
        }
    }

    /// The signature and nonce headers of its callbacks.
    pub fn signature_headers(self) -> (&'static str, &'static str) {
        match self {
            Flavor::Plivo => ("x-plivo-signature-v3", "x-plivo-signature-v3-nonce"),
            Flavor::Vobiz => ("x-vobiz-signature-v3", "x-vobiz-signature-v3-nonce"),
        }
    }

    /// Plivo takes HTTP Basic; Vobiz its own two headers.
    fn authorize(
        self,
        req: reqwest::RequestBuilder,
        id: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        match self {
            Flavor::Plivo => req.basic_auth(id, Some(token)),
            Flavor::Vobiz => req.header("X-Auth-ID", id).header("X-Auth-Token", token),
        }
    }
}

/// The callbacks a call gets, one URL each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Ring,
    Answer,
    Hangup,
}

impl Event {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ring" => Some(Event::Ring),
            "answer" => Some(Event::Answer),
            "hangup" => Some(Event::Hangup),
            _ => None,
        }
    }
}

fn account(flavor: Flavor, creds: &PlainCredentials) -> Result<(&str, &str), CarrierError> {
    match (creds.expose("auth_id"), creds.expose("auth_token")) {
        (Some(id), Some(token)) => Ok((id, token)),
        _ => Err(CarrierError::Final {
            status: 400,
            error: format!("{} credentials need auth_id and auth_token", flavor.name()),
        }),
    }
}

/// Plivo numbers are digits with the country code, no `+`.
fn digits(e164: &str) -> &str {
    e164.trim_start_matches('+')
}

fn calls_url(base: &str, id: &str) -> String {
    // Both APIs are strict about the trailing slash.
    format!("{base}/v1/Account/{id}/Call/")
}

/// What one error answer means. Plivo answers `{api_id, error}`, `error`
/// a string or an object.
fn classify(
    flavor: Flavor,
    http: u16,
    body: &str,
    headers: &reqwest::header::HeaderMap,
) -> CarrierError {
    let message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").or_else(|| v.get("message")).cloned())
        .map(|e| match e {
            Value::String(s) => s,
            other => other.to_string(),
        })
        .unwrap_or_default();
    let error = format!("{} HTTP {http}: {message}", flavor.name());
    match http {
        429 => CarrierError::NotPlaced {
            retry_after: retry_after(headers),
            error,
        },
        401 | 403 => CarrierError::Final {
            status: 401,
            error: format!("carrier authentication failed ({error})"),
        },
        400 => CarrierError::Final { status: 400, error },
        500.. => CarrierError::Unknown { error },
        _ => CarrierError::Final { status: 422, error },
    }
}

async fn error_of(flavor: Flavor, resp: reqwest::Response) -> CarrierError {
    let http = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    classify(flavor, http, &text, &headers)
}

#[derive(Deserialize)]
struct Fired {
    /// A string for one destination (a list only for bulk calls, which we
    /// never make).
    request_uuid: Value,
}

/// `POST /v1/Account/{auth_id}/Call/`; the `request_uuid`.
pub async fn create(
    http: &reqwest::Client,
    flavor: Flavor,
    base: &str,
    creds: &PlainCredentials,
    dial: &Dial<'_>,
) -> Result<String, CarrierError> {
    let (id, token) = account(flavor, creds)?;
    let body = json!({
        "from": digits(dial.from),
        "to": digits(dial.to),
        "answer_url": dial.callback_url("answer"),
        "answer_method": "POST",
        "ring_url": dial.callback_url("ring"),
        "ring_method": "POST",
        "hangup_url": dial.callback_url("hangup"),
        "hangup_method": "POST",
        "ring_timeout": dial.ring_timeout_s,
    });
    let req = flavor
        .authorize(http.post(calls_url(base, id)), id, token)
        .json(&body);
    let resp = req.send().await.map_err(transport)?;
    if !resp.status().is_success() {
        return Err(error_of(flavor, resp).await);
    }
    let fired: Option<Fired> = resp.json().await.ok();
    match fired.map(|f| f.request_uuid) {
        Some(Value::String(uuid)) if !uuid.is_empty() => Ok(uuid),
        Some(Value::Array(list)) if list.len() == 1 && list[0].is_string() => {
            Ok(list[0].as_str().unwrap_or_default().to_owned())
        }
        _ => Err(CarrierError::Unknown {
            error: format!("{} answered 2xx without a request_uuid", flavor.name()),
        }),
    }
}

#[derive(Deserialize)]
struct LiveIds {
    #[serde(default)]
    calls: Vec<String>,
}

#[derive(Deserialize)]
struct LiveCall {
    #[serde(default)]
    request_uuid: Option<String>,
    call_uuid: String,
    #[serde(default)]
    session_start: Option<String>,
}

#[derive(Deserialize)]
struct Records {
    #[serde(default)]
    objects: Vec<Record>,
}

#[derive(Deserialize)]
struct Record {
    call_uuid: String,
    #[serde(default)]
    initiation_time: Option<String>,
}

/// Plivo's times: `2017-05-22 13:17:49.050872` (UTC) or with an offset
/// (`2015-07-26 15:45:02+05:30`).
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z")
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
}

/// A listed call counts unless its time shows it is older than `since`:
/// an unreadable time keeps it, since adopting too eagerly costs a wrong
/// timeline, posting again could cost a second call.
fn recent(time: Option<&str>, since: DateTime<Utc>) -> (bool, DateTime<Utc>) {
    match time.and_then(parse_time) {
        Some(t) => (t >= since - super::CLOCK_SKEW, t),
        None => (true, since),
    }
}

struct Lister<'a> {
    http: &'a reqwest::Client,
    flavor: Flavor,
    url: String,
    id: &'a str,
    token: &'a str,
}

impl Lister<'_> {
    async fn get<T: for<'de> Deserialize<'de>>(
        &self,
        url: &str,
        query: &[(&str, &str)],
    ) -> Result<T, CarrierError> {
        let asked = |e: reqwest::Error| CarrierError::NotPlaced {
            retry_after: None,
            error: describe(e),
        };
        let req = self
            .flavor
            .authorize(self.http.get(url), self.id, self.token)
            .query(query);
        let resp = req.send().await.map_err(asked)?;
        if !resp.status().is_success() {
            return Err(match error_of(self.flavor, resp).await {
                CarrierError::Final { status, error } => CarrierError::Final { status, error },
                other => CarrierError::NotPlaced {
                    retry_after: None,
                    error: other.message().to_owned(),
                },
            });
        }
        resp.json().await.map_err(asked)
    }
}

/// Calls From → To since `since`, oldest first: queued and live calls (ids,
/// then each one's details for its request_uuid), then finished ones.
pub async fn find(
    http: &reqwest::Client,
    flavor: Flavor,
    base: &str,
    creds: &PlainCredentials,
    dial: &Dial<'_>,
    since: DateTime<Utc>,
) -> Result<Vec<Found>, CarrierError> {
    let (id, token) = account(flavor, creds)?;
    let lister = Lister {
        http,
        flavor,
        url: calls_url(base, id),
        id,
        token,
    };
    let (from, to) = (digits(dial.from), digits(dial.to));
    let mut found = Vec::new();
    for status in ["queued", "live"] {
        let query = [("status", status), ("from_number", from), ("to_number", to)];
        let ids: LiveIds = lister.get(&lister.url, &query).await?;
        for call in ids.calls {
            let url = format!("{}{call}/", lister.url);
            let live: LiveCall = lister.get(&url, &[("status", status)]).await?;
            let (keep, created) = recent(live.session_start.as_deref(), since);
            if keep {
                found.push(Found {
                    carrier_call_id: live.request_uuid.unwrap_or(live.call_uuid),
                    created,
                });
            }
        }
    }
    let after = (since - super::CLOCK_SKEW)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let query = [
        ("from_number", from),
        ("to_number", to),
        ("end_time__gte", after.as_str()),
        ("limit", "20"),
    ];
    let records: Records = lister.get(&lister.url, &query).await?;
    for record in records.objects {
        let (keep, created) = recent(record.initiation_time.as_deref(), since);
        // A single-destination call's request_uuid is its call_uuid.
        if keep && !found.iter().any(|f| f.carrier_call_id == record.call_uuid) {
            found.push(Found {
                carrier_call_id: record.call_uuid,
                created,
            });
        }
    }
    found.sort_by_key(|f| f.created);
    Ok(found)
}

/// The string signature V3 covers, before `.nonce`: the URL without its
/// query; then for a GET `?` and every parameter (query and given) as
/// sorted `k=v&…`; for a POST `?`, the sorted query as `k=v&…`, a `.` if
/// there was a query and there are parameters, and the sorted parameters as
/// `kv…`.
pub fn base_string(get: bool, url: &str, params: &[(String, String)]) -> String {
    let (bare, query) = match url.split_once('?') {
        Some((bare, query)) => (
            bare,
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        ),
        None => (url, Vec::<(String, String)>::new()),
    };
    let joined = |mut pairs: Vec<(String, String)>| {
        pairs.sort();
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    let mut out = bare.to_owned();
    if get {
        let mut all = query;
        all.extend(params.iter().cloned());
        if !all.is_empty() {
            out.push('?');
            out.push_str(&joined(all));
        }
        return out;
    }
    let had_query = !query.is_empty();
    if had_query || !params.is_empty() {
        out.push('?');
        out.push_str(&joined(query));
    }
    if had_query && !params.is_empty() {
        out.push('.');
    }
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    for (k, v) in sorted {
        out.push_str(k);
        out.push_str(v);
    }
    out
}

fn mac(token: &str, base: &str, nonce: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("HMAC takes any key");
    mac.update(base.as_bytes());
    mac.update(b".");
    mac.update(nonce.as_bytes());
    mac
}

/// `base64(HMAC-SHA256(auth_token, base_string + "." + nonce))`.
pub fn signature(
    token: &str,
    get: bool,
    url: &str,
    params: &[(String, String)],
    nonce: &str,
) -> String {
    let tag = mac(token, &base_string(get, url, params), nonce)
        .finalize()
        .into_bytes();
    base64::engine::general_purpose::STANDARD.encode(tag)
}

/// Whether any signature in the header (a comma-separated list: one per
/// active token) is this callback's, compared in constant time.
pub fn verify_v3(
    token: &str,
    get: bool,
    url: &str,
    params: &[(String, String)],
    nonce: &str,
    header: &str,
) -> bool {
    let base = base_string(get, url, params);
    header.split(',').any(|given| {
        base64::engine::general_purpose::STANDARD
            .decode(given.trim())
            .is_ok_and(|tag| mac(token, &base, nonce).verify_slice(&tag).is_ok())
    })
}

/// Verifies a callback's V3 signature headers for `flavor`.
pub fn verify(
    flavor: Flavor,
    token: &str,
    get: bool,
    url: &str,
    params: &[(String, String)],
    headers: &axum::http::HeaderMap,
) -> bool {
    let (sig, nonce) = flavor.signature_headers();
    let read = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match (read(sig), read(nonce)) {
        (Some(sig), Some(nonce)) => verify_v3(token, get, url, params, nonce, sig),
        _ => false,
    }
}

fn field<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// A callback as Switchboard's status; `None` when there is nothing to say
/// (a hangup of an unknown kind is reported failed, never dropped).
pub fn status(
    event: Event,
    params: &[(String, String)],
) -> Result<Option<CallStatus>, &'static str> {
    let id = field(params, "RequestUUID")
        .or_else(|| field(params, "ALegRequestUUID"))
        .or_else(|| field(params, "CallUUID"))
        .ok_or("RequestUUID or CallUUID is missing")?;
    let (status, duration_s) = match event {
        Event::Ring => ("ringing", None),
        Event::Answer => ("answered", None),
        Event::Hangup => {
            let status = match field(params, "CallStatus").unwrap_or("completed") {
                "completed" => "completed",
                "busy" => "busy",
                "no-answer" | "timeout" => "no_answer",
                "cancel" | "canceled" => "canceled",
                _ => "failed",
            };
            let duration = field(params, "Duration")
                .map(|d| d.parse::<u64>().map_err(|_| "Duration is not a number"))
                .transpose()?
                .unwrap_or(0);
            (
                status,
                Some(if status == "completed" { duration } else { 0 }),
            )
        }
    };
    let timestamp = match event {
        Event::Hangup => field(params, "EndTime"),
        Event::Answer => field(params, "AnswerTime"),
        Event::Ring => field(params, "StartTime"),
    }
    .and_then(parse_time);
    Ok(Some(CallStatus {
        carrier_call_id: id.to_owned(),
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

    /// The vectors of Plivo's own SDK tests (plivo-go utils_test.go).
    #[test]
    fn signs_like_plivo() {
        let nonce = "31627761595286130198";
        let token = "Y2Q2ZDgxZmY5YWRiOTI5YmQ1Njg0MTAxZWIyOTc4";
        let p = params(&[
            ("Direction", "outbound"),
            ("From", "19792014278"),
            ("ALegUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
            ("CallStatus", "in-progress"),
            ("BillRate", "0.002"),
            ("ParentAuthID", "MANWVLYTK4ZWU1YTY4QA"),
            (
                "To",
                "sip:PlivoSignature382029104058171078704104@phone-qa.voice.plivodev.com",
            ),
            ("ALegRequestUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
            ("CallUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
            ("RequestUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
            (
                "SIP-H-To",
                "<sip:PlivoSignature382029104058171078704104@52.9.11.55;transport=udp>;tag=1",
            ),
            ("SessionStart", "2020-04-08 11:34:33.238707"),
            ("Event", "StartApp"),
        ]);
        let with_query =
            "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml/?a=b&c=d";
        let bare = "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml";
        let cases = [
            (
                with_query,
                false,
                "k7Pusd4OxCIjR5IfA9iedDNu/h/gbdYqdzG/MiYtd1c=",
            ),
            (
                with_query,
                true,
                "UBq8jAtd32wR8EK9VgxbBn4n5rpI/l1H9iN4WfSEHFQ=",
            ),
            (bare, false, "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0="),
            (bare, true, "i/MQsaQSAd6fiKhOh2qeeeLHZ9faldADSb3/7+Akfbc="),
        ];
        for (url, get, expected) in cases {
            assert_eq!(
                signature(token, get, url, &p, nonce),
                expected,
                "{url} get={get}"
            );
            let header = format!("bm90IGl0, {expected}");
            assert!(verify_v3(token, get, url, &p, nonce, &header));
            assert!(!verify_v3(token, get, url, &p, "1", expected));
        }
    }

    #[test]
    fn maps_hangups() {
        let hang = |s: &str, d: &str| {
            status(
                Event::Hangup,
                &params(&[("RequestUUID", "r1"), ("CallStatus", s), ("Duration", d)]),
            )
            .unwrap()
            .unwrap()
        };
        assert_eq!(hang("completed", "61").duration_s, Some(61));
        assert_eq!(hang("timeout", "0").status, "no_answer");
        assert_eq!(hang("busy", "3").duration_s, Some(0));
        assert_eq!(hang("cancel", "0").status, "canceled");
        let ring = status(Event::Ring, &params(&[("CallUUID", "c1")]))
            .unwrap()
            .unwrap();
        assert_eq!(
            (ring.status, ring.carrier_call_id.as_str()),
            ("ringing", "c1")
        );
        assert!(status(Event::Ring, &params(&[])).is_err());
    }

    #[test]
    fn reads_plivo_times() {
        assert!(parse_time("2017-05-22 13:17:49.050872").is_some());
        let t = parse_time("2015-07-26 15:45:02+05:30").unwrap();
        assert_eq!(t.to_rfc3339(), "2015-07-26T10:15:02+00:00");
    }
}
