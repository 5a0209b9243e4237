//! The fault suite: every role as its own OS process of the real binary,
//! faults injected from outside (SIGKILL, restarts of NATS, Redis and a
//! PostgreSQL of the suite's own, a Call Processor that fails or is slow),
//! and invariants checked against independent records: the simulator's own
//! dial log and live-call high-water mark, the store, the JetStream stream,
//! rebuilt projections and cap counters rebuilt from history.
//!
//! Short form (part of the suite): a few hundred calls per scenario. Full
//! form: `scripts/faults` (`SB_FAULTS=full`): 10,000 and 1,000 calls. Each
//! scenario prints what it did and what held.

mod caps;
mod checks;
mod kills;
mod restarts;
mod standbys;

use events::TenantId;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use switchboard::namespace::Namespace;
use uuid::Uuid;

use crate::app::{CALLBACK_SECRET, JWT_SECRET};
use crate::support::{free_port, NatsProcess, RedisProcess};

/// Whether this run is the full form.
pub fn full() -> bool {
    std::env::var("SB_FAULTS").is_ok_and(|v| v == "full")
}

/// `short` or `full` by the form of the run.
pub fn scale(short: usize, full_: usize) -> usize {
    if full() {
        full_
    } else {
        short
    }
}

/// A PostgreSQL server of the suite's own, so it can be restarted without
/// touching the tests beside it.
pub struct PgProcess {
    pub port: u16,
    dir: PathBuf,
}

impl PgProcess {
    pub fn start(dir: &std::path::Path) -> PgProcess {
        let bin = std::path::Path::new("/usr/lib/postgresql/15/bin");
        let data = dir.join("pgdata");
        std::fs::create_dir_all(dir).unwrap();
        let as_postgres = |cmd: &std::path::Path| {
            // initdb refuses to run as root.
            let mut c = if is_root() {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(cmd);
                c
            } else {
                Command::new(cmd)
            };
            c.stdout(Stdio::null()).stderr(Stdio::null());
            c
        };
        if is_root() {
            let _ = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir)
                .status();
        }
        let ok = as_postgres(&bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data)
            .status()
            .expect("initdb");
        assert!(ok.success(), "initdb");
        let p = PgProcess {
            port: free_port(),
            dir: dir.to_owned(),
        };
        p.ctl(&["start", "-w"]);
        p
    }

    fn ctl(&self, args: &[&str]) {
        assert!(self.try_ctl(args), "pg_ctl {args:?}");
    }

    fn try_ctl(&self, args: &[&str]) -> bool {
        let bin = std::path::Path::new("/usr/lib/postgresql/15/bin/pg_ctl");
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let mut c = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(bin);
            c
        } else {
            Command::new(bin)
        };
        let status = c
            .args(["-D"])
            .arg(self.dir.join("pgdata"))
            .args(["-l"])
            .arg(self.dir.join("pg.log"))
            .args(["-o", &opts])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        status.is_ok_and(|s| s.success())
    }

    /// A crash-like stop (no checkpoint, recovery at start), then a start.
    pub fn restart(&self) {
        self.ctl(&["stop", "-m", "immediate", "-w"]);
        self.ctl(&["start", "-w"]);
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PgProcess {
    fn drop(&mut self) {
        self.try_ctl(&["stop", "-m", "immediate", "-w"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

/// One process of the binary, with its log file.
pub struct Proc {
    child: Child,
}

impl Proc {
    /// SIGKILL: no drain, no cleanup, as a crash or the OOM killer would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a cluster is made of.
pub struct Shape {
    pub gateways: usize,
    pub workers: usize,
    /// PostgreSQL of its own (to restart), or the shared one.
    pub own_postgres: bool,
}

/// Every role as its own process, on NATS and Redis of the cluster's own.
pub struct Cluster {
    pub dir: PathBuf,
    pub db_url: String,
    pub pool: PgPool,
    pub ns: Namespace,
    pub nats: NatsProcess,
    pub redis: RedisProcess,
    pub pg: Option<PgProcess>,
    pub sim_url: String,
    pub gateway_urls: Vec<String>,
    pub gateways: Vec<Option<Proc>>,
    pub workers: Vec<Option<Proc>>,
    pub relay: Option<Proc>,
    pub projector: Option<Proc>,
    _sim: Proc,
    pub http: reqwest::Client,
    started: Instant,
}

impl Cluster {
    pub async fn start(shape: Shape, sim: Value) -> Cluster {
        let id = Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("sbfaults-{}", &id[..12]));
        std::fs::create_dir_all(&dir).unwrap();
        let pg = shape
            .own_postgres
            .then(|| PgProcess::start(&dir.join("pg")));
        let db = format!("sbtest_{}", &id[..16]);
        let db_url = match &pg {
            Some(p) => p.url(&db),
            None => format!("{}/{db}", crate::support::pg_base()),
        };
        let pool = switchboard::db::prepare(&db_url, 10)
            .await
            .expect("database");
        let ns = Namespace::parse(&format!("f{}", &id[..12])).unwrap();
        let nats = NatsProcess::start();
        let redis = RedisProcess::start();
        let gateway_ports: Vec<u16> = (0..shape.gateways).map(|_| free_port()).collect();
        let gateway_urls: Vec<String> = gateway_ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect();
        let sim_port = free_port();
        let sim_url = format!("http://127.0.0.1:{sim_port}");
        let mut c = Cluster {
            dir,
            db_url,
            pool,
            ns,
            nats,
            redis,
            pg,
            sim_url: sim_url.clone(),
            gateway_urls,
            gateways: Vec::new(),
            workers: Vec::new(),
            relay: None,
            projector: None,
            _sim: Proc {
                child: Command::new("true").spawn().unwrap(),
            },
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            started: Instant::now(),
        };
        c._sim = c.spawn(
            "callproc-sim",
            &["--sim-listen", &format!("127.0.0.1:{sim_port}")],
        );
        c.wait_http(&format!("{sim_url}/config")).await;
        let r = c
            .http
            .put(format!("{sim_url}/config"))
            .json(&sim)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        c.relay = Some(c.spawn("relay", &[]));
        c.projector = Some(c.spawn("project", &[]));
        for port in gateway_ports {
            let g = c.spawn_gateway(port);
            c.gateways.push(Some(g));
        }
        for url in c.gateway_urls.clone() {
            c.wait_http(&format!("{url}/readyz")).await;
        }
        for _ in 0..shape.workers {
            let w = c.spawn("worker", &[]);
            c.workers.push(Some(w));
        }
        c
    }

    fn spawn_gateway(&self, port: u16) -> Proc {
        self.spawn("gateway", &["--listen", &format!("127.0.0.1:{port}")])
    }

    /// Starts `role` with the cluster's settings; its output goes to
    /// `<dir>/<role>-<n>.log`.
    pub fn spawn(&self, role: &str, args: &[&str]) -> Proc {
        let n = std::fs::read_dir(&self.dir).map(|d| d.count()).unwrap_or(0);
        let log = std::fs::File::create(self.dir.join(format!("{role}-{n}.log"))).unwrap();
        let master = format!("mk1:{}", {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode([7u8; 32])
        });
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn,switchboard=info")
            .env("DATABASE_URL", &self.db_url)
            .env("NATS_URL", self.nats.url())
            .env("REDIS_URL", self.redis.url())
            .env("SWITCHBOARD_NAMESPACE", self.ns.as_str())
            .env("SWITCHBOARD_ENV", "test")
            .env("SWITCHBOARD_JWT_SECRET", JWT_SECRET)
            .env("SWITCHBOARD_MASTER_KEY", master)
            .env("SWITCHBOARD_CALLBACK_SECRET", CALLBACK_SECRET)
            .env("SWITCHBOARD_CALL_PROCESSOR_URL", &self.sim_url)
            .env("SWITCHBOARD_PUBLIC_URL", &self.gateway_urls[0])
            .env("SWITCHBOARD_DATA_DIR", self.dir.join("data"))
            // Every role serves health and metrics; a gateway's --listen wins.
            .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
            // Ten processes beside the other tests on one server.
            .env("SWITCHBOARD_DB_MAX_CONNECTIONS", "6")
            .env("SWITCHBOARD_ORIGINATE_WAIT", "3s")
            .env("SWITCHBOARD_WORKER_ACK_WAIT", "2s")
            .env("SWITCHBOARD_CALL_PROCESSOR_TIMEOUT", "1s")
            .env("SWITCHBOARD_CALL_PROCESSOR_ATTEMPTS", "2")
            .env("SWITCHBOARD_DIAL_GIVE_UP", "8s")
            .arg(role)
            .args(args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start switchboard");
        Proc { child }
    }

    pub async fn wait_http(&self, url: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = self.http.get(url).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{url} did not answer; logs in {}", self.dir.display());
    }

    /// A token of `tenant` with every scope.
    pub fn token(&self, tenant: TenantId) -> String {
        crate::support::token_with_every_scope(JWT_SECRET, tenant, "fault-suite")
    }

    /// A tenant with a Twilio provider, `numbers` caller ids and `limits`.
    pub async fn tenant(&self, numbers: &[&str], limits: Value) -> (TenantId, String) {
        let tenant = TenantId::new();
        let t = self.token(tenant);
        let gw = &self.gateway_urls[0];
        let r = self
            .post(gw, "/api/v1/telephony/providers", &t, json!({
                "provider": "twilio", "label": "faults",
                "credentials": {"account_sid": format!("AC{}", "0f".repeat(16)), "auth_token": "tok"}}))
            .await;
        assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
        let pid = r.1["id"].as_str().unwrap().to_owned();
        for n in numbers {
            let r = self
                .post(gw, "/api/v1/telephony/numbers", &t, json!({
                    "e164": n, "provider": "twilio", "credentials_id": pid, "agent_id": Uuid::new_v4()}))
                .await;
            assert_eq!(r.0, StatusCode::CREATED, "{}", r.1);
        }
        let r = self
            .http
            .put(format!("{gw}/api/v1/call-limits"))
            .bearer_auth(&t)
            .json(&limits)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        (tenant, t)
    }

    pub async fn post(
        &self,
        base: &str,
        path: &str,
        token: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        answer(
            self.http
                .post(format!("{base}{path}"))
                .bearer_auth(token)
                .json(&body),
        )
        .await
    }

    pub async fn get(&self, base: &str, path: &str, token: &str) -> (StatusCode, Value) {
        answer(self.http.get(format!("{base}{path}")).bearer_auth(token)).await
    }

    /// Calls not yet in a final state (1 when the store cannot be read).
    pub async fn open_calls(&self) -> i64 {
        sqlx::query_scalar(&format!(
            "SELECT count(*) FROM calls WHERE status NOT IN {FINAL}"
        ))
        .fetch_one(&self.pool)
        .await
        .unwrap_or(1)
    }

    /// Every call final and none live in the simulator.
    pub async fn settled(&self) -> bool {
        self.open_calls().await == 0 && self.sim_record().await["live"] == 0
    }

    /// The simulator's own record: `{dials, requests, live, peak_live}`.
    pub async fn sim_record(&self) -> Value {
        self.http
            .get(format!("{}/dials", self.sim_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until `f` holds, polling every 100 ms, up to `timeout`.
    pub async fn until<F, Fut>(&self, timeout: Duration, mut f: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if f().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Calls by status, from the calls projection.
    pub async fn statuses(&self) -> Vec<(String, i64)> {
        sqlx::query_as("SELECT status, count(*) FROM calls GROUP BY status ORDER BY status")
            .fetch_all(&self.pool)
            .await
            .unwrap_or_default()
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stops every process and removes the logs (a failing scenario panics
    /// before this, and keeps them in `dir`).
    pub async fn stop(mut self) {
        for p in self
            .gateways
            .drain(..)
            .chain(self.workers.drain(..))
            .flatten()
        {
            p.kill();
        }
        self.relay.take();
        self.projector.take();
        self.pool.close().await;
        // The suite's own server goes with its data (stopped before the
        // directory goes); on the shared one, the database is dropped.
        let shared = self.pg.take().is_none();
        if shared {
            if let Ok(admin) =
                PgPool::connect(&format!("{}/postgres", crate::support::pg_base())).await
            {
                let db = self.db_url.rsplit('/').next().unwrap().to_owned();
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
                    .execute(&admin)
                    .await;
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A call's end states, as SQL.
pub const FINAL: &str = "('completed','busy','no_answer','failed','canceled','rejected')";

/// The status and JSON body of a request's answer; 599 when none came.
async fn answer(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    match req.send().await {
        Ok(r) => {
            let s = r.status();
            (s, r.json().await.unwrap_or(Value::Null))
        }
        Err(e) => (StatusCode::from_u16(599).unwrap(), json!(e.to_string())),
    }
}

/// `total` originations from `clients` concurrent clients, spread over
/// `gateways`: how many got each status, and the answers other than 200,
/// 202 and 429.
pub async fn originate_many(
    http: reqwest::Client,
    gateways: Vec<String>,
    token: String,
    from: &'static [&'static str],
    total: usize,
    clients: usize,
) -> (std::collections::BTreeMap<u16, usize>, Vec<(u16, Value)>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = std::sync::Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..clients {
        let (http, gateways, token, next) =
            (http.clone(), gateways.clone(), token.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return seen;
                }
                let gw = &gateways[(i + w) % gateways.len()];
                let body =
                    json!({"from_number": from[i % from.len()], "to_number": "+14155550100"});
                let req = http
                    .post(format!("{gw}/api/v1/calls/originate"))
                    .bearer_auth(&token)
                    .json(&body);
                seen.push(answer(req).await);
            }
        }));
    }
    let (mut counts, mut others) = (std::collections::BTreeMap::new(), Vec::new());
    for task in tasks {
        for (status, body) in task.await.unwrap() {
            *counts.entry(status.as_u16()).or_default() += 1;
            if ![200, 202, 429].contains(&status.as_u16()) {
                others.push((status.as_u16(), body));
            }
        }
    }
    (counts, others)
}

/// Checks that every call's stream holds at most one dial outcome, and that
/// each dispatched call's provider_call_id is the simulator's for it.
pub async fn assert_one_outcome_per_call(c: &Cluster, record: &Value) -> usize {
    let dials: std::collections::HashMap<String, String> = record["dials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["call_id"].as_str().unwrap().to_owned(),
                d["provider_call_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        dials.len(),
        record["dials"].as_array().unwrap().len(),
        "the simulator dialed a call_id twice"
    );
    let outcomes: Vec<(Uuid, i64, Option<String>)> = sqlx::query_as(
        "SELECT stream_id, count(*) FILTER (WHERE event_type IN ('OriginateDispatched','OriginateFailed')), \
                max(data->>'provider_call_id') FILTER (WHERE event_type = 'OriginateDispatched') \
         FROM events WHERE stream_type = 'call' GROUP BY stream_id",
    )
    .fetch_all(&c.pool)
    .await
    .unwrap();
    for (call, n, pcid) in &outcomes {
        assert!(*n <= 1, "call {call} has {n} dial outcomes");
        if let Some(pcid) = pcid {
            assert_eq!(
                dials.get(&call.to_string()),
                Some(pcid),
                "call {call} dispatched with an id the simulator did not give"
            );
        }
    }
    outcomes.len()
}
