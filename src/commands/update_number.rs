//! UpdateNumber (PATCH): pin, reassign or detach the agent; set directions;
//! set or clear the number's own daily call cap.

use async_trait::async_trait;
use events::{
    Event, NumberAgentAssigned, NumberDailyCapSet, NumberDirectionsChanged, NumberId, StreamType,
    TenantId,
};
use uuid::Uuid;

use super::state::NumberState;
use super::{check_if_match, Rejection};
use crate::domain::limits::MAX_LIMIT;
use crate::domain::{FieldError, Fields};
use crate::store::{Loaded, StoreError};
use crate::write::{Command, Decision, Reader};

#[derive(Debug, Clone)]
pub struct UpdateNumber {
    pub number_id: NumberId,
    pub tenant_id: TenantId,
    /// `Some(None)` detaches the agent; `None` leaves it.
    pub agent_id: Option<Option<Uuid>>,
    pub inbound_enabled: Option<bool>,
    pub outbound_enabled: Option<bool>,
    /// `Some(None)` clears the number's own cap; `None` leaves it.
    pub daily_calls_max: Option<Option<u32>>,
    pub if_match: Option<i64>,
}

impl UpdateNumber {
    /// The PATCH body, checked field by field, for number `number_id` of
    /// `tenant_id` at `if_match`.
    pub fn parse(
        body: &serde_json::Map<String, serde_json::Value>,
        number_id: NumberId,
        tenant_id: TenantId,
        if_match: Option<i64>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut f = Fields::new(body);
        f.deny_unknown(&[
            "agent_id",
            "inbound_enabled",
            "outbound_enabled",
            "daily_calls_max",
        ]);
        let agent_id = f.opt_nullable_uuid("agent_id");
        let inbound_enabled = f.opt_bool("inbound_enabled");
        let outbound_enabled = f.opt_bool("outbound_enabled");
        let daily_calls_max = f.opt_nullable_u32("daily_calls_max", MAX_LIMIT);
        f.finish()?;
        Ok(UpdateNumber {
            number_id,
            tenant_id,
            agent_id,
            inbound_enabled,
            outbound_enabled,
            daily_calls_max,
            if_match,
        })
    }
}

#[async_trait]
impl Command for UpdateNumber {
    type State = Loaded<NumberState>;

    async fn load(&self, r: &Reader<'_>) -> Result<Self::State, StoreError> {
        r.load(self.number_id, NumberState::apply).await
    }

    fn decide(&self, s: &Self::State) -> Result<Decision, Rejection> {
        let events = decide(&s.state, self.clone())?;
        Ok(Decision::one(
            StreamType::Number,
            self.number_id,
            s.head.version,
            events,
        ))
    }
}

pub fn decide(state: &NumberState, cmd: UpdateNumber) -> Result<Vec<Event>, Rejection> {
    if !state.visible_to(cmd.tenant_id) {
        return Err(Rejection::NotFound("number"));
    }
    check_if_match(cmd.if_match, state.version)?;
    let mut out = Vec::new();
    if let Some(agent_id) = cmd.agent_id.filter(|a| *a != state.agent_id) {
        out.push(Event::NumberAgentAssigned(NumberAgentAssigned { agent_id }));
    }
    let inbound = cmd.inbound_enabled.unwrap_or(state.inbound_enabled);
    let outbound = cmd.outbound_enabled.unwrap_or(state.outbound_enabled);
    if (inbound, outbound) != (state.inbound_enabled, state.outbound_enabled) {
        out.push(Event::NumberDirectionsChanged(NumberDirectionsChanged {
            inbound_enabled: inbound,
            outbound_enabled: outbound,
        }));
    }
    if let Some(daily_calls_max) = cmd.daily_calls_max.filter(|m| *m != state.daily_calls_max) {
        out.push(Event::NumberDailyCapSet(NumberDailyCapSet {
            daily_calls_max,
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::state::{fold, given};

    use crate::commands::state::number_attached as attached;

    fn cmd(t: TenantId) -> UpdateNumber {
        UpdateNumber {
            number_id: NumberId::default(),
            tenant_id: t,
            agent_id: None,
            inbound_enabled: None,
            outbound_enabled: None,
            daily_calls_max: None,
            if_match: None,
        }
    }

    #[test]
    fn reassign_then_detach() {
        let t = TenantId::new();
        let (a1, a2) = (Uuid::new_v4(), Uuid::new_v4());
        let s: NumberState = fold(given(t, vec![attached(Some(a1))]), NumberState::apply);
        let reassign = UpdateNumber {
            number_id: NumberId::default(),
            agent_id: Some(Some(a2)),
            ..cmd(t)
        };
        let events = decide(&s, reassign).unwrap();
        assert_eq!(
            events,
            vec![Event::NumberAgentAssigned(NumberAgentAssigned {
                agent_id: Some(a2)
            })]
        );
        let s: NumberState = fold(
            given(t, vec![attached(Some(a1)), events[0].clone()]),
            NumberState::apply,
        );
        let detach = UpdateNumber {
            number_id: NumberId::default(),
            agent_id: Some(None),
            ..cmd(t)
        };
        assert_eq!(
            decide(&s, detach).unwrap(),
            vec![Event::NumberAgentAssigned(NumberAgentAssigned {
                agent_id: None
            })]
        );
    }

    #[test]
    fn directions_change_only_when_different() {
        let t = TenantId::new();
        let s: NumberState = fold(given(t, vec![attached(None)]), NumberState::apply);
        let same = UpdateNumber {
            number_id: NumberId::default(),
            inbound_enabled: Some(true),
            ..cmd(t)
        };
        assert!(decide(&s, same).unwrap().is_empty());
        let off = UpdateNumber {
            number_id: NumberId::default(),
            outbound_enabled: Some(false),
            ..cmd(t)
        };
        assert_eq!(
            decide(&s, off).unwrap(),
            vec![Event::NumberDirectionsChanged(NumberDirectionsChanged {
                inbound_enabled: true,
                outbound_enabled: false
            })]
        );
    }

    #[test]
    fn the_daily_cap_is_set_changed_and_cleared_only_when_different() {
        let t = TenantId::new();
        let s: NumberState = fold(given(t, vec![attached(None)]), NumberState::apply);
        let set = |max| UpdateNumber {
            daily_calls_max: Some(max),
            ..cmd(t)
        };
        let cap = |daily_calls_max| {
            vec![Event::NumberDailyCapSet(NumberDailyCapSet {
                daily_calls_max,
            })]
        };
        assert_eq!(decide(&s, set(Some(5))).unwrap(), cap(Some(5)));
        assert!(decide(&s, set(None)).unwrap().is_empty(), "no cap to clear");
        let capped: NumberState = fold(
            given(t, vec![attached(None), cap(Some(5)).remove(0)]),
            NumberState::apply,
        );
        assert_eq!(capped.daily_calls_max, Some(5));
        assert!(
            decide(&capped, set(Some(5))).unwrap().is_empty(),
            "same value"
        );
        assert_eq!(decide(&capped, set(Some(0))).unwrap(), cap(Some(0)));
        assert_eq!(decide(&capped, set(None)).unwrap(), cap(None));
    }

    #[test]
    fn a_patch_body_names_every_bad_field() {
        let body = serde_json::json!({"daily_calls_max": -1, "inbound_enabled": "yes", "x": 1});
        let errs = UpdateNumber::parse(
            body.as_object().unwrap(),
            NumberId::new(),
            TenantId::new(),
            None,
        )
        .unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        for f in ["daily_calls_max", "inbound_enabled", "x"] {
            assert!(fields.contains(&f), "{fields:?}");
        }
        let ok = serde_json::json!({"daily_calls_max": null});
        let cmd = UpdateNumber::parse(
            ok.as_object().unwrap(),
            NumberId::new(),
            TenantId::new(),
            Some(3),
        )
        .unwrap();
        assert_eq!((cmd.daily_calls_max, cmd.if_match), (Some(None), Some(3)));
    }
}
