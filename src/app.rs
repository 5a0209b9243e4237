//! The connections and shared parts every role uses, made once at start.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;

use crate::clock::{SharedClock, SystemClock};
use crate::config::Settings;
use crate::db;
use crate::metrics::Metrics;
use crate::namespace::Namespace;

/// What the roles share: pools and clients are cheap to clone.
#[derive(Clone)]
pub struct Deps {
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub js: async_nats::jetstream::Context,
    pub redis: redis::aio::ConnectionManager,
    pub ns: Namespace,
    pub metrics: Arc<Metrics>,
    /// The time caps and leases are judged by; tests move it.
    pub clock: SharedClock,
}

impl Deps {
    /// Creates the database if missing, applies migrations, and connects to
    /// NATS and Redis.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Deps> {
        let pool = db::prepare(&settings.database_url, 32).await?;
        let nats = async_nats::ConnectOptions::new()
            .name("switchboard")
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(&settings.nats_url)
            .await
            .context("connect to NATS")?;
        let js = async_nats::jetstream::new(nats.clone());
        let redis_client =
            redis::Client::open(settings.redis_url.as_str()).context("parse REDIS_URL")?;
        let redis = redis::aio::ConnectionManager::new(redis_client)
            .await
            .context("connect to Redis")?;
        Ok(Deps {
            pool,
            nats,
            js,
            redis,
            ns: settings.namespace.clone(),
            metrics: Arc::new(Metrics::new()),
            clock: SystemClock::shared(),
        })
    }
}
