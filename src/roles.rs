//! Composing roles into one process, as `serve` does.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::app::Deps;
use crate::callproc::sim::{SimConfig, SimHandle};
use crate::callproc::CallProcessorClient;
use crate::caps::Caps;
use crate::config::Settings;
use crate::gateway::{self, Gateway};
use crate::http;
use crate::projection::{self, Runner};
use crate::relay::Relay;
use crate::secrets::{MasterKeyring, Secrets};
use crate::supervisor::{Stage, Supervisor};
use crate::worker::Worker;

/// Which roles a process runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Roles {
    pub gateway: bool,
    pub relay: bool,
    pub projectors: bool,
    pub worker: bool,
}

impl Roles {
    pub fn all() -> Self {
        Roles {
            gateway: true,
            relay: true,
            projectors: true,
            worker: true,
        }
    }
}

/// A started process: where it listens, and its roles.
pub struct Started {
    pub addr: SocketAddr,
    pub gateway: Option<Gateway>,
    /// The built-in Call Processor simulator, when no URL was configured.
    pub sim: Option<SimHandle>,
    /// Every role's task; `roles.run(shutdown)` until SIGTERM, or
    /// `roles.stop()`, stops them in order.
    pub roles: Supervisor,
}

/// The relay of `deps`' database, woken by this process's commits too.
pub fn relay(deps: &Deps) -> Relay {
    Relay {
        pool: deps.pool.clone(),
        local: Some(deps.store.clone()),
        js: deps.js.clone(),
        ns: deps.ns.clone(),
        replicas: deps.stream_replicas,
        metrics: deps.metrics.clone(),
    }
}

/// The runner of `projection` in the process of `deps`: woken by its
/// commits, telling its read-your-writes waits.
pub fn runner(deps: &Deps, projection: Arc<dyn projections::Projection>) -> Runner {
    Runner {
        conns: crate::store::Kept::replanning(deps.pool.clone(), 1),
        pool: deps.pool.clone(),
        projection,
        metrics: deps.metrics.clone(),
        progress: deps.progress.clone(),
        local: Some(deps.store.clone()),
    }
}

/// Starts the background roles of `roles` on `deps`: the relay and the
/// projectors, in the pipeline stage.
pub fn spawn_background(deps: &Deps, roles: Roles, sup: &mut Supervisor) {
    if roles.relay {
        let relay = relay(deps);
        sup.spawn_loop(Stage::Pipeline, "relay", |stop| relay.run(stop));
    }
    if roles.projectors {
        for p in projection::all() {
            let role = format!("projector:{}", p.name());
            let runner = runner(deps, p);
            sup.spawn_loop(Stage::Pipeline, role, |stop| runner.run(stop));
        }
    }
}

/// Starts `roles` and the HTTP listener (every process serves health,
/// readiness and metrics; the gateway role adds `/api`). Returns once
/// listening, with the roles in `Started::roles`.
pub async fn start(settings: &Settings, deps: Deps, roles: Roles) -> anyhow::Result<Started> {
    if roles.worker && !roles.gateway && settings.public_url.is_none() {
        // Callbacks go to a gateway; a worker alone has none to offer.
        anyhow::bail!("a worker without a gateway needs SWITCHBOARD_PUBLIC_URL (a gateway's base URL) for status callbacks");
    }
    // The read tables exist before anything reads them, whichever process
    // runs the projectors.
    for p in projection::all() {
        projection::ensure_schema(&deps.pool, &*p).await?;
    }
    let listener = tokio::net::TcpListener::bind(settings.listen).await?;
    let addr = listener.local_addr()?;
    let caps = Caps::new(
        deps.redis.clone(),
        deps.pool.clone(),
        deps.ns.clone(),
        deps.clock.clone(),
        settings.caps.call_lease,
    );
    let mut sup = Supervisor::new();
    spawn_background(&deps, roles, &mut sup);
    let mut sim = None;
    if roles.worker {
        let (base, own_sim) = call_processor(settings, &sup).await?;
        sim = own_sim;
        let public_url = settings
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let worker = worker(settings, &deps, &caps, base, &public_url)?;
        sup.spawn_loop(Stage::Worker, "worker", |stop| worker.run(stop));
    }
    let gw = match roles.gateway {
        true => Some(Gateway::from_settings(settings, deps.clone(), caps)?),
        false => None,
    };
    if let Some(gw) = &gw {
        // Before the API serves, so no feed subscribes behind the tail.
        gw.feed.init(&deps.pool).await?;
    }
    serve_http(&deps, gw.as_ref(), listener, &mut sup);
    Ok(Started {
        addr,
        gateway: gw,
        sim,
        roles: sup,
    })
}

/// Serves health, readiness and metrics, and the API when `gw` is given
/// (with the followers its waits need), in the HTTP stage.
fn serve_http(
    deps: &Deps,
    gw: Option<&Gateway>,
    listener: tokio::net::TcpListener,
    sup: &mut Supervisor,
) {
    let mut router = http::ops_router(deps.clone());
    if let Some(gw) = gw {
        gw.spawn_followers(sup);
        router = router.merge(gateway::router(gw.clone()));
    }
    let router = http::with_request_ids(router);
    let stop = sup.token(Stage::Http);
    sup.spawn(Stage::Http, "http", async move {
        http::serve(listener, router, stop)
            .await
            .map_err(|e| anyhow::anyhow!("http server: {e}"))
    });
}

/// The Call Processor's base URL: the configured one, or (outside
/// production) a built-in simulator started for this process, which stops
/// in the last stage.
async fn call_processor(
    settings: &Settings,
    sup: &Supervisor,
) -> anyhow::Result<(String, Option<SimHandle>)> {
    match &settings.call_processor.url {
        Some(url) => Ok((url.clone(), None)),
        None if settings.is_production() => {
            anyhow::bail!("SWITCHBOARD_CALL_PROCESSOR_URL must be set when SWITCHBOARD_ENV=production (no simulator in production)")
        }
        None => {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let config = SimConfig::with_secret(settings.callback_secret()?);
            let handle = crate::callproc::sim::spawn(l, config, sup.token(Stage::Simulator)).await;
            Ok((handle.base_url(), Some(handle)))
        }
    }
}

/// The originate worker of this process, dialing through `base`.
fn worker(
    settings: &Settings,
    deps: &Deps,
    caps: &Caps,
    base: String,
    public_url: &str,
) -> anyhow::Result<Worker> {
    let ring = MasterKeyring::from_secret(&settings.master_key()?)
        .map_err(|e| anyhow::anyhow!("SWITCHBOARD_MASTER_KEY: {e}"))?;
    let cp = &settings.call_processor;
    Ok(Worker {
        deps: deps.clone(),
        caps: caps.clone(),
        secrets: Arc::new(Secrets::new(ring)),
        client: CallProcessorClient::new(base, cp.timeout, cp.attempts),
        callback_url: format!("{public_url}{}", crate::gateway::callbacks::PATH),
        worker_id: format!(
            "{}-{}",
            hostname(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ),
        default_limits: settings.default_limits(),
        ack_wait: settings.worker.ack_wait,
        concurrency: settings.worker.concurrency,
        give_up: cp.give_up,
        crash: None,
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "worker".to_owned())
}
