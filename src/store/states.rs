//! Command state in O(1): each stream's folded state and head, kept per
//! process, so a command neither reads nor folds a stream's history.
//!
//! # Design
//! A cached state may be old (another process appended since), never wrong:
//! it is the fold of versions 1..=v exactly. Commands decide on it
//! optimistically; the append checks version v, and a conflict reloads the
//! state by reading only the events after v (`load_fresh`) and decides
//! again. Reads that no append will check (the worker's caps, the dial's
//! kill switch) use `load_fresh`, which costs one indexed query however long
//! the stream is, or, for several streams at once, `stale` and `fresh`
//! around one `read_streams_after`.

use std::any::Any;
use std::sync::Arc;

use events::Event;

use super::append::Head;
use super::row::StoredEvent;
use super::{fold_onto, read_stream_after, Store, StoreError};
use crate::commands::state::At;
use uuid::Uuid;

/// A stream's state as a command reads it.
#[derive(Debug, Clone)]
pub struct Loaded<S> {
    pub state: S,
    /// The version (and hash) `state` is the fold of.
    pub head: Head,
    /// Read from the store just now (not taken from the cache unchecked).
    pub fresh: bool,
}

/// How a state type folds an event.
pub type Apply<S> = fn(&mut S, At, &Event);

/// States by stream, bounded (least recently used go first).
pub struct States {
    cache: quick_cache::sync::Cache<Uuid, Arc<dyn Any + Send + Sync>>,
}

impl Default for States {
    fn default() -> Self {
        States {
            cache: quick_cache::sync::Cache::new(100_000),
        }
    }
}

/// A cached state not yet checked against the store (`Store::stale`).
pub struct Stale<S> {
    id: Uuid,
    state: S,
    head: Head,
}

impl<S> Stale<S> {
    /// The stream and the version its events are to be read after.
    pub fn after(&self) -> (Uuid, i64) {
        (self.id, self.head.version)
    }
}

struct Entry<S> {
    state: S,
    head: Head,
}

impl States {
    fn get<S: Clone + Send + Sync + 'static>(&self, id: Uuid) -> Option<(S, Head)> {
        let any = self.cache.get(&id)?;
        let e = any.downcast_ref::<Entry<S>>()?;
        Some((e.state.clone(), e.head))
    }

    /// Keeps `state` at `head` unless a newer one is kept already.
    pub fn put<S: Clone + Send + Sync + 'static>(&self, id: Uuid, state: &S, head: Head) {
        let newer_kept = self.cache.get(&id).is_some_and(|any| {
            any.downcast_ref::<Entry<S>>()
                .is_some_and(|e| e.head.version > head.version)
        });
        if newer_kept {
            return;
        }
        self.cache.insert(
            id,
            Arc::new(Entry {
                state: state.clone(),
                head,
            }),
        );
    }

    pub fn forget(&self, id: Uuid) {
        self.cache.remove(&id);
    }
}

impl Store {
    /// The state of stream `id`: cached (possibly old, see the module), or
    /// read and folded once.
    pub async fn load<S>(
        &self,
        id: impl Into<Uuid>,
        apply: Apply<S>,
    ) -> Result<Loaded<S>, StoreError>
    where
        S: Clone + Default + Send + Sync + 'static,
    {
        let id = id.into();
        match self.states().get::<S>(id) {
            Some((state, head)) => Ok(Loaded {
                state,
                head,
                fresh: false,
            }),
            None => self.catch_up(id, S::default(), Head::NONE, apply).await,
        }
    }

    /// The state of stream `id` as stored now: the cached state brought up
    /// to date with the events after it (one query).
    pub async fn load_fresh<S>(
        &self,
        id: impl Into<Uuid>,
        apply: Apply<S>,
    ) -> Result<Loaded<S>, StoreError>
    where
        S: Clone + Default + Send + Sync + 'static,
    {
        let Stale { id, state, head } = self.stale::<S>(id);
        self.catch_up(id, state, head, apply).await
    }

    /// Stream `id`'s cached state (or none yet), to be brought up to date
    /// together with others: `read_streams_after` for the `after` of each,
    /// then `fresh` with what it read. Several states read fresh for one
    /// decision cost one query, not one each.
    pub fn stale<S>(&self, id: impl Into<Uuid>) -> Stale<S>
    where
        S: Clone + Default + Send + Sync + 'static,
    {
        let id = id.into();
        let (state, head) = self
            .states()
            .get::<S>(id)
            .unwrap_or_else(|| (S::default(), Head::NONE));
        Stale { id, state, head }
    }

    /// `stale` brought up to date with `newer` (read for it and maybe for
    /// other streams, by `read_streams_after`).
    pub fn fresh<S>(
        &self,
        stale: Stale<S>,
        newer: &[StoredEvent],
        apply: Apply<S>,
    ) -> Result<Loaded<S>, StoreError>
    where
        S: Clone + Default + Send + Sync + 'static,
    {
        self.advance(stale.id, stale.state, stale.head, newer, apply)
    }

    async fn catch_up<S>(
        &self,
        id: Uuid,
        state: S,
        head: Head,
        apply: Apply<S>,
    ) -> Result<Loaded<S>, StoreError>
    where
        S: Clone + Default + Send + Sync + 'static,
    {
        let newer = read_stream_after(self.pool(), id, head.version).await?;
        self.advance(id, state, head, &newer, apply)
    }

    /// Folds `events` (this stream's, in version order, just after `head`)
    /// onto `state`, and keeps the result.
    pub fn advance<S>(
        &self,
        id: Uuid,
        state: S,
        head: Head,
        events: &[StoredEvent],
        apply: Apply<S>,
    ) -> Result<Loaded<S>, StoreError>
    where
        S: Clone + Default + Send + Sync + 'static,
    {
        let mine: Vec<&StoredEvent> = events
            .iter()
            .filter(|e| e.envelope.stream_id == id)
            .collect();
        let head = mine.last().map(|e| e.head()).unwrap_or(head);
        let state = fold_onto(state, mine, apply)?;
        self.states().put(id, &state, head);
        self.heads().remember(id, head);
        Ok(Loaded {
            state,
            head,
            fresh: true,
        })
    }
}
