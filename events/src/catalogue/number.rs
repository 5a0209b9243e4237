//! Events of a number stream: one E.164 number held by one tenant.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::provider::ProviderKind;
use crate::ids::ProviderId;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumberAttached {
    pub e164: String,
    pub provider: ProviderKind,
    /// The provider stream whose credentials dial from this number.
    pub credentials_id: ProviderId,
    /// The agent the number is pinned to, if any.
    pub agent_id: Option<Uuid>,
    pub inbound_enabled: bool,
    pub outbound_enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumberAgentAssigned {
    /// `None` detaches the number from any agent.
    pub agent_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumberDirectionsChanged {
    pub inbound_enabled: bool,
    pub outbound_enabled: bool,
}

/// The number's own daily call cap, checked in the same atomic admission
/// step as the tenant's caps (dimension `number_daily_calls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberDailyCapSet {
    /// `None`: no cap of its own (the tenant's caps still apply); 0 stops
    /// every call from this number.
    pub daily_calls_max: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NumberReleased {}
