//! Turns by key within this process: one holder at a time per key, others
//! skip or wait. Workers use it for calls (`Deps::calls_in_hand`): a call can
//! reach a process's workers twice, from the store's feed the moment the
//! gateway in this process commits its `OriginateRequested` (the hand-off in
//! `worker/consumer.rs`) and from JetStream a few milliseconds later, and
//! the two handlings must not run at once (the second would see the call
//! claimed and ask the Call Processor again: the same key, so no second
//! call, but a request for nothing).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as Turn, OwnedMutexGuard};
use uuid::Uuid;

/// Keys being handled, each with its turn.
#[derive(Default)]
pub struct Turns {
    turns: Mutex<HashMap<Uuid, Arc<Turn<()>>>>,
}

/// A key's turn, held while it is handled; dropping it passes the turn on
/// (and forgets the key once nobody waits for it).
pub struct Held<'a> {
    turns: &'a Turns,
    key: Uuid,
    /// The key's turn (taken on drop).
    turn: Option<Arc<Turn<()>>>,
    /// Its guard once taken: a `wait` still waiting holds none, and still
    /// forgets the key if it is dropped then.
    guard: Option<OwnedMutexGuard<()>>,
}

impl Turns {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<Turn<()>>>> {
        self.turns.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn turn_of(&self, key: Uuid) -> Arc<Turn<()>> {
        self.lock().entry(key).or_default().clone()
    }

    /// Waits for `key`'s turn. A wait dropped before its turn came (its
    /// task aborted) leaves no entry behind.
    pub async fn wait(&self, key: Uuid) -> Held<'_> {
        let turn = self.turn_of(key);
        let mut held = Held {
            turns: self,
            key,
            turn: Some(turn.clone()),
            guard: None,
        };
        held.guard = Some(turn.lock_owned().await);
        held
    }

    /// `key`'s turn if nobody holds it now.
    pub fn try_take(&self, key: Uuid) -> Option<Held<'_>> {
        let turn = self.turn_of(key);
        match turn.clone().try_lock_owned() {
            Ok(guard) => Some(Held {
                turns: self,
                key,
                turn: Some(turn),
                guard: Some(guard),
            }),
            Err(_) => {
                self.forget_if_unused(key, turn);
                None
            }
        }
    }

    /// Removes `key`'s entry when `turn` (the caller's copy) and the map's
    /// are the only ones left: nobody holds or waits for it. Decided under
    /// the map's lock, where every other copy is made.
    fn forget_if_unused(&self, key: Uuid, turn: Arc<Turn<()>>) {
        let mut turns = self.lock();
        if Arc::strong_count(&turn) == 2 {
            turns.remove(&key);
        }
    }

    /// Keys with an entry (held or waited for).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        if let Some(turn) = self.turn.take() {
            self.turns.forget_if_unused(self.key, turn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_held_turn_is_skipped_by_try_and_waited_for_by_wait() {
        let turns = Turns::default();
        let key = Uuid::new_v4();
        let first = turns.try_take(key).expect("free");
        assert!(turns.try_take(key).is_none());
        let waiting = turns.wait(key);
        tokio::pin!(waiting);
        assert!(futures::poll!(&mut waiting).is_pending());
        drop(first);
        let second = waiting.await;
        assert_eq!(turns.len(), 1);
        drop(second);
        assert!(turns.is_empty(), "a key nobody holds is forgotten");
    }

    #[tokio::test]
    async fn a_wait_dropped_before_its_turn_leaves_no_entry_behind() {
        let turns = Turns::default();
        let key = Uuid::new_v4();
        let first = turns.try_take(key).unwrap();
        {
            let waiting = turns.wait(key);
            tokio::pin!(waiting);
            assert!(futures::poll!(&mut waiting).is_pending());
            // The holder passes the turn on to the waiter, which is
            // dropped before it runs again (its task aborted).
            drop(first);
        }
        assert!(turns.is_empty());
        assert!(turns.try_take(key).is_some(), "the turn is free");
    }

    #[tokio::test]
    async fn a_refused_try_leaves_no_entry_behind() {
        let turns = Turns::default();
        let key = Uuid::new_v4();
        let held = turns.try_take(key).unwrap();
        assert!(turns.try_take(key).is_none());
        drop(held);
        assert!(turns.is_empty());
    }
}
