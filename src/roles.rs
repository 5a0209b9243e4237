//! Composing roles into one process, as `serve` does.

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::app::Deps;
use crate::config::Settings;
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

/// Runs `roles` until `shutdown`. Every process serves the ops routes
/// (health, readiness, metrics) on the listen address.
pub async fn run(
    settings: &Settings,
    deps: Deps,
    roles: Roles,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut tasks = JoinSet::new();
    spawn_background(&deps, roles, &shutdown, &mut tasks);
    let listener = tokio::net::TcpListener::bind(settings.listen).await?;
    let addr = listener.local_addr()?;
    println!("switchboard listening on http://{addr}");
    let router = http::ops_router(deps.clone());
    http::serve(listener, router, shutdown.clone()).await?;
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}
    Ok(())
}
