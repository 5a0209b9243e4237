//! Version 1 of the catalogue (SPEC §5), one module per stream type.
//!
//! `Event` is the closed set of payloads; it serializes adjacently tagged as
//! `{"type": ..., "data": ...}`, which is exactly how the envelope carries
//! them (`type` and `data` side by side).

pub mod call;
pub mod call_limits;
pub mod destinations;
pub mod number;
pub mod provider;
pub mod tenant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::stream::StreamType;
use crate::upcast;
use call::*;
use call_limits::*;
use destinations::*;
use number::*;
use provider::*;
use tenant::*;

/// Every event payload Switchboard writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    ProviderCreated(ProviderCreated),
    ProviderRelabeled(ProviderRelabeled),
    ProviderCredentialsRotated(ProviderCredentialsRotated),
    ProviderDeleted(ProviderDeleted),
    NumberAttached(NumberAttached),
    NumberAgentAssigned(NumberAgentAssigned),
    NumberDirectionsChanged(NumberDirectionsChanged),
    NumberDailyCapSet(NumberDailyCapSet),
    NumberReleased(NumberReleased),
    CallLimitsUpdated(CallLimitsUpdated),
    DestinationsSet(DestinationsSet),
    OriginateRequested(OriginateRequested),
    OriginateRejected(OriginateRejected),
    OriginateClaimed(OriginateClaimed),
    OriginateDispatched(OriginateDispatched),
    OriginateFailed(OriginateFailed),
    CallRinging(CallRinging),
    CallAnswered(CallAnswered),
    CallEnded(CallEnded),
    TenantKeyCreated(TenantKeyCreated),
    TenantKeyShredded(TenantKeyShredded),
    TenantKeyRewrapped(TenantKeyRewrapped),
    MasterKeyAdded(MasterKeyAdded),
}

pub use crate::decode_error::DecodeError;

impl Event {
    /// The wire name, e.g. `ProviderCreated`.
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::ProviderCreated(_) => "ProviderCreated",
            Event::ProviderRelabeled(_) => "ProviderRelabeled",
            Event::ProviderCredentialsRotated(_) => "ProviderCredentialsRotated",
            Event::ProviderDeleted(_) => "ProviderDeleted",
            Event::NumberAttached(_) => "NumberAttached",
            Event::NumberAgentAssigned(_) => "NumberAgentAssigned",
            Event::NumberDirectionsChanged(_) => "NumberDirectionsChanged",
            Event::NumberDailyCapSet(_) => "NumberDailyCapSet",
            Event::NumberReleased(_) => "NumberReleased",
            Event::CallLimitsUpdated(_) => "CallLimitsUpdated",
            Event::DestinationsSet(_) => "DestinationsSet",
            Event::OriginateRequested(_) => "OriginateRequested",
            Event::OriginateRejected(_) => "OriginateRejected",
            Event::OriginateClaimed(_) => "OriginateClaimed",
            Event::OriginateDispatched(_) => "OriginateDispatched",
            Event::OriginateFailed(_) => "OriginateFailed",
            Event::CallRinging(_) => "CallRinging",
            Event::CallAnswered(_) => "CallAnswered",
            Event::CallEnded(_) => "CallEnded",
            Event::TenantKeyCreated(_) => "TenantKeyCreated",
            Event::TenantKeyShredded(_) => "TenantKeyShredded",
            Event::TenantKeyRewrapped(_) => "TenantKeyRewrapped",
            Event::MasterKeyAdded(_) => "MasterKeyAdded",
        }
    }

    /// The schema version this code writes for the event's type.
    pub fn schema_version(&self) -> u32 {
        upcast::current_version(self.event_type())
    }

    /// The kind of stream this event belongs to.
    pub fn stream_type(&self) -> StreamType {
        use Event::*;
        match self {
            ProviderCreated(_)
            | ProviderRelabeled(_)
            | ProviderCredentialsRotated(_)
            | ProviderDeleted(_) => StreamType::Provider,
            NumberAttached(_)
            | NumberAgentAssigned(_)
            | NumberDirectionsChanged(_)
            | NumberDailyCapSet(_)
            | NumberReleased(_) => StreamType::Number,
            CallLimitsUpdated(_) => StreamType::CallLimits,
            DestinationsSet(_) => StreamType::Destinations,
            OriginateRequested(_)
            | OriginateRejected(_)
            | OriginateClaimed(_)
            | OriginateDispatched(_)
            | OriginateFailed(_)
            | CallRinging(_)
            | CallAnswered(_)
            | CallEnded(_) => StreamType::Call,
            TenantKeyCreated(_)
            | TenantKeyShredded(_)
            | TenantKeyRewrapped(_)
            | MasterKeyAdded(_) => StreamType::Tenant,
        }
    }

    /// The `data` member of the envelope.
    pub fn to_data(&self) -> Value {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut m)) => m
                .remove("data")
                .unwrap_or(Value::Object(Default::default())),
            // Serializing plain structs of strings, numbers and maps cannot fail.
            _ => unreachable!("event payloads always serialize to an object"),
        }
    }

    /// Reads a stored payload, upcasting older schema versions first.
    pub fn decode(
        event_type: &str,
        schema_version: u32,
        data: &Value,
    ) -> Result<Event, DecodeError> {
        let current = upcast::current_version_opt(event_type)
            .ok_or_else(|| DecodeError::UnknownType(event_type.to_owned()))?;
        // Only an older payload is copied (to be upcast); a current one is
        // read where it lies.
        let upcast;
        let (version, data) = if schema_version == current {
            (current, data)
        } else {
            upcast = upcast::upcast(event_type, schema_version, data.clone())?;
            (upcast.0, &upcast.1)
        };
        // `type` before `data`: serde then reads the payload straight into
        // its variant. A JSON object (keys sorted, `data` first) would make
        // it buffer the payload and read it twice.
        let tag = Value::String(event_type.to_owned());
        let fields = [("type", &tag), ("data", data)];
        let map =
            serde::de::value::MapDeserializer::<_, serde_json::Error>::new(fields.into_iter());
        Event::deserialize(map).map_err(|source| DecodeError::Payload {
            event_type: event_type.to_owned(),
            version,
            source,
        })
    }
}
