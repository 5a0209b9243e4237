//! UpdateLimits: PATCH any subset of the caps, or PUT all four.

use events::Event;

use super::state::LimitsState;
use super::{check_if_match, Rejection};
use crate::domain::CallLimits;

/// Each `Some` replaces that cap; a PUT has all four.
#[derive(Debug, Clone, Default)]
pub struct UpdateLimits {
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
    // Written even when unchanged: who confirmed the caps, and when, is part
    // of the audit trail.
    Ok(vec![Event::CallLimitsUpdated(new.into())])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::state::{fold, given};
    use uuid::Uuid;

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
            given(Uuid::nil(), vec![Event::CallLimitsUpdated(set.into())]),
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
