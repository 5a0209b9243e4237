//! The stream heads this process has seen, so an append can chain its hashes
//! without first asking the database.
//!
//! A head is a fact that never changes: the event at version v of a stream
//! has one hash forever. So a remembered (version, hash) is never wrong, only
//! possibly old; an append that expects version v uses the remembered hash
//! only when it is the hash *of v*, and `sb_append` checks it again.

use events::Hash32;
use sqlx::PgConnection;
use uuid::Uuid;

use super::append::{Head, StreamAppend};
use super::batch;
use super::StoreError;

/// Heads by stream, bounded (least recently used go first).
pub struct Heads {
    cache: quick_cache::sync::Cache<Uuid, Head>,
}

impl Default for Heads {
    fn default() -> Self {
        Heads::with_capacity(200_000)
    }
}

impl Heads {
    pub fn with_capacity(n: usize) -> Heads {
        Heads {
            cache: quick_cache::sync::Cache::new(n),
        }
    }

    /// Notes that `stream` is at `head` (an older head never replaces a newer).
    pub fn remember(&self, stream: Uuid, head: Head) {
        if head.version == 0 {
            return;
        }
        match self.cache.get(&stream) {
            Some(known) if known.version >= head.version => {}
            _ => self.cache.insert(stream, head),
        }
    }

    /// Forgets `stream` (after a conflict that named its hash wrong).
    pub fn forget(&self, stream: Uuid) {
        self.cache.remove(&stream);
    }

    /// The hash at `version` of `stream`, if that is the head seen last.
    pub fn hash_at(&self, stream: Uuid, version: i64) -> Option<Hash32> {
        if version == 0 {
            return Some(Hash32::ZERO);
        }
        self.cache
            .get(&stream)
            .filter(|h| h.version == version)
            .map(|h| h.hash)
    }

    /// Makes sure every stream of `appends` that gets events has its expected
    /// head's hash here, reading the missing ones in one query. A stream
    /// whose stored head is not the expected one keeps no hash: the append
    /// conflicts on its version anyway.
    pub async fn fill(
        &self,
        conn: &mut PgConnection,
        appends: &[StreamAppend],
    ) -> Result<(), StoreError> {
        let missing: Vec<Uuid> = appends
            .iter()
            .filter(|a| !a.events.is_empty())
            .filter(|a| self.hash_at(a.stream_id, a.expected.as_version()).is_none())
            .map(|a| a.stream_id)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        for (id, version, hash, last_event) in batch::heads(conn, &missing).await? {
            // A head that is not exactly the hash of its last event would
            // break the chain for good if anything chained onto it: the
            // write stops, loudly, and the audit names the stream.
            let hash = Hash32::from_slice(&hash)
                .filter(|h| version == 0 || last_event.as_deref() == Some(&h.0[..]))
                .ok_or(StoreError::CorruptHead { stream_id: id })?;
            self.remember(id, Head { version, hash });
        }
        Ok(())
    }

    /// The hash an append to `sa` chains onto (zero bytes when unknown: the
    /// version check then fails, and the caller reloads).
    pub fn chain_onto(&self, sa: &StreamAppend) -> Hash32 {
        self.hash_at(sa.stream_id, sa.expected.as_version())
            .unwrap_or(Hash32::ZERO)
    }
}
