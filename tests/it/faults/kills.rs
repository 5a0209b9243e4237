//! Workers SIGKILLed at random moments while calls are placed, with a Call
//! Processor that answers 503 to a share of dials and answers too late to
//! another: every call_id is dialed at most once, every call ends in a final
//! state (or pending, with its reason), none stays requested.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::Mutex;

use super::{assert_one_outcome_per_call, originate_many, scale, Cluster, Shape, FINAL};

const FROM: [&str; 2] = ["+12025550111", "+12025550112"];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_killed_workers_and_a_flaky_call_processor_never_dial_twice() {
    let total = scale(200, 1_000);
    let c = Cluster::start(
        Shape {
            gateways: 1,
            workers: 4,
            own_postgres: false,
        },
        // 20% answered 503 before dialing; 20% dialed but answered after
        // 1.5 s, past the client's 1 s timeout (a lost answer).
        json!({"ring_delay_ms": 20, "answer_delay_ms": 20, "call_hold_ms": 200,
               "fail_rate": 0.2, "timeout_rate": 0.2, "timeout_delay_ms": 1500}),
    )
    .await;
    let from = FROM;
    let (_, t) = c.tenant(&from, super::checks::no_caps()).await;
    let c = Arc::new(Mutex::new(c));
    let (gw, http) = {
        let c = c.lock().await;
        (c.gateway_urls[0].clone(), c.http.clone())
    };

    // The killer: every 200-700 ms, SIGKILL a random worker and start a
    // new one in its place.
    let stop = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicUsize::new(0));
    let killer = {
        let (c, stop, kills) = (c.clone(), stop.clone(), kills.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let pause = rand::thread_rng().gen_range(200..700);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                let mut c = c.lock().await;
                let i = rand::thread_rng().gen_range(0..c.workers.len());
                if let Some(w) = c.workers[i].take() {
                    w.kill();
                    kills.fetch_add(1, Ordering::Relaxed);
                }
                let fresh = c.spawn("worker", &[]);
                c.workers[i] = Some(fresh);
            }
        })
    };
    let (answers, _) = originate_many(http, vec![gw], t.clone(), &FROM, total, 16).await;
    stop.store(true, Ordering::Relaxed);
    killer.await.unwrap();
    let c = Arc::try_unwrap(c).ok().unwrap().into_inner();

    // Everything settles once the killing stops: JetStream redelivers what
    // the dead workers held, the give-up rule ends unanswered dials.
    let settled = c.until(Duration::from_secs(90), || c.settled()).await;
    let record = c.sim_record().await;
    let calls = assert_one_outcome_per_call(&c, &record).await;
    let statuses = c.statuses().await;
    println!(
        "faults/kills: {total} originations in {:.1}s, {} worker SIGKILLs, answers {answers:?}; \
         simulator: {} requests, {} dials; calls by status {statuses:?}",
        c.elapsed().as_secs_f64(),
        kills.load(Ordering::Relaxed),
        record["requests"],
        record["dials"].as_array().unwrap().len(),
    );
    assert!(
        answers.keys().all(|s| [200, 202, 502].contains(s)),
        "{answers:?}"
    );
    assert_eq!(calls, total, "every originate made one call");
    let stuck: Vec<(uuid::Uuid, String, Option<String>)> = sqlx::query_as(&format!(
        "SELECT call_id, status, error FROM calls WHERE status NOT IN {FINAL} LIMIT 20"
    ))
    .fetch_all(&c.pool)
    .await
    .unwrap();
    assert!(settled && stuck.is_empty(), "calls not final: {stuck:?}");
    let failed_without_reason: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM calls WHERE status = 'failed' AND coalesce(error, '') = '' AND provider_call_id IS NULL",
    )
    .fetch_one(&c.pool)
    .await
    .unwrap();
    assert_eq!(failed_without_reason, 0, "a failed dial states its reason");
    assert!(
        answers.contains_key(&StatusCode::OK.as_u16()),
        "some calls went through"
    );
    c.stop().await;
}
