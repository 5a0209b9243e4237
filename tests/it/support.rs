//! Test isolation: a fresh database and namespace per test, and throwaway
//! nats-server processes for tests that stop and restart NATS.

use events::{Event, ProviderDeleted, TenantId};
use std::time::Duration;

use async_nats::jetstream;
use sqlx::PgPool;
use switchboard::app::Deps;
use switchboard::namespace::Namespace;
use switchboard::store::{self, CommandMeta, ExpectedVersion, StreamAppend};
use uuid::Uuid;

#[path = "../shared/services.rs"]
mod services;
pub use services::{nats_url, pg_base, redis_url, token_with_every_scope};

/// A test's own database and namespace.
#[allow(dead_code)]
pub struct TestEnv {
    pub db_name: String,
    pub db_url: String,
    pub pool: PgPool,
    pub ns: Namespace,
    /// The Redis this install uses (the shared one unless a test brings its own).
    pub redis_url: String,
    /// `redis_url` lists the seeds of a Redis Cluster.
    pub redis_cluster: bool,
}

impl TestEnv {
    pub async fn new() -> TestEnv {
        let id = Uuid::new_v4().simple().to_string();
        let db_name = format!("sbtest_{}", &id[..16]);
        let db_url = format!("{}/{}", pg_base(), db_name);
        let pool = switchboard::db::prepare(&db_url, 20)
            .await
            .expect("prepare test database");
        let ns = Namespace::parse(&format!("t{}", &id[..12])).unwrap();
        TestEnv {
            db_name,
            db_url,
            pool,
            ns,
            redis_url: redis_url(),
            redis_cluster: false,
        }
    }

    /// Deps against the shared NATS and Redis, in this test's namespace.
    pub async fn deps(&self) -> Deps {
        self.deps_with_nats(&nats_url()).await
    }

    pub async fn deps_with_nats(&self, nats: &str) -> Deps {
        let (options, address) = switchboard::app::nats_options(nats).unwrap();
        let nats = options
            .retry_on_initial_connect()
            .connect(address)
            .await
            .unwrap();
        let js = jetstream::new(nats.clone());
        let redis =
            switchboard::redis_conn::RedisConn::connect(&self.redis_url, self.redis_cluster)
                .await
                .unwrap();
        Deps::new(self.pool.clone(), nats, js, redis, self.ns.clone())
    }

    /// Drops the database and the JetStream stream; call at the end of a
    /// passing test (a failing one leaves them for inspection).
    pub async fn cleanup(self, js: Option<&jetstream::Context>) {
        if let Some(js) = js {
            let _ = js.delete_stream(self.ns.events_stream()).await;
        }
        self.pool.close().await;
        if let Ok(admin) = PgPool::connect(&format!("{}/postgres", pg_base())).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.db_name
            ))
            .execute(&admin)
            .await;
        }
    }
}

/// A command appending one event to a fresh stream of `tenant`.
pub fn meta(tenant: TenantId) -> CommandMeta {
    CommandMeta::new(tenant, "test")
}

/// Appends `n` versions to `stream` (a provider stream; the payloads are
/// irrelevant to the store), starting after `from`.
pub async fn append_n(pool: &PgPool, tenant: TenantId, stream: Uuid, from: i64, n: usize) {
    let sa = StreamAppend {
        stream_type: events::StreamType::Provider,
        stream_id: stream,
        expected: ExpectedVersion::from_version(from),
        events: (0..n)
            .map(|_| Event::ProviderDeleted(ProviderDeleted {}))
            .collect(),
    };
    store::append(pool, meta(tenant), &[sa])
        .await
        .expect("append");
}

/// Polls `f` until it returns true, up to `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A nats-server process of the test's own, on a free port with its own
/// store directory, which a test can stop and start again.
pub struct NatsProcess {
    pub port: u16,
    pub dir: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl NatsProcess {
    pub fn start() -> NatsProcess {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("sbnats-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut p = NatsProcess {
            port,
            dir,
            child: None,
        };
        p.restart();
        p
    }

    /// A server with `config` (an authorization block, say) beside the
    /// usual flags.
    pub fn start_with_config(config: &str) -> NatsProcess {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("sbnats-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("server.conf"), config).unwrap();
        let mut p = NatsProcess {
            port,
            dir,
            child: None,
        };
        p.restart();
        p
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// What the server logged (for a failing test's message).
    #[allow(dead_code)]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        let bin = [
            "/usr/sbin/nats-server",
            "/usr/bin/nats-server",
            "/usr/local/bin/nats-server",
        ]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("nats-server");
        let child = std::process::Command::new(bin)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.dir)
            .args(
                Some(self.dir.join("server.conf"))
                    .filter(|c| c.exists())
                    .map(|c| vec!["-c".into(), c.into_os_string()])
                    .unwrap_or_default(),
            )
            .stdout(std::process::Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join("server.log"))
                    .map(std::process::Stdio::from)
                    .unwrap_or_else(|_| std::process::Stdio::null()),
            )
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("nats-server did not start");
    }
}

impl Drop for NatsProcess {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The place of the last event written.
pub async fn last_position(pool: &PgPool) -> store::Position {
    let p: i64 = sqlx::query_scalar("SELECT max(global_position) FROM events")
        .fetch_one(pool)
        .await
        .unwrap();
    store::Position::new(p)
}

/// Every event in the store, once the horizon has passed the last one
/// written (other tests' transactions on the cluster can hold it back).
pub async fn visible_all(pool: &PgPool) -> Vec<store::StoredEvent> {
    let end = last_position(pool).await;
    loop {
        let all = store::read_global(pool, store::Position::START, 1_000_000)
            .await
            .unwrap();
        if all.last().map(|e| e.position) == Some(end) {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A redis-server of the test's own on a free port, so a test may FLUSHALL
/// without touching the tests running beside it.
pub struct RedisProcess {
    pub port: u16,
    child: std::process::Child,
}

impl RedisProcess {
    pub fn start() -> RedisProcess {
        let port = free_port();
        let child = spawn_redis(port);
        RedisProcess { port, child }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops and starts the server on the same port: it keeps nothing on
    /// disk, so it comes back empty (as after a crash or a FLUSHALL).
    #[allow(dead_code)]
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_redis(self.port);
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A redis-server on `port` that keeps nothing on disk, once it answers.
fn spawn_redis(port: u16) -> std::process::Child {
    let mut child = std::process::Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start redis-server");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("redis-server did not start on {port}");
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
