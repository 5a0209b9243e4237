//! Composing roles into one process, as `serve` does.

use std::net::SocketAddr;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::app::Deps;
use crate::config::Settings;
use crate::gateway::{self, Gateway};
use crate::http;
use crate::projection::{self, Runner};
use crate::relay::Relay;

/// Which roles a process runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Roles {
    pub gateway: bool,
    pub relay: bool,
    pub projectors: bool,
}

impl Roles {
    pub fn all() -> Self {
        Roles {
            gateway: true,
            relay: true,
            projectors: true,
        }
    }
}

/// A started process: where it listens, and its tasks.
pub struct Started {
    pub addr: SocketAddr,
    pub gateway: Option<Gateway>,
    pub tasks: JoinSet<()>,
}

/// Starts the background roles of `roles` on `deps`; they stop on `shutdown`.
pub fn spawn_background(
    deps: &Deps,
    roles: Roles,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) {
    if roles.relay {
        let relay = Relay {
            pool: deps.pool.clone(),
            js: deps.js.clone(),
            ns: deps.ns.clone(),
            metrics: deps.metrics.clone(),
        };
        tasks.spawn(relay.run(shutdown.clone()));
    }
    if roles.projectors {
        for p in projection::all() {
            let runner = Runner {
                pool: deps.pool.clone(),
                projection: p,
                metrics: deps.metrics.clone(),
            };
            tasks.spawn(runner.run(shutdown.clone()));
        }
    }
}

/// Starts `roles` and the HTTP listener (every process serves health,
/// readiness and metrics; the gateway role adds `/api`). Returns once
/// listening; everything stops on `shutdown`.
pub async fn start(
    settings: &Settings,
    deps: Deps,
    roles: Roles,
    shutdown: CancellationToken,
) -> anyhow::Result<Started> {
    // The read tables exist before anything reads them, whichever process
    // runs the projectors.
    for p in projection::all() {
        projection::ensure_schema(&deps.pool, &*p).await?;
    }
    let mut tasks = JoinSet::new();
    spawn_background(&deps, roles, &shutdown, &mut tasks);
    let mut router = http::ops_router(deps.clone());
    let gw = if roles.gateway {
        let gw = Gateway::from_settings(settings, deps.clone())?;
        router = router.merge(gateway::router(gw.clone()));
        Some(gw)
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(settings.listen).await?;
    let addr = listener.local_addr()?;
    let stop = shutdown.clone();
    tasks.spawn(async move {
        if let Err(e) = http::serve(listener, router, stop.clone()).await {
            tracing::error!(error = %e, "http server failed");
        }
        stop.cancel();
    });
    Ok(Started {
        addr,
        gateway: gw,
        tasks,
    })
}
