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
//!
//! A stream this process holds no state of is not folded from its first
//! event when it has a snapshot (`snapshot`): the snapshot and the events
//! after it are read instead, and a state `snapshot::EVERY` versions past
//! its last snapshot is offered to be written as the next one.

use std::any::Any;
use std::sync::Arc;

use events::Event;

use super::append::Head;
use super::row::StoredEvent;
use super::snapshot::{self, Taken};
use super::{fold_onto, read_stream_after, Store, StoreError};
use crate::commands::snapshot::Snapshot;
use crate::commands::state::At;
use sqlx::PgExecutor;
use uuid::Uuid;

/// What a folded state must be to be kept: cloned out of the cache, made
/// from nothing, shared between tasks, snapshotted (or not, by its kind).
pub trait Folded: Clone + Default + Send + Sync + Snapshot + 'static {}

impl<S: Clone + Default + Send + Sync + Snapshot + 'static> Folded for S {}

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
    /// Taken from the cache (else the default, or a snapshot once seeded).
    cached: bool,
    /// The version of the snapshot it was seeded from.
    seeded: Option<i64>,
}

impl<S> Stale<S> {
    /// The stream and the version its events are to be read after.
    pub fn after(&self) -> (Uuid, i64) {
        (self.id, self.head.version)
    }
}

/// A `Stale` of any state type, for `Store::seed`.
pub trait Seed: Send {
    /// The snapshot this one would start from: not cached, of a kind that
    /// is snapshotted.
    fn wants(&self) -> Option<(Uuid, &'static str)>;
    /// Starts from `found`, the snapshot it wanted, if this build can read
    /// it.
    fn seed(&mut self, found: &snapshot::Stored);
}

impl<S: Folded> Seed for Stale<S> {
    fn wants(&self) -> Option<(Uuid, &'static str)> {
        match (self.cached, S::KIND) {
            (false, Some(kind)) if self.seeded.is_none() => Some((self.id, kind)),
            _ => None,
        }
    }

    fn seed(&mut self, found: &snapshot::Stored) {
        if found.head.version <= self.head.version {
            return;
        }
        match S::from_snapshot(found.state.clone()) {
            // The state must say it is the fold up to the version the
            // stream vouched for: decisions read its version (If-Match, the
            // version an append expects).
            Some(state) if state.folded_version() == found.head.version => {
                self.state = state;
                self.head = found.head;
                self.seeded = Some(found.head.version);
            }
            // Its kind, yet unreadable or not of its version: a revision
            // not bumped, or a hand edit. Folded from the start; that
            // fold's snapshot replaces it.
            _ => tracing::warn!(
                stream_id = %self.id,
                kind = found.kind,
                version = found.head.version,
                "a snapshot cannot be used; folding the stream from its start"
            ),
        }
    }
}

struct Entry<S> {
    state: S,
    head: Head,
    /// The version of the last snapshot taken of (or seeded from) this
    /// stream in this process; 0 for none.
    snapshot: i64,
}

impl States {
    fn get<S: Clone + Send + Sync + 'static>(&self, id: Uuid) -> Option<(S, Head)> {
        let any = self.cache.get(&id)?;
        let e = any.downcast_ref::<Entry<S>>()?;
        Some((e.state.clone(), e.head))
    }

    /// Keeps `state` at `head` unless a newer one is kept already (`seeded`:
    /// the version of the snapshot it was folded onto). Answers whether a
    /// snapshot of it is due: `snapshot::EVERY` versions past the last one.
    fn put<S: Folded>(&self, id: Uuid, state: &S, head: Head, seeded: Option<i64>) -> bool {
        let kept = self.cache.get(&id);
        let kept = kept.as_ref().and_then(|any| any.downcast_ref::<Entry<S>>());
        if kept.is_some_and(|e| e.head.version > head.version) {
            return false;
        }
        let last = seeded.or(kept.map(|e| e.snapshot)).unwrap_or(0);
        let due = S::KIND.is_some() && head.version - last >= snapshot::EVERY;
        self.cache.insert(
            id,
            Arc::new(Entry {
                state: state.clone(),
                head,
                snapshot: if due { head.version } else { last },
            }),
        );
        due
    }

    pub fn forget(&self, id: Uuid) {
        self.cache.remove(&id);
    }
}

impl Store {
    /// The state of stream `id`: cached (possibly old, see the module), or
    /// read (from its snapshot on) and folded once.
    pub async fn load<S>(
        &self,
        id: impl Into<Uuid>,
        apply: Apply<S>,
    ) -> Result<Loaded<S>, StoreError>
    where
        S: Folded,
    {
        let stale = self.stale::<S>(id);
        if stale.cached {
            return Ok(Loaded {
                state: stale.state,
                head: stale.head,
                fresh: false,
            });
        }
        self.catch_up(stale, apply).await
    }

    /// The state of stream `id` as stored now: the cached state brought up
    /// to date with the events after it (one query; two for a stream not
    /// cached that may have a snapshot).
    pub async fn load_fresh<S>(
        &self,
        id: impl Into<Uuid>,
        apply: Apply<S>,
    ) -> Result<Loaded<S>, StoreError>
    where
        S: Folded,
    {
        let stale = self.stale::<S>(id);
        self.catch_up(stale, apply).await
    }

    /// Stream `id`'s cached state (or none yet), to be brought up to date
    /// together with others: `seed` for the ones not cached, then
    /// `read_streams_after` for the `after` of each, then `fresh` with what
    /// it read. Several states read fresh for one decision cost one query,
    /// not one each (two when some are not cached).
    pub fn stale<S>(&self, id: impl Into<Uuid>) -> Stale<S>
    where
        S: Folded,
    {
        let id = id.into();
        let (state, head, cached) = match self.states().get::<S>(id) {
            Some((state, head)) => (state, head, true),
            None => (S::default(), Head::NONE, false),
        };
        Stale {
            id,
            state,
            head,
            cached,
            seeded: None,
        }
    }

    /// Starts each of `stales` that is not cached from its stream's
    /// snapshot, if it has one: one query for all, none when every one is
    /// cached.
    pub async fn seed<'e>(
        &self,
        db: impl PgExecutor<'e>,
        stales: &mut [&mut dyn Seed],
    ) -> Result<(), StoreError> {
        let wanted: Vec<(Uuid, &str)> = stales.iter().filter_map(|s| s.wants()).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let found = match snapshot::read(db, &wanted).await {
            Ok(found) => found,
            // A snapshot is only a cache: a read the server refused (not a
            // lost connection, which the next read would meet too) folds
            // from the start instead of failing the command.
            Err(StoreError::Db(e)) if !super::is_lost(&e) => {
                tracing::warn!(error = %e, "snapshots unreadable; folding from the start");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        for stale in stales.iter_mut() {
            let Some(want) = stale.wants() else { continue };
            if let Some(f) = found
                .iter()
                .find(|f| (f.stream_id, f.kind.as_str()) == want)
            {
                stale.seed(f);
            }
        }
        Ok(())
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
        S: Folded,
    {
        self.advance_from(
            stale.id,
            stale.state,
            stale.head,
            newer,
            apply,
            stale.seeded,
        )
    }

    async fn catch_up<S>(
        &self,
        mut stale: Stale<S>,
        apply: Apply<S>,
    ) -> Result<Loaded<S>, StoreError>
    where
        S: Folded,
    {
        self.seed(self.pool(), &mut [&mut stale]).await?;
        let newer = read_stream_after(self.pool(), stale.id, stale.head.version).await?;
        self.fresh(stale, &newer, apply)
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
        S: Folded,
    {
        self.advance_from(id, state, head, events, apply, None)
    }

    /// `advance`, for a state folded onto the snapshot at version `seeded`.
    fn advance_from<S>(
        &self,
        id: Uuid,
        state: S,
        head: Head,
        events: &[StoredEvent],
        apply: Apply<S>,
        seeded: Option<i64>,
    ) -> Result<Loaded<S>, StoreError>
    where
        S: Folded,
    {
        let mine: Vec<&StoredEvent> = events
            .iter()
            .filter(|e| e.envelope.stream_id == id)
            .collect();
        let head = mine.last().map(|e| e.head()).unwrap_or(head);
        let state = fold_onto(state, mine, apply)?;
        if self.states().put(id, &state, head, seeded) {
            if let (Some(kind), Some(value)) = (S::KIND, state.to_snapshot()) {
                self.snapshots().offer(Taken {
                    stream_id: id,
                    kind,
                    head,
                    state: value,
                });
            }
        }
        self.heads().remember(id, head);
        Ok(Loaded {
            state,
            head,
            fresh: true,
        })
    }
}
