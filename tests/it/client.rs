//! `switchboard client` (the real binary) against a running gateway: every
//! resource as a table and as JSON, the live feed followed to a call's end,
//! problems shown readably with an exit code by class, and bad input that
//! appends nothing.

use std::process::Stdio;
use std::time::Duration;

use events::TenantId;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::app::TestApp;

#[derive(Debug)]
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }

    fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    fn ok(self) -> Ran {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `switchboard client <args>` on `url` with `token`, `stdin` fed in.
async fn client_at(url: &str, token: &str, args: &[&str], stdin: Option<&str>) -> Ran {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("client")
        .args(args)
        .env("SWITCHBOARD_URL", url)
        .env("SWITCHBOARD_TOKEN", token)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run switchboard client");
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).await.unwrap();
    }
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the client finishes")
        .unwrap();
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

async fn client(app: &TestApp, token: &str, args: &[&str]) -> Ran {
    client_at(&app.base, token, args, None).await
}

const CANARY: &str = "canary-auth-token-5f3a9c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_resource_as_a_table_and_as_json() {
    let app = TestApp::spawn().await;
    let t = app.admin(TenantId::new());
    let creds = format!(
        r#"{{"account_sid": "AC{}", "auth_token": "{CANARY}"}}"#,
        "0f".repeat(16)
    );

    // Credentials come from stdin, never the command line; they come back masked.
    let created = client_at(
        &app.base,
        &t,
        &[
            "--json",
            "providers",
            "create",
            "--provider",
            "twilio",
            "--label",
            "main",
            "--credentials",
            "-",
        ],
        Some(&creds),
    )
    .await
    .ok();
    let provider = created.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(created.json()["credentials"]["auth_token"], "********");

    let table = client(&app, &t, &["providers", "list"]).await.ok();
    let mut lines = table.stdout.lines();
    assert!(lines.next().unwrap().starts_with("ID "), "{}", table.stdout);
    assert!(lines.next().unwrap().contains(&provider));
    let listed = client(&app, &t, &["providers", "list", "--json"])
        .await
        .ok();
    assert_eq!(listed.json_lines()[0]["id"], provider.as_str());
    let got = client(&app, &t, &["providers", "get", &provider])
        .await
        .ok();
    assert!(
        got.stdout.contains("label") && got.stdout.contains("main"),
        "{}",
        got.stdout
    );

    // If-Match: the version it read, then a stale one.
    let updated = client(
        &app,
        &t,
        &[
            "--json",
            "providers",
            "update",
            &provider,
            "--label",
            "prod",
            "--if-match",
            "1",
        ],
    )
    .await
    .ok();
    assert_eq!(updated.json()["version"], 2);
    let stale = client(
        &app,
        &t,
        &[
            "providers",
            "update",
            &provider,
            "--label",
            "x",
            "--if-match",
            "1",
        ],
    )
    .await;
    assert_eq!(stale.code, 5, "{}", stale.stderr);
    assert!(stale.stderr.contains("412"), "{}", stale.stderr);

    let number = client(
        &app,
        &t,
        &[
            "--json",
            "numbers",
            "create",
            "--e164",
            "+12025550123",
            "--provider",
            "twilio",
            "--credentials-id",
            &provider,
            "--agent",
            &Uuid::new_v4().to_string(),
        ],
    )
    .await
    .ok()
    .json();
    let number_id = number["id"].as_str().unwrap().to_owned();
    let capped = client(
        &app,
        &t,
        &[
            "--json",
            "numbers",
            "update",
            &number_id,
            "--daily-calls-max",
            "50",
        ],
    )
    .await
    .ok();
    assert_eq!(capped.json()["daily_calls_max"], 50);
    let numbers = client(&app, &t, &["numbers", "list"]).await.ok();
    assert!(
        numbers.stdout.contains("+12025550123"),
        "{}",
        numbers.stdout
    );

    // The kill switch, then an originate it refuses: exit 7, the problem readable.
    client(
        &app,
        &t,
        &[
            "limits",
            "set",
            "--concurrent-max",
            "3",
            "--calls-per-minute",
            "100",
        ],
    )
    .await
    .ok();
    let killed = client(&app, &t, &["--json", "limits", "kill", "concurrent"])
        .await
        .ok();
    assert_eq!(killed.json()["concurrent_max"], 0);
    assert_eq!(killed.json()["calls_per_minute"], 100);
    let usage = client(&app, &t, &["limits", "usage"]).await.ok();
    assert!(
        usage.stdout.contains("concurrent") && usage.stdout.contains("[stopped]"),
        "{}",
        usage.stdout
    );
    let refused = client(
        &app,
        &t,
        &[
            "calls",
            "originate",
            "--from",
            "+12025550123",
            "--to",
            "+14155550100",
        ],
    )
    .await;
    assert_eq!(refused.code, 7, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("429") && refused.stderr.contains("concurrent"),
        "{}",
        refused.stderr
    );

    client(&app, &t, &["limits", "set", "--concurrent-max", "3"])
        .await
        .ok();
    let dests = client(
        &app,
        &t,
        &[
            "--json",
            "destinations",
            "set",
            "--countries",
            "US,GB",
            "--allow-premium-rate",
            "false",
        ],
    )
    .await
    .ok();
    assert_eq!(
        dests.json()["allowed_countries"],
        serde_json::json!(["GB", "US"])
    );
    client(&app, &t, &["destinations", "get"]).await.ok();

    // A call, followed on the live feed until it is over.
    let call = client(
        &app,
        &t,
        &[
            "--json",
            "calls",
            "originate",
            "--from",
            "+12025550123",
            "--to",
            "+14155550100",
        ],
    )
    .await
    .ok()
    .json();
    assert_eq!(call["status"], "dispatched", "{call}");
    let call_id = call["call_id"].as_str().unwrap().to_owned();
    let followed = client(
        &app,
        &t,
        &["--json", "events", "follow", "--call", &call_id],
    )
    .await
    .ok();
    let types: Vec<String> = followed
        .json_lines()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types.first().map(String::as_str),
        Some("OriginateRequested"),
        "{types:?}"
    );
    assert!(types.contains(&"CallEnded".to_owned()), "{types:?}");
    let shown = client(&app, &t, &["calls", "get", &call_id]).await.ok();
    assert!(
        shown.stdout.contains("timeline:") && shown.stdout.contains("OriginateDispatched"),
        "{}",
        shown.stdout
    );
    let calls = client(&app, &t, &["calls", "list", "--all"]).await.ok();
    assert!(calls.stdout.contains(&call_id), "{}", calls.stdout);

    // Audit: every event over pages, quiet on a pipe (no progress line).
    let all = client(
        &app,
        &t,
        &["--json", "audit", "events", "--all", "--limit", "2"],
    )
    .await
    .ok();
    let tenant_events = all.json_lines();
    assert!(tenant_events.len() >= 10, "{}", all.stdout);
    assert!(
        !all.stderr.contains('\r'),
        "progress drawn on a pipe: {:?}",
        all.stderr
    );
    let page = client(&app, &t, &["audit", "events", "--limit", "2"])
        .await
        .ok();
    assert!(
        page.stderr.starts_with("more: --cursor "),
        "{}",
        page.stderr
    );
    let verify = client(&app, &t, &["--json", "audit", "verify"]).await.ok();
    assert_eq!(verify.json()["ok"], true);
    let stream = client(&app, &t, &["--json", "audit", "stream", &call_id])
        .await
        .ok();
    assert_eq!(stream.json()["stream_type"], "call");
    let doc = client(&app, &t, &["openapi"]).await.ok();
    assert!(doc.json()["openapi"].as_str().unwrap().starts_with("3."));

    // Nothing the client printed carries the secret.
    for ran in [&created, &table, &listed, &got, &updated, &all] {
        assert!(!ran.stdout.contains(CANARY) && !ran.stderr.contains(CANARY));
    }
    // A number's id is no provider's: not found, exit 4.
    let wrong = client(&app, &t, &["providers", "delete", &number_id]).await;
    assert_eq!(wrong.code, 4, "{}", wrong.stderr);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_read_clearly_exit_by_class_and_change_nothing() {
    let app = TestApp::spawn().await;
    let t = app.admin(TenantId::new());
    let before = app.event_count().await;

    let bad = client(&app, "not-a-token", &["providers", "list"]).await;
    assert_eq!(bad.code, 3, "{}", bad.stderr);
    assert!(bad.stderr.contains("401"), "{}", bad.stderr);
    assert!(!bad.stderr.contains("not-a-token"));
    let none = client(&app, "", &["providers", "list"]).await;
    assert_eq!(none.code, 2, "{}", none.stderr);
    assert!(none.stderr.contains("SWITCHBOARD_TOKEN"), "{}", none.stderr);
    let read_only = app.token(TenantId::new(), &[switchboard::auth::Scope::TelephonyRead]);
    let denied = client(&app, &read_only, &["limits", "kill", "all"]).await;
    assert_eq!(denied.code, 3, "{}", denied.stderr);

    let missing = client(&app, &t, &["calls", "get", &Uuid::new_v4().to_string()]).await;
    assert_eq!(missing.code, 4, "{}", missing.stderr);

    let invalid = client(
        &app,
        &t,
        &[
            "numbers",
            "create",
            "--e164",
            "12",
            "--provider",
            "twilio",
            "--credentials-id",
            &Uuid::new_v4().to_string(),
        ],
    )
    .await;
    assert_eq!(invalid.code, 6, "{}", invalid.stderr);
    assert!(invalid.stderr.contains("\n  e164: "), "{}", invalid.stderr);

    let no_file = client(
        &app,
        &t,
        &[
            "providers",
            "create",
            "--provider",
            "twilio",
            "--label",
            "x",
            "--credentials",
            "/nonexistent/creds.json",
        ],
    )
    .await;
    assert_eq!(no_file.code, 2, "{}", no_file.stderr);
    let not_object = client_at(
        &app.base,
        &t,
        &[
            "providers",
            "create",
            "--provider",
            "twilio",
            "--label",
            "x",
            "--credentials",
            "-",
        ],
        Some("[1]"),
    )
    .await;
    assert_eq!(not_object.code, 2, "{}", not_object.stderr);
    let usage = client(&app, &t, &["limits", "set"]).await;
    assert_eq!(usage.code, 2, "{}", usage.stderr);
    let clap_usage = client(&app, &t, &["numbers", "update", "not-a-uuid"]).await;
    assert_eq!(clap_usage.code, 2, "{}", clap_usage.stderr);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = client_at(
        &format!("http://127.0.0.1:{port}"),
        &t,
        &["limits", "get"],
        None,
    )
    .await;
    assert_eq!(down.code, 9, "{}", down.stderr);
    let lost = client_at(
        &format!("http://127.0.0.1:{port}"),
        &t,
        &[
            "calls",
            "originate",
            "--from",
            "+12025550123",
            "--to",
            "+14155550100",
        ],
        None,
    )
    .await;
    assert!(
        lost.stderr.contains("--idempotency-key "),
        "{}",
        lost.stderr
    );

    assert_eq!(app.event_count().await, before, "bad input appended events");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_drawn_on_a_terminal_and_not_on_a_pipe() {
    if !std::path::Path::new("/usr/bin/script").exists() {
        println!("skipped: no `script` (util-linux) to give the client a terminal");
        return;
    }
    let app = TestApp::spawn().await;
    let t = app.admin(TenantId::new());
    for i in 0..3 {
        client(
            &app,
            &t,
            &["limits", "set", "--concurrent-max", &(i + 1).to_string()],
        )
        .await
        .ok();
    }
    let args = "client audit events --all --limit 1";
    // `script` runs the client on a pseudo-terminal: stdout and stderr both
    // land in its output, progress line included.
    let out = tokio::process::Command::new("script")
        .args([
            "-qec",
            &format!("{} {args}", env!("CARGO_BIN_EXE_switchboard")),
            "/dev/null",
        ])
        .env("SWITCHBOARD_URL", &app.base)
        .env("SWITCHBOARD_TOKEN", &t)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{tty}");
    assert!(
        tty.contains("\r\x1b[2K") && tty.contains("so far"),
        "no progress on a terminal: {tty:?}"
    );
    let piped = client(&app, &t, &["audit", "events", "--all", "--limit", "1"])
        .await
        .ok();
    assert!(
        !piped.stderr.contains('\r') && !piped.stdout.contains('\r'),
        "{piped:?}"
    );
    app.stop().await;
}
