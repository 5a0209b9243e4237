//! What an append is made of: the streams a command touches, the versions it
//! expects, its events, and the command-side guards that commit with them.
//!
//! # Design
//! Every append, whether alone (`append`), in a group commit (`Appender`) or
//! inside a caller's transaction (`AppendTx`), is one call of the SQL
//! function `sb_append` (migration `…_ordered_append.sql`). The function
//! takes the database's append lock, checks each stream's version (and the
//! hash the new events chain onto), applies the guards, gives the events
//! their positions and moves the stream heads, all in one round trip. Hashes
//! are computed here, before the call, from the heads the caller expects.

use chrono::{DateTime, Utc};
use events::{Event, Hash32, NewEnvelope, NumberId, ProviderId, StreamType, TenantId};
use serde::Serialize;
use uuid::Uuid;

use super::row::StoredEvent;
use super::StoreError;

/// The version a command expects a stream to be at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ExpectedVersion {
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be at exactly this version.
    Exact(i64),
}

impl ExpectedVersion {
    /// The expectation that matches a stream folded to `version` (0 = none).
    pub fn from_version(version: i64) -> Self {
        if version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(version)
        }
    }

    /// The version as the store counts it (0 = no stream).
    pub fn as_version(self) -> i64 {
        match self {
            ExpectedVersion::NoStream => 0,
            ExpectedVersion::Exact(v) => v,
        }
    }
}

/// Events for one stream, with the version they were decided against. An
/// append with no events only checks the stream: a command can depend on a
/// stream it does not change.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAppend {
    pub stream_type: StreamType,
    pub stream_id: Uuid,
    pub expected: ExpectedVersion,
    pub events: Vec<Event>,
}

/// Who and what an append is for.
#[derive(Debug, Clone)]
pub struct CommandMeta {
    /// Idempotency of the append: the same id writes once.
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub actor: String,
    pub tenant_id: TenantId,
}

impl CommandMeta {
    /// A fresh command by `actor` for `tenant_id`, correlated to itself.
    pub fn new(tenant_id: TenantId, actor: impl Into<String>) -> Self {
        let command_id = Uuid::now_v7();
        CommandMeta {
            command_id,
            correlation_id: command_id,
            causation_id: None,
            actor: actor.into(),
            tenant_id,
        }
    }
}

/// A write to a command-side table that must commit with the events, or a
/// condition on one. These guard what no single stream can (one holder of
/// an E.164 across tenants; no provider deleted under a number).
#[derive(Debug, Clone, PartialEq)]
pub enum Guard {
    /// Claims `e164` for `number_id`; fails with `StoreError::Claimed` when
    /// another number holds it. At most one per command.
    ClaimNumber {
        e164: String,
        tenant_id: TenantId,
        number_id: NumberId,
        credentials_id: ProviderId,
    },
    /// Releases the claim of `number_id`.
    ReleaseNumber { number_id: NumberId },
    /// Fails with `StoreError::Referenced` while a number uses the provider.
    Unreferenced { credentials_id: ProviderId },
    /// Records the provisional answer of an Idempotency-Key still in progress.
    SettleKey {
        tenant_id: TenantId,
        key: String,
        status: u16,
        headers: serde_json::Value,
        body: Vec<u8>,
    },
}

/// The result of an append.
#[derive(Debug, Clone)]
pub enum AppendOutcome {
    /// The events were written now.
    Appended(Vec<StoredEvent>),
    /// This command_id was appended before; these are the events it wrote.
    Duplicate(Vec<StoredEvent>),
}

impl AppendOutcome {
    pub fn events(&self) -> &[StoredEvent] {
        match self {
            AppendOutcome::Appended(e) | AppendOutcome::Duplicate(e) => e,
        }
    }

    pub fn into_events(self) -> Vec<StoredEvent> {
        match self {
            AppendOutcome::Appended(e) | AppendOutcome::Duplicate(e) => e,
        }
    }
}

/// The head of a stream as an append chains onto it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// 0 while the stream does not exist.
    pub version: i64,
    /// The last event's hash (zero bytes before the first event).
    pub hash: Hash32,
}

impl Head {
    pub const NONE: Head = Head {
        version: 0,
        hash: Hash32::ZERO,
    };
}

/// One stream of a prepared command: what is checked and where it ends.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    pub stream_id: Uuid,
    pub stream_type: StreamType,
    pub expected: i64,
    /// The hash the events chain onto; `None` for a check without events.
    pub prev: Option<Hash32>,
    pub new_version: i64,
    pub new_hash: Option<Hash32>,
}

/// An event ready to store but for its position.
#[derive(Debug, Clone)]
pub(crate) struct NewEvent {
    /// Index of its stream in `Prepared::checks`.
    pub check: usize,
    pub envelope: NewEnvelope,
    pub hash: Hash32,
}

/// A command with its envelopes built and hashes chained: all `sb_append`
/// needs, and all the caller gets back but for positions.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub meta: CommandMeta,
    pub recorded_at: DateTime<Utc>,
    pub checks: Vec<Check>,
    pub events: Vec<NewEvent>,
    pub guards: Vec<Guard>,
}

impl Prepared {
    /// Builds the envelopes of `appends`, chaining each stream's events onto
    /// the head `head_of` gives for streams that get events.
    pub fn new(
        meta: CommandMeta,
        appends: &[StreamAppend],
        guards: Vec<Guard>,
        head_of: impl Fn(&StreamAppend) -> Hash32,
    ) -> Result<Prepared, StoreError> {
        let recorded_at = NewEnvelope::storage_time(Utc::now());
        let mut checks = Vec::with_capacity(appends.len());
        let mut events = Vec::new();
        for sa in appends {
            let expected = sa.expected.as_version();
            let mut version = expected;
            let prev = (!sa.events.is_empty()).then(|| head_of(sa));
            let mut prev_hash = prev.unwrap_or(Hash32::ZERO);
            for event in &sa.events {
                // Checked in release builds too: a call event on a provider
                // stream would be read back by the wrong fold forever.
                if event.stream_type() != sa.stream_type {
                    return Err(StoreError::WrongStreamType {
                        event_type: event.event_type(),
                        stream_type: sa.stream_type,
                    });
                }
                version += 1;
                let envelope = NewEnvelope {
                    event_id: Uuid::now_v7(),
                    event_type: event.event_type().to_owned(),
                    schema_version: event.schema_version(),
                    stream_type: sa.stream_type,
                    stream_id: sa.stream_id,
                    version,
                    tenant_id: meta.tenant_id,
                    recorded_at,
                    command_id: meta.command_id,
                    correlation_id: meta.correlation_id,
                    causation_id: meta.causation_id,
                    actor: meta.actor.clone(),
                    data: event.to_data(),
                    prev_hash,
                };
                let hash = envelope.compute_hash();
                prev_hash = hash;
                events.push(NewEvent {
                    check: checks.len(),
                    envelope,
                    hash,
                });
            }
            checks.push(Check {
                stream_id: sa.stream_id,
                stream_type: sa.stream_type,
                expected,
                prev,
                new_version: version,
                new_hash: prev.map(|_| prev_hash),
            });
        }
        Ok(Prepared {
            meta,
            recorded_at,
            checks,
            events,
            guards,
        })
    }

    /// The streams this command touches.
    pub fn streams(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.checks.iter().map(|c| c.stream_id)
    }

    /// The stored events, once the batch gave the first of them `base`.
    pub fn stored(&self, base: i64) -> Vec<StoredEvent> {
        self.events
            .iter()
            .enumerate()
            .map(|(i, e)| StoredEvent::new(e.envelope.clone(), base + i as i64, e.hash))
            .collect()
    }
}
