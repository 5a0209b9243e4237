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
        let (options, address) = nats_options(&settings.nats_url)?;
        let nats = options
            .name("switchboard")
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(address)
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

/// Connect options for a NATS URL that may carry a user and password
/// (`nats://relay:secret@host:4222`) or a token (`nats://token@host`), and
/// the address without them. async-nats does not read credentials from the
/// URL itself; without this a configured user would silently connect as
/// nobody. Errors never repeat the URL (it may hold a password).
pub fn nats_options(url: &str) -> anyhow::Result<(async_nats::ConnectOptions, String)> {
    // `host:4222` and `user:pw@host:4222` work without a scheme, as they
    // did before credentials were read here.
    let url = match url.contains("://") {
        true => url.to_owned(),
        false => format!("nats://{url}"),
    };
    let mut parsed =
        reqwest::Url::parse(&url).map_err(|_| anyhow::anyhow!("NATS_URL is not a URL"))?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let user = decode(parsed.username());
    let password = parsed.password().map(decode);
    let options = match (user.is_empty(), password) {
        (true, _) => async_nats::ConnectOptions::new(),
        (false, Some(password)) => {
            async_nats::ConnectOptions::with_user_and_password(user, password)
        }
        (false, None) => async_nats::ConnectOptions::with_token(user),
    };
    // Cannot fail on a URL with a host, which nats:// URLs have.
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    Ok((options, parsed.to_string()))
}

#[cfg(test)]
mod nats_url_tests {
    use super::nats_options;

    #[test]
    fn credentials_leave_the_url() {
        let (_, addr) = nats_options("nats://relay:p%40ss@127.0.0.1:4222").unwrap();
        assert_eq!(addr, "nats://127.0.0.1:4222");
        let (_, addr) = nats_options("nats://127.0.0.1:4222").unwrap();
        assert_eq!(addr, "nats://127.0.0.1:4222");
        let (_, addr) = nats_options("relay:pw@127.0.0.1:4222").unwrap();
        assert_eq!(addr, "nats://127.0.0.1:4222");
        let err = nats_options("not a url with secret")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"));
    }
}
