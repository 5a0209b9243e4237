//! The command line: flags and subcommands, each a thin call into a role.

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::app::Deps;
use crate::config::Settings;
use crate::roles;

#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Event-sourced telephony control plane"
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every role in one process: gateway, relay, projectors, originate worker.
    Serve,
    /// The HTTP gateway only.
    Gateway,
    /// The relay only (leader-elected).
    Relay,
    /// The projectors only (each leader-elected).
    Project,
    /// Apply database migrations and exit.
    Migrate,
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.settings;
    if let Command::Migrate = cli.command {
        crate::db::prepare(&settings.database_url, 2).await?;
        println!("migrations applied");
        return Ok(());
    }
    let deps = Deps::connect(&settings).await?;
    let shutdown = CancellationToken::new();
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
            shutdown.cancel();
        });
    }
    let roles = match cli.command {
        Command::Serve => roles::Roles::all(),
        Command::Gateway => roles::Roles {
            gateway: true,
            ..Default::default()
        },
        Command::Relay => roles::Roles {
            relay: true,
            ..Default::default()
        },
        Command::Project => roles::Roles {
            projectors: true,
            ..Default::default()
        },
        Command::Migrate => unreachable!("handled above"),
    };
    roles::run(&settings, deps, roles, shutdown).await
}
