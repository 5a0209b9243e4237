//! Events of a tenant stream (its id is the tenant id): the data-key
//! lifecycle. The wrapped key itself lives in a table that shredding deletes,
//! never in an event, so no copy of the event store can bring it back.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantKeyCreated {
    pub key_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantKeyShredded {
    pub key_id: String,
}
