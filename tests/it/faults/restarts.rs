//! Everything restarted under load: the relay and the projector SIGKILLed
//! mid-stream, NATS restarted, Redis flushed and restarted, PostgreSQL
//! restarted (immediate: no checkpoint, crash recovery). Afterwards, with no
//! manual step: every stored event is on JetStream exactly once, every
//! projection equals a rebuild from the store, the cap counters equal a
//! rebuild from history, nothing was dialed twice, and a new call goes
//! through.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Mutex;

use super::checks::{
    assert_projections_equal_rebuild, assert_published_once, settled_at_head, Load,
};
use super::{assert_one_outcome_per_call, scale, Cluster, Shape};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_restarts_of_every_part_lose_nothing_and_duplicate_nothing() {
    let rate = scale(20, 40) as u64;
    let c = Cluster::start(
        Shape {
            gateways: 1,
            workers: 2,
            own_postgres: true,
        },
        json!({"ring_delay_ms": 10, "answer_delay_ms": 10, "call_hold_ms": 100}),
    )
    .await;
    let from = ["+12025550121"];
    let (tenant, t) = c.tenant(&from, super::checks::no_caps()).await;
    // Load at a steady rate through every fault; answers are counted, not
    // judged (a 503 while PostgreSQL is down is the honest answer).
    let load = Load::start(&c, &t, from[0], rate);
    let c = Arc::new(Mutex::new(c));
    let mut faults = Vec::new();
    let pause = || tokio::time::sleep(Duration::from_millis(1500));
    let began = Instant::now();
    for round in 0..scale(1, 3) {
        pause().await;
        {
            let mut c = c.lock().await;
            c.relay.take().unwrap().kill();
            tokio::time::sleep(Duration::from_millis(500)).await;
            c.relay = Some(c.spawn("relay", &[]));
        }
        faults.push(format!("round {round}: relay SIGKILL+restart"));
        pause().await;
        {
            let mut c = c.lock().await;
            c.projector.take().unwrap().kill();
            tokio::time::sleep(Duration::from_millis(500)).await;
            c.projector = Some(c.spawn("project", &[]));
        }
        faults.push("projector SIGKILL+restart".into());
        pause().await;
        {
            let mut c = c.lock().await;
            c.nats.stop();
            tokio::time::sleep(Duration::from_millis(1000)).await;
            c.nats.restart();
        }
        faults.push("NATS stop, 1 s, start".into());
        pause().await;
        {
            let mut c = c.lock().await;
            let mut conn = redis::Client::open(c.redis.url())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
            c.redis.restart();
        }
        faults.push("Redis FLUSHALL and restart".into());
        pause().await;
        {
            let c = c.lock().await;
            c.pg.as_ref().unwrap().restart();
        }
        faults.push("PostgreSQL immediate restart".into());
    }
    pause().await;
    let answers = load.stop().await;
    let loaded_for = began.elapsed();
    let c = Arc::try_unwrap(c).ok().unwrap().into_inner();

    // Without a manual step: a new call goes through.
    let recovered = c
        .until(Duration::from_secs(60), || async {
            let (s, _) = c
                .post(
                    &c.gateway_urls[0],
                    "/api/v1/calls/originate",
                    &t,
                    json!({"from_number": from[0], "to_number": "+14155550100"}),
                )
                .await;
            s == reqwest::StatusCode::OK
        })
        .await;
    assert!(
        recovered,
        "the service did not answer again; logs in {}",
        c.dir.display()
    );

    // Quiescence: calls final, the relay and every projector at the head.
    let settled = settled_at_head(&c, Duration::from_secs(90)).await;
    assert!(
        settled,
        "did not settle: {:?}; logs in {}",
        c.statuses().await,
        c.dir.display()
    );
    let stored = assert_published_once(&c).await;
    assert_projections_equal_rebuild(&c).await;

    // The cap counters equal a rebuild from history.
    let (_, usage) = c
        .get(&c.gateway_urls[0], "/api/v1/call-limits/usage", &t)
        .await;
    let snap = switchboard::caps::snapshot_from_store(
        &c.pool,
        tenant,
        chrono::Utc::now(),
        Duration::from_secs(4 * 3600),
    )
    .await
    .unwrap();
    assert_eq!(
        usage["concurrent"].as_u64(),
        Some(snap.active.len() as u64),
        "{usage}"
    );
    assert_eq!(
        usage["daily_calls"].as_u64(),
        Some(snap.daily_calls),
        "{usage}"
    );
    assert_eq!(
        usage["daily_minutes"].as_u64(),
        Some(snap.daily_minutes),
        "{usage}"
    );

    let record = c.sim_record().await;
    let calls = assert_one_outcome_per_call(&c, &record).await;
    println!(
        "faults/restarts: {:.1}s of load at {rate}/s through {} faults [{}]; answers {answers:?}; \
         {} events stored, each on JetStream once; {calls} calls, {} dialed, none twice; \
         projections equal a rebuild; counters equal history ({usage})",
        loaded_for.as_secs_f64(),
        faults.len(),
        faults.join("; "),
        stored,
        record["dials"].as_array().unwrap().len(),
    );
    c.stop().await;
}
