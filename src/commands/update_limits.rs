//! UpdateLimits: PATCH any subset of the caps, or PUT all four.

use async_trait::async_trait;
use events::{call_limits_stream_id, Event, StreamType, TenantId};

use super::state::LimitsState;
use super::{check_if_match, Rejection};
use crate::domain::CallLimits;
use crate::store::{Loaded, StoreError};
use crate::write::{Command, Decision, Reader};

/// Each `Some` replaces that cap; a PUT has all four.
#[derive(Debug, Clone, Default)]
pub struct UpdateLimits {
    pub tenant_id: TenantId,
    /// The configured caps of a tenant that never set its own.
    pub defaults: CallLimits,
    pub concurrent_max: Option<u32>,
    pub calls_per_minute: Option<u32>,
    pub daily_calls_max: Option<u32>,
    pub daily_minutes_max: Option<u32>,
    pub if_match: Option<i64>,
}

/// `defaults` are the configured caps of a tenant that never set its own.
pub fn decide(
    state: &LimitsState,
    defaults: CallLimits,
    cmd: UpdateLimits,
) -> Result<Vec<Event>, Rejection> {
    check_if_match(cmd.if_match, state.version)?;
    let cur = state.limits.unwrap_or(defaults);
    let new = CallLimits {
        concurrent_max: cmd.concurrent_max.unwrap_or(cur.concurrent_max),
        calls_per_minute: cmd.calls_per_minute.unwrap_or(cur.calls_per_minute),
        daily_calls_max: cmd.daily_calls_max.unwrap_or(cur.daily_calls_max),
        daily_minutes_max: cmd.daily_minutes_max.unwrap_or(cur.daily_minutes_max),
    };
    // Caps the tenant set already, set again to the same values, change
    // nothing and append nothing (a history that grows with no-op PATCHes
    // would cost every reader). Pinning the defaults explicitly is a change:
    // the configured defaults may move later, pinned caps do not.
    if state.limits == Some(new) {
        return Ok(Vec::new());
    }
    Ok(vec![Event::CallLimitsUpdated(new.into())])
}

#[async_trait]
impl Command for UpdateLimits {
    type State = Loaded<LimitsState>;

    async fn load(&self, r: &Reader<'_>) -> Result<Self::State, StoreError> {
        r.load(call_limits_stream_id(self.tenant_id), LimitsState::apply)
            .await
    }

    fn decide(&self, s: &Self::State) -> Result<Decision, Rejection> {
        let events = decide(&s.state, self.defaults, self.clone())?;
        let id = call_limits_stream_id(self.tenant_id);
        Ok(Decision::one(
            StreamType::CallLimits,
            id,
            s.head.version,
            events,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::state::{fold, given};

    #[test]
    fn a_patch_starts_from_the_defaults_when_never_set() {
        let cmd = UpdateLimits {
            concurrent_max: Some(0),
            ..Default::default()
        };
        let events = decide(&LimitsState::default(), CallLimits::SHIPPED_DEFAULTS, cmd).unwrap();
        let Event::CallLimitsUpdated(e) = &events[0] else {
            panic!()
        };
        assert_eq!(
            CallLimits::from(*e),
            CallLimits {
                concurrent_max: 0,
                ..CallLimits::SHIPPED_DEFAULTS
            }
        );
    }

    #[test]
    fn a_patch_keeps_the_other_caps() {
        let set = CallLimits {
            concurrent_max: 20,
            calls_per_minute: 10,
            daily_calls_max: 1000,
            daily_minutes_max: 2400,
        };
        let s: LimitsState = fold(
            given(
                TenantId::default(),
                vec![Event::CallLimitsUpdated(set.into())],
            ),
            LimitsState::apply,
        );
        let cmd = UpdateLimits {
            daily_minutes_max: Some(5),
            if_match: Some(1),
            ..Default::default()
        };
        let events = decide(&s, CallLimits::SHIPPED_DEFAULTS, cmd).unwrap();
        assert_eq!(
            events,
            vec![Event::CallLimitsUpdated(
                CallLimits {
                    daily_minutes_max: 5,
                    ..set
                }
                .into()
            )]
        );
        let same = UpdateLimits {
            daily_minutes_max: Some(2400),
            ..Default::default()
        };
        assert_eq!(
            decide(&s, CallLimits::SHIPPED_DEFAULTS, same),
            Ok(vec![]),
            "setting what is set changes nothing"
        );
        let stale = UpdateLimits {
            if_match: Some(9),
            ..Default::default()
        };
        assert_eq!(
            decide(&s, CallLimits::SHIPPED_DEFAULTS, stale),
            Err(Rejection::PreconditionFailed { current: 1 })
        );
    }
}
