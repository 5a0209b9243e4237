//! Which folded states are snapshotted, and under which kind: the one list
//! to change (and bump) when a state or its fold changes.
//!
//! A snapshot (`store::snapshot`) is a state serialized beside its stream,
//! so a process that has not seen the stream starts there, not at the
//! first event. These are the only command-side types serialized outside
//! `events/`: a snapshot is a cache keyed by its kind, never read by anyone
//! but this code, and any of them may be deleted at any time.

use super::call::CallState;
use super::set_destinations::DestinationsState;
use super::state::{LimitsState, NumberState, ProviderState, TenantState};

/// A state type as snapshots keep it between processes.
///
/// Only states of streams that can grow without bound are snapshotted; a
/// call's stream is short and keeps the defaults (`KIND` none: never
/// written, never read).
pub trait Snapshot: Sized {
    /// The state and the revision of its fold, `<state>/<revision>`. What a
    /// stored snapshot means is fixed by its kind: a change to the fields
    /// or to what `apply` folds an event into needs a new revision (the
    /// pinned test below fails until it is bumped), and snapshots of the
    /// old revision are then ignored.
    const KIND: Option<&'static str> = None;

    fn to_snapshot(&self) -> Option<serde_json::Value> {
        None
    }

    /// `None` for a value this revision cannot read: ignored like no
    /// snapshot at all.
    fn from_snapshot(_: serde_json::Value) -> Option<Self> {
        None
    }

    /// The stream version this state says it is the fold of (each
    /// snapshotted state records it; a snapshot whose state disagrees with
    /// the version it was stored at is not used).
    fn folded_version(&self) -> i64 {
        0
    }
}

/// `Snapshot` for a state with serde's derives, at kind `$kind`.
macro_rules! snapshot {
    ($state:ty, $kind:literal) => {
        impl Snapshot for $state {
            const KIND: Option<&'static str> = Some($kind);

            fn to_snapshot(&self) -> Option<serde_json::Value> {
                serde_json::to_value(self).ok()
            }

            fn from_snapshot(v: serde_json::Value) -> Option<Self> {
                serde_json::from_value(v).ok()
            }

            fn folded_version(&self) -> i64 {
                self.version
            }
        }
    };
}

snapshot!(ProviderState, "provider/1");
snapshot!(NumberState, "number/1");
snapshot!(LimitsState, "limits/1");
snapshot!(DestinationsState, "destinations/1");
snapshot!(TenantState, "tenant/1");

/// A call's stream is its lifecycle, a handful of events.
impl Snapshot for CallState {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use events::*;
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::commands::state::{fold, given};

    fn tenant() -> TenantId {
        TenantId::from_uuid(Uuid::from_u128(0x1234))
    }

    fn sealed(key: &str) -> EncryptedCredentials {
        EncryptedCredentials {
            key_id: key.into(),
            ciphertext: "c2VhbGVk".into(),
            masked: BTreeMap::from([("auth_token".into(), "****1234".into())]),
        }
    }

    /// Every event each snapshotted state folds, in a stream.
    fn folded() -> (
        ProviderState,
        NumberState,
        LimitsState,
        DestinationsState,
        [TenantState; 2],
    ) {
        let t = tenant();
        let provider = fold(
            given(
                t,
                vec![
                    Event::ProviderCreated(ProviderCreated {
                        provider: ProviderKind::Twilio,
                        label: "main".into(),
                        credentials: sealed("k1"),
                    }),
                    Event::ProviderRelabeled(ProviderRelabeled {
                        label: "backup".into(),
                    }),
                    Event::ProviderCredentialsRotated(ProviderCredentialsRotated {
                        credentials: sealed("k2"),
                    }),
                    Event::ProviderDeleted(ProviderDeleted {}),
                ],
            ),
            ProviderState::apply,
        );
        let number = fold(
            given(
                t,
                vec![
                    Event::NumberAttached(NumberAttached {
                        e164: "+12025550123".into(),
                        provider: ProviderKind::Plivo,
                        credentials_id: ProviderId::from_uuid(Uuid::from_u128(7)),
                        agent_id: None,
                        inbound_enabled: true,
                        outbound_enabled: true,
                    }),
                    Event::NumberAgentAssigned(NumberAgentAssigned {
                        agent_id: Some(Uuid::from_u128(8)),
                    }),
                    Event::NumberDirectionsChanged(NumberDirectionsChanged {
                        inbound_enabled: false,
                        outbound_enabled: true,
                    }),
                    Event::NumberDailyCapSet(NumberDailyCapSet {
                        daily_calls_max: Some(40),
                    }),
                    Event::NumberReleased(NumberReleased {}),
                ],
            ),
            NumberState::apply,
        );
        let limits = fold(
            given(
                t,
                vec![Event::CallLimitsUpdated(CallLimitsUpdated {
                    concurrent_max: 1,
                    calls_per_minute: 2,
                    daily_calls_max: 3,
                    daily_minutes_max: 4,
                })],
            ),
            LimitsState::apply,
        );
        let destinations = fold(
            given(
                t,
                vec![Event::DestinationsSet(DestinationsSet {
                    allowed_countries: vec!["GB".into(), "US".into()],
                    allow_premium_rate: true,
                    allow_satellite: false,
                })],
            ),
            DestinationsState::apply,
        );
        let created = |k: &str| Event::TenantKeyCreated(TenantKeyCreated { key_id: k.into() });
        let rewrapped = |k: &str, m: &str| {
            Event::TenantKeyRewrapped(TenantKeyRewrapped {
                key_id: k.into(),
                master_kid: m.into(),
            })
        };
        let shred = |k: &str| Event::TenantKeyShredded(TenantKeyShredded { key_id: k.into() });
        let keys = |events| fold(given(t, events), TenantState::apply);
        // Every arm, the conditional ones both ways: a new key forgets the
        // rewrap of the last; a rewrap or shred of a key not live leaves
        // the live one as it is.
        let live = keys(vec![
            created("k1"),
            rewrapped("k1", "m2"),
            created("k2"),
            rewrapped("k1", "m3"),
            shred("k1"),
            Event::MasterKeyAdded(MasterKeyAdded { kid: "m5".into() }),
        ]);
        // Shredding the live key forgets it and its rewrap.
        let shredded = keys(vec![created("k1"), rewrapped("k1", "m2"), shred("k1")]);
        (provider, number, limits, destinations, [live, shredded])
    }

    fn round_trip<S: Snapshot + PartialEq + std::fmt::Debug>(s: &S) {
        let value = s.to_snapshot().expect("serializable");
        assert_eq!(S::from_snapshot(value).as_ref(), Some(s));
    }

    #[test]
    fn every_snapshotted_state_reads_back_as_it_was_written() {
        let (p, n, l, d, [k, ks]) = folded();
        round_trip(&p);
        round_trip(&n);
        round_trip(&l);
        round_trip(&d);
        round_trip(&k);
        round_trip(&ks);
        round_trip(&ProviderState::default());
        round_trip(&LimitsState::default());
    }

    #[test]
    fn a_value_of_another_shape_is_no_snapshot() {
        assert_eq!(LimitsState::from_snapshot(json!({"version": "x"})), None);
        assert_eq!(
            LimitsState::from_snapshot(json!({"version": 1, "limits": null,
                "updated_at": null, "added_later": 1})),
            None,
            "a field this revision does not know"
        );
        assert!(CallState::KIND.is_none());
        assert!(CallState::default().to_snapshot().is_none());
    }

    /// If this fails, a state or its fold changed what a snapshot holds:
    /// bump that state's revision in the list above (so the stored
    /// snapshots of the old one are ignored), then update the value here.
    #[test]
    fn snapshot_kinds_are_pinned() {
        let (p, n, l, d, [k, ks]) = folded();
        let pinned = [
            (
                ProviderState::KIND,
                p.to_snapshot(),
                json!({"tenant_id": "00000000-0000-0000-0000-000000001234", "version": 4,
                    "kind": "twilio", "label": "backup",
                    "credentials": {"key_id": "k2", "ciphertext": "c2VhbGVk",
                                    "masked": {"auth_token": "****1234"}},
                    "deleted": true,
                    "created_at": "2027-01-15T08:00:00Z",
                    "updated_at": "2027-01-15T08:00:03Z"}),
            ),
            (
                NumberState::KIND,
                n.to_snapshot(),
                json!({"tenant_id": "00000000-0000-0000-0000-000000001234", "version": 5,
                    "e164": "+12025550123", "provider": "plivo",
                    "credentials_id": "00000000-0000-0000-0000-000000000007",
                    "agent_id": "00000000-0000-0000-0000-000000000008",
                    "inbound_enabled": false, "outbound_enabled": true,
                    "daily_calls_max": 40, "released": true,
                    "created_at": "2027-01-15T08:00:00Z",
                    "updated_at": "2027-01-15T08:00:04Z"}),
            ),
            (
                LimitsState::KIND,
                l.to_snapshot(),
                json!({"version": 1,
                    "limits": {"concurrent_max": 1, "calls_per_minute": 2,
                               "daily_calls_max": 3, "daily_minutes_max": 4},
                    "updated_at": "2027-01-15T08:00:00Z"}),
            ),
            (
                DestinationsState::KIND,
                d.to_snapshot(),
                json!({"version": 1,
                    "policy": {"allowed_countries": ["GB", "US"],
                               "allow_premium_rate": true, "allow_satellite": false},
                    "updated_at": "2027-01-15T08:00:00Z"}),
            ),
            (
                TenantState::KIND,
                k.to_snapshot(),
                json!({"version": 6, "key_id": "k2", "shredded": ["k1"],
                    "rewrapped_under": null, "master_keys": ["m5"]}),
            ),
            (
                TenantState::KIND,
                ks.to_snapshot(),
                json!({"version": 3, "key_id": null, "shredded": ["k1"],
                    "rewrapped_under": null, "master_keys": []}),
            ),
        ];
        let kinds: Vec<_> = pinned.iter().map(|(k, _, _)| k.unwrap_or("none")).collect();
        assert_eq!(
            kinds,
            [
                "provider/1",
                "number/1",
                "limits/1",
                "destinations/1",
                "tenant/1",
                "tenant/1"
            ]
        );
        for (kind, got, want) in pinned {
            assert_eq!(got, Some(want), "{kind:?}: see this test's comment");
        }
    }
}
