//! The relay publishing N stored events to JetStream (leader lock, reads of
//! 500, ordered pipelined publish, checkpoint per batch), against the
//! ceiling: the same envelopes with the same `Nats-Msg-Id`, all published
//! from this process with every acknowledgement awaited afterwards.

use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use switchboard::app::Deps;
use switchboard::relay::{DUPLICATE_WINDOW, NAME};
use switchboard::store::{self, StoredEvent};
use switchboard::{checkpoint, relay};
use tokio_util::sync::CancellationToken;

use crate::measure::{concurrent, Row, Target};

pub const N: usize = 20_000;
const TIMEOUT: Duration = Duration::from_secs(120);

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
    let (st, tenant) = (deps.store.clone(), events::TenantId::new());
    concurrent(N - have, 64, move |_, i| {
        let st = st.clone();
        async move { crate::append::append_one(&st, tenant, i).await }
    })
    .await?;
    let mut events = Vec::with_capacity(N);
    let mut at = from;
    while events.len() < N {
        let batch = store::read_global(&deps.pool, at, 5_000).await?;
        let Some(last) = batch.last() else { break };
        at = last.position;
        events.extend(batch);
    }
    events.truncate(N);
    anyhow::ensure!(
        events.len() == N,
        "{} events pending, not {N}",
        events.len()
    );
    Ok(events)
}

/// Publishes every event, then awaits every acknowledgement: events/s.
async fn ceiling(deps: &Deps, events: &[StoredEvent]) -> anyhow::Result<f64> {
    let config = stream::Config {
        name: raw_stream(deps),
        subjects: vec![format!("{}.events.>", raw_prefix(deps))],
        storage: stream::StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    };
    deps.js.get_or_create_stream(config).await?;
    let prefix = raw_prefix(deps);
    let start = Instant::now();
    let mut acks = Vec::with_capacity(events.len());
    for e in events {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", e.envelope.event_id.to_string().as_str());
        let body = serde_json::to_vec(&e.envelope)?;
        acks.push(
            deps.js
                .publish_with_headers(e.envelope.subject(&prefix), headers, body.into())
                .await?,
        );
    }
    for ack in acks {
        ack.await?;
    }
    let elapsed = start.elapsed();
    let held = messages(&deps.js, &raw_stream(deps)).await?;
    anyhow::ensure!(held == N as u64, "baseline stream holds {held}, not {N}");
    Ok(N as f64 / elapsed.as_secs_f64())
}

/// From the relay's start until its stream holds N more messages: events/s.
async fn relay(deps: &Deps) -> anyhow::Result<f64> {
    relay::ensure_stream(&deps.js, &deps.ns, deps.stream_replicas).await?;
    let stream = deps.ns.events_stream();
    let target = messages(&deps.js, &stream).await? + N as u64;
    let stop = CancellationToken::new();
    let start = Instant::now();
    let task = tokio::spawn(switchboard::roles::relay(deps).run(stop.clone()));
    tokio::time::timeout(TIMEOUT, async {
        while messages(&deps.js, &stream).await? < target {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok::<_, anyhow::Error>(())
    })
    .await
    .context("relay did not publish in time")??;
    let elapsed = start.elapsed();
    stop.cancel();
    let _ = task.await;
    Ok(N as f64 / elapsed.as_secs_f64())
}

pub async fn run(deps: &Deps) -> anyhow::Result<Vec<Row>> {
    let events = pending(deps).await?;
    let base = ceiling(deps, &events).await?;
    let r = relay(deps).await?;
    Ok(vec![Row::new(
        "relay, store → JetStream",
        "events/s",
        r,
        "/s",
    )
    .against("pipelined publish", base)
    .target(Target::RatioAtLeast(0.8))])
}
