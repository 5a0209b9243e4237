//! Scenario 2: the relay publishing N stored events to JetStream, against
//! publishing the same envelopes directly, one at a time, each acknowledged
//! before the next (the relay's discipline).

use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use futures::StreamExt;
use switchboard::app::Deps;
use switchboard::relay::{Relay, DUPLICATE_WINDOW, NAME};
use switchboard::store::{self, StoredEvent};
use switchboard::{checkpoint, relay};
use tokio_util::sync::CancellationToken;

use crate::measure::{Row, Stats};

pub const N: usize = 5_000;
const TIMEOUT: Duration = Duration::from_secs(60);

/// The baseline's stream; its subjects are `<ns>_raw.events.>`.
pub fn raw_stream(deps: &Deps) -> String {
    format!("{}_RAW", deps.ns.events_stream())
}

fn raw_prefix(deps: &Deps) -> String {
    format!("{}_raw", deps.ns)
}

async fn messages(js: &jetstream::Context, name: &str) -> anyhow::Result<u64> {
    let mut s = js.get_stream(name).await?;
    Ok(s.info().await?.state.messages)
}

/// The events past the relay's checkpoint, appending more until there are N.
async fn pending(deps: &Deps) -> anyhow::Result<Vec<StoredEvent>> {
    let from = checkpoint::load(&deps.pool, NAME).await?;
    let have = store::read_global(&deps.pool, from, N as i64).await?.len();
    crate::append::fill(&deps.pool, N - have, crate::append::TASKS).await?;
    let events = store::read_global(&deps.pool, from, N as i64 + 1).await?;
    anyhow::ensure!(
        events.len() == N,
        "{} events pending, not {N}",
        events.len()
    );
    Ok(events)
}

async fn baseline(deps: &Deps, events: &[StoredEvent]) -> anyhow::Result<Stats> {
    let config = stream::Config {
        name: raw_stream(deps),
        subjects: vec![format!("{}.events.>", raw_prefix(deps))],
        storage: stream::StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    };
    deps.js.get_or_create_stream(config).await?;
    let prefix = raw_prefix(deps);
    let mut lat = Vec::with_capacity(events.len());
    let start = Instant::now();
    for e in events {
        let t = Instant::now();
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", e.envelope.event_id.to_string().as_str());
        let body = serde_json::to_vec(&e.envelope)?;
        let ack = deps
            .js
            .publish_with_headers(e.envelope.subject(&prefix), headers, body.into())
            .await?;
        ack.await?;
        lat.push(t.elapsed());
    }
    let elapsed = start.elapsed();
    let held = messages(&deps.js, &raw_stream(deps)).await?;
    anyhow::ensure!(held == N as u64, "baseline stream holds {held}, not {N}");
    Ok(Stats::new("js publish+ack", N, elapsed, lat))
}

/// From the relay's start until its stream holds N more messages; the
/// latencies are the gaps between consecutive events seen by a subscriber.
async fn relay(deps: &Deps) -> anyhow::Result<Stats> {
    relay::ensure_stream(&deps.js, &deps.ns).await?;
    let stream = deps.ns.events_stream();
    let target = messages(&deps.js, &stream).await? + N as u64;
    let mut sub = deps.nats.subscribe(deps.ns.events_subjects()).await?;
    deps.nats.flush().await?;
    let seen = tokio::spawn(async move {
        let mut at = Vec::with_capacity(N);
        while at.len() < N {
            match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
                Ok(Some(_)) => at.push(Instant::now()),
                _ => break,
            }
        }
        at
    });
    let stop = CancellationToken::new();
    let r = Relay::new(deps);
    let start = Instant::now();
    let task = tokio::spawn(r.run(stop.clone()));
    let seen = tokio::time::timeout(TIMEOUT, seen)
        .await
        .context("relay did not publish in time")??;
    while messages(&deps.js, &stream).await? < target {
        anyhow::ensure!(start.elapsed() < TIMEOUT, "relay did not finish in time");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = start.elapsed();
    stop.cancel();
    task.await?;
    let mut prev = start;
    let gaps = seen
        .iter()
        .map(|&t| {
            let gap = t - prev;
            prev = t;
            gap
        })
        .collect();
    Ok(Stats::new("relay -> JetStream", N, elapsed, gaps))
}

pub async fn run(deps: &Deps) -> anyhow::Result<Row> {
    let events = pending(deps).await?;
    let baseline = baseline(deps, &events).await?;
    let scenario = relay(deps).await?;
    Ok(Row {
        scenario,
        baseline,
        notes: vec![format!(
            "{N} stored events; time from spawning Relay::run (leader lock, stream check, \
             reads of 500, checkpoint per batch) until the stream holds them; p50/p99 are \
             gaps between consecutive events at a core NATS subscriber. Baseline: the same \
             envelopes and Nats-Msg-Id, publish then await ack, one at a time"
        )],
    })
}
