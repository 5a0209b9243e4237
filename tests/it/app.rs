//! A running Switchboard (every role, in this test process) on a free port,
//! in the test's own database and namespace, with an HTTP client that keeps
//! every response body it saw (for the secrets canary).

use events::TenantId;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use switchboard::app::Deps;
use switchboard::auth::{mint_hs256, Scope};
use switchboard::cli::Cli;
use switchboard::config::Settings;
use switchboard::roles::{self, Roles};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::support::TestEnv;

pub const JWT_SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";
pub const CALLBACK_SECRET: &str = "callback-secret-for-tests";

pub struct TestApp {
    pub env: TestEnv,
    pub deps: Deps,
    pub settings: Settings,
    pub base: String,
    pub client: reqwest::Client,
    /// Every response body this app answered, in order.
    pub bodies: Arc<Mutex<Vec<String>>>,
    /// The built-in Call Processor simulator.
    #[allow(dead_code)]
    pub sim: Option<switchboard::callproc::sim::SimHandle>,
    pub shutdown: CancellationToken,
    /// The app's roles, and workers a test started itself.
    roles: switchboard::supervisor::Supervisor,
    tasks: JoinSet<()>,
}

/// A response: status, headers, and the body as JSON (Null when empty).
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[]).await
    }

    /// Spawns with extra command-line flags.
    pub async fn spawn_with(extra: &[&str]) -> TestApp {
        Self::spawn_opts(extra, None, true).await
    }

    /// Spawns with extra flags, optionally a clock the test moves, and with
    /// or without the built-in worker. Without it, the simulator still runs
    /// (started here) and the test adds workers with `worker()`.
    pub async fn spawn_opts(
        extra: &[&str],
        clock: Option<switchboard::clock::SharedClock>,
        with_worker: bool,
    ) -> TestApp {
        Self::spawn_on(TestEnv::new().await, extra, clock, with_worker).await
    }

    /// As `spawn_opts`, on an environment the test prepared.
    pub async fn spawn_on(
        env: TestEnv,
        extra: &[&str],
        clock: Option<switchboard::clock::SharedClock>,
        with_worker: bool,
    ) -> TestApp {
        Self::spawn_on_nats(env, &crate::support::nats_url(), extra, clock, with_worker).await
    }

    /// As `spawn_on`, against the NATS at `nats` (a URL that may carry a user).
    pub async fn spawn_on_nats(
        env: TestEnv,
        nats: &str,
        extra: &[&str],
        clock: Option<switchboard::clock::SharedClock>,
        with_worker: bool,
    ) -> TestApp {
        let shutdown = CancellationToken::new();
        let mut extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let mut own_sim = None;
        if !with_worker {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let config = switchboard::callproc::sim::SimConfig::with_secret(
                CALLBACK_SECRET.to_owned().into(),
            );
            let sim = switchboard::callproc::sim::spawn(l, config, shutdown.clone()).await;
            extra.extend(["--call-processor-url".to_owned(), sim.base_url()]);
            own_sim = Some(sim);
        }
        let settings = settings_for_nats(&env, nats, extra);
        let mut deps = env.deps_with_nats(nats).await;
        deps.stream_replicas = usize::from(settings.stream_replicas);
        if let Some(clock) = clock {
            deps.clock = clock;
        }
        let roles = Roles {
            worker: with_worker,
            ..Roles::all()
        };
        let started = roles::start(&settings, deps.clone(), roles)
            .await
            .expect("start switchboard");
        TestApp {
            base: format!("http://{}", started.addr),
            env,
            deps,
            settings,
            client: reqwest::Client::new(),
            bodies: Arc::new(Mutex::new(Vec::new())),
            sim: started.sim.or(own_sim),
            shutdown,
            roles: started.roles,
            tasks: JoinSet::new(),
        }
    }

    /// A token for `tenant` with `scopes`.
    pub fn token(&self, tenant: TenantId, scopes: &[Scope]) -> String {
        token_for(tenant, scopes)
    }

    /// A token with every scope.
    pub fn admin(&self, tenant: TenantId) -> String {
        self.token(tenant, &Scope::ALL)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        self.bodies.lock().unwrap().push(text.clone());
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.send(Method::GET, path, Some(token), None, &[]).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(token), Some(body), &[])
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, Some(token), Some(body), &[])
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.send(Method::DELETE, path, Some(token), None, &[])
            .await
    }

    /// How many events the store holds.
    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.env.pool)
            .await
            .unwrap()
    }

    /// Creates a Twilio provider for the token's tenant; returns its id.
    pub async fn twilio(&self, token: &str, auth_token: &str) -> String {
        let r = self
            .post(
                "/api/v1/telephony/providers",
                token,
                serde_json::json!({
                    "provider": "twilio",
                    "label": "Production Twilio",
                    "credentials": {"account_sid": format!("AC{}", "0f".repeat(16)), "auth_token": auth_token},
                }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// Attaches `e164` on provider `credentials_id`; returns the response.
    pub async fn attach(
        &self,
        token: &str,
        e164: &str,
        credentials_id: &str,
        agent: Option<Uuid>,
    ) -> Resp {
        self.post(
            "/api/v1/telephony/numbers",
            token,
            serde_json::json!({
                "e164": e164, "provider": "twilio", "credentials_id": credentials_id, "agent_id": agent,
            }),
        )
        .await
    }

    /// A worker like `serve`'s, on this app, with an optional crash point.
    #[allow(dead_code)]
    pub fn worker(
        &self,
        crash: Option<switchboard::worker::CrashPoint>,
    ) -> switchboard::worker::Worker {
        use std::sync::Arc;
        let ring =
            switchboard::secrets::MasterKeyring::from_secret(&self.settings.master_key().unwrap())
                .unwrap();
        let caps = switchboard::caps::Caps::new(
            self.deps.redis.clone(),
            self.deps.pool.clone(),
            self.deps.ns.clone(),
            self.deps.clock.clone(),
            self.settings.caps.call_lease,
        );
        switchboard::worker::Worker {
            deps: self.deps.clone(),
            caps,
            secrets: Arc::new(switchboard::secrets::Secrets::new(ring)),
            client: switchboard::callproc::CallProcessorClient::new(
                self.sim.as_ref().unwrap().base_url(),
                self.settings.call_processor.timeout,
                self.settings.call_processor.attempts,
            ),
            callback_url: format!("{}{}", self.base, switchboard::gateway::callbacks::PATH),
            worker_id: format!("test-{}", &Uuid::new_v4().simple().to_string()[..6]),
            default_limits: self.settings.default_limits(),
            ack_wait: self.settings.worker.ack_wait,
            concurrency: 16,
            give_up: self.settings.call_processor.give_up,
            crash,
        }
    }

    /// Starts `worker` until the app stops (or the worker crashes).
    #[allow(dead_code)]
    pub fn run_worker(&mut self, worker: switchboard::worker::Worker) -> CancellationToken {
        let stop = self.shutdown.child_token();
        self.tasks.spawn(worker.run(stop.clone()));
        stop
    }

    /// Starts `worker` (one given a crash point) on its own; the handle
    /// finishes when it has crashed.
    #[allow(dead_code)]
    pub fn run_worker_to_crash(
        &self,
        worker: switchboard::worker::Worker,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(worker.run(self.shutdown.child_token()))
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.roles.stop().await;
        let js = self.deps.js.clone();
        self.env.cleanup(Some(&js)).await;
    }
}

/// A token for `tenant` with `scopes`, as any process of a test's install
/// accepts it (they share `JWT_SECRET`).
pub fn token_for(tenant: TenantId, scopes: &[Scope]) -> String {
    mint_hs256(
        &JWT_SECRET.to_owned().into(),
        "switchboard-dev",
        "switchboard",
        tenant,
        "tester",
        scopes,
        Duration::from_secs(600),
    )
}

/// The settings of a process of this test's install, with `extra` flags.
pub fn settings_for(env: &TestEnv, extra: Vec<String>) -> switchboard::config::Settings {
    settings_for_nats(env, &crate::support::nats_url(), extra)
}

fn settings_for_nats(
    env: &TestEnv,
    nats: &str,
    extra: Vec<String>,
) -> switchboard::config::Settings {
    let data_dir = std::env::temp_dir().join(format!("sbdata-{}", Uuid::new_v4().simple()));
    let master = format!("mk1:{}", base64_key());
    let mut args: Vec<String> = [
        "switchboard",
        "--database-url",
        &env.db_url,
        "--namespace",
        env.ns.as_str(),
        "--listen",
        "127.0.0.1:0",
        "--jwt-secret",
        JWT_SECRET,
        "--master-key",
        &master,
        "--callback-secret",
        CALLBACK_SECRET,
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--nats-url",
        nats,
        "--redis-url",
        &env.redis_url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if env.redis_cluster {
        args.push("--redis-cluster".into());
    }
    args.extend(extra);
    args.push("serve".into());
    Cli::parse_from(args).settings
}

fn base64_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode([7u8; 32])
}
