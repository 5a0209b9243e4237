//! Event decoding and upcasting: any payload under any type and version
//! decodes or is refused with an error (never a panic), and every event the
//! current code writes decodes back to itself at its current version.

use events::Event;
use proptest::prelude::*;
use serde_json::{json, Value};

const TYPES: &[&str] = &[
    "ProviderCreated",
    "ProviderRelabeled",
    "ProviderCredentialsRotated",
    "ProviderDeleted",
    "NumberAttached",
    "NumberAgentAssigned",
    "NumberDirectionsChanged",
    "NumberReleased",
    "CallLimitsUpdated",
    "OriginateRequested",
    "OriginateRejected",
    "OriginateClaimed",
    "OriginateDispatched",
    "OriginateFailed",
    "CallRinging",
    "CallAnswered",
    "CallEnded",
    "TenantKeyCreated",
    "TenantKeyShredded",
    "TenantKeyRewrapped",
    "MasterKeyAdded",
];

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
        Just(json!("00000000-0000-0000-0000-000000000000")),
        Just(json!("+14155550100")),
        Just(json!("completed")),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("status".to_owned()),
                    Just("provider".to_owned()),
                    Just("label".to_owned()),
                    Just("e164".to_owned()),
                    Just("duration_s".to_owned()),
                    Just("error".to_owned()),
                    "[a-z_]{1,10}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_payload_decodes_or_is_refused(
        t in prop_oneof![proptest::sample::select(TYPES).prop_map(str::to_owned), ".{0,20}"],
        version in 0u32..5,
        data in json_value(),
    ) {
        if let Ok(event) = Event::decode(&t, version, &data) {
            // What decoded is a catalogue event of that type, and it decodes
            // again from what it writes, at the current version.
            prop_assert_eq!(event.event_type(), t.as_str());
            let again = Event::decode(&t, event.schema_version(), &event.to_data()).unwrap();
            prop_assert_eq!(again.to_data(), event.to_data());
        }
    }
}
