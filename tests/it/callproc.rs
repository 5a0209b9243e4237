//! The Call Processor client against the simulator, with a callback receiver
//! in the same test: signed callbacks in order, one dial per `call_id` under
//! repeats, retries and lost answers, and credentials that never leak.
//! Needs no PostgreSQL, NATS or Redis.

use events::{CallId, ProviderKind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use secrecy::SecretString;
use serde_json::{json, Value};
use switchboard::callproc::sim::{self, SimConfig, SimHandle};
use switchboard::callproc::{
    verify, CallProcessorClient, DialError, OriginateRequest, DEFAULT_MAX_AGE_S, SIGNATURE_HEADER,
};
use switchboard::secrets::PlainCredentials;
use tokio::net::TcpListener;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio_util::sync::{CancellationToken, DropGuard};
use uuid::Uuid;

pub const SECRET: &str = "test-callback-secret";
const CANARY: &str = "CANARY-5d1e9a-token";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn fast_config() -> SimConfig {
    SimConfig {
        ring_delay: ms(20),
        answer_delay: ms(20),
        call_duration_s: 42,
        call_hold: Some(ms(30)),
        ..SimConfig::with_secret(SecretString::from(SECRET.to_owned()))
    }
}

async fn start_sim(config: SimConfig) -> (SimHandle, DropGuard) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = CancellationToken::new();
    let handle = sim::spawn(listener, config, shutdown.clone()).await;
    (handle, shutdown.drop_guard())
}

/// One received callback: its JSON and whether its signature verified.
pub struct Received {
    pub body: Value,
    pub signed: bool,
}

/// A callback endpoint that verifies signatures as the gateway does.
pub async fn start_receiver() -> (String, UnboundedReceiver<Received>, DropGuard) {
    let (tx, rx) = unbounded_channel();
    let app = Router::new().route(
        "/cb",
        post(move |headers: HeaderMap, body: Bytes| async move {
            let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
            let now = chrono::Utc::now().timestamp();
            let signed = verify(SECRET.as_bytes(), header, &body, now, DEFAULT_MAX_AGE_S).is_ok();
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let _ = tx.send(Received { body, signed });
            "ok"
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/cb", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone().cancelled_owned();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
    });
    (url, rx, shutdown.drop_guard())
}

pub async fn next_callbacks(rx: &mut UnboundedReceiver<Received>, n: usize) -> Vec<Received> {
    let mut got = Vec::new();
    for _ in 0..n {
        let next = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        got.push(next.expect("callback in time").expect("receiver open"));
    }
    got
}

fn creds() -> PlainCredentials {
    [
        ("account_sid", "AC0123456789abcdef"),
        ("auth_token", CANARY),
    ]
    .into_iter()
    .collect()
}

fn request<'a>(call_id: CallId, creds: &'a PlainCredentials, url: &'a str) -> OriginateRequest<'a> {
    OriginateRequest {
        call_id,
        session_id: Uuid::now_v7(),
        provider: ProviderKind::Twilio,
        credentials: creds,
        from_number: "+14155550100",
        to_number: "+14155550199",
        agent_id: Uuid::new_v4(),
        status_callback_url: url,
    }
}

fn client_for(sim: &SimHandle, timeout: Duration, attempts: u32) -> CallProcessorClient {
    CallProcessorClient::new(format!("{}/", sim.base_url()), timeout, attempts)
        .with_backoff(ms(10), ms(40))
}

async fn get_text(url: String) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn callproc_dial_gets_id_and_signed_callbacks_in_order() {
    let (sim, _sim) = start_sim(fast_config()).await;
    let (url, mut rx, _rx) = start_receiver().await;
    let creds = creds();
    let call_id = CallId::new();
    let dialed = client_for(&sim, ms(2000), 3)
        .originate(&request(call_id, &creds, &url))
        .await
        .unwrap();
    assert!(dialed.provider_call_id.starts_with("SIM"), "{dialed:?}");

    let got = next_callbacks(&mut rx, 3).await;
    let statuses: Vec<_> = got.iter().map(|r| r.body["status"].clone()).collect();
    assert_eq!(
        statuses,
        [json!("ringing"), json!("answered"), json!("completed")]
    );
    for r in &got {
        assert!(r.signed, "unsigned callback {}", r.body);
        assert_eq!(r.body["call_id"], json!(call_id.to_string()));
        assert_eq!(r.body["provider_call_id"], json!(dialed.provider_call_id));
        let ts = r.body["timestamp"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
    }
    assert!(got[0].body.get("duration_s").is_none());
    assert_eq!(got[2].body["duration_s"], json!(42));

    let dials = sim.dials();
    assert_eq!(dials.len(), 1);
    assert_eq!(dials[0].call_id, call_id.to_string());
    assert_eq!(dials[0].provider_call_id, dialed.provider_call_id);
    assert_eq!(dials[0].provider, ProviderKind::Twilio);
    assert_eq!(dials[0].to_number, "+14155550199");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callproc_same_call_id_five_times_dials_once() {
    let (sim, _sim) = start_sim(fast_config()).await;
    let (url, _rx, _stop) = start_receiver().await;
    let creds = creds();
    let call_id = CallId::new();
    let client = client_for(&sim, ms(2000), 3);
    let req = request(call_id, &creds, &url);
    let first = client.originate(&req).await.unwrap();
    let second = client.originate(&req).await.unwrap();
    let rest = futures::future::join_all((0..3).map(|_| client.originate(&req))).await;
    for other in rest.into_iter().map(Result::unwrap).chain([second]) {
        assert_eq!(other, first);
    }
    let listed: Value =
        serde_json::from_str(&get_text(format!("{}/dials", sim.base_url())).await).unwrap();
    assert_eq!(listed["requests"], json!(5));
    let dials = listed["dials"].as_array().unwrap();
    assert_eq!(dials.len(), 1, "{listed}");
    assert_eq!(dials[0]["provider_call_id"], json!(first.provider_call_id));
    assert_eq!(dials[0]["from_number"], json!("+14155550100"));
    assert_eq!(dials[0]["provider"], json!("twilio"));
}

#[tokio::test]
async fn callproc_fail_rate_one_is_unavailable_after_max_attempts() {
    let (sim, _sim) = start_sim(SimConfig {
        fail_rate: 1.0,
        ..fast_config()
    })
    .await;
    let creds = creds();
    let err = client_for(&sim, ms(2000), 3)
        .originate(&request(CallId::new(), &creds, "http://127.0.0.1:9/cb"))
        .await
        .unwrap_err();
    match &err {
        DialError::Unavailable { attempts, last } => {
            assert_eq!(*attempts, 3);
            assert!(last.contains("503"), "{last}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(err.retryable());
    assert_eq!(sim.requests(), 3);
    assert!(sim.dials().is_empty());
}

#[tokio::test]
async fn callproc_lost_answer_is_retried_with_the_same_key() {
    let (sim, _sim) = start_sim(SimConfig {
        timeout_rate: 1.0,
        timeout_delay: Duration::from_secs(3),
        ..fast_config()
    })
    .await;
    let (url, _rx, _stop) = start_receiver().await;
    let creds = creds();
    let dialed = client_for(&sim, ms(150), 3)
        .originate(&request(CallId::new(), &creds, &url))
        .await
        .expect("the retry gets the first dial's answer");
    let dials = sim.dials();
    assert_eq!(dials.len(), 1);
    assert_eq!(dials[0].provider_call_id, dialed.provider_call_id);
    assert_eq!(sim.requests(), 2);
}

#[tokio::test]
async fn callproc_reject_is_final() {
    let (sim, _sim) = start_sim(SimConfig {
        reject_rate: 1.0,
        ..fast_config()
    })
    .await;
    let creds = creds();
    let err = client_for(&sim, ms(2000), 4)
        .originate(&request(CallId::new(), &creds, "http://127.0.0.1:9/cb"))
        .await
        .unwrap_err();
    let expected = DialError::Rejected {
        status: 400,
        error: "simulated rejection".into(),
    };
    assert_eq!(err, expected);
    assert!(!err.retryable());
    assert_eq!(sim.requests(), 1);
    assert!(sim.dials().is_empty());
}

/// Leak, control-endpoint and outcome tests (same harness).
mod control;

/// A Call Processor that echoes the request's credentials in its 4xx error:
/// what reaches the caller (and from there `OriginateFailed`, NATS, the
/// calls table, the 502 and the log) holds none of them.
#[tokio::test]
async fn callproc_error_text_never_carries_a_credential() {
    let app = Router::new().route(
        "/telephony/originate",
        post(|body: Bytes| async move {
            let v: Value = serde_json::from_slice(&body).unwrap();
            let creds = v["credentials"].to_string();
            let b64 = "QUMwMTIzNDU2Nzg5YWJjZGVmOkNBTkFSWQ==";
            (
                axum::http::StatusCode::UNAUTHORIZED,
                axum::Json(json!({ "error": format!("bad auth {creds} basic {b64} {CANARY}") })),
            )
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let creds = creds();
    let err = CallProcessorClient::new(url, ms(2000), 2)
        .originate(&request(CallId::new(), &creds, "http://127.0.0.1:9/cb"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(!text.contains(CANARY), "{text}");
    assert!(!text.contains("CANARY"), "{text}");
    assert!(!text.contains("AC0123456789abcdef"), "{text}");
    assert!(!text.contains("QUMwMTIz"), "{text}");
    assert!(text.contains("bad auth"), "{text}");
}

/// An `https://` Call Processor is spoken to over TLS (rustls): the first
/// bytes on the wire are a TLS handshake, never a cleartext request with
/// the tenant's credentials in it.
#[tokio::test]
async fn callproc_https_url_speaks_tls() {
    use tokio::io::AsyncReadExt;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let first = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 3];
        sock.read_exact(&mut buf).await.unwrap();
        buf
    });
    let creds = creds();
    let err = CallProcessorClient::new(url, ms(2000), 1)
        .originate(&request(CallId::new(), &creds, "http://127.0.0.1:9/cb"))
        .await
        .unwrap_err();
    let bytes = first.await.unwrap();
    assert_eq!(bytes[0], 0x16, "a TLS handshake record, got {bytes:?}");
    assert_eq!(bytes[1], 0x03);
    assert!(!err.to_string().contains(CANARY));
}

/// A 503 with `Retry-After` (a carrier's rate limit passed on, or a dial
/// another request is placing) holds the next attempt back that long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_holds_the_next_attempt_back() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let app = Router::new().route(
        "/telephony/originate",
        post(move || {
            let seen = seen.clone();
            async move {
                if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    let headers = [("retry-after", "1")];
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, headers, "{}").into_response()
                } else {
                    axum::Json(json!({"provider_call_id": "CP-1"})).into_response()
                }
            }
        }),
    );
    use axum::response::IntoResponse;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = CallProcessorClient::new(base, ms(2000), 2).with_backoff(ms(10), ms(20));
    let creds = creds();
    let started = std::time::Instant::now();
    let dialed = client
        .originate(&request(CallId::new(), &creds, "http://127.0.0.1:9/cb"))
        .await
        .unwrap();
    assert_eq!(dialed.provider_call_id, "CP-1");
    assert!(
        started.elapsed() >= ms(1000),
        "retried after {:?}",
        started.elapsed()
    );
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}
