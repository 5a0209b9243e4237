//! `scripts/bench` (`cargo bench --bench switchboard`): every workload of the
//! pipeline next to a baseline measured in the same run, with its target.
//!
//! Runs against the local PostgreSQL, NATS and Redis (`TEST_PG_URL`,
//! `NATS_URL`, `REDIS_URL` override them) in a database `sbbench_<id>` and a
//! namespace `b<id>` of its own, which it removes at the end.
//!
//! `scripts/bench` is the short form (under two minutes once built);
//! `scripts/bench --full` adds the 10,000,000-event growth and the
//! 1,000,000-event replay. `--only NAME[,NAME]` runs some workloads:
//! append, relay, caps, http, originate (and growth, replay with --full).
//! `BENCH_OPEN_RATE` sets the originate open loop's offered rate (default
//! 500/s), e.g. 20 to see the pipeline's own latency on an idle machine.

#[path = "switchboard/append.rs"]
mod append;
#[path = "switchboard/caps.rs"]
mod caps;
#[path = "switchboard/env.rs"]
mod env;
#[path = "switchboard/full.rs"]
mod full;
#[path = "switchboard/http.rs"]
mod http;
#[path = "switchboard/measure.rs"]
mod measure;
#[path = "switchboard/relay.rs"]
mod relay;

use env::BenchEnv;
use measure::Row;

/// The service's allocator (src/main.rs), so the bench measures what runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What to run, from the command line.
pub struct Plan {
    pub full: bool,
    only: Option<Vec<String>>,
}

impl Plan {
    fn parse() -> Plan {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let only = args
            .iter()
            .position(|a| a == "--only")
            .and_then(|i| args.get(i + 1))
            .map(|s| s.split(',').map(str::to_owned).collect());
        Plan {
            full: args.iter().any(|a| a == "--full"),
            only,
        }
    }

    pub fn runs(&self, name: &str) -> bool {
        let full_only = matches!(name, "growth" | "replay");
        match &self.only {
            Some(names) => names.iter().any(|n| n == name),
            None => !full_only || self.full,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let plan = Plan::parse();
    let steal0 = measure::steal_ticks();
    let env = BenchEnv::new().await?;
    print_header(&env).await?;
    let mut rows = Vec::new();
    let result = run(&env, &plan, &mut rows).await;
    let load_after = loadavg();
    let streams = [env.deps.ns.events_stream(), relay::raw_stream(&env.deps)];
    env.cleanup(&streams).await;
    // What was measured before a failure is still worth printing.
    measure::print_table(&rows);
    println!();
    println!("load average at the end: {load_after}");
    if let (Some((s0, t0)), Some((s1, t1))) = (steal0, measure::steal_ticks()) {
        let share = (s1 - s0) / (t1 - t0).max(1.0) * 100.0;
        println!("CPU steal over the run: {share:.1} % (time the hypervisor gave to other guests)");
    }
    result
}

async fn run(env: &BenchEnv, plan: &Plan, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    // The store first, on an empty database and with no role running: the
    // raw baseline needs 64 connections of its own.
    let mut ceiling = None;
    let mut empty_p99 = None;
    if plan.runs("append") {
        eprintln!("bench: store append");
        let (r, c, p) = append::run(&env.db_url(), &env.deps.pool, &env.deps.store).await?;
        rows.extend(r);
        ceiling = Some(c);
        empty_p99 = Some(p);
    }
    if ceiling.is_none() && plan.runs("http") {
        // `--only http`: the commands' baseline is measured in this run
        // too, before any role starts, as the append workload measures it.
        eprintln!("bench: raw INSERT ceiling at 64 clients");
        let c = append::ceiling(&env.db_url(), &env.deps.pool).await?;
        ceiling = Some(c);
    }
    if plan.runs("relay") {
        eprintln!("bench: relay");
        rows.extend(relay::run(&env.deps).await?);
    }
    if plan.runs("caps") {
        eprintln!("bench: caps admission");
        rows.extend(caps::run(env).await?);
    }
    if plan.runs("http") || plan.runs("originate") {
        eprintln!("bench: starting every role");
        let app = http::App::start(env).await?;
        if plan.runs("http") {
            eprintln!("bench: commands through HTTP");
            rows.extend(app.commands(env, ceiling).await?);
            eprintln!("bench: one hot stream");
            rows.extend(app.hot_stream(env).await?);
        }
        if plan.runs("originate") {
            eprintln!("bench: originate");
            rows.extend(app.originate(env).await?);
        }
        app.stop(&env.deps.pool).await?;
    }
    // Replay first, at about a million events; then the store grows to ten.
    if plan.runs("replay") {
        eprintln!("bench: replay of 1,000,000 events");
        rows.extend(full::replay(env).await?);
    }
    if plan.runs("growth") {
        eprintln!("bench: growth to 10,000,000 events");
        rows.extend(full::growth(env, empty_p99).await?);
    }
    Ok(())
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
    println!("- nproc: {cpus} (clients, every role, PostgreSQL, NATS and Redis share these cores)");
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
