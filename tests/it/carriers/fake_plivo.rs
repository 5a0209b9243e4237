//! A fake Plivo, and in its Vobiz flavor a fake Vobiz: the Call API
//! (`/v1/Account/{auth_id}/Call/`, trailing slash required) checked against
//! Plivo's documented fields, and ring / answer / hangup callbacks shaped
//! as Plivo sends them and signed with signature V3 (the adapter's
//! `plivo::signature`, pinned by the unit tests to plivo-go's vectors).
//!
//! Plivo publishes no machine-readable description of this API; the field
//! rules below are those of its "Make a call" reference: `from`, `to`,
//! `answer_url` required; the `*_method` fields GET or POST; `ring_timeout`
//! an integer; numbers without `+`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use chrono::Utc;
use serde_json::{json, Value};
use switchboard::carrier::plivo::{self, Flavor};
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};

const REQUIRED: [&str; 3] = ["from", "to", "answer_url"];
const KNOWN: [&str; 14] = [
    "from",
    "to",
    "answer_url",
    "answer_method",
    "ring_url",
    "ring_method",
    "hangup_url",
    "hangup_method",
    "fallback_url",
    "fallback_method",
    "caller_name",
    "ring_timeout",
    "time_limit",
    "machine_detection",
];

#[derive(Debug, Clone)]
pub enum Mode {
    Ok,
    /// An error answer `{api_id, error}` with this HTTP status.
    Error {
        http: u16,
        retry_after: Option<u32>,
    },
    /// Creates the call (it shows as live), then never answers.
    Hold,
}

#[derive(Debug, Clone)]
pub struct Call {
    pub uuid: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone)]
pub struct Sent {
    pub event: String,
    pub answered: u16,
    pub content_type: String,
}

struct Inner {
    auth_id: String,
    auth_token: String,
    mode: Mode,
    posts: Vec<Value>,
    calls: Vec<Call>,
    violations: Vec<String>,
    sent: Vec<Sent>,
}

#[derive(Clone)]
pub struct FakePlivo {
    /// The base URL to configure (`--plivo-url` or `--vobiz-url`).
    pub url: String,
    flavor: Flavor,
    inner: Arc<Mutex<Inner>>,
    http: reqwest::Client,
    _stop: Arc<DropGuard>,
}

impl FakePlivo {
    pub async fn start(flavor: Flavor, auth_id: &str, auth_token: &str) -> FakePlivo {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Vobiz's API lives under its own base path.
        let prefix = match flavor {
            Flavor::Plivo => "",
            Flavor::Vobiz => "/api",
        };
        let stop = CancellationToken::new();
        let fake = FakePlivo {
            url: format!("http://{addr}{prefix}"),
            flavor,
            inner: Arc::new(Mutex::new(Inner {
                auth_id: auth_id.to_owned(),
                auth_token: auth_token.to_owned(),
                mode: Mode::Ok,
                posts: Vec::new(),
                calls: Vec::new(),
                violations: Vec::new(),
                sent: Vec::new(),
            })),
            http: reqwest::Client::new(),
            _stop: Arc::new(stop.clone().drop_guard()),
        };
        let app = Router::new()
            .route(
                &format!("{prefix}/v1/Account/{{account}}/Call/"),
                get(list).post(create),
            )
            .route(
                &format!("{prefix}/v1/Account/{{account}}/Call/{{uuid}}/"),
                get(detail),
            )
            // Strict trailing slashes: without one there is no such route.
            .fallback(|| async { (StatusCode::NOT_FOUND, "not found") })
            .with_state(fake.clone());
        let stopped = stop.cancelled_owned();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
        });
        fake
    }

    pub fn set_mode(&self, mode: Mode) {
        self.inner.lock().unwrap().mode = mode;
    }

    pub fn posts(&self) -> Vec<Value> {
        self.inner.lock().unwrap().posts.clone()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().unwrap().calls.clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.inner.lock().unwrap().violations.clone()
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.inner.lock().unwrap().sent.clone()
    }

    fn violate(&self, why: String) {
        self.inner.lock().unwrap().violations.push(why);
    }

    /// Plivo: HTTP Basic with the auth id and token. Vobiz: its own
    /// `X-Auth-ID` and `X-Auth-Token` headers, and no Basic.
    fn authorized(&self, account: &str, headers: &HeaderMap) -> bool {
        let inner = self.inner.lock().unwrap();
        let read = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let ok = match self.flavor {
            Flavor::Plivo => {
                let want = base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", inner.auth_id, inner.auth_token));
                read("authorization") == Some(&format!("Basic {want}"))
            }
            Flavor::Vobiz => {
                read("x-auth-id") == Some(&inner.auth_id)
                    && read("x-auth-token") == Some(&inner.auth_token)
                    && read("authorization").is_none()
            }
        };
        ok && account == inner.auth_id
    }

    fn check_create(&self, body: &Value) {
        let Some(fields) = body.as_object() else {
            self.violate("MakeCall: the body is not a JSON object".into());
            return;
        };
        for name in REQUIRED {
            if !fields.contains_key(name) {
                self.violate(format!("MakeCall: required {name} is missing"));
            }
        }
        for (name, value) in fields {
            if !KNOWN.contains(&name.as_str()) {
                self.violate(format!("MakeCall: {name} is not a Make-a-call field"));
            }
            let ok = match name.as_str() {
                "from" | "to" => value
                    .as_str()
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
                n if n.ends_with("_method") => value == "GET" || value == "POST",
                n if n.ends_with("_url") => value
                    .as_str()
                    .is_some_and(|u| reqwest::Url::parse(u).is_ok()),
                "ring_timeout" | "time_limit" => value.is_u64(),
                _ => true,
            };
            if !ok {
                self.violate(format!("MakeCall: {name}={value} is not valid"));
            }
        }
    }

    /// Ring, answer, hangup: form POSTs to the URLs of the create request,
    /// each signed V3 under a fresh nonce.
    async fn call_progress(self, call: Call, body: Value) {
        let token = self.inner.lock().unwrap().auth_token.clone();
        let (sig_header, nonce_header) = self.flavor.signature_headers();
        let start = Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
        let steps = [
            ("ring_url", "ringing", "Ring"),
            ("answer_url", "in-progress", "StartApp"),
            ("hangup_url", "completed", "Hangup"),
        ];
        for (url_field, status, event) in steps {
            tokio::time::sleep(Duration::from_millis(30)).await;
            let Some(url) = body[url_field].as_str() else {
                continue;
            };
            let mut params: Vec<(String, String)> = [
                ("CallUUID", call.uuid.as_str()),
                ("RequestUUID", &call.uuid),
                ("ALegUUID", &call.uuid),
                ("ALegRequestUUID", &call.uuid),
                ("CallStatus", status),
                ("Direction", "outbound"),
                ("Event", event),
                ("From", &call.from),
                ("To", &call.to),
                ("SessionStart", &start),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
            if event == "Hangup" {
                let end = Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
                for (k, v) in [
                    ("Duration", "42"),
                    ("BillDuration", "60"),
                    ("HangupCause", "NORMAL_CLEARING"),
                    ("EndTime", &end),
                    ("StartTime", &start),
                ] {
                    params.push((k.to_owned(), v.to_owned()));
                }
            }
            let nonce = uuid::Uuid::new_v4().simple().to_string();
            let signature = plivo::signature(&token, false, url, &params, &nonce);
            let resp = self
                .http
                .post(url)
                .header(sig_header, signature)
                .header(nonce_header, nonce)
                .form(&params)
                .send()
                .await;
            let (answered, content_type) = match resp {
                Ok(r) => (
                    r.status().as_u16(),
                    r.headers()
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned(),
                ),
                Err(_) => (0, String::new()),
            };
            self.inner.lock().unwrap().sent.push(Sent {
                event: event.to_owned(),
                answered,
                content_type,
            });
        }
    }
}

fn plivo_error(http: u16, error: &str) -> Response {
    let body = json!({"api_id": uuid::Uuid::new_v4(), "error": error});
    (StatusCode::from_u16(http).unwrap(), Json(body)).into_response()
}

async fn create(
    State(fake): State<FakePlivo>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !fake.authorized(&account, &headers) {
        return plivo_error(401, "authentication failed");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        fake.violate("MakeCall: the body is not JSON".into());
        return plivo_error(400, "invalid JSON");
    };
    fake.check_create(&body);
    let mode = {
        let mut inner = fake.inner.lock().unwrap();
        inner.posts.push(body.clone());
        inner.mode.clone()
    };
    let call = Call {
        uuid: uuid::Uuid::new_v4().to_string(),
        from: body["from"].as_str().unwrap_or_default().to_owned(),
        to: body["to"].as_str().unwrap_or_default().to_owned(),
    };
    match mode {
        Mode::Error { http, retry_after } => {
            let mut resp = plivo_error(http, "refused by the fake");
            if let Some(secs) = retry_after {
                resp.headers_mut()
                    .insert("retry-after", secs.to_string().parse().unwrap());
            }
            resp
        }
        Mode::Hold => {
            fake.inner.lock().unwrap().calls.push(call);
            tokio::time::sleep(Duration::from_secs(120)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Mode::Ok => {
            fake.inner.lock().unwrap().calls.push(call.clone());
            let answer = json!({
                "api_id": uuid::Uuid::new_v4(), "message": "call fired",
                "request_uuid": call.uuid,
            });
            tokio::spawn(fake.clone().call_progress(call, body));
            (StatusCode::CREATED, Json(answer)).into_response()
        }
    }
}

fn query_of(raw: Option<String>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn get_field<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `GET …/Call/?status=live|queued&from_number&to_number`: the ids of live
/// calls; without `status`, finished-call records (none in this fake: a
/// held call stays live).
async fn list(
    State(fake): State<FakePlivo>,
    Path(account): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !fake.authorized(&account, &headers) {
        return plivo_error(401, "authentication failed");
    }
    let q = query_of(raw);
    let matches = |c: &Call| {
        get_field(&q, "from_number").is_none_or(|f| f == c.from)
            && get_field(&q, "to_number").is_none_or(|t| t == c.to)
    };
    let calls = fake.calls();
    match get_field(&q, "status") {
        Some("live") => {
            let ids: Vec<&str> = calls
                .iter()
                .filter(|c| matches(c))
                .map(|c| c.uuid.as_str())
                .collect();
            Json(json!({"api_id": uuid::Uuid::new_v4(), "calls": ids})).into_response()
        }
        Some("queued") => Json(json!({"api_id": uuid::Uuid::new_v4(), "calls": []})).into_response(),
        Some(other) => plivo_error(400, &format!("unknown status {other}")),
        None => Json(json!({"api_id": uuid::Uuid::new_v4(), "meta": {"limit": 20, "offset": 0, "total_count": 0}, "objects": []}))
            .into_response(),
    }
}

/// `GET …/Call/{uuid}/?status=live`: one live call.
async fn detail(
    State(fake): State<FakePlivo>,
    Path((account, uuid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !fake.authorized(&account, &headers) {
        return plivo_error(401, "authentication failed");
    }
    match fake.calls().into_iter().find(|c| c.uuid == uuid) {
        Some(c) => Json(json!({
            "api_id": uuid::Uuid::new_v4(), "call_uuid": c.uuid, "request_uuid": c.uuid,
            "call_status": "in-progress", "direction": "outbound",
            "from": c.from, "to": c.to,
            "session_start": Utc::now().format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        }))
        .into_response(),
        None => plivo_error(404, "call not found"),
    }
}
