//! ReleaseNumber: the tenant gives the number up; anyone may attach it again.

use events::{Event, NumberReleased};
use uuid::Uuid;

use super::state::NumberState;
use super::{check_if_match, Rejection};

#[derive(Debug, Clone)]
pub struct ReleaseNumber {
    pub tenant_id: Uuid,
    pub if_match: Option<i64>,
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
        let t = Uuid::new_v4();
        let attached = number_attached(None);
        let cmd = ReleaseNumber {
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
