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
use crate::projection::Progress;
use crate::store::Store;

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
    /// The event store as this process appends to it (group commit, cached
    /// command state); `pool` is the same database.
    pub store: Store,
    /// Where projections have got to, for read-your-writes.
    pub progress: Arc<Progress>,
}

impl Deps {
    /// Creates the database if missing, applies migrations, and connects to
    /// NATS and Redis.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Deps> {
        let pool = db::prepare(&settings.db.url, settings.db.max_connections).await?;
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
        Ok(Deps::new(pool, nats, js, redis, settings.namespace.clone()))
    }

    /// Deps over connections made elsewhere (tests, benchmarks): starts the
    /// store's group commit on the current runtime.
    pub fn new(
        pool: PgPool,
        nats: async_nats::Client,
        js: async_nats::jetstream::Context,
        redis: redis::aio::ConnectionManager,
        ns: Namespace,
    ) -> Deps {
        Deps {
            store: Store::new(pool.clone()),
            pool,
            nats,
            js,
            redis,
            ns,
            metrics: Arc::new(Metrics::new()),
            clock: SystemClock::shared(),
            progress: Arc::new(Progress::default()),
        }
    }
}
