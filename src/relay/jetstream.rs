//! The JetStream side of the relay: the events stream and publishing to it.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;

use crate::namespace::Namespace;
use crate::store::StoredEvent;

/// How long JetStream remembers a `Nats-Msg-Id`. It must outlast the relay's
/// longest gap between a publish and its checkpoint write (retries back off
/// to 30 s), with a wide margin for a database outage in between.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(30 * 60);

/// How long JetStream keeps events. The store is the history; the stream is
/// a feed for subscribers and workers, and must not grow without bound.
pub const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Creates the events stream if missing (file storage, dedupe window,
/// `replicas` copies; an existing stream keeps its own).
pub async fn ensure_stream(
    js: &jetstream::Context,
    ns: &Namespace,
    replicas: usize,
) -> anyhow::Result<stream::Stream> {
    let config = stream::Config {
        name: ns.events_stream(),
        subjects: vec![ns.events_subjects()],
        storage: stream::StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        max_age: RETENTION,
        num_replicas: replicas,
        ..Default::default()
    };
    js.get_or_create_stream(config)
        .await
        .map_err(|e| anyhow::anyhow!("create stream {}: {e}", ns.events_stream()))
}

/// Sends one event with its `Nats-Msg-Id`; the acknowledgement comes later.
///
/// `after` is the id of the event sent just before it on this run, if any:
/// the server stores this one only if that one is the last it stored
/// (`Nats-Expected-Last-Msg-Id`). When NATS dies with publishes on the wire,
/// those are lost while the client still sends the ones it queued after
/// reconnecting; the expectation makes the server refuse every one of them,
/// so none lands ahead of a lost predecessor, and the relay publishes them
/// again, in order, from its checkpoint. The server checks `Nats-Msg-Id`
/// first: a duplicate is still answered as one, whatever it expects.
pub(super) async fn send(
    js: &jetstream::Context,
    ns: &Namespace,
    event: &StoredEvent,
    after: Option<uuid::Uuid>,
) -> anyhow::Result<async_nats::jetstream::context::PublishAckFuture> {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", event.envelope.event_id.to_string().as_str());
    if let Some(after) = after {
        headers.insert("Nats-Expected-Last-Msg-Id", after.to_string().as_str());
    }
    let body = serde_json::to_vec(&event.envelope)?;
    js.publish_with_headers(event.envelope.subject(ns.as_str()), headers, body.into())
        .await
        .map_err(|e| anyhow::anyhow!("publish: {e}"))
}
