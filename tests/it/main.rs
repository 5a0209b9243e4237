//! One integration-test binary (compiled once), one module per area. Every
//! test talks to the real PostgreSQL, NATS JetStream and Redis, in its own
//! database and namespace.

mod app;
mod binary;
mod support;

mod audit;
mod audit_rebuild;
mod audit_state;
mod audit_swap;
mod audit_verify;
mod callproc;
mod caps;
mod carriers;
mod client;
mod clusters;
mod command_state;
mod console;
mod faults;
mod feed;
mod fuzz;
mod gateway_jwks;
mod gateway_races;
mod gateway_routes;
mod gateway_tenancy;
mod gateway_writes;
mod hash_chain;
mod keys;
mod migration;
mod nats_permissions;
mod origination;
mod projector;
mod read_your_writes;
mod relay;
mod scale_out;
mod secrets;
mod store_append;
mod store_batch;
mod store_kept;
mod store_notices;
mod store_order;
mod store_snapshots;
mod upcast;
