//! Events of a tenant's call_limits stream (its id is `call_limits_stream_id(tenant)`).

use serde::{Deserialize, Serialize};

/// The four cost caps in force after the update; 0 blocks a dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallLimitsUpdated {
    pub concurrent_max: u32,
    pub calls_per_minute: u32,
    pub daily_calls_max: u32,
    pub daily_minutes_max: u32,
}
