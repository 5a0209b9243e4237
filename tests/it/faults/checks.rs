//! What a fault scenario drives and judges, shared by the scenarios: a
//! steady originate load, quiescence at the store's head, every stored
//! event on JetStream exactly once, and every projection equal to a rebuild.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchboard::store::{self, Position};
use switchboard::{checkpoint, projection};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::Cluster;

/// Caps that admit everything a scenario sends: what it judges is the
/// faults, not the caps.
pub fn no_caps() -> Value {
    json!({"concurrent_max": 1000, "calls_per_minute": 100_000,
           "daily_calls_max": 1_000_000, "daily_minutes_max": 1_000_000})
}

/// Originates at a steady `rate` per second until stopped; answers are
/// counted by status (599: no answer), not judged.
pub struct Load {
    stop: Arc<AtomicBool>,
    answers: Arc<Mutex<BTreeMap<u16, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    pub fn start(c: &Cluster, token: &str, from: &'static str, rate: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(Mutex::new(BTreeMap::<u16, usize>::new()));
        let (gw, http, t) = (c.gateway_urls[0].clone(), c.http.clone(), token.to_owned());
        let task = {
            let (stop, answers) = (stop.clone(), answers.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(1000 / rate));
                let mut inflight = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let (gw, http, t, answers) =
                        (gw.clone(), http.clone(), t.clone(), answers.clone());
                    inflight.push(tokio::spawn(async move {
                        let body = json!({"from_number": from, "to_number": "+14155550100"});
                        let s = match http
                            .post(format!("{gw}/api/v1/calls/originate"))
                            .bearer_auth(&t)
                            .json(&body)
                            .timeout(Duration::from_secs(10))
                            .send()
                            .await
                        {
                            Ok(r) => r.status().as_u16(),
                            Err(_) => 599,
                        };
                        *answers.lock().await.entry(s).or_default() += 1;
                    }));
                }
                for f in inflight {
                    let _ = f.await;
                }
            })
        };
        Load {
            stop,
            answers,
            task,
        }
    }

    /// Stops sending, waits for the requests in flight; the answers.
    pub async fn stop(self) -> BTreeMap<u16, usize> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        let answers = self.answers.lock().await.clone();
        answers
    }
}

/// Where a reader (the relay, a projector) has got to.
pub async fn checkpoint_of(c: &Cluster, name: &str) -> Position {
    checkpoint::load(&c.pool, name)
        .await
        .unwrap_or(Position::START)
}

/// Waits until every call is final and the relay and every projector are at
/// the store's head.
pub async fn settled_at_head(c: &Cluster, timeout: Duration) -> bool {
    c.until(timeout, || async {
        let head = crate::support::last_position(&c.pool).await;
        let mut at_head = checkpoint_of(c, "relay").await >= head;
        for p in projection::all() {
            at_head &= checkpoint_of(c, &projection::checkpoint_name(&*p)).await >= head;
        }
        at_head && c.settled().await
    })
    .await
}

/// Asserts every stored event is on JetStream exactly once; how many.
pub async fn assert_published_once(c: &Cluster) -> usize {
    let stored = store::read_global(&c.pool, Position::START, 10_000_000)
        .await
        .unwrap();
    let nats = async_nats::connect(c.nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(nats);
    let mut stream = js.get_stream(c.ns.events_stream()).await.unwrap();
    let info = stream.info().await.unwrap();
    let mut published = Vec::new();
    for seq in info.state.first_sequence..=info.state.last_sequence {
        if let Ok(m) = stream.get_raw_message(seq).await {
            let env: events::Envelope = serde_json::from_slice(&m.payload).unwrap();
            published.push(env.event_id);
        }
    }
    let unique: HashSet<Uuid> = published.iter().copied().collect();
    let want: HashSet<Uuid> = stored.iter().map(|e| e.envelope.event_id).collect();
    assert_eq!(
        unique.len(),
        published.len(),
        "an event is on JetStream twice"
    );
    assert_eq!(unique, want, "JetStream and the store differ");
    stored.len()
}

async fn table_json(pool: &sqlx::PgPool, schema: &str, table: &str) -> Value {
    sqlx::query_scalar(&format!(
        "SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]') FROM {schema}.{table} t"
    ))
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Asserts every projection's tables equal a rebuild from the store.
pub async fn assert_projections_equal_rebuild(c: &Cluster) {
    let end = crate::support::last_position(&c.pool).await;
    for p in projection::all() {
        let schema = format!("fresh_{}", p.name());
        projection::rebuild_to_schema(&c.pool, &*p, &schema, Some(end))
            .await
            .unwrap();
        for table in p.tables() {
            let live = table_json(&c.pool, "public", table).await;
            assert_eq!(
                live,
                table_json(&c.pool, &schema, table).await,
                "{table} differs from a rebuild"
            );
        }
    }
}
