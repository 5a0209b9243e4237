//! The envelope: one shape for an event in PostgreSQL, on NATS and in the
//! audit API.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::canonical;
use crate::ids::TenantId;
use crate::stream::StreamType;

/// A SHA-256 digest, written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// The `prev_hash` of a stream's first event.
    pub const ZERO: Hash32 = Hash32([0; 32]);

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Hash32)
    }
}

impl std::fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hash32({})", self.to_hex())
    }
}

impl Serialize for Hash32 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bytes = hex::decode(&s).map_err(serde::de::Error::custom)?;
        Hash32::from_slice(&bytes).ok_or_else(|| serde::de::Error::custom("hash must be 32 bytes"))
    }
}

/// Everything about an event but its place in the global order: what an
/// append computes before the database assigns `global_position`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEnvelope {
    /// UUIDv7: unique, and roughly time-ordered for index locality.
    pub event_id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: u32,
    pub stream_type: StreamType,
    pub stream_id: Uuid,
    /// 1-based position within the stream.
    pub version: i64,
    pub tenant_id: TenantId,
    /// Microsecond precision, since that is what PostgreSQL keeps; the hash
    /// must survive a round trip through the table.
    pub recorded_at: DateTime<Utc>,
    /// The command that produced the event; appending the same command again
    /// writes nothing.
    pub command_id: Uuid,
    /// Ties together everything one request set in motion.
    pub correlation_id: Uuid,
    /// The event (or command) that directly caused this one, if any.
    pub causation_id: Option<Uuid>,
    /// Who did it: the JWT `sub`, or `system:<role>` for the service itself.
    pub actor: String,
    pub data: Value,
    pub prev_hash: Hash32,
}

impl NewEnvelope {
    /// Truncates a time to what PostgreSQL stores, so hashes survive storage.
    pub fn storage_time(t: DateTime<Utc>) -> DateTime<Utc> {
        t.trunc_subsecs(6)
    }

    /// The canonical bytes the hash covers: every field but `hash` and
    /// `global_position`.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let v = json!({
            "event_id": self.event_id,
            "type": self.event_type,
            "schema_version": self.schema_version,
            "stream_type": self.stream_type,
            "stream_id": self.stream_id,
            "version": self.version,
            "tenant_id": self.tenant_id,
            "recorded_at": self.recorded_at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            "command_id": self.command_id,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "actor": self.actor,
            "data": self.data,
            "prev_hash": self.prev_hash,
        });
        canonical::to_bytes(&v)
    }

    /// SHA-256 over `prev_hash` and the canonical bytes.
    pub fn compute_hash(&self) -> Hash32 {
        let mut h = Sha256::new();
        h.update(self.prev_hash.0);
        h.update(self.canonical_bytes());
        Hash32(h.finalize().into())
    }
}

/// A stored event as every reader sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(flatten)]
    pub inner: NewEnvelope,
    /// Unique, and increasing in commit order: a reader that has seen
    /// position p never later finds an event below p (see ARCHITECTURE.md).
    pub global_position: i64,
    pub hash: Hash32,
}

impl std::ops::Deref for Envelope {
    type Target = NewEnvelope;
    fn deref(&self) -> &NewEnvelope {
        &self.inner
    }
}

impl Envelope {
    /// The NATS subject of this event under `namespace`.
    pub fn subject(&self, namespace: &str) -> String {
        format!(
            "{namespace}.events.{}.{}.{}.{}",
            self.tenant_id, self.stream_type, self.stream_id, self.event_type
        )
    }

    /// Whether the stored hash matches a recomputation.
    pub fn hash_is_valid(&self) -> bool {
        self.inner.compute_hash() == self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NewEnvelope {
        NewEnvelope {
            event_id: Uuid::nil(),
            event_type: "ProviderDeleted".into(),
            schema_version: 1,
            stream_type: StreamType::Provider,
            stream_id: Uuid::nil(),
            version: 1,
            tenant_id: TenantId::SYSTEM,
            recorded_at: NewEnvelope::storage_time(Utc::now()),
            command_id: Uuid::nil(),
            correlation_id: Uuid::nil(),
            causation_id: None,
            actor: "u".into(),
            data: json!({}),
            prev_hash: Hash32::ZERO,
        }
    }

    #[test]
    fn hash_changes_with_any_field() {
        let a = sample();
        let mut b = a.clone();
        b.data = json!({"x": 1});
        assert_ne!(a.compute_hash(), b.compute_hash());
        let mut c = a.clone();
        c.prev_hash = Hash32([1; 32]);
        assert_ne!(a.compute_hash(), c.compute_hash());
    }

    #[test]
    fn envelope_round_trips_through_json() {
        let inner = sample();
        let env = Envelope {
            hash: inner.compute_hash(),
            inner,
            global_position: 7,
        };
        let text = serde_json::to_string(&env).unwrap();
        assert!(text.contains("\"type\":\"ProviderDeleted\""));
        let back: Envelope = serde_json::from_str(&text).unwrap();
        assert_eq!(back, env);
        assert!(back.hash_is_valid());
    }
}
