//! Caps admission: `Caps::reserve` of distinct calls (one tenant, limits
//! that admit them all) from concurrent tasks, against redis-benchmark
//! sending the very same `EVALSHA` (same script, keys and arguments, a
//! random call id each) from as many connections: the script's ceiling on
//! this Redis.

use events::{CallId, TenantId};
use std::process::Command;

use switchboard::caps::{Caps, DEFAULT_LEASE};
use switchboard::domain::CallLimits;

use crate::env::{redis_url, BenchEnv};
use crate::measure::{concurrent, Row, Target};

const OPS: usize = 100_000;
const CLIENTS: usize = 50;
const BIG: u32 = 1_000_000_000;

fn host_port() -> (String, String) {
    let url = redis_url();
    let rest = url.trim_start_matches("redis://");
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    let hp = rest.split('/').next().unwrap_or("127.0.0.1:6379");
    let (h, p) = hp.split_once(':').unwrap_or((hp, "6379"));
    (h.to_owned(), p.to_owned())
}

/// requests/s redis-benchmark reports for `words`.
fn redis_benchmark(words: &[String]) -> anyhow::Result<f64> {
    let (host, port) = host_port();
    let out = Command::new("redis-benchmark")
        .args(["-h", &host, "-p", &port, "-c", &CLIENTS.to_string()])
        .args(["-n", &OPS.to_string(), "-r", "1000000000", "--csv"])
        .args(words)
        .output()?;
    anyhow::ensure!(out.status.success(), "redis-benchmark failed");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| !l.starts_with("\"test\""))
        .find_map(|l| l.split(',').nth(1)?.trim_matches('"').parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no figure in redis-benchmark's output: {text}"))
}

pub async fn run(env: &BenchEnv) -> anyhow::Result<Vec<Row>> {
    if Command::new("redis-benchmark")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("bench: redis-benchmark not installed; caps admission skipped");
        return Ok(vec![]);
    }
    let d = &env.deps;
    let caps = Caps::new(
        d.redis.clone(),
        d.pool.clone(),
        d.ns.clone(),
        d.clock.clone(),
        DEFAULT_LEASE,
    );
    let tenant = TenantId::new();
    let limits = CallLimits {
        concurrent_max: BIG,
        calls_per_minute: BIG,
        daily_calls_max: BIG,
        daily_minutes_max: BIG,
    };
    // Loads the counters (the epoch) and the script.
    caps.reserve(tenant, CallId::new(), &limits).await?;
    let c = caps.clone();
    let ours = concurrent(OPS, CLIENTS, move |_, _| {
        let c = c.clone();
        async move {
            c.reserve(tenant, CallId::new(), &limits).await?;
            Ok(())
        }
    })
    .await?;
    let words = caps.reserve_command(tenant, "__rand_int__", &limits);
    let ceiling = redis_benchmark(&words)?;
    Ok(vec![Row::new(
        "caps admission (4 caps, one script)",
        "admissions/s",
        ours.ops_per_s(),
        "/s",
    )
    .against("redis-benchmark, same script", ceiling)
    .target(Target::RatioAtLeast(0.7))])
}
