//! The real binary: `switchboard serve` with no configuration but a
//! database and namespace of its own starts every role, prints its URL and a
//! working dev token, places a call through the built-in simulator, and
//! stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::support::pg_base;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prints_a_dev_token_and_places_a_call() {
    let id = Uuid::new_v4().simple().to_string();
    let db = format!("sbtest_{}", &id[..16]);
    let ns = format!("t{}", &id[..12]);
    let data_dir = std::env::temp_dir().join(format!("sbbin-{id}"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .env("DATABASE_URL", format!("{}/{db}", pg_base()))
        .env("SWITCHBOARD_NAMESPACE", &ns)
        .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("SWITCHBOARD_DATA_DIR", &data_dir)
        .env("RUST_LOG", "warn,switchboard::supervisor=info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start switchboard serve");
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut token = None;
    let mut url = None;
    while token.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("serve prints its URL and a token");
        if let Some(u) = line.strip_prefix("switchboard listening on ") {
            url = Some(u.to_owned());
        }
        if let Some(t) = line.strip_prefix("export SWITCHBOARD_TOKEN=") {
            token = Some(t.to_owned());
        }
    }
    let (url, token) = (url.unwrap(), token.unwrap());
    let c = reqwest::Client::new();
    let ready = c.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
    let p: serde_json::Value = c
        .post(format!("{url}/api/v1/telephony/providers"))
        .bearer_auth(&token)
        .json(&json!({"provider": "twilio", "label": "Prod",
                      "credentials": {"account_sid": format!("AC{}", "ab".repeat(16)), "auth_token": "t"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let n = c
        .post(format!("{url}/api/v1/telephony/numbers"))
        .bearer_auth(&token)
        .json(&json!({"e164": "+12025550123", "provider": "twilio", "credentials_id": p["id"], "agent_id": Uuid::new_v4()}))
        .send()
        .await
        .unwrap();
    assert_eq!(n.status(), 201);
    let r = c
        .post(format!("{url}/api/v1/calls/originate"))
        .bearer_auth(&token)
        .json(&json!({"from_number": "+12025550123", "to_number": "+14155550100"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "dispatched");
    // The dev secrets were generated privately.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data_dir.join("master_key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // SIGTERM (what a container runtime sends) stops every role and exits 0.
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let mut exited = None;
    for _ in 0..150 {
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if exited.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let status = exited.expect("serve stops within 15 s of SIGTERM");
    assert!(status.success(), "{status}");
    // The stages stopped in order: requests drained before the worker, the
    // worker before the relay and projectors, the simulator last.
    let log = log.join().unwrap();
    let stopped: Vec<&str> = log
        .iter()
        .filter(|l| l.contains("stopped"))
        .filter_map(|l| l.split("stage=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(
        stopped,
        ["http", "worker", "pipeline", "simulator"],
        "{log:#?}"
    );
    let _ = std::fs::remove_dir_all(&data_dir);
    if let Ok(admin) = sqlx::PgPool::connect(&format!("{}/postgres", pg_base())).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
            .execute(&admin)
            .await;
    }
    if let Ok(nats) = async_nats::connect(crate::support::nats_url()).await {
        let _ = async_nats::jetstream::new(nats)
            .delete_stream(format!("{}_EVENTS", ns.to_uppercase()))
            .await;
    }
}
