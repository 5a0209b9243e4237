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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NumberReleased {}
