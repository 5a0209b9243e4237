//! `deploy/nats-permissions.conf` on a real nats-server: `switchboard serve`
//! does everything on the `platform` user (the relay's stream and
//! publishes, the worker's consumers and acks, the gateway's outcome
//! subscription), and the one-tenant `auditor` reads its tenant and nothing
//! else.

use std::time::Duration;

use events::TenantId;
use futures::StreamExt;
use reqwest::StatusCode;

use crate::app::TestApp;
use crate::origination::{originate, tenant_with_number, wait_status};
use crate::support::{NatsProcess, TestEnv};

const CONFIG: &str = include_str!("../../deploy/nats-permissions.conf");
const EXAMPLE_TENANT: &str = "00000000-0000-0000-0000-000000000001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_needs_no_more_than_the_platform_user_and_a_reader_sees_one_tenant() {
    let env = TestEnv::new().await;
    let ns = env.ns.as_str().to_owned();
    let config = CONFIG
        .replace("switchboard.events", &format!("{ns}.events"))
        .replace("SWITCHBOARD_EVENTS", &env.ns.events_stream());
    // The auditor follows a tenant the test makes; its id is known only
    // once the tenant exists, so the server is configured for a fixed one.
    let watched = TenantId::new();
    let config = config.replace(EXAMPLE_TENANT, &watched.to_string());
    let nats = NatsProcess::start_with_config(&config);
    let user = |u: &str| format!("nats://{u}:{u}-CHANGE-ME@127.0.0.1:{}", nats.port);

    let app = TestApp::spawn_on_nats(env, &user("platform"), &[], None, true).await;
    let from = "+12025550123";
    let t = tenant_with_number(&app, from).await;
    let r = originate(&app, &t, from).await;
    assert_eq!(r.status, StatusCode::OK, "{}\n{}", r.body, nats.log());
    let call_id = r.body["call_id"].as_str().unwrap().to_owned();
    wait_status(&app, &t, &call_id, "completed").await;

    // The auditor: its tenant's subjects only, and no JetStream at all.
    let (options, address) = switchboard::app::nats_options(&user("auditor")).unwrap();
    let auditor = options.connect(address).await.unwrap();
    let mut own = auditor
        .subscribe(format!("{ns}.events.{watched}.>"))
        .await
        .unwrap();
    auditor.flush().await.unwrap();
    let wt = app.admin(watched);
    app.twilio(&wt, "tok").await;
    let got = tokio::time::timeout(Duration::from_secs(10), own.next())
        .await
        .expect("the auditor sees its tenant")
        .unwrap();
    assert!(got
        .subject
        .as_str()
        .starts_with(&format!("{ns}.events.{watched}.")));
    // Wider subscriptions are refused by the server (it closes them), and
    // JetStream (a consumer on the whole stream) is out of reach.
    let mut everyone = auditor.subscribe(format!("{ns}.events.>")).await.unwrap();
    let other = app.admin(TenantId::new());
    app.twilio(&other, "tok").await;
    let leaked = tokio::time::timeout(Duration::from_secs(2), everyone.next()).await;
    assert!(
        !matches!(leaked, Ok(Some(_))),
        "the auditor read another tenant's event"
    );
    let js = async_nats::jetstream::new(auditor.clone());
    let asked = tokio::time::timeout(
        Duration::from_secs(2),
        js.get_stream(app.env.ns.events_stream()),
    )
    .await;
    assert!(!matches!(asked, Ok(Ok(_))), "the auditor reached JetStream");
    // Read before the harness's own cleanup (it deletes the stream, which
    // the service never does and the platform user may not).
    let log = nats.log();
    app.stop().await;
    let denied = |user: &str| -> Vec<String> {
        log.lines()
            .filter(|l| l.contains("Violation") && l.contains(&format!("User \"{user}\"")))
            .map(str::to_owned)
            .collect()
    };
    assert!(
        denied("platform").is_empty(),
        "platform was refused: {:#?}",
        denied("platform")
    );
    assert!(
        !denied("auditor").is_empty(),
        "the server never refused the auditor:\n{log}"
    );
}
