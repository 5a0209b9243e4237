//! Mapping between the `events` table and the envelope.

use events::{Envelope, Event, Hash32, NewEnvelope, StreamType};
use sqlx::postgres::PgRow;
use sqlx::Row;

use super::{Position, StoreError};

/// The columns every read selects, in the order `from_row` expects.
pub(crate) const COLUMNS: &str = "global_position, event_id, event_type, \
    schema_version, stream_type, stream_id, version, tenant_id, recorded_at, command_id, \
    correlation_id, causation_id, actor, data, prev_hash, hash";

/// An event as read from the store, with its place in the global order.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub envelope: Envelope,
    pub position: Position,
}

impl StoredEvent {
    /// The typed payload, upcast to the current schema version.
    pub fn event(&self) -> Result<Event, StoreError> {
        Event::decode(
            &self.envelope.event_type,
            self.envelope.schema_version,
            &self.envelope.data,
        )
        .map_err(|source| StoreError::Decode {
            global_position: self.envelope.global_position,
            source,
        })
    }

    /// An event just written at `position`.
    pub(crate) fn new(envelope: NewEnvelope, position: i64, hash: Hash32) -> Self {
        StoredEvent {
            position: Position::new(position),
            envelope: Envelope {
                inner: envelope,
                global_position: position,
                hash,
            },
        }
    }

    /// The head a stream is at once this event is its last.
    pub fn head(&self) -> super::Head {
        super::Head {
            version: self.envelope.version,
            hash: self.envelope.hash,
        }
    }

    pub(crate) fn from_rows(rows: &[PgRow]) -> Result<Vec<Self>, sqlx::Error> {
        rows.iter().map(StoredEvent::from_row).collect()
    }

    /// Reads the event from the first columns of `row`, which are
    /// `COLUMNS` in order. By index, not by name: a name is a hash lookup
    /// and string compare per column per row, a tenth of a replay's
    /// decoding.
    pub(crate) fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let stream_type: &str = row.try_get(4)?;
        let stream_type =
            StreamType::parse(stream_type).ok_or_else(|| sqlx::Error::ColumnDecode {
                index: "stream_type".into(),
                source: format!("unknown stream type {stream_type:?}").into(),
            })?;
        // Borrowed: the 32 bytes are copied into the hash, not into a Vec first.
        let hash_col = |index: usize, name: &str| -> Result<Hash32, sqlx::Error> {
            let bytes: &[u8] = row.try_get(index)?;
            Hash32::from_slice(bytes).ok_or_else(|| sqlx::Error::ColumnDecode {
                index: name.into(),
                source: "hash is not 32 bytes".into(),
            })
        };
        let global_position: i64 = row.try_get(0)?;
        let schema_version: i32 = row.try_get(3)?;
        Ok(StoredEvent {
            position: Position::new(global_position),
            envelope: Envelope {
                inner: NewEnvelope {
                    event_id: row.try_get(1)?,
                    event_type: row.try_get(2)?,
                    schema_version: schema_version as u32,
                    stream_type,
                    stream_id: row.try_get(5)?,
                    version: row.try_get(6)?,
                    tenant_id: row.try_get(7)?,
                    recorded_at: row.try_get(8)?,
                    command_id: row.try_get(9)?,
                    correlation_id: row.try_get(10)?,
                    causation_id: row.try_get(11)?,
                    actor: row.try_get(12)?,
                    data: row.try_get(13)?,
                    prev_hash: hash_col(14, "prev_hash")?,
                },
                global_position,
                hash: hash_col(15, "hash")?,
            },
        })
    }
}
