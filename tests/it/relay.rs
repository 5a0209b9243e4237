//! The relay: every event reaches JetStream exactly once, in per-stream
//! order, across relay restarts, NATS restarts and competing relays.

use events::{Envelope, TenantId};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_nats::jetstream;
use switchboard::app::Deps;
use switchboard::relay::Relay;
use switchboard::store::{self, Position};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::support::{append_n, eventually, NatsProcess, TestEnv};

fn relay(deps: &Deps) -> Relay {
    switchboard::roles::relay(deps)
}

/// Every message in the namespace's events stream, in stream order.
pub(crate) async fn published(js: &jetstream::Context, deps: &Deps) -> Vec<Envelope> {
    let Ok(mut stream) = js.get_stream(deps.ns.events_stream()).await else {
        return Vec::new();
    };
    let Ok(info) = stream.info().await else {
        return Vec::new();
    };
    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
    let mut out = Vec::new();
    for seq in first..=last {
        if last == 0 {
            break;
        }
        if let Ok(msg) = stream.get_raw_message(seq).await {
            out.push(serde_json::from_slice(&msg.payload).expect("envelope body"));
        }
    }
    out
}

/// Waits until the relay's checkpoint is at the store's head: every event
/// published and acknowledged, so nothing more (no late duplicate) is on its
/// way before the stream is checked.
pub(crate) async fn drained(env: &TestEnv) {
    let caught_up = eventually(Duration::from_secs(30), || async {
        let head: Option<i64> = sqlx::query_scalar("SELECT max(global_position) FROM events")
            .fetch_one(&env.pool)
            .await
            .unwrap();
        let at = switchboard::checkpoint::load(&env.pool, switchboard::relay::NAME)
            .await
            .unwrap();
        at.global_position >= head.unwrap_or(0)
    })
    .await;
    assert!(caught_up, "the relay's checkpoint reached the head");
}

async fn count(js: &jetstream::Context, deps: &Deps) -> u64 {
    match js.get_stream(deps.ns.events_stream()).await {
        Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

/// Appends `commands` commands of 3 events spread over 10 streams.
async fn write(
    env: &TestEnv,
    tenant: TenantId,
    streams: &[Uuid],
    versions: &mut HashMap<Uuid, i64>,
    commands: usize,
) {
    for c in 0..commands {
        let s = streams[c % streams.len()];
        let v = versions.entry(s).or_default();
        append_n(&env.pool, tenant, s, *v, 3).await;
        *v += 3;
    }
}

/// The stream holds each stored event exactly once, each stream in order.
async fn assert_exactly_once_in_order(env: &TestEnv, js: &jetstream::Context, deps: &Deps) {
    let stored = store::read_global(&env.pool, Position::START, 1_000_000)
        .await
        .unwrap();
    let msgs = published(js, deps).await;
    let ids: Vec<Uuid> = msgs.iter().map(|m| m.event_id).collect();
    let unique: HashSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no event published twice");
    let want: HashSet<Uuid> = stored.iter().map(|e| e.envelope.event_id).collect();
    assert_eq!(unique, want, "every stored event published");
    let mut last: HashMap<Uuid, i64> = HashMap::new();
    for m in &msgs {
        let prev = last.insert(m.stream_id, m.version).unwrap_or(0);
        assert_eq!(m.version, prev + 1, "stream {} out of order", m.stream_id);
        assert_eq!(m.subject(deps.ns.as_str()).split('.').count(), 6);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_stopped_midstream_and_restarted_publishes_everything_once() {
    let env = TestEnv::new().await;
    let deps = env.deps().await;
    let tenant = TenantId::new();
    let streams: Vec<Uuid> = (0..10).map(|_| Uuid::new_v4()).collect();
    let mut versions = HashMap::new();
    write(&env, tenant, &streams, &mut versions, 100).await;

    let first = CancellationToken::new();
    let task = tokio::spawn(relay(&deps).run(first.clone()));
    assert!(
        eventually(Duration::from_secs(20), || async {
            count(&deps.js, &deps).await >= 60
        })
        .await
    );
    first.cancel();
    task.await.unwrap();

    write(&env, tenant, &streams, &mut versions, 100).await;
    let second = CancellationToken::new();
    let task = tokio::spawn(relay(&deps).run(second.clone()));
    assert!(
        eventually(Duration::from_secs(30), || async {
            count(&deps.js, &deps).await >= 600
        })
        .await
    );
    drained(&env).await;
    second.cancel();
    task.await.unwrap();
    assert_exactly_once_in_order(&env, &deps.js, &deps).await;
    env.cleanup(Some(&deps.js)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_stopped_and_restarted_midstream_loses_nothing() {
    let env = TestEnv::new().await;
    let mut nats = NatsProcess::start();
    let deps = env.deps_with_nats(&nats.url()).await;
    let tenant = TenantId::new();
    let streams: Vec<Uuid> = (0..10).map(|_| Uuid::new_v4()).collect();
    let mut versions = HashMap::new();
    // Enough stored that NATS dies with many publishes in flight: those on
    // the wire are lost while the client still sends what it had queued.
    write(&env, tenant, &streams, &mut versions, 500).await;

    let stop = CancellationToken::new();
    let task = tokio::spawn(relay(&deps).run(stop.clone()));
    assert!(
        eventually(Duration::from_secs(20), || async {
            count(&deps.js, &deps).await >= 30
        })
        .await
    );
    nats.stop();
    // Writes go on while NATS is down.
    write(&env, tenant, &streams, &mut versions, 50).await;
    // A fault window, not a wait for a condition: the relay meets the outage.
    tokio::time::sleep(Duration::from_millis(500)).await;
    nats.restart();
    write(&env, tenant, &streams, &mut versions, 50).await;
    assert!(
        eventually(Duration::from_secs(60), || async {
            count(&deps.js, &deps).await >= 1800
        })
        .await,
        "relay caught up after NATS came back"
    );
    drained(&env).await;
    stop.cancel();
    task.await.unwrap();
    assert_exactly_once_in_order(&env, &deps.js, &deps).await;
    env.cleanup(Some(&deps.js)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_relays_publish_once_and_the_standby_takes_over() {
    let env = TestEnv::new().await;
    let deps = env.deps().await;
    let tenant = TenantId::new();
    let streams: Vec<Uuid> = (0..10).map(|_| Uuid::new_v4()).collect();
    let mut versions = HashMap::new();
    write(&env, tenant, &streams, &mut versions, 60).await;

    let a = CancellationToken::new();
    let task_a = tokio::spawn(relay(&deps).run(a.clone()));
    assert!(
        eventually(Duration::from_secs(20), || async {
            count(&deps.js, &deps).await >= 30
        })
        .await
    );
    // B starts while A leads: it waits as a standby.
    let b = CancellationToken::new();
    let task_b = tokio::spawn(relay(&deps).run(b.clone()));
    write(&env, tenant, &streams, &mut versions, 60).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            count(&deps.js, &deps).await >= 360
        })
        .await
    );
    // A dies; B takes over and publishes what comes next.
    a.cancel();
    task_a.await.unwrap();
    write(&env, tenant, &streams, &mut versions, 60).await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            count(&deps.js, &deps).await >= 540
        })
        .await,
        "the standby took over"
    );
    drained(&env).await;
    b.cancel();
    task_b.await.unwrap();
    assert_exactly_once_in_order(&env, &deps.js, &deps).await;
    env.cleanup(Some(&deps.js)).await;
}

/// What the relay's order rests on, pinned against the real server: a
/// publish whose expected last message is not the stream's last is refused,
/// and a duplicate is answered as a duplicate before that check, so a
/// republished run goes through again.
#[tokio::test]
async fn jetstream_refuses_a_publish_after_a_lost_one_and_dedups_first() {
    let env = TestEnv::new().await;
    let deps = env.deps().await;
    switchboard::relay::ensure_stream(&deps.js, &deps.ns, 1)
        .await
        .unwrap();
    let subject = format!("{}.events.test.order", deps.ns.as_str());
    let publish = |id: &'static str, after: Option<&'static str>| {
        let js = deps.js.clone();
        let subject = subject.clone();
        async move {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", id);
            if let Some(after) = after {
                headers.insert("Nats-Expected-Last-Msg-Id", after);
            }
            js.publish_with_headers(subject, headers, "{}".into())
                .await
                .unwrap()
                .await
        }
    };
    assert!(!publish("a", None).await.unwrap().duplicate);
    assert!(!publish("b", Some("a")).await.unwrap().duplicate);
    // "c" was lost on the wire; "d", sent after it, must not land.
    assert!(publish("d", Some("c")).await.is_err(), "d refused");
    // The run again from the checkpoint: a and b are duplicates, whatever
    // they expect; c and d land in order.
    assert!(publish("a", None).await.unwrap().duplicate);
    assert!(publish("b", Some("a")).await.unwrap().duplicate);
    assert!(!publish("c", Some("b")).await.unwrap().duplicate);
    assert!(!publish("d", Some("c")).await.unwrap().duplicate);
    env.cleanup(Some(&deps.js)).await;
}
