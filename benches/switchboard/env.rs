//! The benchmark's own database, namespace and connections, made the way
//! `switchboard serve` makes them, and removed again at the end.

use events::TenantId;

use clap::Parser;
use sqlx::PgPool;
use switchboard::app::Deps;
use switchboard::cli::Cli;
use switchboard::config::Settings;
use uuid::Uuid;

pub const JWT_SECRET: &str = "bench-secret-0123456789abcdef0123456789abcdef";
pub const CALLBACK_SECRET: &str = "callback-secret-for-benches";

#[path = "../../tests/shared/services.rs"]
mod services;
pub use services::{nats_url, pg_base, redis_url, token_with_every_scope};

/// A database `sbbench_<id>` and a namespace `b<id>` of this run only.
pub struct BenchEnv {
    pub db_name: String,
    pub settings: Settings,
    pub deps: Deps,
    data_dir: std::path::PathBuf,
}

impl BenchEnv {
    pub async fn new() -> anyhow::Result<BenchEnv> {
        let id = Uuid::new_v4().simple().to_string()[..12].to_owned();
        let db_name = format!("sbbench_{id}");
        let data_dir = std::env::temp_dir().join(format!("sbbench-{id}"));
        let master = format!("mk1:{}", base64_key());
        let args = [
            "switchboard".to_owned(),
            format!("--database-url={}/{db_name}", pg_base()),
            format!("--namespace=b{id}"),
            "--listen=127.0.0.1:0".to_owned(),
            format!("--jwt-secret={JWT_SECRET}"),
            format!("--master-key={master}"),
            format!("--callback-secret={CALLBACK_SECRET}"),
            format!("--data-dir={}", data_dir.display()),
            format!("--nats-url={}", nats_url()),
            format!("--redis-url={}", redis_url()),
            "serve".to_owned(),
        ];
        let settings = Cli::try_parse_from(args)?.settings;
        let deps = Deps::connect(&settings).await?;
        Ok(BenchEnv {
            db_name,
            settings,
            deps,
            data_dir,
        })
    }

    /// The URL of the benchmark's database.
    pub fn db_url(&self) -> String {
        format!("{}/{}", pg_base(), self.db_name)
    }

    /// A token for `tenant` with every scope.
    pub fn token(&self, tenant: TenantId) -> String {
        token_with_every_scope(JWT_SECRET, tenant, "bench")
    }

    /// Drops the JetStream streams, the Redis keys and the database.
    pub async fn cleanup(self, streams: &[String]) {
        for s in streams {
            let _ = self.deps.js.delete_stream(s).await;
        }
        if let Err(e) = delete_keys(&self.deps, &format!("{}:*", self.deps.ns)).await {
            eprintln!("bench: could not delete Redis keys: {e}");
        }
        self.deps.pool.close().await;
        if std::env::var_os("BENCH_KEEP_DB").is_some() {
            // To profile a workload again on the same data (`switchboard
            // audit …` against it); drop it by hand afterwards.
            eprintln!("bench: kept database {} (BENCH_KEEP_DB)", self.db_name);
            return;
        }
        let dropped = match PgPool::connect(&format!("{}/postgres", pg_base())).await {
            Ok(admin) => sqlx::query(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.db_name
            ))
            .execute(&admin)
            .await
            .map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = dropped {
            eprintln!("bench: could not drop {}: {e}", self.db_name);
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

async fn delete_keys(deps: &Deps, pattern: &str) -> redis::RedisResult<()> {
    let mut conn = deps.redis.clone();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            redis::cmd("DEL")
                .arg(&keys)
                .query_async::<()>(&mut conn)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

fn base64_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode([7u8; 32])
}
