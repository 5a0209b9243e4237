//! The real `switchboard callproc` process, killed (SIGKILL) after its POST
//! reached the carrier and before the answer came back: the restarted
//! adapter reconciles against the carrier's call list and answers the call
//! the carrier made. One POST, one call, one id.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::fake_twilio::{FakeTwilio, Mode};
use super::{account_sid, dial, dial_until_settled, twilio_dial, CANARY};
use crate::callproc::SECRET;
use crate::support::{free_port, TestEnv};

struct Adapter {
    child: Child,
    log: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Adapter {
    fn start(env: &TestEnv, port: u16, twilio: &str) -> Adapter {
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["--database-url", &env.db_url, "--callback-secret", SECRET])
            .args([
                "callproc",
                "--callproc-listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args(["--twilio-url", twilio])
            .args(["--carrier-timeout", "3s", "--reconcile-margin", "500ms"])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start switchboard callproc");
        let stderr = child.stderr.take().unwrap();
        let log = std::thread::spawn(move || {
            BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        Adapter {
            child,
            log: Some(log),
        }
    }

    /// Kills it with SIGKILL: no shutdown path runs.
    fn kill(&mut self) -> Vec<String> {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.log.take().unwrap().join().unwrap()
    }
}

async fn wait_healthy(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = reqwest::get(format!("{url}/healthz")).await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("callproc did not come up at {url}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_adapter_between_post_and_answer_dials_once() {
    let env = TestEnv::new().await;
    let fake = FakeTwilio::start(&account_sid(), CANARY).await;
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut first = Adapter::start(&env, port, &fake.url);
    wait_healthy(&url).await;

    // The carrier takes the POST and creates the call, but its answer
    // never comes: the adapter is killed while it waits.
    fake.set_mode(Mode::Hold);
    let body = twilio_dial();
    let in_flight = {
        let (url, body) = (url.clone(), body.clone());
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{url}/telephony/originate"))
                .header("Idempotency-Key", body["call_id"].as_str().unwrap())
                .json(&body)
                .send()
                .await
        })
    };
    assert!(
        crate::support::eventually(Duration::from_secs(10), || async {
            fake.posts().len() == 1
        })
        .await,
        "the POST reached the carrier"
    );
    let mut log = first.kill();
    assert!(
        in_flight.await.unwrap().is_err(),
        "the worker lost its answer"
    );
    // Any POST from here on would create a second call.
    fake.set_mode(Mode::Ok);

    let mut second = Adapter::start(&env, port, &fake.url);
    wait_healthy(&url).await;
    let early = dial(&url, &body).await;
    assert_eq!(early.status, 503, "the dead owner's lease holds: {early:?}");
    let a = dial_until_settled(&url, &body, Duration::from_secs(20)).await;
    assert_eq!(a.status, 200, "{a:?}");
    let calls = fake.calls();
    assert_eq!(calls.len(), 1, "one call at the carrier");
    assert_eq!(a.body["provider_call_id"], calls[0].sid.as_str());
    assert_eq!(fake.posts().len(), 1, "posted once");
    assert_eq!(fake.lists(), 1, "reconciled by listing the carrier's calls");
    let (state, attempts): (String, i32) =
        sqlx::query_as("SELECT state, attempts FROM carrier_dials WHERE call_id = $1")
            .bind(Uuid::parse_str(body["call_id"].as_str().unwrap()).unwrap())
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), attempts), ("placed", 1));

    log.extend(second.kill());
    assert!(
        log.iter()
            .any(|l| l.contains("reconciled: the carrier had placed the call")),
        "{log:#?}"
    );
    assert!(
        !log.iter().any(|l| l.contains(CANARY)),
        "a log line holds the token"
    );
    super::assert_no_plaintext_token(&env.pool).await;
}
