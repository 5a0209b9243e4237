//! Caps under a race: many originations across 2 gateways and 4 worker
//! processes against small caps. Judged by the simulator's own record (the
//! most calls live at once) and by the store (admission times, totals).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{assert_one_outcome_per_call, originate_many, scale, Cluster, Shape};

const FROM: [&str; 4] = [
    "+12025550101",
    "+12025550102",
    "+12025550103",
    "+12025550104",
];

const CONCURRENT_MAX: u64 = 8;
const CALLS_PER_MINUTE: u64 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_caps_hold_across_gateways_and_worker_processes() {
    let total = scale(600, 10_000);
    let c = Cluster::start(
        Shape { gateways: 2, workers: 4, own_postgres: false },
        json!({"ring_delay_ms": 5, "answer_delay_ms": 5, "call_hold_ms": 150, "call_duration_s": 61}),
    )
    .await;
    let from = FROM;
    let (tenant, t) = c
        .tenant(
            &from,
            json!({"concurrent_max": CONCURRENT_MAX, "calls_per_minute": CALLS_PER_MINUTE,
                              "daily_calls_max": 100_000, "daily_minutes_max": 1_000_000}),
        )
        .await;
    let (answers, others) = originate_many(
        c.http.clone(),
        c.gateway_urls.clone(),
        t.clone(),
        &FROM,
        total,
        32,
    )
    .await;
    let n = |s: u16| answers.get(&s).copied().unwrap_or(0);
    let (ok, refused, pending, other) = (n(200), n(429), n(202), others.len());
    // Every call settles: nothing live in the simulator, nothing left open.
    let settled = c.until(Duration::from_secs(60), || c.settled()).await;
    let record = c.sim_record().await;
    let peak = record["peak_live"].as_u64().unwrap();
    let dialed = record["dials"].as_array().unwrap().len();
    println!(
        "faults/caps: {total} originations over 2 gateways and 4 worker processes in {:.1}s: \
         {ok} dispatched, {refused} refused (429), {pending} pending (202), {other} other; \
         {dialed} dialed; simulator's peak of live calls {peak} (concurrent_max {CONCURRENT_MAX})",
        c.elapsed().as_secs_f64()
    );
    assert!(settled, "calls still open: {:?}", c.statuses().await);
    assert_eq!(other, 0, "only 200, 202 and 429 answers: {others:?}");
    assert!(peak <= CONCURRENT_MAX, "{peak} calls live at once");
    assert!(dialed > 0);
    assert_one_outcome_per_call(&c, &record).await;

    // No 60-second window holds more admissions than calls_per_minute.
    let claims: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT recorded_at FROM events WHERE event_type = 'OriginateClaimed' ORDER BY recorded_at",
    )
    .fetch_all(&c.pool)
    .await
    .unwrap();
    let mut worst = 0;
    for (i, at) in claims.iter().enumerate() {
        let window = claims[i..]
            .iter()
            .take_while(|t| **t - *at < chrono::TimeDelta::seconds(60))
            .count();
        worst = worst.max(window);
    }
    println!("faults/caps: {} admissions; the busiest 60 s window held {worst} (calls_per_minute {CALLS_PER_MINUTE})", claims.len());
    assert!(
        worst as u64 <= CALLS_PER_MINUTE,
        "{worst} admissions in 60 s"
    );
    assert_eq!(claims.len(), dialed, "every admitted call was dialed once");

    // The daily totals are exact: the counters against the store.
    let (_, usage) = c
        .get(&c.gateway_urls[1], "/api/v1/call-limits/usage", &t)
        .await;
    let minutes: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(billed_minutes), 0)::bigint FROM calls WHERE tenant_id = $1",
    )
    .bind(tenant)
    .fetch_one(&c.pool)
    .await
    .unwrap();
    println!("faults/caps: usage {usage}; billed minutes in the store {minutes}");
    assert_eq!(usage["daily_calls"].as_u64(), Some(claims.len() as u64));
    assert_eq!(usage["daily_minutes"].as_i64(), Some(minutes));
    assert_eq!(usage["concurrent"], 0);
    c.stop().await;
}
