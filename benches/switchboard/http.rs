//! Scenarios 3 and 4, through HTTP against every role started in this
//! process (as `serve` composes them), each against `GET /healthz` on the
//! same server with the same concurrency.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use switchboard::callproc::sim::{ConfigPatch, SimHandle};
use switchboard::roles::{self, Roles};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::env::BenchEnv;
use crate::measure::{concurrent, Row, Stats};

pub const CLIENTS: usize = 16;
const WRITE_OPS: usize = 2_000;
const ORIGINATE_OPS: usize = 512;
/// Enough requests for the baseline to take a measurable while.
const HEALTHZ_OPS: usize = 20_000;
const BIG: u32 = 1_000_000;

/// A running service, and one tenant (token, caller id) per client.
pub struct App {
    base: String,
    client: reqwest::Client,
    sim: SimHandle,
    stop: CancellationToken,
    tasks: JoinSet<()>,
    tenants: Arc<Vec<(String, String)>>,
}

impl App {
    pub async fn start(env: &BenchEnv) -> anyhow::Result<App> {
        let stop = CancellationToken::new();
        let started =
            roles::start(&env.settings, env.deps.clone(), Roles::all(), stop.clone()).await?;
        let sim = started
            .sim
            .ok_or_else(|| anyhow::anyhow!("no built-in simulator"))?;
        let mut app = App {
            base: format!("http://{}", started.addr),
            client: reqwest::Client::new(),
            sim,
            stop,
            tasks: started.tasks,
            tenants: Arc::default(),
        };
        let mut tenants = Vec::new();
        for i in 0..CLIENTS {
            let token = env.token(Uuid::new_v4());
            let from = format!("+1202555{:04}", 100 + i);
            app.setup_tenant(&token, &from).await?;
            tenants.push((token, from));
        }
        app.tenants = Arc::new(tenants);
        Ok(app)
    }

    async fn send(&self, m: Method, path: &str, token: &str, body: Value) -> anyhow::Result<Value> {
        send(&self.client, &self.base, m, path, token, body).await
    }

    /// A Twilio provider and `from` attached to it.
    async fn setup_tenant(&self, token: &str, from: &str) -> anyhow::Result<()> {
        let creds = json!({"account_sid": format!("AC{}", "0f".repeat(16)), "auth_token": "tok"});
        let p = json!({"provider": "twilio", "label": "Bench", "credentials": creds});
        let provider = self
            .send(Method::POST, "/api/v1/telephony/providers", token, p)
            .await?;
        let n = json!({"e164": from, "provider": "twilio", "credentials_id": provider["id"],
            "agent_id": Uuid::new_v4()});
        self.send(Method::POST, "/api/v1/telephony/numbers", token, n)
            .await?;
        Ok(())
    }

    async fn healthz(&self) -> anyhow::Result<Stats> {
        let (client, url) = (self.client.clone(), format!("{}/healthz", self.base));
        let get = move |_: usize, _: usize| {
            let req = client.get(&url);
            async move {
                req.send().await?.error_for_status()?.bytes().await?;
                Ok(())
            }
        };
        concurrent("warm-up", CLIENTS * 4, CLIENTS, get.clone()).await?;
        concurrent("GET /healthz", HEALTHZ_OPS, CLIENTS, get).await
    }

    /// `op(client, i)`: one request from client `client` as its tenant.
    fn request(
        &self,
        method: Method,
        path: &'static str,
        body: impl Fn(usize, usize) -> Value + Send + Sync + 'static,
    ) -> impl Fn(usize, usize) -> RespFuture + Clone + Send + Sync + 'static {
        let (client, base, tenants) =
            (self.client.clone(), self.base.clone(), self.tenants.clone());
        let body = Arc::new(body);
        move |c, i| {
            let (client, base, tenants) = (client.clone(), base.clone(), tenants.clone());
            let (method, body) = (method.clone(), body(c, i));
            Box::pin(async move { send(&client, &base, method, path, &tenants[c].0, body).await })
        }
    }

    /// Scenario 3: PATCH /api/v1/call-limits, each client its own tenant.
    pub async fn gateway_write(&self) -> anyhow::Result<Row> {
        let patch = self.request(
            Method::PATCH,
            "/api/v1/call-limits",
            |_, i| json!({"daily_minutes_max": 600 + i}),
        );
        let p = patch.clone();
        concurrent("warm-up", CLIENTS, CLIENTS, move |c, i| {
            let f = p(c, i);
            async move { f.await.map(drop) }
        })
        .await?;
        let baseline = self.healthz().await?;
        let scenario = concurrent("PATCH call-limits", WRITE_OPS, CLIENTS, move |c, i| {
            let f = patch(c, i);
            async move { f.await.map(drop) }
        })
        .await?;
        Ok(Row {
            scenario,
            baseline,
            notes: vec![format!(
                "{CLIENTS} clients, one tenant each (so no stream-lock contention); each \
                 answer waits for the call_limits projection (read-your-writes); \
                 baseline: {HEALTHZ_OPS} requests"
            )],
        })
    }

    /// Scenario 4: POST /api/v1/calls/originate to the built-in simulator.
    pub async fn originate(&self) -> anyhow::Result<Row> {
        let limits = json!({"concurrent_max": BIG, "calls_per_minute": BIG,
            "daily_calls_max": BIG, "daily_minutes_max": BIG});
        for (token, _) in self.tenants.iter() {
            self.send(Method::PUT, "/api/v1/call-limits", token, limits.clone())
                .await?;
        }
        // Calls ring long after the run, so no callback competes with it.
        let patch = ConfigPatch {
            ring_delay_ms: Some(600_000),
            ..Default::default()
        };
        self.sim
            .state()
            .update_config(patch)
            .map_err(anyhow::Error::msg)?;
        let tenants = self.tenants.clone();
        let post = self.request(
            Method::POST,
            "/api/v1/calls/originate",
            move |c, _| json!({"from_number": tenants[c].1, "to_number": "+14155550100"}),
        );
        let statuses: Arc<Mutex<Vec<String>>> = Arc::default();
        let dispatched = Arc::new(AtomicUsize::new(0));
        let (s, d) = (statuses.clone(), dispatched.clone());
        let op = move |c: usize, i: usize| {
            let (f, s, d) = (post(c, i), s.clone(), d.clone());
            async move {
                match f.await {
                    Ok(b) if b["status"] == "dispatched" => {
                        d.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(b) => push(&s, format!("status {}", b["status"])),
                    Err(e) => push(&s, e.to_string()),
                }
                Ok(())
            }
        };
        concurrent("warm-up", CLIENTS, CLIENTS, op.clone()).await?;
        let warm = dispatched.swap(0, Ordering::Relaxed);
        let baseline = self.healthz().await?;
        let scenario = concurrent("POST originate", ORIGINATE_OPS, CLIENTS, op).await?;
        let mut notes = vec![format!(
            "{CLIENTS} clients, one tenant and caller id each; answer after append -> \
             relay -> worker (Redis caps, simulator dial) -> OriginateDispatched on NATS \
             -> calls projection; {} of {ORIGINATE_OPS} dispatched ({warm} warm-up calls); \
             baseline: {HEALTHZ_OPS} requests",
            dispatched.load(Ordering::Relaxed)
        )];
        let statuses = statuses.lock().map(|s| s.clone()).unwrap_or_default();
        if !statuses.is_empty() {
            notes.push(format!(
                "{} not dispatched, e.g. {}",
                statuses.len(),
                statuses[0]
            ));
        }
        Ok(Row {
            scenario,
            baseline,
            notes,
        })
    }

    /// Waits for the relay to publish everything, then stops every role.
    pub async fn stop(mut self, pool: &PgPool) -> anyhow::Result<()> {
        let last = "SELECT transaction_id, global_position FROM events \
                    ORDER BY transaction_id DESC, global_position DESC LIMIT 1";
        let at = "SELECT transaction_id, position FROM checkpoints WHERE name = 'relay'";
        for _ in 0..1_000 {
            let last: Option<(i64, i64)> = sqlx::query_as(last).fetch_optional(pool).await?;
            let at: Option<(i64, i64)> = sqlx::query_as(at).fetch_optional(pool).await?;
            if last.is_none() || last == at {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
        Ok(())
    }
}

type RespFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<Value>> + Send>>;

fn push(list: &Mutex<Vec<String>>, s: String) {
    if let Ok(mut l) = list.lock() {
        l.push(s);
    }
}

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
