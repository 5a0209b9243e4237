//! ReleaseNumber: the tenant gives the number up; anyone may attach it again.

use async_trait::async_trait;
use events::{Event, NumberId, NumberReleased, StreamType, TenantId};

use super::state::NumberState;
use super::{check_if_match, Rejection};
use crate::store::{Guard, Loaded, StoreError};
use crate::write::{Command, Decision, Reader};

#[derive(Debug, Clone)]
pub struct ReleaseNumber {
    pub number_id: NumberId,
    pub tenant_id: TenantId,
    pub if_match: Option<i64>,
}

#[async_trait]
impl Command for ReleaseNumber {
    type State = Loaded<NumberState>;

    async fn load(&self, r: &Reader<'_>) -> Result<Self::State, StoreError> {
        r.load(self.number_id, NumberState::apply).await
    }

    /// The release, and the e164's claim let go in the same append.
    fn decide(&self, s: &Self::State) -> Result<Decision, Rejection> {
        let events = decide(&s.state, self.clone())?;
        Ok(
            Decision::one(StreamType::Number, self.number_id, s.head.version, events).guard(
                Guard::ReleaseNumber {
                    number_id: self.number_id,
                },
            ),
        )
    }
}

pub fn decide(state: &NumberState, cmd: ReleaseNumber) -> Result<Vec<Event>, Rejection> {
    if !state.visible_to(cmd.tenant_id) {
        return Err(Rejection::NotFound("number"));
    }
    check_if_match(cmd.if_match, state.version)?;
    Ok(vec![Event::NumberReleased(NumberReleased {})])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::state::{fold, given, number_attached};

    #[test]
    fn released_once_then_not_found() {
        let t = TenantId::new();
        let attached = number_attached(None);
        let cmd = ReleaseNumber {
            number_id: NumberId::default(),
            tenant_id: t,
            if_match: Some(1),
        };
        let s: NumberState = fold(given(t, vec![attached.clone()]), NumberState::apply);
        let events = decide(&s, cmd.clone()).unwrap();
        assert_eq!(events, vec![Event::NumberReleased(NumberReleased {})]);
        let s: NumberState = fold(
            given(t, vec![attached, events[0].clone()]),
            NumberState::apply,
        );
        assert_eq!(decide(&s, cmd), Err(Rejection::NotFound("number")));
    }
}
