//! A fake Twilio: `Calls.json` create and list, checked against the part of
//! Twilio's OpenAPI description we ship (`tests/data/twilio_api_v2010_calls.json`),
//! and status callbacks shaped and signed as Twilio sends them.
//!
//! Every request that breaks a rule of the description is kept as a
//! violation; tests assert there are none. The signature is made with the
//! adapter's `twilio::signature`, which the unit tests pin to Twilio's own
//! published vectors, so the fake signs exactly as Twilio does.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use chrono::Utc;
use serde_json::{json, Value};
use switchboard::carrier::twilio;
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};

/// The published description, as shipped test data.
const OAS: &str = include_str!("../../data/twilio_api_v2010_calls.json");

/// How the fake answers the next create requests.
#[derive(Debug, Clone)]
pub enum Mode {
    /// 201 with the new call, then its status callbacks.
    Ok,
    /// A Twilio error body `{code, message, status}` with this HTTP status.
    Error {
        http: u16,
        code: u32,
        retry_after: Option<u32>,
    },
    /// Creates the call, then never answers (the adapter's request times
    /// out or the adapter dies): the answer is lost, the call exists.
    Hold,
    /// Never answers and creates nothing: the request was lost.
    Lose,
}

/// One call the fake created.
#[derive(Debug, Clone)]
pub struct Call {
    pub sid: String,
    pub to: String,
    pub from: String,
    pub created: chrono::DateTime<Utc>,
}

/// One status callback sent: Twilio's status, and the adapter's answer.
#[derive(Debug, Clone)]
pub struct Sent {
    pub status: String,
    pub answered: u16,
}

struct Inner {
    account_sid: String,
    auth_token: String,
    /// The Basic credentials requests must carry: the account SID and auth
    /// token, or an API key pair.
    basic: (String, String),
    mode: Mode,
    /// Every create request's form, in arrival order.
    posts: Vec<Vec<(String, String)>>,
    lists: usize,
    calls: Vec<Call>,
    violations: Vec<String>,
    sent: Vec<Sent>,
    call_duration_s: u64,
}

#[derive(Clone)]
pub struct FakeTwilio {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    oas: Arc<Value>,
    http: reqwest::Client,
    _stop: Arc<DropGuard>,
}

impl FakeTwilio {
    pub async fn start(account_sid: &str, auth_token: &str) -> FakeTwilio {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let fake = FakeTwilio {
            url,
            inner: Arc::new(Mutex::new(Inner {
                account_sid: account_sid.to_owned(),
                auth_token: auth_token.to_owned(),
                basic: (account_sid.to_owned(), auth_token.to_owned()),
                mode: Mode::Ok,
                posts: Vec::new(),
                lists: 0,
                calls: Vec::new(),
                violations: Vec::new(),
                sent: Vec::new(),
                call_duration_s: 61,
            })),
            oas: Arc::new(serde_json::from_str(OAS).expect("the shipped description parses")),
            http: reqwest::Client::new(),
            _stop: Arc::new(stop.clone().drop_guard()),
        };
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Calls.json",
                post(create).get(list),
            )
            .with_state(fake.clone());
        let stopped = stop.cancelled_owned();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
        });
        fake
    }

    /// From now on requests must authenticate with this API key pair.
    pub fn require_api_key(&self, sid: &str, secret: &str) {
        self.inner.lock().unwrap().basic = (sid.to_owned(), secret.to_owned());
    }

    pub fn set_mode(&self, mode: Mode) {
        self.inner.lock().unwrap().mode = mode;
    }

    pub fn posts(&self) -> Vec<Vec<(String, String)>> {
        self.inner.lock().unwrap().posts.clone()
    }

    pub fn lists(&self) -> usize {
        self.inner.lock().unwrap().lists
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

    /// Basic auth as the description's security scheme says: the account
    /// SID (or an API key SID) and the auth token.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let inner = self.inner.lock().unwrap();
        let (user, password) = &inner.basic;
        let want = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Basic {want}"))
    }

    /// The AccountSid path parameter against its declared pattern
    /// (`^AC[0-9a-fA-F]{32}$`).
    fn check_account(&self, op: &str, account: &str) {
        let pattern = self.oas[op]["path_params"]["AccountSid"]["pattern"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(pattern, "^AC[0-9a-fA-F]{32}$", "the shipped pattern");
        let ok = account.len() == 34
            && account.starts_with("AC")
            && account[2..].bytes().all(|b| b.is_ascii_hexdigit());
        if !ok {
            self.violate(format!("{op}: AccountSid {account:?} breaks {pattern}"));
        }
        if account != self.inner.lock().unwrap().account_sid {
            self.violate(format!("{op}: AccountSid is not the account's"));
        }
    }

    /// Every create parameter against CreateCallRequest: declared, typed,
    /// in its enum, not repeated unless an array; required ones present.
    fn check_create(&self, form: &[(String, String)]) {
        let op = &self.oas["create_call"];
        let props = op["properties"].as_object().expect("properties");
        let mut seen = HashSet::new();
        for (name, value) in form {
            let Some(prop) = props.get(name) else {
                self.violate(format!(
                    "CreateCall: {name} is not a CreateCallRequest field"
                ));
                continue;
            };
            let kind = prop["type"].as_str().unwrap_or("string");
            if !seen.insert(name.as_str()) && kind != "array" {
                self.violate(format!(
                    "CreateCall: {name} is repeated but is not an array"
                ));
            }
            self.check_value(name, kind, prop, value);
        }
        for required in op["required"].as_array().expect("required") {
            let required = required.as_str().unwrap();
            if !seen.contains(required) {
                self.violate(format!("CreateCall: required {required} is missing"));
            }
        }
        // The schema requires only To and From; Twilio's documentation
        // (kept in the description's notes) needs one of Url, Twiml,
        // ApplicationSid to know what to run.
        let what = ["Url", "Twiml", "ApplicationSid"]
            .iter()
            .filter(|n| seen.contains(**n))
            .count();
        if what != 1 {
            self.violate(format!(
                "CreateCall: exactly one of Url, Twiml, ApplicationSid, got {what}"
            ));
        }
    }

    fn check_value(&self, name: &str, kind: &str, prop: &Value, value: &str) {
        let ok = match kind {
            "integer" => value.parse::<i64>().is_ok(),
            "boolean" => value == "true" || value == "false",
            "array" => {
                // StatusCallbackEvent's items are the call events (the
                // description's call_enum_event).
                name != "StatusCallbackEvent"
                    || self.oas["enums"]["call_enum_event"]["enum"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|e| e == value)
            }
            _ => true,
        };
        if !ok {
            self.violate(format!(
                "CreateCall: {name}={value:?} is not a valid {kind}"
            ));
        }
        if let Some(options) = prop["enum"].as_array() {
            if !options.iter().any(|o| o == value) {
                self.violate(format!(
                    "CreateCall: {name}={value:?} is not one of {options:?}"
                ));
            }
        }
        if prop["format"] == "uri" && reqwest::Url::parse(value).is_err() {
            self.violate(format!("CreateCall: {name}={value:?} is not a URI"));
        }
    }

    fn check_list(&self, query: &[(String, String)]) {
        let params = self.oas["list_call"]["query"].as_object().expect("query");
        for (name, value) in query {
            if !params.contains_key(name) {
                self.violate(format!("ListCall: {name} is not a ListCall parameter"));
            } else if name == "PageSize" && value.parse::<u32>().is_err() {
                self.violate(format!("ListCall: PageSize={value:?} is not an integer"));
            }
        }
    }

    /// Sends the requested status callbacks in order, signed, as Twilio
    /// does (form POST, `X-Twilio-Signature` over the exact URL it was
    /// given and the sorted parameters).
    async fn call_progress(self, call: Call, form: Vec<(String, String)>) {
        let url = field(&form, "StatusCallback").unwrap_or_default();
        let wanted: Vec<&str> = form
            .iter()
            .filter(|(k, _)| k == "StatusCallbackEvent")
            .map(|(_, v)| v.as_str())
            .collect();
        let (account, token, duration) = {
            let i = self.inner.lock().unwrap();
            (
                i.account_sid.clone(),
                i.auth_token.clone(),
                i.call_duration_s,
            )
        };
        let steps = [
            ("initiated", "initiated"),
            ("ringing", "ringing"),
            ("answered", "in-progress"),
            ("completed", "completed"),
        ];
        let mut sequence = 0;
        for (event, status) in steps {
            tokio::time::sleep(Duration::from_millis(30)).await;
            if !wanted.contains(&event) {
                continue;
            }
            let mut params: Vec<(String, String)> = [
                ("AccountSid", account.as_str()),
                ("ApiVersion", "2010-04-01"),
                ("CallSid", &call.sid),
                ("CallStatus", status),
                ("Called", &call.to),
                ("Caller", &call.from),
                ("CallbackSource", "call-progress-events"),
                ("Direction", "outbound-api"),
                ("From", &call.from),
                ("To", &call.to),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
            params.push(("SequenceNumber".into(), sequence.to_string()));
            params.push(("Timestamp".into(), Utc::now().to_rfc2822()));
            if status == "completed" {
                params.push(("CallDuration".into(), duration.to_string()));
                params.push(("Duration".into(), duration.div_ceil(60).to_string()));
            }
            sequence += 1;
            let signature = twilio::signature(&token, url, &params);
            let answered = self
                .http
                .post(url)
                .header("X-Twilio-Signature", signature)
                .form(&params)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            self.inner.lock().unwrap().sent.push(Sent {
                status: status.to_owned(),
                answered,
            });
        }
    }
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn twilio_error(http: u16, code: u32, message: &str) -> Response {
    let status = StatusCode::from_u16(http).unwrap();
    let body = json!({
        "code": code, "message": message, "status": http,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
    });
    (status, Json(body)).into_response()
}

fn resource(call: &Call, account: &str, status: &str) -> Value {
    json!({
        "sid": call.sid, "account_sid": account, "to": call.to, "from": call.from,
        "status": status, "direction": "outbound-api", "api_version": "2010-04-01",
        "date_created": call.created.to_rfc2822(), "date_updated": call.created.to_rfc2822(),
        "start_time": null, "end_time": null, "duration": null, "price": null,
        "uri": format!("/2010-04-01/Accounts/{account}/Calls/{}.json", call.sid),
    })
}

async fn create(
    State(fake): State<FakeTwilio>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !fake.authorized(&headers) {
        return twilio_error(401, 20003, "Authenticate");
    }
    fake.check_account("create_call", &account);
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let declared = fake.oas["create_call"]["content_type"].as_str().unwrap();
    if !content_type.starts_with(declared) {
        fake.violate(format!(
            "CreateCall: content type {content_type:?}, not {declared}"
        ));
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    fake.check_create(&form);
    let mode = {
        let mut inner = fake.inner.lock().unwrap();
        inner.posts.push(form.clone());
        inner.mode.clone()
    };
    let call = Call {
        sid: format!("CA{}", uuid::Uuid::new_v4().simple()),
        to: field(&form, "To").unwrap_or_default().to_owned(),
        from: field(&form, "From").unwrap_or_default().to_owned(),
        created: Utc::now(),
    };
    match mode {
        Mode::Error {
            http,
            code,
            retry_after,
        } => {
            let mut resp = twilio_error(http, code, "refused by the fake");
            if let Some(secs) = retry_after {
                resp.headers_mut()
                    .insert("retry-after", secs.to_string().parse().unwrap());
            }
            resp
        }
        Mode::Lose => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Mode::Hold => {
            fake.inner.lock().unwrap().calls.push(call);
            tokio::time::sleep(Duration::from_secs(120)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Mode::Ok => {
            fake.inner.lock().unwrap().calls.push(call.clone());
            let body = resource(&call, &account, "queued");
            tokio::spawn(fake.clone().call_progress(call, form));
            (StatusCode::CREATED, Json(body)).into_response()
        }
    }
}

async fn list(
    State(fake): State<FakeTwilio>,
    Path(account): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !fake.authorized(&headers) {
        return twilio_error(401, 20003, "Authenticate");
    }
    fake.check_account("list_call", &account);
    let query: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    fake.check_list(&query);
    let (to, from) = (field(&query, "To"), field(&query, "From"));
    let mut inner = fake.inner.lock().unwrap();
    inner.lists += 1;
    // Newest first, as Twilio lists.
    let calls: Vec<Value> = inner
        .calls
        .iter()
        .rev()
        .filter(|c| to.is_none_or(|t| t == c.to) && from.is_none_or(|f| f == c.from))
        .map(|c| resource(c, &account, "queued"))
        .collect();
    Json(json!({
        "calls": calls, "page": 0, "page_size": 50, "start": 0, "end": calls.len(),
        "uri": format!("/2010-04-01/Accounts/{account}/Calls.json"),
        "first_page_uri": format!("/2010-04-01/Accounts/{account}/Calls.json?Page=0"),
        "next_page_uri": null, "previous_page_uri": null,
    }))
    .into_response()
}
