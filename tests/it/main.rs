//! One integration-test binary (compiled once), one module per area. Every
//! test talks to the real PostgreSQL, NATS JetStream and Redis, in its own
//! database and namespace.

mod support;

mod hash_chain;
mod projector;
mod relay;
mod store_append;
mod store_order;
