//! `switchboard callproc` against fake carriers that check every request
//! against the carrier's published description and call back as the
//! carrier does, signed as it signs: one POST per call_id through errors,
//! races, lost requests, lost answers and a killed adapter; callbacks
//! verified and forwarded; end to end through the gateway with Twilio.

mod crash;
mod fake_plivo;
mod fake_twilio;
mod plivo;

use std::time::{Duration, Instant};

use clap::Parser;
use events::TenantId;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use switchboard::carrier::{self, CarrierSettings};
use tokio_util::sync::{CancellationToken, DropGuard};
use uuid::Uuid;

use crate::app::{TestApp, CALLBACK_SECRET};
use crate::callproc::{next_callbacks, start_receiver, SECRET};
use crate::support::TestEnv;
use fake_twilio::{FakeTwilio, Mode};

/// The Twilio account the gateway's test provider has (`TestApp::twilio`).
pub fn account_sid() -> String {
    format!("AC{}", "0f".repeat(16))
}

/// The auth token, a canary: it must never show up outside a carrier request.
pub const CANARY: &str = "CANARY-carrier-7b3e1f-token";

const FROM: &str = "+12025550123";
const TO: &str = "+14155550100";

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    carrier: CarrierSettings,
}

/// An adapter in this process, on its own port, on `pool`.
pub struct Running {
    pub url: String,
    _stop: DropGuard,
}

pub async fn start_adapter(pool: PgPool, secret: &str, flags: &[&str]) -> Running {
    let args = std::iter::once("callproc").chain(flags.iter().copied());
    let settings = Flags::parse_from(args).carrier;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let adapter = carrier::Adapter::new(pool, settings, secret.to_owned().into(), url.clone());
    let stop = CancellationToken::new();
    carrier::spawn(listener, adapter, stop.clone()).await;
    Running {
        url,
        _stop: stop.drop_guard(),
    }
}

/// One answer of the adapter's originate endpoint.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: Value,
}

/// The worker's request, as the worker sends it.
pub fn originate_body(call_id: Uuid, provider: &str, creds: Value, callback: &str) -> Value {
    json!({
        "call_id": call_id, "session_id": Uuid::now_v7(), "provider": provider,
        "credentials": creds, "from_number": FROM, "to_number": TO,
        "agent_id": Uuid::new_v4(), "status_callback_url": callback,
    })
}

pub async fn dial(adapter: &str, body: &Value) -> Answer {
    let resp = reqwest::Client::new()
        .post(format!("{adapter}/telephony/originate"))
        .header("Idempotency-Key", body["call_id"].as_str().unwrap())
        .json(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("the adapter answers");
    Answer {
        status: resp.status().as_u16(),
        retry_after: resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok()),
        body: resp.json().await.unwrap_or(Value::Null),
    }
}

/// Dials until the adapter answers something other than 503, waiting as
/// its `Retry-After` says (the worker's client retries the same way).
pub async fn dial_until_settled(adapter: &str, body: &Value, within: Duration) -> Answer {
    let deadline = Instant::now() + within;
    loop {
        let answer = dial(adapter, body).await;
        if answer.status != 503 {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "still 503 at the deadline: {answer:?}"
        );
        let wait = answer.retry_after.unwrap_or(1).min(5);
        tokio::time::sleep(Duration::from_millis(wait * 1000 / 4).max(Duration::from_millis(100)))
            .await;
    }
}

fn twilio_creds() -> Value {
    json!({"account_sid": account_sid(), "auth_token": CANARY})
}

/// A new call on the test Twilio account, for tests that do not follow its
/// callbacks (they go to a closed port).
fn twilio_dial() -> Value {
    originate_body(
        Uuid::new_v4(),
        "twilio",
        twilio_creds(),
        "http://127.0.0.1:9/cb",
    )
}

/// A fake Twilio and an adapter in front of it, on a fresh database.
async fn twilio_setup(flags: &[&str]) -> (TestEnv, FakeTwilio, Running) {
    let env = TestEnv::new().await;
    let fake = FakeTwilio::start(&account_sid(), CANARY).await;
    let mut all = vec!["--twilio-url", fake.url.as_str()];
    all.extend_from_slice(flags);
    let adapter = start_adapter(env.pool.clone(), SECRET, &all).await;
    (env, fake, adapter)
}

/// No column of any dial holds the token in plaintext.
pub async fn assert_no_plaintext_token(pool: &PgPool) {
    let rows: Vec<(Vec<u8>, String)> =
        sqlx::query_as("SELECT sealed_auth, row_to_json(carrier_dials)::text FROM carrier_dials")
            .fetch_all(pool)
            .await
            .unwrap();
    assert!(!rows.is_empty());
    for (sealed, text) in rows {
        assert!(!text.contains(CANARY), "a dial row holds the token");
        assert!(
            !sealed.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
            "the sealed token is plaintext"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_call_through_the_gateway_is_one_post_and_ends_completed() {
    use futures::StreamExt;
    let env = TestEnv::new().await;
    let fake = FakeTwilio::start(&account_sid(), CANARY).await;
    let adapter = start_adapter(
        env.pool.clone(),
        CALLBACK_SECRET,
        &["--twilio-url", &fake.url],
    )
    .await;
    let app = TestApp::spawn_on(env, &["--call-processor-url", &adapter.url], None, true).await;
    let t = app.admin(TenantId::new());
    let pid = app.twilio(&t, CANARY).await;
    let r = app.attach(&t, FROM, &pid, Some(Uuid::new_v4())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let mut sub = app
        .deps
        .nats
        .subscribe(format!("{}.events.*.call.>", app.env.ns))
        .await
        .unwrap();

    let r = app
        .post(
            "/api/v1/calls/originate",
            &t,
            json!({"from_number": FROM, "to_number": TO}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let call_id = r.body["call_id"].as_str().unwrap().to_owned();
    let calls = fake.calls();
    assert_eq!(calls.len(), 1, "the carrier created one call");
    assert_eq!(r.body["provider_call_id"], calls[0].sid.as_str());

    let call = crate::origination::wait_status(&app, &t, &call_id, "completed").await;
    assert_eq!(call["duration_s"].as_i64(), Some(61));
    let types: Vec<&str> = call["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "OriginateRequested",
            "OriginateClaimed",
            "OriginateDispatched",
            "CallRinging",
            "CallAnswered",
            "CallEnded"
        ]
    );
    // The same call on NATS, to its end.
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("CallEnded") {
        let msg = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("call events on NATS")
            .unwrap();
        let env: events::Envelope = serde_json::from_slice(&msg.payload).unwrap();
        if env.stream_id.to_string() == call_id {
            seen.push(env.event_type.clone());
        }
    }
    assert_eq!(seen.len(), types.len());

    // Exactly one POST, and a correct one.
    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(fake.violations(), Vec::<String>::new());
    let get = |name: &str| -> Vec<&str> {
        posts[0]
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!((get("To"), get("From")), (vec![TO], vec![FROM]));
    assert_eq!(
        get("StatusCallback"),
        vec![format!("{}/carriers/twilio/{call_id}/status", adapter.url).as_str()]
    );
    assert_eq!(
        get("StatusCallbackEvent"),
        ["initiated", "ringing", "answered", "completed"]
    );
    assert_eq!(get("StatusCallbackMethod"), ["POST"]);
    // Every callback taken (initiated too: nothing to report, 204).
    let sent = fake.sent();
    assert_eq!(sent.len(), 4, "{sent:?}");
    assert!(sent.iter().all(|s| s.answered == 204), "{sent:?}");
    let statuses: Vec<&str> = sent.iter().map(|s| s.status.as_str()).collect();
    assert_eq!(
        statuses,
        ["initiated", "ringing", "in-progress", "completed"]
    );
    // The token was only ever sent to the carrier.
    assert_no_plaintext_token(&app.env.pool).await;
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events e WHERE row_to_json(e)::text LIKE '%' || $1 || '%'",
    )
    .bind(CANARY)
    .fetch_one(&app.env.pool)
    .await
    .unwrap();
    assert_eq!(leaked, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_errors_map_to_clear_failures_and_are_never_reposted() {
    let (env, fake, adapter) = twilio_setup(&[]).await;
    let cases = [
        (400, 21211, "invalid To number", 400),
        (400, 21212, "invalid or unowned From number", 400),
        (400, 21606, "invalid or unowned From number", 400),
        (401, 20003, "carrier authentication failed", 401),
    ];
    for (http, code, says, status) in cases {
        fake.set_mode(Mode::Error {
            http,
            code,
            retry_after: None,
        });
        let before = fake.posts().len();
        let body = twilio_dial();
        let a = dial(&adapter.url, &body).await;
        assert_eq!(a.status, status, "{code}: {a:?}");
        let error = a.body["error"].as_str().unwrap();
        assert!(
            error.contains(says) && error.contains(&code.to_string()),
            "{error}"
        );
        assert!(!error.contains(CANARY));
        // Final: the same refusal again, and no second POST.
        fake.set_mode(Mode::Ok);
        let again = dial(&adapter.url, &body).await;
        assert_eq!(
            (again.status, again.body["error"].as_str()),
            (status, Some(error))
        );
        assert_eq!(fake.posts().len(), before + 1, "{code} was posted again");
    }
    // Too many requests / concurrency: nothing was created, come back when
    // the carrier says; then the call is posted and placed.
    for code in [20429, 10004] {
        fake.set_mode(Mode::Error {
            http: 429,
            code,
            retry_after: Some(3),
        });
        let body = twilio_dial();
        let a = dial(&adapter.url, &body).await;
        assert_eq!((a.status, a.retry_after), (503, Some(3)), "{code}: {a:?}");
        fake.set_mode(Mode::Ok);
        let placed = dial(&adapter.url, &body).await;
        assert_eq!(placed.status, 200, "{placed:?}");
        let sid = placed.body["provider_call_id"].as_str().unwrap();
        assert_eq!(fake.calls().last().unwrap().sid, sid);
    }
    assert_eq!(fake.violations(), Vec::<String>::new());
    assert_no_plaintext_token(&env.pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_is_adopted_from_the_call_list_not_reposted() {
    let (_env, fake, adapter) =
        twilio_setup(&["--carrier-timeout", "500ms", "--reconcile-margin", "200ms"]).await;
    fake.set_mode(Mode::Hold);
    let body = twilio_dial();
    let first = dial(&adapter.url, &body).await;
    assert_eq!(first.status, 503, "{first:?}");
    // Were it posted again, the fake would now create a second call.
    fake.set_mode(Mode::Ok);
    let a = dial_until_settled(&adapter.url, &body, Duration::from_secs(10)).await;
    assert_eq!(a.status, 200, "{a:?}");
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(a.body["provider_call_id"], calls[0].sid.as_str());
    assert_eq!(fake.posts().len(), 1, "posted again");
    assert!(fake.lists() >= 1, "reconciled by listing");
    // And answered from the record from now on.
    let again = dial(&adapter.url, &body).await;
    assert_eq!(again.body["provider_call_id"], calls[0].sid.as_str());
    assert_eq!(fake.lists(), 1);
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_request_is_posted_again_only_after_the_list_shows_no_call() {
    let (_env, fake, adapter) =
        twilio_setup(&["--carrier-timeout", "500ms", "--reconcile-margin", "200ms"]).await;
    fake.set_mode(Mode::Lose);
    let body = twilio_dial();
    assert_eq!(dial(&adapter.url, &body).await.status, 503);
    assert_eq!(fake.lists(), 0, "no list before the lease lapsed");
    fake.set_mode(Mode::Ok);
    let a = dial_until_settled(&adapter.url, &body, Duration::from_secs(10)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(fake.posts().len(), 2, "the lost request, then one more");
    assert_eq!(fake.lists(), 1);
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(a.body["provider_call_id"], calls[0].sid.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_requests_for_one_call_post_once() {
    let (_env, fake, adapter) = twilio_setup(&[]).await;
    let body = twilio_dial();
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let (url, body) = (adapter.url.clone(), body.clone());
        racers.spawn(async move { dial_until_settled(&url, &body, Duration::from_secs(20)).await });
    }
    let mut sids = std::collections::HashSet::new();
    while let Some(a) = racers.join_next().await {
        let a = a.unwrap();
        assert_eq!(a.status, 200, "{a:?}");
        sids.insert(a.body["provider_call_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(sids.len(), 1);
    assert_eq!(fake.posts().len(), 1);
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_callbacks_are_verified_mapped_and_forwarded_signed() {
    let (_env, _fake, adapter) = twilio_setup(&[]).await;
    let (cb, mut rx, _r) = start_receiver().await;
    let call_id = Uuid::new_v4();
    let body = originate_body(call_id, "twilio", twilio_creds(), &cb);
    let a = dial(&adapter.url, &body).await;
    assert_eq!(a.status, 200, "{a:?}");
    let sid = a.body["provider_call_id"].as_str().unwrap().to_owned();
    let got = next_callbacks(&mut rx, 3).await;
    let statuses: Vec<&str> = got
        .iter()
        .map(|r| r.body["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ringing", "answered", "completed"]);
    for r in &got {
        assert!(r.signed, "forwarded unsigned: {}", r.body);
        assert_eq!(r.body["call_id"], call_id.to_string());
        assert_eq!(r.body["provider_call_id"], sid.as_str());
    }
    assert_eq!(got[2].body["duration_s"], 61);

    // A callback the carrier did not sign goes nowhere.
    let url = format!("{}/carriers/twilio/{call_id}/status", adapter.url);
    let form = [
        ("CallSid", sid.as_str()),
        ("CallStatus", "completed"),
        ("CallDuration", "999"),
    ];
    let http = reqwest::Client::new();
    let forged = http
        .post(&url)
        .header("X-Twilio-Signature", "bm90IGEgc2lnbmF0dXJl")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let unsigned = http.post(&url).form(&form).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    // Signed with another account's token: refused too.
    let params: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let other = switchboard::carrier::twilio::signature("another-token", &url, &params);
    let wrong = http
        .post(&url)
        .header("X-Twilio-Signature", other)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let unknown = http
        .post(format!(
            "{}/carriers/twilio/{}/status",
            adapter.url,
            Uuid::new_v4()
        ))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rx.try_recv().is_err(), "a refused callback was forwarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_api_key_pair_authenticates_the_rest_calls() {
    let (_env, fake, adapter) = twilio_setup(&[]).await;
    let (cb, mut rx, _r) = start_receiver().await;
    let key = format!("SK{}", "1e".repeat(16));
    fake.require_api_key(&key, "CANARY-key-secret");
    let mut creds = twilio_creds();
    creds["api_key_sid"] = json!(key);
    creds["api_key_secret"] = json!("CANARY-key-secret");
    let a = dial(
        &adapter.url,
        &originate_body(Uuid::new_v4(), "twilio", creds, &cb),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    // Callbacks are still signed with the account's auth token.
    let got = next_callbacks(&mut rx, 3).await;
    assert!(got.iter().all(|r| r.signed));
    assert_eq!(got[2].body["status"], "completed");
    // Without the pair the fake (now taking only the key) refuses: 20003.
    let a = dial(
        &adapter.url,
        &originate_body(Uuid::new_v4(), "twilio", twilio_creds(), &cb),
    )
    .await;
    assert_eq!(a.status, 401, "{a:?}");
}

/// The fakes are only worth what they refuse: requests that break the
/// published rules are caught, each named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fakes_catch_requests_that_break_the_carriers_rules() {
    let fake = FakeTwilio::start(&account_sid(), CANARY).await;
    let form = [
        ("To", TO),
        ("StatusCallbackMethod", "PUT"),
        ("Timeout", "soon"),
        ("StatusCallbackEvent", "hungup"),
        ("Colour", "blue"),
        ("To", TO),
    ];
    let r = reqwest::Client::new()
        .post(format!(
            "{}/2010-04-01/Accounts/{}/Calls.json",
            fake.url,
            account_sid()
        ))
        .basic_auth(account_sid(), Some(CANARY))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v = fake.violations().join("\n");
    for rule in [
        "StatusCallbackMethod=\"PUT\"",
        "Timeout=\"soon\"",
        "StatusCallbackEvent=\"hungup\"",
        "Colour is not a CreateCallRequest field",
        "To is repeated",
        "required From is missing",
        "exactly one of Url, Twiml, ApplicationSid",
    ] {
        assert!(v.contains(rule), "{rule} not caught in:\n{v}");
    }

    let fake =
        fake_plivo::FakePlivo::start(switchboard::carrier::plivo::Flavor::Vobiz, "MA1", CANARY)
            .await;
    let http = reqwest::Client::new();
    let body =
        json!({"from": "+12025550123", "to": "14155550100", "ring_method": "PUT", "colour": 1});
    let url = format!("{}/v1/Account/MA1/Call/", fake.url);
    let basic = http
        .post(&url)
        .basic_auth("MA1", Some(CANARY))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        basic.status(),
        401,
        "Vobiz takes its own headers, not Basic"
    );
    let no_slash = http
        .post(url.trim_end_matches('/'))
        .header("X-Auth-ID", "MA1")
        .header("X-Auth-Token", CANARY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(no_slash.status(), 404, "strict trailing slash");
    let r = http
        .post(&url)
        .header("X-Auth-ID", "MA1")
        .header("X-Auth-Token", CANARY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v = fake.violations().join("\n");
    for rule in [
        "required answer_url is missing",
        "from=\"+12025550123\"",
        "ring_method=\"PUT\"",
        "colour is not a Make-a-call field",
    ] {
        assert!(v.contains(rule), "{rule} not caught in:\n{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_takes_a_twilio_api_key_pair_masked_and_whole() {
    let app = TestApp::spawn().await;
    let t = app.admin(TenantId::new());
    let key = format!("SK{}", "1e".repeat(16));
    let body = |creds: Value| json!({"provider": "twilio", "label": "keyed", "credentials": creds});
    let mut creds = twilio_creds();
    creds["api_key_sid"] = json!(key);
    let half = app
        .post("/api/v1/telephony/providers", &t, body(creds.clone()))
        .await;
    assert_eq!(half.status, StatusCode::BAD_REQUEST, "{}", half.body);
    assert!(half.body.to_string().contains("credentials.api_key_secret"));
    creds["api_key_secret"] = json!("CANARY-key-secret");
    let r = app
        .post("/api/v1/telephony/providers", &t, body(creds))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["credentials"]["api_key_sid"], "SK…1e1e");
    assert_eq!(r.body["credentials"]["api_key_secret"], "********");
    assert!(!r.body.to_string().contains("CANARY"));
    app.stop().await;
}
