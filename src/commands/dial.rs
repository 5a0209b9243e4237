//! The dial's rules: what stops a claimed call from being dialed, and when
//! an unanswered dial is tried again rather than recorded as failed.
//!
//! Pure: the worker reads the caps, the call and the time, and asks here.

use std::time::Duration;

use chrono::{DateTime, Utc};

use events::{Dimension, EncryptedCredentials, TenantId};

use super::call::{CallState, DialOutcome};
use super::state::ProviderState;
use crate::domain::CallLimits;

/// Callbacks already show the call was placed (ringing, answered, ended).
/// Nothing may refuse it any more: a refusal would record a live call as
/// failed and free its slot.
pub fn is_live(state: &CallState) -> bool {
    state.ringing || state.answered || state.ended.is_some()
}

/// A cap set to 0 after the call was admitted stops its dial (a retryable
/// failure), unless the call is live already. The first dimension at 0 is
/// named, in the order concurrent, calls per minute, daily calls, daily
/// minutes.
pub fn kill_switch(limits: &CallLimits, live: bool) -> Option<DialOutcome> {
    if live {
        return None;
    }
    events::Dimension::TENANT
        .into_iter()
        .map(|d| (d, limits.of(d)))
        .find(|(_, v)| *v == Some(0))
        .map(|(dimension, _)| DialOutcome::Failed {
            error: format!("kill_switch: {dimension} is 0"),
            retryable: true,
        })
}

/// The caps, reserved again just before the dial (Redis may have lost the
/// counters since admission), refused `dimension`: a retryable failure,
/// unless the call is live already.
pub fn refused_again(dimension: Dimension, live: bool) -> Option<DialOutcome> {
    (!live).then(|| DialOutcome::Failed {
        error: format!("cap_reached: {}", dimension.as_str()),
        retryable: true,
    })
}

/// The sealed credentials the call dials with: its provider's, while the
/// provider exists and is the tenant's. A live call keeps them even if the
/// provider was deleted meanwhile (the Call Processor is only asked again).
pub fn credentials_for(
    provider: &ProviderState,
    tenant: TenantId,
    live: bool,
) -> Result<&EncryptedCredentials, DialOutcome> {
    let usable = provider.visible_to(tenant) || (live && provider.tenant_id == tenant);
    provider
        .credentials
        .as_ref()
        .filter(|_| usable)
        .ok_or(DialOutcome::Failed {
            error: "provider_deleted".into(),
            retryable: false,
        })
}

/// How long to leave a call to the worker that claimed it, when that is
/// another worker (`me` is not `claimed_by`) and the claim is younger than
/// `ack_wait`: that worker is most likely dialing it right now (a call
/// requested in its own process reaches it before JetStream delivers the
/// message here), and dialing beside it would only ask the Call Processor
/// again under the same key. After `ack_wait` the claimer counts as dead,
/// as JetStream counts a worker that stops acknowledging, and the call is
/// dialed again with the same key. The claim's time is the claimer's clock:
/// skew between hosts shifts this wait by as much, nothing more.
pub fn held_elsewhere(
    state: &CallState,
    me: &str,
    now: DateTime<Utc>,
    ack_wait: Duration,
) -> Option<Duration> {
    let (by, at) = (state.claimed_by.as_deref()?, state.claimed_at?);
    if by == me {
        return None;
    }
    let age = (now - at).to_std().unwrap_or_default();
    ack_wait.checked_sub(age).filter(|left| !left.is_zero())
}

/// Whether an unanswered dial (`Unavailable`: the call may have been placed,
/// only the answer lost) is tried again later with the same key instead of
/// being recorded: always while the call is live, otherwise until `give_up`
/// has passed since the claim, and never on the last attempt.
pub fn retry_later(
    state: &CallState,
    outcome: &DialOutcome,
    now: DateTime<Utc>,
    give_up: Duration,
    final_attempt: bool,
) -> bool {
    if !matches!(outcome, DialOutcome::Unavailable) {
        return false;
    }
    let waited = state
        .claimed_at
        .and_then(|t| (now - t).to_std().ok())
        .unwrap_or_default();
    is_live(state) || (!final_attempt && waited < give_up)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::call::Phase;

    fn claimed(at: DateTime<Utc>) -> CallState {
        CallState {
            phase: Phase::Claimed,
            claimed_at: Some(at),
            ..Default::default()
        }
    }

    #[test]
    fn a_young_claim_of_another_worker_is_left_to_it_until_the_ack_wait() {
        let t0 = Utc::now();
        let wait = Duration::from_secs(30);
        let state = CallState {
            claimed_by: Some("w1".into()),
            ..claimed(t0)
        };
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        assert_eq!(
            held_elsewhere(&state, "w2", at(10), wait),
            Some(Duration::from_secs(20))
        );
        assert_eq!(held_elsewhere(&state, "w2", at(30), wait), None);
        assert_eq!(held_elsewhere(&state, "w2", at(31), wait), None);
        // Its own claim: the worker goes on (a retry, or its own redelivery).
        assert_eq!(held_elsewhere(&state, "w1", at(1), wait), None);
        // A clock behind the claimer's: the whole wait, never more.
        assert_eq!(held_elsewhere(&state, "w2", at(-5), wait), Some(wait));
        // Not claimed: nothing to leave to anyone.
        assert_eq!(
            held_elsewhere(&CallState::default(), "w2", at(1), wait),
            None
        );
    }

    #[test]
    fn a_cap_refused_again_fails_the_dial_unless_the_call_is_live() {
        assert_eq!(
            refused_again(Dimension::DailyCalls, false),
            Some(DialOutcome::Failed {
                error: "cap_reached: daily_calls".into(),
                retryable: true
            })
        );
        assert_eq!(refused_again(Dimension::DailyCalls, true), None);
    }

    #[test]
    fn a_deleted_or_foreign_provider_does_not_dial_unless_the_call_is_live() {
        use crate::commands::create_provider::tests::created;
        use crate::commands::state::{fold, given};
        use events::{Event, ProviderDeleted, ProviderKind};
        let t = TenantId::new();
        let p: ProviderState = fold(
            given(t, vec![created(ProviderKind::Twilio)]),
            ProviderState::apply,
        );
        assert!(credentials_for(&p, t, false).is_ok());
        let deleted = DialOutcome::Failed {
            error: "provider_deleted".into(),
            retryable: false,
        };
        assert_eq!(
            credentials_for(&p, TenantId::new(), false),
            Err(deleted.clone())
        );
        assert_eq!(
            credentials_for(&p, TenantId::new(), true),
            Err(deleted.clone())
        );
        let gone: ProviderState = fold(
            given(
                t,
                vec![
                    created(ProviderKind::Twilio),
                    Event::ProviderDeleted(ProviderDeleted {}),
                ],
            ),
            ProviderState::apply,
        );
        assert_eq!(credentials_for(&gone, t, false), Err(deleted));
        assert!(
            credentials_for(&gone, t, true).is_ok(),
            "a live call keeps them"
        );
    }

    #[test]
    fn a_zero_cap_stops_the_dial_unless_the_call_is_live() {
        let l = CallLimits {
            daily_calls_max: 0,
            daily_minutes_max: 0,
            ..CallLimits::SHIPPED_DEFAULTS
        };
        assert_eq!(
            kill_switch(&l, false),
            Some(DialOutcome::Failed {
                error: "kill_switch: daily_calls is 0".into(),
                retryable: true
            })
        );
        assert_eq!(kill_switch(&l, true), None);
        assert_eq!(kill_switch(&CallLimits::SHIPPED_DEFAULTS, false), None);
    }

    #[test]
    fn an_unanswered_dial_is_retried_until_give_up_or_forever_when_live() {
        let t0 = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let minute = Duration::from_secs(60);
        let later = |s: i64| t0 + chrono::Duration::seconds(s);
        let s = claimed(t0);
        let u = DialOutcome::Unavailable;
        assert!(retry_later(&s, &u, later(30), minute, false));
        assert!(!retry_later(&s, &u, later(61), minute, false), "given up");
        assert!(!retry_later(&s, &u, later(1), minute, true), "last attempt");
        let live = CallState {
            ringing: true,
            ..claimed(t0)
        };
        assert!(retry_later(&live, &u, later(3_600), minute, true), "live");
        let failed = DialOutcome::Failed {
            error: "x".into(),
            retryable: false,
        };
        assert!(
            !retry_later(&s, &failed, later(1), minute, false),
            "answered"
        );
    }
}
