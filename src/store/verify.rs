//! Recomputing a stream's hash chain.

use events::Hash32;
use serde::Serialize;
use uuid::Uuid;

use super::row::StoredEvent;

/// The first thing wrong with a stream's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    pub stream_id: Uuid,
    /// The first event found wrong (None when the stream lost its tail).
    pub event_id: Option<Uuid>,
    pub global_position: Option<i64>,
    /// The version at which the chain breaks.
    pub version: i64,
    /// `altered`, `missing` or `reordered`.
    pub kind: &'static str,
    pub detail: String,
}

/// Checks `events` (one stream, ordered by version as stored) against their
/// hashes and against the stream's recorded head (`head_version`,
/// `head_hash`). Returns the first break.
pub fn verify_chain(
    stream_id: Uuid,
    events: &[StoredEvent],
    head: Option<(i64, Hash32)>,
) -> Result<(), ChainBreak> {
    let mut prev = Hash32::ZERO;
    for (i, e) in events.iter().enumerate() {
        let expected_version = i as i64 + 1;
        let env = &e.envelope;
        let brk = |kind, detail: String| ChainBreak {
            stream_id,
            event_id: Some(env.event_id),
            global_position: Some(env.global_position),
            version: expected_version,
            kind,
            detail,
        };
        if env.version != expected_version {
            return Err(if env.version > expected_version {
                brk(
                    "missing",
                    format!(
                        "version {expected_version} is missing; next stored is {}",
                        env.version
                    ),
                )
            } else {
                brk(
                    "reordered",
                    format!(
                        "version {} stands where {expected_version} should",
                        env.version
                    ),
                )
            });
        }
        if env.prev_hash != prev {
            // The link is broken: either an event before it was removed or
            // the two were swapped; a recomputed hash tells them apart.
            let kind = if env.hash_is_valid() {
                "missing"
            } else {
                "reordered"
            };
            return Err(brk(
                kind,
                format!(
                    "prev_hash does not match the hash of version {}",
                    expected_version - 1
                ),
            ));
        }
        if !env.hash_is_valid() {
            return Err(brk(
                "altered",
                "stored hash does not match the event's contents".to_owned(),
            ));
        }
        prev = env.hash;
    }
    if let Some((version, hash)) = head {
        let n = events.len() as i64;
        if version != n || hash != prev {
            return Err(ChainBreak {
                stream_id,
                event_id: None,
                global_position: None,
                version: n + 1,
                kind: "missing",
                detail: format!(
                    "the stream's head is version {version}, but {n} events are stored"
                ),
            });
        }
    }
    Ok(())
}
