//! The event store on PostgreSQL.
//!
//! # Invariants
//! - A command's events reach the table in one transaction, or not at all.
//! - Every touched stream is checked against its expected version under the
//!   append lock; a mismatch is `StoreError::Conflict`, never a blind write.
//! - The same `command_id` is written once; a repeat returns the first events.
//! - Each stream's events form a hash chain starting from 32 zero bytes.
//! - Positions increase in commit order, so readers of the global order never
//!   pass over an event that commits late (see `read` and ARCHITECTURE.md
//!   "Global order").
//! - `sb_append` is the only way events are written.

mod ahead;
mod append;
mod appender;
mod batch;
mod fold;
mod heads;
mod kept;
mod notices;
mod position;
mod read;
mod row;
mod snapshot;
mod states;
mod tx;
mod verify;
mod wake;

pub use ahead::Ahead;
pub use append::{AppendOutcome, CommandMeta, ExpectedVersion, Guard, Head, StreamAppend};
pub use appender::{BatchStats, Store};
pub use fold::{fold_onto, load};
pub use heads::Heads;
pub use kept::{is_lost, Kept, Lease};
pub use notices::Notice;
pub use position::Position;
pub use read::{
    count_after, head, read_after_checkpoint, read_global, read_stream, read_stream_after,
    read_streams_after, read_tenant, CheckpointRead, TenantFilter,
};
pub use row::StoredEvent;
pub use snapshot::EVERY as SNAPSHOT_EVERY;
pub use states::{Apply, Folded, Loaded, Seed, Stale, States};
pub use tx::{append, append_batch, append_guarded, AppendTx, BatchCommand, Begin};
pub use verify::{verify_chain, ChainBreak};
pub use wake::Wake;

use uuid::Uuid;

/// The channel appends notify on commit, so readers wake without polling.
pub const NOTIFY_CHANNEL: &str = "switchboard_events";

/// What can go wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A stream was not at the version the command was decided against.
    #[error("stream {stream_id} is at version {actual:?}, expected {expected:?}")]
    Conflict {
        stream_id: Uuid,
        expected: ExpectedVersion,
        actual: Option<i64>,
    },
    /// Guard `ClaimNumber`: another number holds the E.164.
    #[error("the number is held by another registration")]
    Claimed,
    /// Guard `Unreferenced`: a number still uses the provider.
    #[error("the provider is referenced by a number")]
    Referenced,
    /// A stored event could not be read as a catalogue event.
    #[error("event {global_position} cannot be decoded: {source}")]
    Decode {
        global_position: i64,
        #[source]
        source: events::DecodeError,
    },
    /// A stream's stored head hash is malformed or is not its last event's
    /// hash: nothing may chain onto it (see `Heads::fill`).
    #[error(
        "stream {stream_id} has a corrupt head; appends to it are refused until it is repaired"
    )]
    CorruptHead { stream_id: Uuid },
    /// An event was appended to a stream of another type.
    #[error("a {event_type} event cannot go on a {stream_type} stream")]
    WrongStreamType {
        event_type: &'static str,
        stream_type: events::StreamType,
    },
    #[error("event store: {0}")]
    Db(#[from] sqlx::Error),
}

impl StoreError {
    /// The database error underneath, if this is one.
    pub fn db(&self) -> Option<&sqlx::Error> {
        match self {
            StoreError::Db(e) => Some(e),
            _ => None,
        }
    }
}
