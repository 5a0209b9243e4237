//! UpdateNumber (PATCH): pin, reassign or detach the agent; set directions.

use async_trait::async_trait;
use events::{Event, NumberAgentAssigned, NumberDirectionsChanged, NumberId, StreamType, TenantId};
use uuid::Uuid;

use super::state::NumberState;
use super::{check_if_match, Rejection};
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
    pub if_match: Option<i64>,
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
}
