//! Scale-out on the engines' own clusters: the cost caps on a three-master
//! Redis Cluster (every script on one slot, NOSCRIPT after a flush handled),
//! and calls placed end to end on a three-node JetStream cluster (events
//! stream with 3 replicas) plus that Redis Cluster while one NATS node is
//! SIGKILLed: nothing lost, nothing published twice, no call dialed twice.

mod procs;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use events::{CallId, TenantId};
use reqwest::StatusCode;
use serde_json::json;
use switchboard::caps::{Admission, Caps};
use switchboard::clock::SystemClock;
use switchboard::domain::limits::CallLimits;
use switchboard::redis_conn::RedisConn;

use crate::app::TestApp;
use crate::origination::{dials, originate_detached, set_limits, sim, tenant_with_number};
use crate::support::TestEnv;
use procs::{NatsCluster, RedisCluster};

fn limits(concurrent: u32) -> CallLimits {
    CallLimits {
        concurrent_max: concurrent,
        calls_per_minute: 10_000,
        daily_calls_max: 10_000,
        daily_minutes_max: 10_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_hold_on_a_redis_cluster_across_slots_and_script_flushes() {
    let cluster = RedisCluster::start();
    let env = TestEnv::new().await;
    let redis = RedisConn::connect(&cluster.url(), true).await.unwrap();
    let caps = Caps::new(
        redis,
        env.pool.clone(),
        env.ns.clone(),
        SystemClock::shared(),
        Duration::from_secs(3600),
    );
    // Racing reservations of many tenants (their keys hash to different
    // slots, so different nodes): each tenant gets exactly its cap.
    const TENANTS: usize = 8;
    const RACERS: usize = 30;
    const CAP: u32 = 7;
    let tenants: Vec<TenantId> = (0..TENANTS).map(|_| TenantId::new()).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for t in &tenants {
        for _ in 0..RACERS {
            let (caps, t) = (caps.clone(), *t);
            tasks.spawn(async move {
                let call = CallId::new();
                let admitted =
                    caps.reserve(t, call, &limits(CAP)).await.unwrap() == Admission::Admitted;
                (t, call, admitted)
            });
        }
    }
    let mut admitted: HashMap<TenantId, Vec<CallId>> = HashMap::new();
    while let Some(r) = tasks.join_next().await {
        let (t, call, ok) = r.unwrap();
        if ok {
            admitted.entry(t).or_default().push(call);
        }
    }
    for t in &tenants {
        assert_eq!(
            admitted[t].len(),
            CAP as usize,
            "tenant {t} admitted past or under its cap"
        );
        assert_eq!(caps.usage(*t).await.unwrap().concurrent, u64::from(CAP));
    }
    let busy = cluster.sizes().iter().filter(|n| **n > 0).count();
    assert!(
        busy >= 2,
        "the tenants' keys should spread over the masters: {:?}",
        cluster.sizes()
    );

    // Every node forgets the scripts (a restart, a failover): the next call
    // of each script loads it again instead of failing.
    for p in &cluster.ports {
        assert!(cluster.cli(*p, &["script", "flush"]).contains("OK"));
    }
    let t = tenants[0];
    let freed = admitted[&t][0];
    caps.release(t, freed, chrono::Utc::now(), 1).await.unwrap();
    assert_eq!(caps.usage(t).await.unwrap().concurrent, u64::from(CAP) - 1);
    let fresh = TenantId::new();
    assert_eq!(
        caps.reserve(fresh, CallId::new(), &limits(1))
            .await
            .unwrap(),
        Admission::Admitted
    );
    assert!(matches!(
        caps.reserve(fresh, CallId::new(), &limits(1))
            .await
            .unwrap(),
        Admission::Refused(_)
    ));
    env.cleanup(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_go_through_clustered_nats_and_redis_while_a_nats_node_dies() {
    let mut nats = NatsCluster::start();
    nats.ready().await;
    let redis = RedisCluster::start();
    let mut env = TestEnv::new().await;
    env.redis_url = redis.url();
    env.redis_cluster = true;
    let app =
        TestApp::spawn_on_nats(env, &nats.url(), &["--stream-replicas", "3"], None, true).await;
    sim(
        &app,
        json!({"ring_delay_ms": 20, "answer_delay_ms": 20, "call_duration_s": 1, "call_hold_ms": 50}),
    );
    let from = "+12025550123";
    let t = tenant_with_number(&app, from).await;
    set_limits(&app, &t, 100, 1000, 10_000, 10_000).await;

    // The stream has 3 replicas; the node to kill is its RAFT leader, so
    // the stream itself must fail over, not just a client connection.
    let stream_name = app.env.ns.events_stream();
    let mut leader = None;
    for _ in 0..100 {
        if let Ok(mut s) = app.deps.js.get_stream(&stream_name).await {
            let info = s.info().await.unwrap();
            assert_eq!(
                info.config.num_replicas, 3,
                "the events stream is replicated on every node"
            );
            leader = info.cluster.as_ref().and_then(|c| c.leader.clone());
            if leader.is_some() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let victim: usize = leader
        .as_deref()
        .and_then(|l| l.strip_prefix('n'))
        .and_then(|i| i.parse().ok())
        .expect("the stream has a leader");

    // Calls before, during and after one node's death.
    const WAVE: usize = 15;
    let mut answers = Vec::new();
    for wave in 0..3 {
        let handles: Vec<_> = (0..WAVE)
            .map(|_| originate_detached(&app, &t, from))
            .collect();
        if wave == 1 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            nats.kill(victim);
        }
        for h in handles {
            answers.push(h.await.unwrap());
        }
    }
    let mut calls = BTreeSet::new();
    for (status, body) in &answers {
        // 202 is an answer too: the outcome came later than the wait.
        assert!(
            matches!(*status, StatusCode::OK | StatusCode::ACCEPTED),
            "{status} {body}"
        );
        calls.insert(body["call_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(calls.len(), 3 * WAVE);

    // Every call ends, each dialed once.
    let mut open: BTreeSet<String> = calls.clone();
    for _ in 0..600 {
        let mut still = BTreeSet::new();
        for c in &open {
            let r = app.get(&format!("/api/v1/calls/{c}"), &t).await;
            if r.body["status"] != "completed" {
                still.insert(c.clone());
            }
        }
        open = still;
        if open.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        open.is_empty(),
        "calls never completed: {open:?}\n{}",
        nats.logs()
    );
    let dialed = dials(&app);
    assert_eq!(dialed.len(), calls.len(), "one dial per call");
    assert_eq!(dialed.iter().collect::<BTreeSet<_>>().len(), calls.len());

    // Every stored event is on the stream exactly once.
    crate::relay::drained(&app.env).await;
    let stored: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT event_id FROM events ORDER BY global_position")
            .fetch_all(&app.env.pool)
            .await
            .unwrap();
    let published: Vec<uuid::Uuid> = crate::relay::published(&app.deps.js, &app.deps)
        .await
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(published.len(), stored.len(), "published once each");
    assert_eq!(
        published.iter().collect::<BTreeSet<_>>(),
        stored.iter().collect::<BTreeSet<_>>()
    );
    app.stop().await;
    drop(redis);
}
