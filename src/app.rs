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
use crate::redis_conn::RedisConn;
use crate::store::Store;
use crate::turns::Turns;

/// What the roles share: pools and clients are cheap to clone.
#[derive(Clone)]
pub struct Deps {
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub js: async_nats::jetstream::Context,
    pub redis: RedisConn,
    pub ns: Namespace,
    /// Replicas of the events stream when this process creates it (3 on a
    /// three-node JetStream cluster).
    pub stream_replicas: usize,
    pub metrics: Arc<Metrics>,
    /// The time caps and leases are judged by; tests move it.
    pub clock: SharedClock,
    /// The event store as this process appends to it (group commit, cached
    /// command state); `pool` is the same database.
    pub store: Store,
    /// Where projections have got to, for read-your-writes.
    pub progress: Arc<Progress>,
    /// The calls a worker of this process is handling now, by call id: the
    /// hand-off from this process's commits and a JetStream delivery of the
    /// same call take turns (`worker/consumer.rs`).
    pub calls_in_hand: Arc<Turns>,
}

impl Deps {
    /// Creates the database if missing, applies migrations, and connects to
    /// NATS and Redis.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Deps> {
        let pool = db::prepare(&settings.db.url, settings.db.max_connections).await?;
        let (options, servers) = nats_options(&settings.nats_url)?;
        let nats = options
            .name("switchboard")
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(servers)
            .await
            .context("connect to NATS")?;
        let js = async_nats::jetstream::new(nats.clone());
        let redis = RedisConn::connect(&settings.redis_url, settings.redis_cluster)
            .await
            .context("connect to Redis")?;
        let mut deps = Deps::new(pool, nats, js, redis, settings.namespace.clone());
        deps.stream_replicas = usize::from(settings.stream_replicas);
        Ok(deps)
    }

    /// Deps over connections made elsewhere (tests, benchmarks): starts the
    /// store's group commit on the current runtime.
    pub fn new(
        pool: PgPool,
        nats: async_nats::Client,
        js: async_nats::jetstream::Context,
        redis: impl Into<RedisConn>,
        ns: Namespace,
    ) -> Deps {
        Deps {
            store: Store::new(pool.clone()),
            pool,
            nats,
            js,
            redis: redis.into(),
            ns,
            stream_replicas: 1,
            metrics: Arc::new(Metrics::new()),
            clock: SystemClock::shared(),
            progress: Arc::new(Progress::default()),
            calls_in_hand: Arc::new(Turns::default()),
        }
    }
}

/// Connect options for a NATS URL that may carry a user and password
/// (`nats://relay:secret@host:4222`) or a token (`nats://token@host`), and
/// the addresses without them. A comma-separated list names the servers of
/// a cluster (the client fails over between them); the credentials are the
/// first URL's that has any. async-nats does not read credentials from the
/// URL itself; without this a configured user would silently connect as
/// nobody. Errors never repeat the URL (it may hold a password).
pub fn nats_options(urls: &str) -> anyhow::Result<(async_nats::ConnectOptions, Vec<String>)> {
    let mut options = None;
    let mut servers = Vec::new();
    for url in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let (o, address) = nats_server(url)?;
        if options.is_none() {
            options = o;
        }
        servers.push(address);
    }
    anyhow::ensure!(!servers.is_empty(), "NATS_URL names no server");
    let options = options.unwrap_or_default();
    Ok((options, servers))
}

/// One server's URL: its credentials, if any, and its address without them.
fn nats_server(url: &str) -> anyhow::Result<(Option<async_nats::ConnectOptions>, String)> {
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
        (true, _) => None,
        (false, Some(password)) => Some(async_nats::ConnectOptions::with_user_and_password(
            user, password,
        )),
        (false, None) => Some(async_nats::ConnectOptions::with_token(user)),
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
        assert_eq!(addr, ["nats://127.0.0.1:4222"]);
        let (_, addr) = nats_options("nats://127.0.0.1:4222").unwrap();
        assert_eq!(addr, ["nats://127.0.0.1:4222"]);
        let (_, addr) = nats_options("relay:pw@127.0.0.1:4222").unwrap();
        assert_eq!(addr, ["nats://127.0.0.1:4222"]);
        let (_, addr) =
            nats_options("nats://a:pw@127.0.0.1:4231, nats://a:pw@127.0.0.1:4232,").unwrap();
        assert_eq!(addr, ["nats://127.0.0.1:4231", "nats://127.0.0.1:4232"]);
        assert!(nats_options(" , ").is_err());
        let err = nats_options("not a url with secret")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"));
    }
}
