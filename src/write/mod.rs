//! The one write path: load a command's state, decide, append, and on a
//! version conflict do it again from fresh state.
//!
//! # Design
//! A `Command` says which streams its decision reads (`load`, through a
//! `Reader`) and what it decides (`decide`, pure). `run` does the rest:
//! - The first attempt reads cached state (`Store::load`): no query at all
//!   when this process has seen the stream. The append checks every version
//!   the decision read, so an old state can only cost a retry, never a
//!   wrong write.
//! - A conflict, or a refusal or no-op decided on cached state (which might
//!   be old), is decided again on fresh state (`Store::load_fresh`: one
//!   query for what is newer). A refusal on fresh state is final.
//! - A decision that appends nothing writes nothing and answers the state.
//! - After the append, every state the decision read is advanced in the
//!   cache by the events just written.
//!
//! Rejected is not failed: `RunError::Rejected` is the command's refusal,
//! `RunError::Store` a store failure (or conflicts that did not stop).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use uuid::Uuid;

use crate::commands::Rejection;
use crate::store::{
    Apply, CommandMeta, ExpectedVersion, Folded, Guard, Head, Loaded, Store, StoreError,
    StoredEvent, StreamAppend,
};
use events::{Event, StreamType};

/// Attempts before a command that keeps conflicting gives up (409).
const MAX_ATTEMPTS: usize = 8;

/// What a decision wants written.
#[derive(Debug, Default, PartialEq)]
pub struct Decision {
    /// Every stream the decision read, with its events (none: only checked).
    pub appends: Vec<StreamAppend>,
    pub guards: Vec<Guard>,
}

impl Decision {
    /// Appends `events` to one stream decided on at `version`.
    pub fn one(
        stream_type: StreamType,
        id: impl Into<Uuid>,
        version: i64,
        events: Vec<Event>,
    ) -> Self {
        Decision::default().and(stream_type, id, version, events)
    }

    /// Also appends `events` (none: only checks) to another stream.
    pub fn and(
        mut self,
        stream_type: StreamType,
        id: impl Into<Uuid>,
        version: i64,
        events: Vec<Event>,
    ) -> Self {
        self.appends.push(StreamAppend {
            stream_type,
            stream_id: id.into(),
            expected: ExpectedVersion::from_version(version),
            events,
        });
        self
    }

    /// Also commits `guard` with the events (or fails with it).
    pub fn guard(mut self, guard: Guard) -> Self {
        self.guards.push(guard);
        self
    }

    fn writes_nothing(&self) -> bool {
        self.appends.iter().all(|a| a.events.is_empty())
    }
}

/// A command the write path can run.
#[async_trait]
pub trait Command: Send + Sync {
    /// The folded streams `decide` reads.
    type State: Send;

    /// Loads them through `r` (cached or fresh, as the attempt needs).
    async fn load(&self, r: &Reader<'_>) -> Result<Self::State, StoreError>;

    /// Decides on them. No IO, no clock: everything is in `self` and `state`.
    fn decide(&self, state: &Self::State) -> Result<Decision, Rejection>;
}

/// A command that ran: the state it decided on, and what it wrote (nothing
/// when the decision was a no-op).
#[derive(Debug)]
pub struct Ran<S> {
    pub state: S,
    pub written: Vec<StoredEvent>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("refused: {0:?}")]
    Rejected(Rejection),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Advance = Box<dyn FnOnce(&Store, &[StoredEvent]) + Send>;

/// How a command reads its streams during one attempt.
pub struct Reader<'a> {
    store: &'a Store,
    fresh: bool,
    /// Some state came from the cache unchecked this attempt.
    cached: AtomicBool,
    /// How to advance each state read, once the append succeeded.
    advances: Mutex<Vec<Advance>>,
}

impl<'a> Reader<'a> {
    fn new(store: &'a Store, fresh: bool) -> Self {
        Reader {
            store,
            fresh,
            cached: AtomicBool::new(false),
            advances: Mutex::new(Vec::new()),
        }
    }

    fn keep<S>(&self, id: Uuid, loaded: &Loaded<S>, apply: Apply<S>)
    where
        S: Folded,
    {
        let (state, head) = (loaded.state.clone(), loaded.head);
        let advance: Advance = Box::new(move |store: &Store, written: &[StoredEvent]| {
            if written.iter().any(|e| e.envelope.stream_id == id) {
                let _ = store.advance(id, state, head, written, apply);
            }
        });
        self.advances
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(advance);
    }

    /// The state of stream `id`: cached on a first attempt, fresh after.
    pub async fn load<S>(
        &self,
        id: impl Into<Uuid>,
        apply: Apply<S>,
    ) -> Result<Loaded<S>, StoreError>
    where
        S: Folded,
    {
        let id = id.into();
        let loaded = if self.fresh {
            self.store.load_fresh(id, apply).await?
        } else {
            self.store.load(id, apply).await?
        };
        if !loaded.fresh {
            self.cached.store(true, Ordering::Relaxed);
        }
        self.keep(id, &loaded, apply);
        Ok(loaded)
    }

    /// The state of a stream this command creates (an id it just drew): no
    /// read, the append checks that it does not exist.
    pub fn new_stream<S>(&self, id: impl Into<Uuid>, apply: Apply<S>) -> Loaded<S>
    where
        S: Folded,
    {
        let id = id.into();
        let loaded = Loaded {
            state: S::default(),
            head: Head::NONE,
            fresh: true,
        };
        self.keep(id, &loaded, apply);
        loaded
    }

    /// Brings the cached states this command read up to what it wrote.
    fn advance_cache(&self, written: &[StoredEvent]) {
        let advances =
            std::mem::take(&mut *self.advances.lock().unwrap_or_else(|e| e.into_inner()));
        for advance in advances {
            advance(self.store, written);
        }
    }

    fn used_cache(&self) -> bool {
        self.cached.load(Ordering::Relaxed)
    }
}

/// Runs `cmd` as `meta`, retrying from fresh state on conflicts.
#[tracing::instrument(
    name = "command",
    skip_all,
    fields(command = std::any::type_name::<C>().rsplit("::").next().unwrap_or("?"),
           tenant_id = %meta.tenant_id, command_id = %meta.command_id)
)]
pub async fn run<C: Command>(
    store: &Store,
    meta: &CommandMeta,
    cmd: &C,
) -> Result<Ran<C::State>, RunError> {
    let mut fresh = false;
    let mut last_conflict = None;
    for _ in 0..MAX_ATTEMPTS {
        let reader = Reader::new(store, fresh);
        let state = cmd.load(&reader).await?;
        let decision = match cmd.decide(&state) {
            Ok(d) => d,
            Err(_) if reader.used_cache() => {
                fresh = true;
                continue;
            }
            Err(r) => return Err(RunError::Rejected(r)),
        };
        if decision.writes_nothing() && decision.guards.is_empty() {
            if reader.used_cache() {
                fresh = true;
                continue;
            }
            return Ok(Ran {
                state,
                written: Vec::new(),
            });
        }
        match store
            .append(meta.clone(), &decision.appends, decision.guards)
            .await
        {
            Ok(out) => {
                let written = out.into_events();
                reader.advance_cache(&written);
                return Ok(Ran { state, written });
            }
            Err(e @ StoreError::Conflict { .. }) => {
                last_conflict = Some(e);
                fresh = true;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(last_conflict
        .unwrap_or(StoreError::Db(sqlx::Error::PoolClosed))
        .into())
}

/// `loaded` with the events just written to stream `id` folded on.
pub fn with_written<S: Clone>(
    loaded: &Loaded<S>,
    id: impl Into<Uuid>,
    written: &[StoredEvent],
    apply: Apply<S>,
) -> Result<S, StoreError> {
    let id = id.into();
    crate::store::fold_onto(
        loaded.state.clone(),
        written.iter().filter(|e| e.envelope.stream_id == id),
        apply,
    )
}
