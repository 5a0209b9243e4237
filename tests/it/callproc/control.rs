//! The simulator's control endpoints, outcomes and hang-up, and the proof
//! that a credential value shows up nowhere: not in logs (everything traced
//! during the test is captured), responses, the dial log or errors.

use std::io::Write;

use switchboard::callproc::sim::ConfigPatch;

use super::*;

/// Everything the tracing subscriber writes, kept for inspection.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// POSTs a raw originate; returns the status and body text.
async fn raw_originate(base: &str, key: Option<&str>, body: &Value) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/telephony/originate"))
        .json(body);
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

// Current-thread runtime: every task runs on this thread, so the
// thread-local subscriber sees the simulator's and the client's events.
#[tokio::test]
async fn callproc_credentials_never_leak() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let (sim, _sim) = start_sim(fast_config()).await;
    let (url, mut rx, _stop) = start_receiver().await;
    let creds = creds();
    let call_id = CallId::new();
    let client = client_for(&sim, ms(2000), 2);
    client
        .originate(&request(call_id, &creds, &url))
        .await
        .unwrap();
    next_callbacks(&mut rx, 3).await;

    // Refused originates carrying the canary, one where serde's own error
    // would quote it (an unknown provider): fixed messages only.
    let base = sim.base_url();
    let good = json!({
        "call_id": "c-1", "session_id": "s", "provider": "twilio",
        "credentials": {"auth_token": CANARY}, "from_number": "+1",
        "to_number": "+2", "agent_id": "a", "status_callback_url": url,
    });
    let mut unknown_provider = good.clone();
    unknown_provider["provider"] = json!(CANARY);
    let mut not_a_string = good.clone();
    not_a_string["credentials"] = json!({ "auth_token": [CANARY] });
    let cases = [
        (None, &good),
        (Some("other"), &good),
        (Some("c-1"), &unknown_provider),
        (Some("c-1"), &not_a_string),
    ];
    for (key, body) in cases {
        let (status, text) = raw_originate(&base, key, body).await;
        assert_eq!(status, 400, "{text}");
        assert!(!text.contains(CANARY), "{text}");
    }

    // Errors and Debug of a request.
    sim.state()
        .update_config(ConfigPatch {
            reject_rate: Some(1.0),
            ..ConfigPatch::default()
        })
        .unwrap();
    let rejected = client
        .originate(&request(CallId::new(), &creds, &url))
        .await;
    let dead = CallProcessorClient::new("http://127.0.0.1:9".into(), ms(500), 2)
        .with_backoff(ms(5), ms(5));
    let unavailable = dead.originate(&request(CallId::new(), &creds, &url)).await;
    let req_debug = format!("{:?}", request(call_id, &creds, &url));
    for shown in [
        format!("{rejected:?}"),
        format!("{unavailable:?}"),
        req_debug,
    ] {
        assert!(!shown.contains(CANARY), "{shown}");
    }
    assert!(matches!(
        unavailable,
        Err(DialError::Unavailable { attempts: 2, .. })
    ));

    let dials = get_text(format!("{base}/dials")).await;
    assert!(dials.contains(&call_id.to_string()), "{dials}");
    assert_eq!(sim.dials().len(), 1);
    let config = get_text(format!("{base}/config")).await;
    for shown in [&dials, &config] {
        assert!(
            !shown.contains(CANARY) && !shown.contains(SECRET),
            "{shown}"
        );
    }
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("sim dialed"), "capture works: {logs}");
    assert!(!logs.contains(CANARY), "{logs}");
}

#[tokio::test]
async fn callproc_put_config_changes_the_outcome() {
    let (sim, _sim) = start_sim(fast_config()).await;
    let (url, mut rx, _stop) = start_receiver().await;
    let http = reqwest::Client::new();
    let put = |body: Value| {
        http.put(format!("{}/config", sim.base_url()))
            .json(&body)
            .send()
    };
    let resp = put(json!({"outcome_mix": {"busy": 1}, "ring_delay_ms": 10}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let view: Value = resp.json().await.unwrap();
    assert_eq!(view["outcome_mix"]["completed"], json!(0));
    assert_eq!(view["ring_delay_ms"], json!(10));
    assert_eq!(put(json!({"fail_rate": 2.0})).await.unwrap().status(), 400);
    assert!(put(json!({"fail_rat": 1.0}))
        .await
        .unwrap()
        .status()
        .is_client_error());
    assert_eq!(sim.state().config().fail_rate, 0.0);

    let creds = creds();
    client_for(&sim, ms(2000), 1)
        .originate(&request(CallId::new(), &creds, &url))
        .await
        .unwrap();
    let got = next_callbacks(&mut rx, 2).await;
    assert_eq!(got[0].body["status"], json!("ringing"));
    assert_eq!(got[1].body["status"], json!("busy"));
    assert_eq!(got[1].body["duration_s"], json!(0));
    assert!(got.iter().all(|r| r.signed));
}

#[tokio::test]
async fn callproc_hangup_ends_an_answered_call() {
    let (sim, _sim) = start_sim(SimConfig {
        call_duration_s: 600,
        call_hold: Some(Duration::from_secs(5)),
        ..fast_config()
    })
    .await;
    let (url, mut rx, _stop) = start_receiver().await;
    let creds = creds();
    let call_id = CallId::new();
    client_for(&sim, ms(2000), 1)
        .originate(&request(call_id, &creds, &url))
        .await
        .unwrap();
    let got = next_callbacks(&mut rx, 2).await;
    assert_eq!(got[1].body["status"], json!("answered"));

    let hangup = format!("{}/calls/{call_id}/hangup", sim.base_url());
    let http = reqwest::Client::new();
    assert_eq!(http.post(&hangup).send().await.unwrap().status(), 200);
    let ended = next_callbacks(&mut rx, 1).await.remove(0);
    assert_eq!(ended.body["status"], json!("completed"));
    assert!(ended.signed);
    assert!(ended.body["duration_s"].as_u64().unwrap() < 600);
    assert_eq!(http.post(&hangup).send().await.unwrap().status(), 404);
}
