//! Events of a tenant stream (its id is the tenant id): the data-key
//! lifecycle. The wrapped key itself lives in a table that shredding deletes,
//! never in an event, so no copy of the event store can bring it back.
//!
//! The master keyring has a stream of the same type too, the "system" tenant
//! stream: tenant id and stream id both `Uuid::nil()`. It holds
//! `MasterKeyAdded`, one per `switchboard keys rotate`. No event carries key
//! material, only key ids.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantKeyCreated {
    pub key_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantKeyShredded {
    pub key_id: String,
}

/// The tenant's data key `key_id` is now wrapped under master key
/// `master_kid` (by `switchboard keys rewrap`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantKeyRewrapped {
    pub key_id: String,
    pub master_kid: String,
}

/// A master key version `kid` was added and made primary (by `switchboard
/// keys rotate`). Only on the system tenant stream (`Uuid::nil()`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MasterKeyAdded {
    pub kid: String,
}
