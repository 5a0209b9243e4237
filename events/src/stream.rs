//! Stream types: the kinds of aggregate whose history the store keeps.

use serde::{Deserialize, Serialize};

/// The kind of a stream. It is part of every envelope and of the NATS subject
/// (`<ns>.events.<tenant>.<stream_type>.<stream_id>.<type>`), so its wire
/// names are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamType {
    Provider,
    Number,
    /// One stream per tenant; its id is `call_limits_stream_id(tenant)`.
    CallLimits,
    Call,
    /// One stream per tenant, holding its data-key lifecycle; its id is the tenant id.
    Tenant,
    /// One stream per tenant: where its calls may go; its id is
    /// `destinations_stream_id(tenant)`.
    Destinations,
}

impl StreamType {
    pub const ALL: [StreamType; 6] = [
        StreamType::Provider,
        StreamType::Number,
        StreamType::CallLimits,
        StreamType::Call,
        StreamType::Tenant,
        StreamType::Destinations,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StreamType::Provider => "provider",
            StreamType::Number => "number",
            StreamType::CallLimits => "call_limits",
            StreamType::Call => "call",
            StreamType::Tenant => "tenant",
            StreamType::Destinations => "destinations",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for StreamType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The id of a tenant's call_limits stream: derived from the tenant id
/// (UUIDv5), since stream ids are unique across all stream types and the
/// tenant stream already uses the tenant id itself.
pub fn call_limits_stream_id(tenant_id: crate::TenantId) -> uuid::Uuid {
    uuid::Uuid::new_v5(&tenant_id.uuid(), b"call_limits")
}

/// The id of a tenant's destinations stream (UUIDv5 of the tenant id).
pub fn destinations_stream_id(tenant_id: crate::TenantId) -> uuid::Uuid {
    uuid::Uuid::new_v5(&tenant_id.uuid(), b"destinations")
}
