//! Cost caps.

use events::CallLimitsUpdated;
use serde::{Deserialize, Serialize};

/// A limit may be at most this (a billion calls a day is no cap at all).
pub const MAX_LIMIT: u32 = 1_000_000_000;

/// A tenant's four caps; 0 blocks a dimension (a kill switch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallLimits {
    pub concurrent_max: u32,
    pub calls_per_minute: u32,
    pub daily_calls_max: u32,
    pub daily_minutes_max: u32,
}

impl CallLimits {
    /// What a tenant that never set its caps gets (SPEC §4).
    pub const SHIPPED_DEFAULTS: CallLimits = CallLimits {
        concurrent_max: 10,
        calls_per_minute: 10,
        daily_calls_max: 1000,
        daily_minutes_max: 600,
    };

    /// The limit of one of the tenant's dimensions (`Dimension::TENANT`);
    /// `None` for a number's own cap, which is not the tenant's.
    pub fn of(&self, dimension: events::Dimension) -> Option<u32> {
        use events::Dimension::*;
        match dimension {
            Concurrent => Some(self.concurrent_max),
            CallsPerMinute => Some(self.calls_per_minute),
            DailyCalls => Some(self.daily_calls_max),
            DailyMinutes => Some(self.daily_minutes_max),
            NumberDailyCalls | Destination => None,
        }
    }

    pub const FIELDS: [&'static str; 4] = [
        "concurrent_max",
        "calls_per_minute",
        "daily_calls_max",
        "daily_minutes_max",
    ];
}

impl From<CallLimitsUpdated> for CallLimits {
    fn from(e: CallLimitsUpdated) -> Self {
        CallLimits {
            concurrent_max: e.concurrent_max,
            calls_per_minute: e.calls_per_minute,
            daily_calls_max: e.daily_calls_max,
            daily_minutes_max: e.daily_minutes_max,
        }
    }
}

impl From<CallLimits> for CallLimitsUpdated {
    fn from(l: CallLimits) -> Self {
        CallLimitsUpdated {
            concurrent_max: l.concurrent_max,
            calls_per_minute: l.calls_per_minute,
            daily_calls_max: l.daily_calls_max,
            daily_minutes_max: l.daily_minutes_max,
        }
    }
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits::SHIPPED_DEFAULTS
    }
}
