//! Events of a call stream: one outbound call from request to end.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::provider::ProviderKind;
use crate::ids::{NumberId, ProviderId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OriginateRequested {
    pub from_number: String,
    pub to_number: String,
    pub agent_id: Uuid,
    pub number_id: NumberId,
    pub provider: ProviderKind,
    pub credentials_id: ProviderId,
    /// UUIDv7 the tenant's conversation viewer deep-links to.
    pub session_id: Uuid,
    /// Opaque client data, passed through.
    #[serde(default)]
    pub metadata: Value,
}

/// A cost cap, or the destination policy, refused the call; nothing was
/// dialed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OriginateRejected {
    /// Stored as its wire name: `concurrent`, `calls_per_minute`,
    /// `daily_calls`, `daily_minutes`, `number_daily_calls` or `destination`.
    pub dimension: crate::Dimension,
    /// 0 for `destination`.
    pub limit: u64,
    /// The counter's value when the call was refused (0 for `destination`).
    #[serde(default)]
    pub current: u64,
    /// 0 for `destination`: waiting does not help.
    pub retry_after_s: u64,
    /// `destination` only: the called country (ISO 3166-1 alpha-2, or
    /// `001` for a non-geographic network) and the rule that refused it
    /// (`country_not_allowed`, `premium_rate` or `satellite`). Absent from
    /// cap rejections (and from every rejection stored before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<BlockedDestination>,
}

impl OriginateRejected {
    /// The rejection of a call the destination policy refuses.
    pub fn destination(blocked: BlockedDestination) -> Self {
        OriginateRejected {
            dimension: crate::Dimension::Destination,
            limit: 0,
            current: 0,
            retry_after_s: 0,
            blocked: Some(blocked),
        }
    }
}

/// Where a refused call was going, and which rule refused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockedDestination {
    pub country: String,
    pub rule: String,
}

/// A worker admitted the call through the caps and owns dialing it.
///
/// Written with an expected stream version, so of two workers racing for one
/// call exactly one claims it. Not in SPEC §5's list; added as the spec allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OriginateClaimed {
    pub worker_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OriginateDispatched {
    pub provider_call_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OriginateFailed {
    pub error: String,
    pub retryable: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CallRinging {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CallAnswered {}

/// The call is over. Schema version 2 added `hangup_cause`; version 1
/// events are read through the upcaster, which derives it from `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEnded {
    /// `completed`, `busy`, `no_answer`, `failed` or `canceled`.
    pub status: String,
    pub duration_s: u64,
    /// ceil(duration_s / 60).
    pub billed_minutes: u64,
    /// Why the call ended, in the carrier-neutral terms of `hangup_cause_for`
    /// (`normal_clearing`, `user_busy`, `no_answer`, `call_failed`,
    /// `originator_cancel`) or as the Call Processor reported it.
    pub hangup_cause: String,
}

/// The hangup cause a call that ended with `status` has when the Call
/// Processor said nothing more specific (and for version 1 events).
pub fn hangup_cause_for(status: &str) -> &'static str {
    match status {
        "completed" => "normal_clearing",
        "busy" => "user_busy",
        "no_answer" => "no_answer",
        "canceled" => "originator_cancel",
        _ => "call_failed",
    }
}
