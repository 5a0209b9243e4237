//! A call's lifecycle after it was requested: admission through the caps,
//! the dial's outcome, and the Call Processor's status callbacks.
//!
//! Every decision here is idempotent: deciding again on a state that already
//! holds the outcome yields no event, so redeliveries, racing workers and
//! repeated callbacks change nothing.

use async_trait::async_trait;
use events::{
    CallAnswered, CallEnded, CallRinging, CallStatus, Event, OriginateClaimed, OriginateDispatched,
    OriginateFailed, OriginateRejected, OriginateRequested, StreamType,
};
use events::{CallId, TenantId};

use super::state::At;
use super::Rejection;
use crate::domain::{FieldError, Fields};
use crate::store::{Loaded, StoreError};
use crate::write::{Command, Decision, Reader};

/// Where the dial stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// No such call.
    #[default]
    None,
    Requested,
    Rejected,
    /// Admitted by the caps; a worker owns the dial.
    Claimed,
    Dispatched,
    Failed,
}

/// A call stream folded.
#[derive(Debug, Clone, Default)]
pub struct CallState {
    pub tenant_id: TenantId,
    pub version: i64,
    pub phase: Phase,
    pub request: Option<OriginateRequested>,
    /// When a worker claimed the call (admission).
    pub claimed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The worker that claimed it.
    pub claimed_by: Option<String>,
    pub provider_call_id: Option<String>,
    pub ringing: bool,
    pub answered: bool,
    /// The end status, once ended.
    pub ended: Option<String>,
}

impl CallState {
    pub fn apply(&mut self, at: At, event: &Event) {
        self.version = at.version;
        match event {
            Event::OriginateRequested(r) => {
                self.tenant_id = at.tenant_id;
                self.phase = Phase::Requested;
                self.request = Some(r.clone());
            }
            Event::OriginateRejected(_) => self.phase = Phase::Rejected,
            Event::OriginateClaimed(c) => {
                self.phase = Phase::Claimed;
                self.claimed_at = Some(at.recorded_at);
                self.claimed_by = Some(c.worker_id.clone());
            }
            Event::OriginateDispatched(d) => {
                self.phase = Phase::Dispatched;
                self.provider_call_id = Some(d.provider_call_id.clone());
            }
            Event::OriginateFailed(_) => self.phase = Phase::Failed,
            Event::CallRinging(_) => self.ringing = true,
            Event::CallAnswered(_) => self.answered = true,
            Event::CallEnded(e) => self.ended = Some(e.status.clone()),
            _ => {}
        }
    }
}

/// What the caps said.
#[derive(Debug, Clone)]
pub enum Admission {
    Admitted { worker_id: String },
    Refused(OriginateRejected),
}

/// Records the caps' answer, once.
pub fn admit(state: &CallState, admission: Admission) -> Vec<Event> {
    if state.phase != Phase::Requested {
        return vec![];
    }
    vec![match admission {
        Admission::Admitted { worker_id } => {
            Event::OriginateClaimed(OriginateClaimed { worker_id })
        }
        Admission::Refused(r) => Event::OriginateRejected(r),
    }]
}

/// How the dial ended.
#[derive(Debug, Clone, PartialEq)]
pub enum DialOutcome {
    Dispatched {
        provider_call_id: String,
    },
    Failed {
        error: String,
        retryable: bool,
    },
    /// No answer from the Call Processor after every attempt: the call may
    /// or may not have been placed. Recorded (as a retryable failure) only
    /// when the worker gives up retrying with the same key.
    Unavailable,
}

/// Records the dial's outcome, once, and only for a claimed call.
pub fn record_dial(state: &CallState, outcome: DialOutcome) -> Vec<Event> {
    if state.phase != Phase::Claimed {
        return vec![];
    }
    vec![match outcome {
        DialOutcome::Dispatched { provider_call_id } => {
            Event::OriginateDispatched(OriginateDispatched { provider_call_id })
        }
        DialOutcome::Failed { error, retryable } => {
            Event::OriginateFailed(OriginateFailed { error, retryable })
        }
        DialOutcome::Unavailable => Event::OriginateFailed(OriginateFailed {
            error: "call_processor_unavailable".into(),
            retryable: true,
        }),
    }]
}

/// RecordCallback: the Call Processor reports a call's status.
#[derive(Debug, Clone)]
pub struct RecordCallback {
    pub call_id: CallId,
    /// Must match the call's, once the dial's outcome named one.
    pub provider_call_id: String,
    pub status: String,
    pub duration_s: Option<u64>,
    pub hangup_cause: Option<String>,
}

impl RecordCallback {
    /// The callback body of SPEC §7, checked field by field.
    pub fn parse(
        body: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut f = Fields::new(body);
        f.deny_unknown(&[
            "call_id",
            "provider_call_id",
            "status",
            "timestamp",
            "duration_s",
            "hangup_cause",
        ]);
        let call_id = f.uuid("call_id");
        let provider_call_id = f.string("provider_call_id", 128);
        let status = f.string("status", 32);
        // Validated, not used: the event's own time is when it was recorded.
        f.timestamp("timestamp");
        let duration_s = f.opt_u32("duration_s", 7 * 86_400).map(u64::from);
        let hangup_cause = f.opt_string("hangup_cause", 64);
        f.finish()?;
        match (call_id, provider_call_id, status) {
            (Some(call_id), Some(provider_call_id), Some(status)) => Ok(RecordCallback {
                call_id,
                provider_call_id,
                status,
                duration_s,
                hangup_cause,
            }),
            _ => Err(vec![FieldError::new("body", "is incomplete")]),
        }
    }
}

#[async_trait]
impl Command for RecordCallback {
    type State = Loaded<CallState>;

    async fn load(&self, r: &Reader<'_>) -> Result<Self::State, StoreError> {
        r.load(self.call_id, CallState::apply).await
    }

    fn decide(&self, s: &Self::State) -> Result<Decision, Rejection> {
        let state = &s.state;
        if state
            .provider_call_id
            .as_deref()
            .is_some_and(|p| p != self.provider_call_id)
        {
            return Err(Rejection::Conflict(
                "provider_call_id does not match the call".into(),
            ));
        }
        let events = apply_callback(
            state,
            &self.status,
            self.duration_s,
            self.hangup_cause.as_deref(),
        )?;
        Ok(Decision::one(
            StreamType::Call,
            self.call_id,
            s.head.version,
            events,
        ))
    }
}

/// Applies one status callback. Callbacks may repeat or come out of order:
/// each is applied at most once, and an ended call never changes again.
pub fn apply_callback(
    state: &CallState,
    status: &str,
    duration_s: Option<u64>,
    hangup_cause: Option<&str>,
) -> Result<Vec<Event>, Rejection> {
    if state.phase == Phase::None {
        return Err(Rejection::NotFound("call"));
    }
    let Some(status) = CallStatus::parse(status).filter(|s| CallStatus::CALLBACK.contains(s))
    else {
        return Err(Rejection::invalid("status", "is not a call status"));
    };
    // Never dialed (refused or failed to dial), or already over.
    if matches!(
        state.phase,
        Phase::Requested | Phase::Rejected | Phase::Failed
    ) || state.ended.is_some()
    {
        return Ok(vec![]);
    }
    Ok(match status {
        CallStatus::Ringing if !state.ringing && !state.answered => {
            vec![Event::CallRinging(CallRinging {})]
        }
        CallStatus::Answered if !state.answered => vec![Event::CallAnswered(CallAnswered {})],
        CallStatus::Ringing | CallStatus::Answered => vec![],
        end => {
            let end = end.as_str();
            let duration_s = duration_s.unwrap_or(0);
            vec![Event::CallEnded(CallEnded {
                status: end.to_owned(),
                duration_s,
                billed_minutes: duration_s.div_ceil(60),
                hangup_cause: hangup_cause
                    .unwrap_or(events::hangup_cause_for(end))
                    .to_owned(),
            })]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::state::{fold, given};
    use events::ProviderKind;
    use events::{NumberId, ProviderId};
    use uuid::Uuid;

    fn requested() -> Event {
        Event::OriginateRequested(OriginateRequested {
            from_number: "+12025550123".into(),
            to_number: "+14155550100".into(),
            agent_id: Uuid::nil(),
            number_id: NumberId::default(),
            provider: ProviderKind::Twilio,
            credentials_id: ProviderId::default(),
            session_id: Uuid::nil(),
            metadata: serde_json::Value::Null,
        })
    }

    fn state(events: Vec<Event>) -> CallState {
        fold(given(TenantId::default(), events), CallState::apply)
    }

    fn dispatched() -> Vec<Event> {
        vec![
            requested(),
            Event::OriginateClaimed(OriginateClaimed {
                worker_id: "w".into(),
            }),
            Event::OriginateDispatched(OriginateDispatched {
                provider_call_id: "P".into(),
            }),
        ]
    }

    #[test]
    fn admission_and_dial_are_recorded_once() {
        let s = state(vec![requested()]);
        let claimed = admit(
            &s,
            Admission::Admitted {
                worker_id: "w".into(),
            },
        );
        assert_eq!(claimed.len(), 1);
        let s = state(vec![requested(), claimed[0].clone()]);
        assert!(
            admit(
                &s,
                Admission::Admitted {
                    worker_id: "w2".into()
                }
            )
            .is_empty(),
            "a second worker claims nothing"
        );
        let out = DialOutcome::Dispatched {
            provider_call_id: "P".into(),
        };
        let d = record_dial(&s, out.clone());
        assert_eq!(d.len(), 1);
        let s = state(dispatched());
        assert!(record_dial(&s, out).is_empty());
        let failed = DialOutcome::Failed {
            error: "x".into(),
            retryable: true,
        };
        assert!(
            record_dial(&s, failed).is_empty(),
            "never dispatched and failed both"
        );
    }

    #[test]
    fn callbacks_repeat_and_reorder_into_one_end() {
        let mut events = dispatched();
        for (status, d) in [
            ("answered", None),
            ("ringing", None),
            ("completed", Some(61)),
            ("answered", None),
        ] {
            let s = state(events.clone());
            events.extend(apply_callback(&s, status, d, None).unwrap());
        }
        let s = state(events.clone());
        assert!(apply_callback(&s, "completed", Some(61), None)
            .unwrap()
            .is_empty());
        assert!(
            apply_callback(&s, "failed", None, None).unwrap().is_empty(),
            "never back from an end state"
        );
        let ended: Vec<&Event> = events
            .iter()
            .filter(|e| matches!(e, Event::CallEnded(_)))
            .collect();
        assert_eq!(
            ended,
            [&Event::CallEnded(CallEnded {
                status: "completed".into(),
                duration_s: 61,
                billed_minutes: 2,
                hangup_cause: "normal_clearing".into(),
            })]
        );
        assert!(
            !events.iter().any(|e| matches!(e, Event::CallRinging(_))),
            "ringing after answered is stale"
        );
    }

    #[test]
    fn billed_minutes_round_up() {
        let s = state(dispatched());
        for (d, m) in [(0, 0), (1, 1), (60, 1), (61, 2), (3600, 60)] {
            let e = apply_callback(&s, "completed", Some(d), None).unwrap();
            assert!(
                matches!(&e[0], Event::CallEnded(c) if c.billed_minutes == m),
                "{d}"
            );
        }
    }

    #[test]
    fn unknown_calls_and_statuses_are_refused() {
        assert_eq!(
            apply_callback(&CallState::default(), "ringing", None, None),
            Err(Rejection::NotFound("call"))
        );
        assert!(apply_callback(&state(dispatched()), "exploded", None, None).is_err());
        let rejected = state(vec![
            requested(),
            Event::OriginateRejected(OriginateRejected {
                dimension: events::Dimension::Concurrent,
                limit: 1,
                current: 1,
                retry_after_s: 1,
                blocked: None,
            }),
        ]);
        assert!(apply_callback(&rejected, "completed", Some(5), None)
            .unwrap()
            .is_empty());
    }
}
