//! `GET /api/v1/events/stream` (`audit:read`): this tenant's events as
//! server-sent events, live, each the §5 envelope with its global position
//! as the SSE id, filterable by `stream_type`, `stream_id` and `type`.
//!
//! One tail of the store per gateway process (`Hub::follow`) fans every
//! newly visible event out to the connections on a bounded broadcast
//! channel; each connection keeps only its tenant's events that match its
//! filters. A client that resumes (`Last-Event-ID`, or `after=` where a
//! header cannot be set) first reads what it missed from the store, then
//! joins the live tail.
//!
//! # Invariants
//! - No gap, no duplicate across a reconnect: the connection subscribes to
//!   the tail *before* its last read of the store (a resume) or of the
//!   store's head (a live start), and passes on only positions above the
//!   last one it sent or scanned. Since positions become visible
//!   in increasing order (ARCHITECTURE.md "Global order"), an event is
//!   either in the store read (it was visible then) or reaches the tail
//!   after the subscription.
//! - Memory is bounded: the channel holds a fixed number of events for all
//!   connections; a connection that falls that far behind gets an
//!   `overflow` event naming where to resume and is closed, rather than
//!   buffered.
//! - A tenant sees only its own events: the tenant comes from the token and
//!   every event is checked against it.

use std::convert::Infallible;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use events::{StreamType, TenantId};
use futures::Stream;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::list::ListQuery;
use super::{ApiError, Gateway};
use crate::auth::{Principal, Scope};
use crate::domain::FieldError;
use crate::store::{self, Position, StoredEvent, TenantFilter};

/// Events a catch-up reads per query.
const PAGE: i64 = 500;
/// Events the tail reads per query.
const TAIL_PAGE: i64 = 1000;
/// How often an idle tail (no connection open) moves its cursor to the end.
const IDLE_SKIP: Duration = Duration::from_secs(1);

/// The process's tail of the store, shared by every connection.
pub struct Hub {
    tx: broadcast::Sender<Arc<StoredEvent>>,
    /// The last position the tail has read (set before it sends them);
    /// -1 until `init`.
    cursor: AtomicI64,
    /// Cancelled when the HTTP stage stops, so open streams end and the
    /// server's graceful shutdown is not held up by them.
    closing: CancellationToken,
    heartbeat: Duration,
    /// Told when a connection subscribes, so an idle tail wakes for it.
    subscribed: tokio::sync::Notify,
}

impl Hub {
    /// `buffer`: the events the live channel holds for its slowest
    /// connection (shared by all of them, allocated once).
    pub fn new(heartbeat: Duration, buffer: usize) -> Hub {
        Hub {
            tx: broadcast::channel(buffer.max(1)).0,
            cursor: AtomicI64::new(-1),
            closing: CancellationToken::new(),
            heartbeat,
            subscribed: tokio::sync::Notify::new(),
        }
    }

    /// Starts the tail at the store's end; called before the API serves, so
    /// no connection can have subscribed behind it.
    pub async fn init(&self, pool: &sqlx::PgPool) -> Result<(), store::StoreError> {
        let head = store::head(pool).await?.global_position;
        let _ = self
            .cursor
            .compare_exchange(-1, head, Ordering::SeqCst, Ordering::SeqCst);
        Ok(())
    }

    /// Ends every open stream (the HTTP stage is stopping).
    pub fn close(&self) {
        self.closing.cancel();
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<StoredEvent>> {
        let rx = self.tx.subscribe();
        self.subscribed.notify_one();
        rx
    }

    /// Tails the store from its current end until `stop`, waking on this
    /// process's commits and on other processes' NOTIFY. With no connection
    /// open it only keeps its cursor at the end, reading no events.
    pub async fn follow(self: Arc<Self>, deps: crate::app::Deps, stop: CancellationToken) {
        loop {
            let run = self.tail(&deps, &stop);
            match run.await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "event feed tail failed; starting again");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.cancelled() => return,
                    }
                }
            }
        }
    }

    /// Where the tail has read to.
    fn position(&self) -> Position {
        Position::new(self.cursor.load(Ordering::SeqCst))
    }

    async fn tail(&self, deps: &crate::app::Deps, stop: &CancellationToken) -> anyhow::Result<()> {
        let mut wake = store::Wake::new(&deps.pool, Some(&deps.store), None).await?;
        let head = || async { anyhow::Ok(store::head(&deps.pool).await?.global_position) };
        // Only when `init` was skipped; a restart after an error keeps the
        // cursor, which is exactly what was sent.
        if self.cursor.load(Ordering::SeqCst) < 0 {
            let h = head().await?;
            let _ = self
                .cursor
                .compare_exchange(-1, h, Ordering::SeqCst, Ordering::SeqCst);
        }
        let mut skipped: Option<std::time::Instant> = None;
        loop {
            let at = Position::new(self.cursor.load(Ordering::SeqCst));
            if self.tx.receiver_count() == 0 {
                // Nobody listens: keep the cursor near the end, reading the
                // head at most once per IDLE_SKIP (not once per commit), so
                // a first subscriber is sent little it did not ask for.
                // Skip ahead only if still nobody listens *after* the head
                // was read: a client that subscribes later reads a head at
                // or above it, so nothing it waits for is skipped.
                if skipped.is_none_or(|t| t.elapsed() >= IDLE_SKIP) {
                    let h = head().await?;
                    if self.tx.receiver_count() == 0 {
                        self.cursor
                            .store(h.max(at.global_position), Ordering::SeqCst);
                    }
                    skipped = Some(std::time::Instant::now());
                }
                tokio::select! {
                    woke = wake.wait(IDLE_SKIP, self.position()) => { woke?; }
                    _ = self.subscribed.notified() => {}
                    _ = stop.cancelled() => return Ok(()),
                }
                continue;
            }
            let batch = store::read_global(&deps.pool, at, TAIL_PAGE).await?;
            if let Some(last) = batch.last() {
                self.cursor
                    .store(last.position.global_position, Ordering::SeqCst);
                for e in batch.iter() {
                    // No receiver left is fine: nobody is listening.
                    let _ = self.tx.send(Arc::new(e.clone()));
                }
                if batch.len() as i64 == TAIL_PAGE {
                    continue;
                }
            }
            tokio::select! {
                woke = wake.wait(Duration::from_secs(1), self.position()) => { woke?; }
                _ = stop.cancelled() => return Ok(()),
            }
        }
    }
}

/// What a connection asked for.
#[derive(Debug, Clone)]
struct Filter {
    stream_type: Option<StreamType>,
    stream_id: Option<Uuid>,
    event_type: Option<String>,
    /// Resume after this position (`Last-Event-ID` or `after`).
    after: Option<Position>,
}

impl Filter {
    fn parse(q: &ListQuery, headers: &HeaderMap) -> Result<Filter, ApiError> {
        q.only(&["stream_type", "stream_id", "type", "after"])?;
        let mut errors = Vec::new();
        // Every list takes these two; a stream has no pages.
        for key in ["limit", "cursor"] {
            if q.get(key).is_some() {
                errors.push(FieldError::new(key, "unknown query parameter"));
            }
        }
        let stream_type = q.get("stream_type").and_then(|t| {
            let parsed = StreamType::parse(t);
            if parsed.is_none() {
                errors.push(FieldError::new("stream_type", "is not a stream type"));
            }
            parsed
        });
        let stream_id = match q.uuid("stream_id") {
            Ok(id) => id,
            Err(_) => {
                errors.push(FieldError::new("stream_id", "must be a UUID"));
                None
            }
        };
        let event_type = super::audit::event_type(q, &mut errors);
        let header = headers
            .get("last-event-id")
            .map(|v| v.to_str().unwrap_or("\u{0}"));
        // A browser's EventSource reconnects to the same URL (its `after=`)
        // and adds Last-Event-ID: the header is the newer of the two.
        let after = match (header, q.get("after")) {
            (Some(h), _) => Self::position("Last-Event-ID", h, &mut errors),
            (None, Some(a)) => Self::position("after", a, &mut errors),
            (None, None) => None,
        };
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(Filter {
            stream_type,
            stream_id,
            event_type,
            after,
        })
    }

    fn position(name: &str, v: &str, errors: &mut Vec<FieldError>) -> Option<Position> {
        let p = Position::from_cursor(v.trim());
        if p.is_none() {
            errors.push(FieldError::new(name, "must be an event id from this feed"));
        }
        p
    }

    fn matches(&self, tenant: TenantId, e: &StoredEvent) -> bool {
        let env = &e.envelope;
        env.tenant_id == tenant
            && self.stream_type.is_none_or(|t| env.stream_type == t)
            && self.stream_id.is_none_or(|id| env.stream_id == id)
            && self
                .event_type
                .as_deref()
                .is_none_or(|t| env.event_type == t)
    }
}

fn sse(e: &StoredEvent) -> SseEvent {
    let event = SseEvent::default()
        .id(e.position.to_cursor())
        .event(e.envelope.event_type.as_str());
    match serde_json::to_string(&e.envelope) {
        Ok(json) => event.data(json),
        // An envelope always serializes; say so rather than send nothing.
        Err(_) => event
            .event("error")
            .data("{\"error\":\"unserializable event\"}"),
    }
}

/// The last SSE event of a stream that ends for a reason of ours.
fn closing(kind: &str, last: Position, detail: &str) -> SseEvent {
    let body = serde_json::json!({
        "error": kind, "detail": detail, "resume_after": last.to_cursor(),
    });
    SseEvent::default().event(kind).data(body.to_string())
}

enum Phase {
    CatchUp,
    Live,
    Done,
}

struct Conn {
    pool: sqlx::PgPool,
    hub: Arc<Hub>,
    tenant: TenantId,
    filter: Filter,
    /// Taken when the catch-up is nearly done (before its last read), so a
    /// long catch-up does not fill the live channel meanwhile.
    rx: Option<broadcast::Receiver<Arc<StoredEvent>>>,
    /// The highest position sent or scanned past.
    last: Position,
    phase: Phase,
    pending: std::collections::VecDeque<StoredEvent>,
    closing: CancellationToken,
}

impl Conn {
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if self.closing.is_cancelled() && !matches!(self.phase, Phase::Done) {
                // Resume below the first event not yet sent.
                let resume = match self.pending.front() {
                    Some(e) => Position::new(e.position.global_position - 1),
                    None => self.last,
                };
                self.phase = Phase::Done;
                self.pending.clear();
                return Some(closing(
                    "closing",
                    resume,
                    "the server is stopping; resume with Last-Event-ID",
                ));
            }
            if let Some(e) = self.pending.pop_front() {
                return Some(sse(&e));
            }
            match self.phase {
                Phase::Done => return None,
                Phase::CatchUp => {
                    let f = TenantFilter {
                        stream_id: self.filter.stream_id,
                        event_type: self.filter.event_type.clone(),
                        after: Some(self.last),
                        ..TenantFilter::default()
                    };
                    let page = match store::read_tenant(&self.pool, self.tenant, &f, PAGE).await {
                        Ok(page) => page,
                        Err(e) => {
                            tracing::warn!(error = %e, "event feed catch-up failed");
                            self.phase = Phase::Done;
                            return Some(closing(
                                "unavailable",
                                self.last,
                                "the store could not be read; resume later",
                            ));
                        }
                    };
                    if (page.len() as i64) < PAGE {
                        match self.rx {
                            // Caught up once: subscribe, then read once more
                            // what became visible meanwhile.
                            None => self.rx = Some(self.hub.subscribe()),
                            Some(_) => self.phase = Phase::Live,
                        }
                    }
                    if let Some(e) = page.last() {
                        self.last = e.position;
                    }
                    let (tenant, filter) = (self.tenant, &self.filter);
                    self.pending
                        .extend(page.into_iter().filter(|e| filter.matches(tenant, e)));
                }
                Phase::Live => {
                    let Some(rx) = self.rx.as_mut() else {
                        self.phase = Phase::Done;
                        continue;
                    };
                    let got = tokio::select! {
                        got = rx.recv() => got,
                        _ = self.closing.cancelled() => {
                            self.phase = Phase::Done;
                            return Some(closing("closing", self.last, "the server is stopping; resume with Last-Event-ID"));
                        }
                    };
                    match got {
                        Ok(e) if e.position > self.last => {
                            self.last = e.position;
                            if self.filter.matches(self.tenant, &e) {
                                return Some(sse(&e));
                            }
                        }
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            self.phase = Phase::Done;
                            return Some(closing(
                                "overflow",
                                self.last,
                                "this client fell too far behind; resume with Last-Event-ID",
                            ));
                        }
                        Err(broadcast::error::RecvError::Closed) => {
                            self.phase = Phase::Done;
                        }
                    }
                }
            }
        }
    }
}

#[utoipa::path(get, path = "/api/v1/events/stream", tag = "audit",
    params(("stream_type" = Option<String>, Query), ("stream_id" = Option<Uuid>, Query),
        ("type" = Option<String>, Query),
        ("after" = Option<String>, Query, description = "resume after this event id (as Last-Event-ID)"),
        ("Last-Event-ID" = Option<String>, Header, description = "resume after this event id")),
    responses((status = 200, description = "text/event-stream: id = global position, event = event type, data = the event envelope; heartbeats as comments; a last `overflow` or `closing` event names where to resume", content_type = "text/event-stream"),
        (status = 400), (status = 401), (status = 403)))]
pub async fn stream(
    State(gw): State<Gateway>,
    p: Principal,
    headers: HeaderMap,
    q: ListQuery,
) -> Result<Response, ApiError> {
    p.require(Scope::AuditRead)?;
    let filter = Filter::parse(&q, &headers)?;
    let hub = gw.feed.clone();
    let (rx, last, phase) = match filter.after {
        Some(after) => (None, after, Phase::CatchUp),
        None => {
            // Subscribed first, then the head read: whatever the tail sends
            // from now on and is above the head is new to this client.
            let rx = hub.subscribe();
            (Some(rx), store::head(&gw.deps.pool).await?, Phase::Live)
        }
    };
    let conn = Conn {
        pool: gw.deps.pool.clone(),
        hub: hub.clone(),
        tenant: p.tenant_id,
        filter,
        rx,
        last,
        phase,
        pending: Default::default(),
        closing: hub.closing.clone(),
    };
    let events = futures::stream::unfold(conn, |mut c| async move {
        c.next().await.map(|e| (Ok::<_, Infallible>(e), c))
    });
    let events: std::pin::Pin<Box<dyn Stream<Item = Result<SseEvent, Infallible>> + Send>> =
        Box::pin(events);
    let keep_alive = KeepAlive::new().interval(hub.heartbeat).text("heartbeat");
    Ok(Sse::new(events).keep_alive(keep_alive).into_response())
}
