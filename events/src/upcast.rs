//! Reading older schema versions as the current one.
//!
//! A stored event is never rewritten. When a type's shape changes, its schema
//! version goes up and a step here turns the old `data` into the new one;
//! steps chain, so version 1 reaches version N through every step between.

use serde_json::Value;

use crate::decode_error::DecodeError;

/// The types of the catalogue and the schema version this code writes.
const CURRENT: &[(&str, u32)] = &[
    ("ProviderCreated", 1),
    ("ProviderRelabeled", 1),
    ("ProviderCredentialsRotated", 1),
    ("ProviderDeleted", 1),
    ("NumberAttached", 1),
    ("NumberAgentAssigned", 1),
    ("NumberDirectionsChanged", 1),
    ("NumberDailyCapSet", 1),
    ("DestinationsSet", 1),
    ("NumberReleased", 1),
    ("CallLimitsUpdated", 1),
    ("OriginateRequested", 1),
    ("OriginateRejected", 1),
    ("OriginateClaimed", 1),
    ("OriginateDispatched", 1),
    ("OriginateFailed", 1),
    ("CallRinging", 1),
    ("CallAnswered", 1),
    ("CallEnded", 2),
    ("TenantKeyCreated", 1),
    ("TenantKeyShredded", 1),
    ("TenantKeyRewrapped", 1),
    ("MasterKeyAdded", 1),
];

pub fn current_version_opt(event_type: &str) -> Option<u32> {
    CURRENT
        .iter()
        .find(|(t, _)| *t == event_type)
        .map(|(_, v)| *v)
}

/// The version written for a catalogue type (1 for a name not in it).
pub fn current_version(event_type: &str) -> u32 {
    current_version_opt(event_type).unwrap_or(1)
}

/// One step: (type, from version) to the data of version + 1.
type Step = fn(Value) -> Value;

fn step(event_type: &str, from: u32) -> Option<Step> {
    match (event_type, from) {
        ("CallEnded", 1) => Some(call_ended_v1_to_v2),
        _ => None,
    }
}

/// CallEnded v1 had no `hangup_cause`: derive it from the status.
fn call_ended_v1_to_v2(mut data: Value) -> Value {
    if let Value::Object(m) = &mut data {
        let status = m.get("status").and_then(Value::as_str).unwrap_or("failed");
        let cause = crate::catalogue::call::hangup_cause_for(status);
        m.entry("hangup_cause")
            .or_insert_with(|| Value::String(cause.to_owned()));
    }
    data
}

/// Brings `data` stored at `version` up to the current version of its type.
pub fn upcast(
    event_type: &str,
    version: u32,
    mut data: Value,
) -> Result<(u32, Value), DecodeError> {
    let Some(target) = current_version_opt(event_type) else {
        return Err(DecodeError::UnknownType(event_type.to_owned()));
    };
    let mut v = version;
    while v < target {
        let f = step(event_type, v).ok_or_else(|| DecodeError::UnknownVersion {
            event_type: event_type.to_owned(),
            version: v,
        })?;
        data = f(data);
        v += 1;
    }
    if v > target {
        return Err(DecodeError::UnknownVersion {
            event_type: event_type.to_owned(),
            version,
        });
    }
    Ok((v, data))
}

#[cfg(test)]
mod tests {
    use crate::catalogue::{call::CallEnded, Event};
    use serde_json::json;

    #[test]
    fn call_ended_v1_reads_as_v2() {
        let v1 = json!({"status": "busy", "duration_s": 0, "billed_minutes": 0});
        let e = Event::decode("CallEnded", 1, &v1).unwrap();
        assert_eq!(
            e,
            Event::CallEnded(CallEnded {
                status: "busy".into(),
                duration_s: 0,
                billed_minutes: 0,
                hangup_cause: "user_busy".into(),
            })
        );
        assert_eq!(e.schema_version(), 2);
        // A v2 payload is read as it is.
        let v2 = json!({"status": "completed", "duration_s": 61, "billed_minutes": 2, "hangup_cause": "carrier_x"});
        let Event::CallEnded(e) = Event::decode("CallEnded", 2, &v2).unwrap() else {
            panic!()
        };
        assert_eq!(e.hangup_cause, "carrier_x");
    }

    #[test]
    fn unknown_versions_and_types_are_errors() {
        assert!(Event::decode("CallEnded", 3, &json!({})).is_err());
        assert!(Event::decode("CallExploded", 1, &json!({})).is_err());
    }
}
