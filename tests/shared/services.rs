//! Where the real services of a test or benchmark run are, and a token with
//! every scope: shared by the test suite (`tests/it/support.rs`) and the
//! benchmarks (`benches/switchboard/env.rs`), which include this file.

use std::time::Duration;

use events::TenantId;
use switchboard::auth::{mint_hs256, Scope};

pub fn pg_base() -> String {
    std::env::var("TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// An HS256 token of `tenant` with every scope, valid for an hour, as the
/// dev issuer and audience (`switchboard-dev`, `switchboard`) expect.
pub fn token_with_every_scope(secret: &str, tenant: TenantId, sub: &str) -> String {
    mint_hs256(
        &secret.to_owned().into(),
        "switchboard-dev",
        "switchboard",
        tenant,
        sub,
        &Scope::ALL,
        Duration::from_secs(3600),
    )
}
