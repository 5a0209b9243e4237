//! The workloads through HTTP, against every role started in this process
//! as `serve` composes them, with the built-in Call Processor simulator
//! (its callbacks included).

use events::TenantId;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use switchboard::callproc::sim::{ConfigPatch, SimHandle};
use switchboard::roles::{self, Roles};
use uuid::Uuid;

use crate::env::BenchEnv;
use crate::measure::{concurrent, histogram_ms, open_loop, Cpu, Row, Stats, Target};

/// Connections of the command mix.
const CONNECTIONS: usize = 64;
const TENANTS: usize = 256;
const MIX_OPS: usize = 8_000;
const HOT_HISTORY: usize = 10_000;
const HOT_OPS: usize = 600;
/// PATCHes on a stream not cached, of each tenant.
const COLD_TRIES: usize = 21;
const CALLERS: usize = 64;
const ORIGINATE_OPS: usize = 6_000;
const OPEN_RATE: f64 = 500.0;
const OPEN_OPS: usize = 5_000;
const BIG: u32 = 1_000_000_000;

/// A tenant of the benchmark: its token, one provider and one number.
#[derive(Clone)]
struct Tenant {
    id: TenantId,
    token: String,
    provider: String,
    number: String,
    e164: String,
}

/// A running service.
pub struct App {
    base: String,
    client: reqwest::Client,
    sim: SimHandle,
    roles: switchboard::supervisor::Supervisor,
    metrics: Arc<switchboard::metrics::Metrics>,
}

static NEXT_E164: AtomicUsize = AtomicUsize::new(0);

/// A number nobody holds yet in this run.
fn fresh_e164() -> String {
    format!(
        "+1{:010}",
        3_000_000_000 + NEXT_E164.fetch_add(1, Ordering::Relaxed)
    )
}

impl App {
    pub async fn start(env: &BenchEnv) -> anyhow::Result<App> {
        let started = roles::start(&env.settings, env.deps.clone(), Roles::all()).await?;
        let sim = started
            .sim
            .ok_or_else(|| anyhow::anyhow!("no built-in simulator"))?;
        // Calls ring, are answered and complete within half a second, so the
        // callbacks run beside the originates and slots free up.
        sim.state()
            .update_config(ConfigPatch {
                ring_delay_ms: Some(50),
                answer_delay_ms: Some(100),
                call_hold_ms: Some(Some(300)),
                ..Default::default()
            })
            .map_err(anyhow::Error::msg)?;
        Ok(App {
            base: format!("http://{}", started.addr),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .build()?,
            sim,
            roles: started.roles,
            metrics: env.deps.metrics.clone(),
        })
    }

    async fn send(&self, m: Method, path: &str, token: &str, body: Value) -> anyhow::Result<Value> {
        send(&self.client, &self.base, m, path, token, body).await
    }

    /// A tenant with a Twilio provider, a number pinned to an agent, and
    /// caps that admit everything.
    async fn tenant(&self, env: &BenchEnv) -> anyhow::Result<Tenant> {
        let id = TenantId::new();
        let token = env.token(id);
        let creds = json!({"account_sid": format!("AC{}", "0f".repeat(16)), "auth_token": "tok"});
        let p = json!({"provider": "twilio", "label": "Bench", "credentials": creds});
        let provider = self
            .send(Method::POST, "/api/v1/telephony/providers", &token, p)
            .await?["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let e164 = fresh_e164();
        let n = json!({"e164": e164, "provider": "twilio", "credentials_id": provider,
            "agent_id": Uuid::new_v4()});
        let number = self
            .send(Method::POST, "/api/v1/telephony/numbers", &token, n)
            .await?["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let limits = json!({"concurrent_max": BIG, "calls_per_minute": BIG,
            "daily_calls_max": BIG, "daily_minutes_max": BIG});
        self.send(Method::PUT, "/api/v1/call-limits", &token, limits)
            .await?;
        Ok(Tenant {
            id,
            token,
            provider,
            number,
            e164,
        })
    }

    async fn tenants(&self, env: &BenchEnv, n: usize) -> anyhow::Result<Arc<Vec<Tenant>>> {
        let mut all = Vec::with_capacity(n);
        for _ in 0..n {
            all.push(self.tenant(env).await?);
        }
        Ok(Arc::new(all))
    }

    /// One request of the mix: CreateProvider, AttachNumber, PATCH number,
    /// PATCH /call-limits, in turn, over many tenants.
    fn mix(&self, tenants: Arc<Vec<Tenant>>) -> impl Fn(usize) -> Req + Clone + Send + Sync {
        let (client, base) = (self.client.clone(), self.base.clone());
        move |i| {
            let t = tenants[(i * 7 + i / 4) % tenants.len()].clone();
            let (client, base) = (client.clone(), base.clone());
            Box::pin(async move {
                let (m, path, body) = match i % 4 {
                    0 => (
                        Method::POST,
                        "/api/v1/telephony/providers".to_owned(),
                        json!({"provider": "plivo", "label": format!("p{i}"),
                            "credentials": {"auth_id": "MAXXXXXXXXXXXXXXXXXX", "auth_token": "tok"}}),
                    ),
                    1 => (
                        Method::POST,
                        "/api/v1/telephony/numbers".to_owned(),
                        json!({"e164": fresh_e164(), "provider": "twilio",
                            "credentials_id": t.provider}),
                    ),
                    2 => (
                        Method::PATCH,
                        format!("/api/v1/telephony/numbers/{}", t.number),
                        json!({"inbound_enabled": i % 8 < 4}),
                    ),
                    _ => (
                        Method::PATCH,
                        "/api/v1/call-limits".to_owned(),
                        json!({"daily_minutes_max": 600 + i}),
                    ),
                };
                send(&client, &base, m, &path, &t.token, body).await?;
                Ok(())
            })
        }
    }

    /// The command mix: closed loop on 64 connections against the raw
    /// INSERT ceiling, then open loop at half the rate reached.
    pub async fn commands(&self, env: &BenchEnv, ceiling: Option<f64>) -> anyhow::Result<Vec<Row>> {
        let tenants = self.tenants(env, TENANTS).await?;
        let mix = self.mix(tenants);
        let m = mix.clone();
        concurrent(CONNECTIONS * 4, CONNECTIONS, move |_, i| m(i)).await?;
        let m = mix.clone();
        let cpu0 = Cpu::now();
        let closed = concurrent(MIX_OPS, CONNECTIONS, move |_, i| m(i)).await?;
        // Writes no longer wait for their projectors: the CPU of the steps
        // that apply the last commands comes after the answers, and counts.
        projected(&env.deps.pool).await?;
        let cpu = cpu0.and_then(|c| c.per_op_since(MIX_OPS));
        let rate = closed.ops_per_s() / 2.0;
        let open = open_loop((rate * 6.0) as usize, rate, move |i| mix(i + MIX_OPS)).await?;
        let w = "commands via HTTP (mix of 4)";
        let mut thr = Row::new(w, "commands/s, 64 connections", closed.ops_per_s(), "/s");
        if let Some(c) = ceiling {
            thr = thr
                .against("raw INSERT tx/s, 64 clients", c)
                .target(Target::RatioAtLeast(0.5));
        }
        let mut rows = vec![thr];
        if let Some((machine, _)) = cpu {
            rows.push(Row::new(w, "machine CPU per command", machine, "ms"));
        }
        rows.extend([
            Row::new(
                w,
                &format!("p50 at {rate:.0}/s offered"),
                open.ms(0.5),
                "ms",
            ),
            Row::new(
                w,
                &format!("p99 at {rate:.0}/s offered"),
                open.ms(0.99),
                "ms",
            )
            .target(Target::AtMost(20.0)),
            Row::new(
                w,
                &format!("p99.9 at {rate:.0}/s offered"),
                open.ms(0.999),
                "ms",
            ),
            errors_row(w, &open),
        ]);
        Ok(rows)
    }

    /// PATCH /call-limits of one tenant after 10,000 earlier updates, against
    /// a tenant with none: from the cache, and in a process that does not
    /// hold the stream (a restart), with and without its snapshot.
    pub async fn hot_stream(&self, env: &BenchEnv) -> anyhow::Result<Vec<Row>> {
        let hot = self.tenant(env).await?;
        let fresh = self.tenant(env).await?;
        fill_limits(env, hot.id, HOT_HISTORY).await?;
        // Written past the cache: the first PATCH folds all of it, once,
        // and takes the stream's first snapshot.
        let ids = [hot.id, fresh.id].map(events::call_limits_stream_id);
        let full = self.cold_patch(env, &hot, ids[0], 7).await?;
        snapshot_taken(env, ids[0], HOT_HISTORY as i64).await?;
        // Then as a restarted process: each PATCH on a stream not cached,
        // the two tenants in turns.
        let (mut hot_cold, mut fresh_cold) = (Vec::new(), Vec::new());
        for i in 0..COLD_TRIES {
            // Each goes first in turn: neither always follows the other.
            let (h, f) = if i % 2 == 0 {
                let h = self.cold_patch(env, &hot, ids[0], 100 + i).await?;
                (h, self.cold_patch(env, &fresh, ids[1], 100 + i).await?)
            } else {
                let f = self.cold_patch(env, &fresh, ids[1], 100 + i).await?;
                (self.cold_patch(env, &hot, ids[0], 100 + i).await?, f)
            };
            hot_cold.push(h);
            fresh_cold.push(f);
        }
        let run = |t: Tenant| {
            let (client, base) = (self.client.clone(), self.base.clone());
            concurrent(HOT_OPS, 1, move |_, i| {
                let (client, base, token) = (client.clone(), base.clone(), t.token.clone());
                async move {
                    let body = json!({"concurrent_max": 100 + i % 2});
                    send(
                        &client,
                        &base,
                        Method::PATCH,
                        "/api/v1/call-limits",
                        &token,
                        body,
                    )
                    .await?;
                    Ok(())
                }
            })
        };
        let f = run(fresh).await?;
        let h = run(hot).await?;
        let w = "one hot stream (10,000 earlier updates)";
        Ok(vec![
            Row::new(w, "PATCH/s, 1 client", h.ops_per_s(), "/s")
                .against("fresh tenant", f.ops_per_s())
                .target(Target::RatioAtLeast(1.0 / 1.2)),
            Row::new(w, "p50", h.ms(0.5), "ms")
                .against("fresh tenant", f.ms(0.5))
                .target(Target::RatioAtMost(1.2)),
            Row::new(w, "p99", h.ms(0.99), "ms").against("fresh tenant", f.ms(0.99)),
            Row::new(w, "PATCH not cached, no snapshot", full, "ms"),
            Row::new(
                w,
                &format!("PATCH not cached, snapshot (median of {COLD_TRIES})"),
                median(&mut hot_cold),
                "ms",
            )
            .against("fresh tenant, not cached", median(&mut fresh_cold))
            .target(Target::RatioAtMost(1.2)),
        ])
    }

    /// One PATCH of `t`'s limits by a process that does not hold stream
    /// `id` (forgotten just before), in milliseconds.
    /// It sets the tenant's daily minutes to `minutes`.
    async fn cold_patch(
        &self,
        env: &BenchEnv,
        t: &Tenant,
        id: Uuid,
        minutes: usize,
    ) -> anyhow::Result<f64> {
        env.deps.store.states().forget(id);
        let at = std::time::Instant::now();
        let body = json!({ "daily_minutes_max": minutes });
        self.send(Method::PATCH, "/api/v1/call-limits", &t.token, body)
            .await?;
        Ok(at.elapsed().as_secs_f64() * 1000.0)
    }

    /// Originate: closed loop for the throughput ceiling, then open loop at
    /// 500/s for the latency (request → 200 dispatched), with the relay's
    /// and the calls projection's delays over the open loop.
    pub async fn originate(&self, env: &BenchEnv) -> anyhow::Result<Vec<Row>> {
        let tenants = self.tenants(env, CALLERS).await?;
        let (client, base) = (self.client.clone(), self.base.clone());
        let failures = Arc::new(AtomicUsize::new(0));
        let f = failures.clone();
        let post = move |i: usize| {
            let t = tenants[i % tenants.len()].clone();
            let (client, base, f) = (client.clone(), base.clone(), f.clone());
            async move {
                let body = json!({"from_number": t.e164, "to_number": "+14155550100"});
                let b = send(
                    &client,
                    &base,
                    Method::POST,
                    "/api/v1/calls/originate",
                    &t.token,
                    body,
                )
                .await?;
                if b["status"] != "dispatched" {
                    f.fetch_add(1, Ordering::Relaxed);
                    anyhow::bail!("not dispatched: {b}");
                }
                Ok(())
            }
        };
        let p = post.clone();
        concurrent(CALLERS * 2, CALLERS, move |_, i| p(i)).await?;
        let p = post.clone();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let tx0 = transactions(&env.deps.pool).await?;
        let stats = env.deps.store.batch_stats();
        use std::sync::atomic::Ordering::Relaxed;
        let (b0, c0, u0) = (
            stats.batches.load(Relaxed),
            stats.commands.load(Relaxed),
            stats.busy_us.load(Relaxed),
        );
        let cpu0 = Cpu::now();
        let closed = concurrent(ORIGINATE_OPS, CALLERS, move |_, i| p(i)).await?;
        let (b1, c1, u1) = (
            stats.batches.load(Relaxed),
            stats.commands.load(Relaxed),
            stats.busy_us.load(Relaxed),
        );
        let batch_size = (c1 - c0) as f64 / (b1 - b0).max(1) as f64;
        let busy = (u1 - u0) as f64 / 1e6 / closed.elapsed.as_secs_f64();
        // Let the callbacks of the closed loop drain (and the statistics
        // reach the view).
        tokio::time::sleep(Duration::from_secs(2)).await;
        let per_call = (transactions(&env.deps.pool).await? - tx0) as f64 / ORIGINATE_OPS as f64;
        // Over the closed loop and its callbacks' drain: all a call costs.
        let cpu = cpu0.and_then(|c| c.per_op_since(ORIGINATE_OPS));
        let before = self.metrics.encode();
        let rate = std::env::var("BENCH_OPEN_RATE")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(OPEN_RATE);
        let open = open_loop(OPEN_OPS.min((rate * 10.0) as usize), rate, post.clone()).await?;
        let after = self.metrics.encode();
        // The same at half of what this hour's machine reached closed
        // loop: latency at a like load whatever the host's speed (500/s
        // is half the target, and nine tenths of a slow hour's capacity).
        // It starts once the loop before it has drained: a 500/s loop
        // beyond a slow hour's capacity leaves a backlog (callbacks, relay,
        // projectors) that would otherwise be timed here.
        let half = closed.ops_per_s() / 2.0;
        settled(&env.deps.pool).await?;
        let before_half = self.metrics.encode();
        let at_half = open_loop((half * 6.0) as usize, half, move |i| post(i + OPEN_OPS)).await?;
        let after_half = self.metrics.encode();
        let relay = histogram_ms(&after, &before, "switchboard_relay_delay_seconds", "", 0.99);
        let calls_delay = |after: &str, before: &str| {
            histogram_ms(
                after,
                before,
                "switchboard_projector_delay_seconds",
                "projector=\"calls\"",
                0.99,
            )
        };
        let calls = calls_delay(&after, &before);
        let relay_half = histogram_ms(
            &after_half,
            &before_half,
            "switchboard_relay_delay_seconds",
            "",
            0.99,
        );
        let calls_half = calls_delay(&after_half, &before_half);
        let w = "originate (all roles, simulator)";
        let o = &format!("originate at {rate:.0}/s offered");
        let mut rows = vec![
            Row::new(w, "calls/s, 64 clients", closed.ops_per_s(), "/s")
                .target(Target::AtLeast(1000.0)),
            Row::new(w, "PostgreSQL statements per call", per_call, ""),
        ];
        if let Some((machine, process)) = cpu {
            rows.push(Row::new(
                w,
                "machine CPU per call (all processes)",
                machine,
                "ms",
            ));
            rows.push(Row::new(w, "CPU per call of this process", process, "ms"));
        }
        rows.extend([
            Row::new(w, "commands per append call (group commit)", batch_size, ""),
            Row::new(w, "append calls in progress, on average", busy, ""),
            Row::new(o, "request → 200 p50", open.ms(0.5), "ms").target(Target::AtMost(10.0)),
            Row::new(o, "request → 200 p99", open.ms(0.99), "ms").target(Target::AtMost(50.0)),
            Row::new(o, "request → 200 p99.9", open.ms(0.999), "ms"),
            errors_row(o, &open),
        ]);
        let h = &format!("originate at {half:.0}/s offered (half the closed loop)");
        rows.extend([
            Row::new(h, "request → 200 p50", at_half.ms(0.5), "ms"),
            Row::new(h, "request → 200 p99", at_half.ms(0.99), "ms"),
            errors_row(h, &at_half),
        ]);
        if let Some(r) = relay_half {
            rows.push(Row::new(h, "relay delay p99 (bucket bound)", r, "ms"));
        }
        if let Some(c) = calls_half {
            rows.push(Row::new(
                h,
                "calls projector delay p99 (bucket bound)",
                c,
                "ms",
            ));
        }
        if let Some(r) = relay {
            rows.push(
                Row::new(o, "relay delay p99 (bucket bound)", r, "ms").target(Target::AtMost(50.0)),
            );
        }
        if let Some(c) = calls {
            rows.push(
                Row::new(o, "calls projector delay p99 (bucket bound)", c, "ms")
                    .target(Target::AtMost(50.0)),
            );
        }
        Ok(rows)
    }

    /// Waits for the relay to publish everything, then stops every role.
    pub async fn stop(self, pool: &PgPool) -> anyhow::Result<()> {
        for _ in 0..1_000 {
            let last: Option<i64> = sqlx::query_scalar("SELECT max(global_position) FROM events")
                .fetch_one(pool)
                .await?;
            let at: Option<i64> =
                sqlx::query_scalar("SELECT position FROM checkpoints WHERE name = 'relay'")
                    .fetch_optional(pool)
                    .await?;
            if last.is_none() || last == at {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = &self.sim;
        self.roles.stop().await;
        Ok(())
    }
}

/// Transactions committed in this database so far (each autocommit
/// statement is one).
async fn transactions(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await?)
}

/// Waits (up to 10 s) until every projection has applied all that is
/// stored.
async fn projected(pool: &PgPool) -> anyhow::Result<()> {
    for _ in 0..1_000 {
        let behind: bool = sqlx::query_scalar(
            "SELECT coalesce(min(position), 0) < (SELECT coalesce(max(global_position), 0) FROM events) \
             FROM checkpoints WHERE name LIKE 'projection:%'",
        )
        .fetch_one(pool)
        .await?;
        if !behind {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::bail!("the projections did not catch up in 10 s")
}

/// Waits (up to 30 s) until nothing more is being appended (the store's
/// head has not moved for 600 ms: the simulator's callbacks trail a dial by
/// up to 450 ms) and the relay and every projection have reached it.
async fn settled(pool: &PgPool) -> anyhow::Result<()> {
    let (mut last, mut since) = (-1_i64, std::time::Instant::now());
    for _ in 0..3_000 {
        let (head, behind): (i64, bool) = sqlx::query_as(
            "SELECT h.head, coalesce(min(c.position), 0) < h.head \
             FROM (SELECT coalesce(max(global_position), 0) AS head FROM events) h \
             LEFT JOIN checkpoints c ON c.name = 'relay' OR c.name LIKE 'projection:%' \
             GROUP BY h.head",
        )
        .fetch_one(pool)
        .await?;
        if head != last {
            (last, since) = (head, std::time::Instant::now());
        } else if !behind && since.elapsed() >= Duration::from_millis(600) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::bail!("the pipeline did not settle in 30 s")
}

fn errors_row(workload: &str, s: &Stats) -> Row {
    Row::new(workload, "requests failed", s.errors as f64, "").target(Target::AtMost(0.0))
}

/// Waits for stream `id`'s snapshot to reach `version` (it is written by a
/// task of its own, after the state that was due).
async fn snapshot_taken(env: &BenchEnv, id: Uuid, version: i64) -> anyhow::Result<()> {
    for _ in 0..500 {
        let at: Option<i64> =
            sqlx::query_scalar("SELECT max(version) FROM stream_snapshots WHERE stream_id = $1")
                .bind(id)
                .fetch_one(&env.deps.pool)
                .await?;
        if at >= Some(version) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::bail!("no snapshot of the hot stream at version {version}")
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `n` CallLimitsUpdated events on `tenant`'s stream, 1,000 per command.
async fn fill_limits(env: &BenchEnv, tenant: TenantId, n: usize) -> anyhow::Result<()> {
    use switchboard::store::{CommandMeta, ExpectedVersion, StreamAppend};
    let id = events::call_limits_stream_id(tenant);
    let st = &env.deps.store;
    let mut version = st
        .load_fresh(id, switchboard::commands::state::LimitsState::apply)
        .await?
        .head
        .version;
    for chunk in 0..n.div_ceil(1_000) {
        let events = (0..1_000)
            .map(|i| {
                events::Event::CallLimitsUpdated(events::CallLimitsUpdated {
                    concurrent_max: BIG,
                    calls_per_minute: BIG,
                    daily_calls_max: BIG,
                    daily_minutes_max: (chunk * 1_000 + i) as u32,
                })
            })
            .collect::<Vec<_>>();
        let sa = StreamAppend {
            stream_type: events::StreamType::CallLimits,
            stream_id: id,
            expected: ExpectedVersion::from_version(version),
            events,
        };
        st.append(CommandMeta::new(tenant, "bench"), &[sa], vec![])
            .await?;
        version += 1_000;
    }
    Ok(())
}

type Req = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>;

/// Sends a request as `token`; a non-2xx answer is an error with its body.
async fn send(
    client: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    token: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let resp = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = resp.status();
    let text = resp.text().await?;
    anyhow::ensure!(status.is_success(), "{path}: {status} {text}");
    let body = if status == StatusCode::NO_CONTENT || text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)?
    };
    Ok(body)
}
