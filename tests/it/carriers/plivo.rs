//! Plivo and Vobiz: one dialect at two bases with two ways to authenticate.

use std::time::Duration;

use serde_json::{json, Value};
use switchboard::carrier::plivo::Flavor;
use uuid::Uuid;

use super::fake_plivo::{FakePlivo, Mode};
use super::{dial, dial_until_settled, originate_body, start_adapter, Running, CANARY};
use crate::callproc::{next_callbacks, start_receiver, SECRET};
use crate::support::TestEnv;

const AUTH_ID: &str = "MAZDQ1ZJIYMDZKMMZKYM";

fn name(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::Plivo => "plivo",
        Flavor::Vobiz => "vobiz",
    }
}

fn creds() -> Value {
    json!({"auth_id": AUTH_ID, "auth_token": CANARY})
}

async fn setup(flavor: Flavor, flags: &[&str]) -> (TestEnv, FakePlivo, Running) {
    let env = TestEnv::new().await;
    let fake = FakePlivo::start(flavor, AUTH_ID, CANARY).await;
    let flag = format!("--{}-url", name(flavor));
    let mut all = vec![flag.as_str(), fake.url.as_str()];
    all.extend_from_slice(flags);
    let adapter = start_adapter(env.pool.clone(), SECRET, &all).await;
    (env, fake, adapter)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plivo_and_vobiz_place_calls_and_forward_their_signed_callbacks() {
    for flavor in [Flavor::Plivo, Flavor::Vobiz] {
        let (env, fake, adapter) = setup(flavor, &[]).await;
        let (cb, mut rx, _r) = start_receiver().await;
        let call_id = Uuid::new_v4();
        let body = originate_body(call_id, name(flavor), creds(), &cb);
        let a = dial(&adapter.url, &body).await;
        assert_eq!(a.status, 200, "{flavor:?}: {a:?}");
        let calls = fake.calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(a.body["provider_call_id"], calls[0].uuid.as_str());
        let posts = fake.posts();
        assert_eq!(fake.violations(), Vec::<String>::new(), "{flavor:?}");
        assert_eq!(
            (posts[0]["from"].as_str(), posts[0]["to"].as_str()),
            (Some("12025550123"), Some("14155550100"))
        );
        let base = format!("{}/carriers/{}/{call_id}", adapter.url, name(flavor));
        assert_eq!(posts[0]["hangup_url"], format!("{base}/hangup"));

        let got = next_callbacks(&mut rx, 3).await;
        let statuses: Vec<&str> = got
            .iter()
            .map(|r| r.body["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["ringing", "answered", "completed"], "{flavor:?}");
        assert!(got.iter().all(|r| r.signed
            && r.body["provider_call_id"] == calls[0].uuid.as_str()
            && r.body["call_id"] == call_id.to_string()));
        assert_eq!(got[2].body["duration_s"], 42);
        // The answer URL answered the call's XML, as Plivo needs.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let sent = fake.sent();
        let events: Vec<&str> = sent.iter().map(|s| s.event.as_str()).collect();
        assert_eq!(events, ["Ring", "StartApp", "Hangup"]);
        assert!(
            sent.iter().all(|s| (200..300).contains(&s.answered)),
            "{sent:?}"
        );
        assert!(
            sent[1].content_type.starts_with("application/xml"),
            "{sent:?}"
        );
        super::assert_no_plaintext_token(&env.pool).await;

        // Unsigned, or signed under the other dialect's header: refused.
        let url = format!("{base}/hangup");
        let form = [
            ("CallUUID", calls[0].uuid.as_str()),
            ("CallStatus", "completed"),
        ];
        let params: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let good = switchboard::carrier::plivo::signature(CANARY, false, &url, &params, "123");
        let other = match flavor {
            Flavor::Plivo => Flavor::Vobiz,
            Flavor::Vobiz => Flavor::Plivo,
        };
        let (sig, nonce) = other.signature_headers();
        let http = reqwest::Client::new();
        let misnamed = http
            .post(&url)
            .header(sig, &good)
            .header(nonce, "123")
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(misnamed.status(), 401);
        let (sig, nonce) = flavor.signature_headers();
        let wrong_nonce = http
            .post(&url)
            .header(sig, &good)
            .header(nonce, "124")
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(wrong_nonce.status(), 401);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(rx.try_recv().is_err(), "a refused callback was forwarded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plivo_errors_map_and_a_lost_answer_is_adopted_from_live_calls() {
    for flavor in [Flavor::Plivo, Flavor::Vobiz] {
        let (_env, fake, adapter) = setup(
            flavor,
            &["--carrier-timeout", "500ms", "--reconcile-margin", "200ms"],
        )
        .await;
        let cb = "http://127.0.0.1:9/cb";
        for (http, status) in [(400, 400), (401, 401)] {
            fake.set_mode(Mode::Error {
                http,
                retry_after: None,
            });
            let body = originate_body(Uuid::new_v4(), name(flavor), creds(), cb);
            let a = dial(&adapter.url, &body).await;
            assert_eq!(a.status, status, "{flavor:?} {http}: {a:?}");
            assert!(!a.body.to_string().contains(CANARY));
        }
        fake.set_mode(Mode::Error {
            http: 429,
            retry_after: Some(2),
        });
        let body = originate_body(Uuid::new_v4(), name(flavor), creds(), cb);
        let a = dial(&adapter.url, &body).await;
        assert_eq!((a.status, a.retry_after), (503, Some(2)), "{a:?}");
        fake.set_mode(Mode::Ok);
        assert_eq!(dial(&adapter.url, &body).await.status, 200);

        // The answer is lost; the call is live at the carrier.
        fake.set_mode(Mode::Hold);
        let posts = fake.posts().len();
        let body = originate_body(Uuid::new_v4(), name(flavor), creds(), cb);
        assert_eq!(dial(&adapter.url, &body).await.status, 503);
        fake.set_mode(Mode::Ok);
        let a = dial_until_settled(&adapter.url, &body, Duration::from_secs(10)).await;
        assert_eq!(a.status, 200, "{flavor:?}: {a:?}");
        assert_eq!(fake.posts().len(), posts + 1, "{flavor:?}: posted again");
        assert_eq!(
            a.body["provider_call_id"],
            fake.calls().last().unwrap().uuid.as_str()
        );
        assert_eq!(fake.violations(), Vec::<String>::new());
    }
}
