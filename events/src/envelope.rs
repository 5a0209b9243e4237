//! The envelope: one shape for an event in PostgreSQL, on NATS and in the
//! audit API.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
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
    ///
    /// Written field by field, in the canonical (byte) order of the keys,
    /// rather than built as a `serde_json::Value` first: that deep-copied
    /// the payload and allocated every key and value once more for every
    /// event appended. The test `canonical_bytes_are_those_of_the_envelope_as_a_value`
    /// holds it to the form the stored hashes were taken over.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        let mut o = canonical::Object::new(&mut out);
        o.field("actor", &self.actor);
        o.field("causation_id", &self.causation_id);
        o.field("command_id", &self.command_id);
        o.field("correlation_id", &self.correlation_id);
        o.value("data", &self.data);
        o.field("event_id", &self.event_id);
        o.field("prev_hash", &self.prev_hash);
        o.field("recorded_at", &self.recorded_at_text());
        o.field("schema_version", &self.schema_version);
        o.field("stream_id", &self.stream_id);
        o.field("stream_type", &self.stream_type);
        o.field("tenant_id", &self.tenant_id);
        o.field("type", &self.event_type);
        o.field("version", &self.version);
        o.end();
        out
    }

    /// `recorded_at` as the hash covers it: UTC, microseconds, `Z`.
    fn recorded_at_text(&self) -> String {
        self.recorded_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
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
    use proptest::prelude::any;
    use serde_json::json;

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

    /// The canonical form as it was first written: the envelope built as a
    /// `Value`, then written canonically. Every stored hash was taken over
    /// these bytes.
    fn canonical_bytes_as_a_value(e: &NewEnvelope) -> Vec<u8> {
        let v = json!({
            "event_id": e.event_id,
            "type": e.event_type,
            "schema_version": e.schema_version,
            "stream_type": e.stream_type,
            "stream_id": e.stream_id,
            "version": e.version,
            "tenant_id": e.tenant_id,
            "recorded_at": e.recorded_at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            "command_id": e.command_id,
            "correlation_id": e.correlation_id,
            "causation_id": e.causation_id,
            "actor": e.actor,
            "data": e.data,
            "prev_hash": e.prev_hash,
        });
        canonical::to_bytes(&v)
    }

    /// A JSON value of any shape: nested objects and arrays, escapes,
    /// non-ASCII keys and strings, integers and floats, nulls.
    fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1.0e12f64..1.0e12).prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
                proptest::collection::btree_map(".{0,6}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1_000))]
        #[test]
        fn canonical_bytes_are_those_of_the_envelope_as_a_value(
            data in any_json(),
            actor in ".{0,16}",
            event_type in "[A-Za-z]{1,24}",
            micros in 0i64..4_102_444_800_000_000,
            version in 1i64..i64::MAX,
            schema_version in any::<u32>(),
            caused in any::<bool>(),
            prev in any::<[u8; 32]>(),
        ) {
            let mut e = sample();
            e.data = data;
            e.actor = actor;
            e.event_type = event_type;
            e.recorded_at = DateTime::from_timestamp_micros(micros).unwrap();
            e.version = version;
            e.schema_version = schema_version;
            e.causation_id = caused.then(Uuid::new_v4);
            e.event_id = Uuid::now_v7();
            e.prev_hash = Hash32(prev);
            e.stream_type = StreamType::Call;
            proptest::prop_assert_eq!(e.canonical_bytes(), canonical_bytes_as_a_value(&e));
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

#[cfg(test)]
mod golden {
    use super::*;
    use serde_json::json;

    /// One envelope's hash as the store has always computed it: pinned, so
    /// no rewrite of the canonical form can drift from the stored chains.
    fn envelope() -> NewEnvelope {
        NewEnvelope {
            event_id: "0193a0b0-0000-7000-8000-000000000001".parse().unwrap(),
            event_type: "OriginateRequested".into(),
            schema_version: 2,
            stream_type: StreamType::Call,
            stream_id: "0193a0b0-0000-7000-8000-000000000002".parse().unwrap(),
            version: 12,
            tenant_id: TenantId::from(
                "0193a0b0-0000-7000-8000-000000000003"
                    .parse::<Uuid>()
                    .unwrap(),
            ),
            recorded_at: DateTime::from_timestamp_micros(1_765_000_000_123_456).unwrap(),
            command_id: "0193a0b0-0000-7000-8000-000000000004".parse().unwrap(),
            correlation_id: "0193a0b0-0000-7000-8000-000000000005".parse().unwrap(),
            causation_id: Some("0193a0b0-0000-7000-8000-000000000006".parse().unwrap()),
            actor: "user:ä \"q\"\n".into(),
            data: json!({"z": [1, -2.5, 1e20, null, true], "a": {"é": "\u{1}\t/"}, "m": 18446744073709551615u64}),
            prev_hash: Hash32([7; 32]),
        }
    }

    #[test]
    fn the_hash_of_a_known_envelope_has_not_changed() {
        // Computed by the canonical form as it stood before it was written
        // field by field (commit 7ad9dea), over escapes, non-ASCII, floats,
        // a u64 beyond i64 and a causation id.
        assert_eq!(
            envelope().compute_hash().to_hex(),
            "aafeed8b3371f6510a36d66f11a9b051687f77b06db2912d1985561df2a2a719"
        );
    }
}
