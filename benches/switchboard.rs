//! `cargo bench --bench switchboard` (or `scripts/bench`): throughput and
//! latency of the event store, the relay, a gateway write and an originate
//! end to end, each next to a baseline measured in the same run.
//!
//! Runs against the local PostgreSQL, NATS and Redis (`TEST_PG_URL`,
//! `NATS_URL`, `REDIS_URL` override them) in a database `sbbench_<id>` and a
//! namespace `b<id>` of its own, which it removes at the end.
//!
//! Order: the HTTP scenarios run first on a fresh store, then the full
//! service stops and the store and relay scenarios run alone.

#[path = "switchboard/append.rs"]
mod append;
#[path = "switchboard/env.rs"]
mod env;
#[path = "switchboard/http.rs"]
mod http;
#[path = "switchboard/measure.rs"]
mod measure;
#[path = "switchboard/relay.rs"]
mod relay;

use env::BenchEnv;
use measure::Row;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; there are no options.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let env = BenchEnv::new().await?;
    print_header(&env).await?;
    let rows = run(&env).await;
    let load_after = loadavg();
    let streams = [env.deps.ns.events_stream(), relay::raw_stream(&env.deps)];
    env.cleanup(&streams).await;
    measure::print_table(&rows?);
    println!();
    println!("load average at the end: {load_after}");
    Ok(())
}

async fn run(env: &BenchEnv) -> anyhow::Result<Vec<Row>> {
    eprintln!("bench: starting every role and {} tenants", http::CLIENTS);
    let app = http::App::start(env).await?;
    eprintln!("bench: 3. gateway write");
    let write = app.gateway_write().await?;
    eprintln!("bench: 4. originate");
    let originate = app.originate().await?;
    app.stop(&env.deps.pool).await?;
    eprintln!("bench: 1. event-store append");
    let append = append::run(&env.deps.pool).await?;
    eprintln!("bench: 2. relay");
    let relay = relay::run(&env.deps).await?;
    Ok(vec![append, relay, write, originate])
}

async fn print_header(env: &BenchEnv) -> anyhow::Result<()> {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let pg: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&env.deps.pool)
        .await?;
    // The server's INFO arrives with the connection, which may still be
    // under way.
    env.deps.nats.flush().await?;
    let nats = env.deps.nats.server_info().version;
    println!("# Switchboard benchmark");
    println!();
    println!(
        "- date: {}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
    );
    println!("- nproc: {cpus} (clients and every role share this process and these cores)");
    println!(
        "- load average: {} (other work on the machine skews both columns)",
        loadavg()
    );
    println!(
        "- PostgreSQL {pg}, nats-server {nats}; database {}",
        env.db_name
    );
    println!();
    Ok(())
}

/// `/proc/loadavg`'s 1, 5 and 15 minute averages.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}
