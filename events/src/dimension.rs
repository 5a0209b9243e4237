//! The cost caps' dimensions: what an `OriginateRejected` names, what the
//! `cap-exceeded` problem and the RateLimit headers carry, what a kill
//! switch reports. Spelled here once; the wire names never change.

use serde::{Deserialize, Serialize};

/// One of the caps: the tenant's four, and a number's own daily calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Concurrent,
    CallsPerMinute,
    DailyCalls,
    DailyMinutes,
    /// The calling number's own daily cap (`NumberDailyCapSet`).
    NumberDailyCalls,
    /// Not a cap: the tenant's destination policy (`DestinationsSet`) does
    /// not allow the called number; the rejection names the country.
    Destination,
}

impl Dimension {
    /// In the order they are checked; the first failing one is reported.
    pub const ALL: [Dimension; 6] = [
        Dimension::Concurrent,
        Dimension::CallsPerMinute,
        Dimension::DailyCalls,
        Dimension::DailyMinutes,
        Dimension::NumberDailyCalls,
        Dimension::Destination,
    ];

    /// The tenant's own caps (`CallLimitsUpdated`), in checking order.
    pub const TENANT: [Dimension; 4] = [
        Dimension::Concurrent,
        Dimension::CallsPerMinute,
        Dimension::DailyCalls,
        Dimension::DailyMinutes,
    ];

    /// The wire name, e.g. `calls_per_minute`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Concurrent => "concurrent",
            Dimension::CallsPerMinute => "calls_per_minute",
            Dimension::DailyCalls => "daily_calls",
            Dimension::DailyMinutes => "daily_minutes",
            Dimension::NumberDailyCalls => "number_daily_calls",
            Dimension::Destination => "destination",
        }
    }

    pub fn parse(s: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// The window the dimension counts over, in seconds (`None`: calls live
    /// now, no window).
    pub fn window_s(self) -> Option<u64> {
        match self {
            Dimension::Concurrent | Dimension::Destination => None,
            Dimension::CallsPerMinute => Some(60),
            Dimension::DailyCalls | Dimension::DailyMinutes | Dimension::NumberDailyCalls => {
                Some(86_400)
            }
        }
    }
}

impl std::fmt::Display for Dimension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for d in Dimension::ALL {
            assert_eq!(Dimension::parse(d.as_str()), Some(d));
            assert_eq!(serde_json::to_value(d).unwrap(), d.as_str());
        }
        assert_eq!(Dimension::parse("Concurrent"), None);
    }
}
