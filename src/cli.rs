//! The command line: flags and subcommands, each a thin call into a role.

use events::TenantId;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::app::Deps;
use crate::auth::{mint_hs256, Scope};
use crate::config::Settings;
use crate::roles::{self, Roles};

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
    /// The originate worker only (run any number).
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// The Call Processor simulator as its own server.
    CallprocSim {
        /// Where it listens.
        #[arg(long, default_value = "127.0.0.1:8090")]
        sim_listen: std::net::SocketAddr,
    },
    /// The Call Processor for real carriers (Twilio, Plivo, Vobiz): places
    /// calls on their REST APIs and forwards their status callbacks, signed.
    Callproc(crate::carrier::CarrierSettings),
    /// Replay history: events, state at a time, hash-chain verification,
    /// projection rebuilds (SPEC §9).
    #[command(subcommand)]
    Audit(crate::audit::cli::AuditCommand),
    /// Master-key rotation, rewrapping and tenant shredding (SPEC §8).
    #[command(subcommand)]
    Keys(crate::secrets::cli::KeysCommand),
    /// Every API route from a shell, against a remote gateway
    /// (`SWITCHBOARD_URL`, `SWITCHBOARD_TOKEN`): tables, or `--json`.
    Client(crate::client::ClientArgs),
    /// Mint an HS256 dev token.
    Token {
        /// The tenant the token speaks for.
        #[arg(long)]
        tenant: TenantId,
        /// Space-separated scopes.
        #[arg(
            long,
            default_value = "telephony:read telephony:write calls:write limits:write audit:read"
        )]
        scope: String,
        /// Lifetime: e.g. 90s, 30m, 1h, 7d.
        #[arg(long, default_value = "1h", value_parser = crate::config::parse_ttl)]
        ttl: Duration,
        /// The actor (`sub`).
        #[arg(long, default_value = "dev")]
        sub: String,
    },
}

/// What the command line asks for.
pub enum Invocation {
    /// A role or a one-shot tool, with the service's settings.
    Service(Box<Cli>),
    /// `switchboard client …`, which needs none of them.
    Client(crate::client::ClientArgs),
}

/// Parses the command line (exiting with clap's message and code 2 when it
/// is wrong). `client` is parsed apart: the service's settings are global
/// flags of every other subcommand and would crowd its help.
pub fn parse() -> Invocation {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "client") {
        use clap::{CommandFactory, FromArgMatches};
        let matches = crate::client::ClientArgs::command()
            .bin_name("switchboard client")
            .get_matches_from(&args[1..]);
        let client =
            crate::client::ClientArgs::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        return Invocation::Client(client);
    }
    Invocation::Service(Box::new(Cli::parse_from(args)))
}

/// Parses `250ms`, `90s`, `30m`, `1h`, `7d` (or plain seconds).
/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what a container runtime or
/// systemd sends to stop a service).
async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

fn parse_scopes(s: &str) -> anyhow::Result<Vec<Scope>> {
    s.split_whitespace()
        .map(|w| {
            w.parse::<Scope>()
                .map_err(|e| anyhow::anyhow!("unknown scope {:?}", e.0))
        })
        .collect()
}

fn mint(
    settings: &Settings,
    tenant: TenantId,
    sub: &str,
    scopes: &[Scope],
    ttl: Duration,
) -> anyhow::Result<String> {
    anyhow::ensure!(
        settings.auth.jwks.is_none(),
        "a JWKS is configured: HS256 dev tokens are off"
    );
    let secret = settings.jwt_secret()?;
    Ok(mint_hs256(
        &secret,
        &settings.auth.issuer,
        &settings.auth.audience,
        tenant,
        sub,
        scopes,
        ttl,
    ))
}

/// The tenant of `serve`'s printed dev token, kept across restarts.
fn dev_tenant(settings: &Settings) -> anyhow::Result<TenantId> {
    let kept = settings
        .dev_files()
        .value("dev_tenant", || Uuid::new_v4().to_string())?;
    kept.parse()
        .map_err(|_| anyhow::anyhow!("{kept:?} in the data dir's dev_tenant is not a UUID"))
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.settings;
    let roles = match cli.command {
        Command::Migrate => {
            crate::db::prepare(&settings.db.url, 2).await?;
            println!("migrations applied");
            return Ok(());
        }
        Command::Token {
            tenant,
            scope,
            ttl,
            sub,
        } => {
            println!(
                "{}",
                mint(&settings, tenant, &sub, &parse_scopes(&scope)?, ttl)?
            );
            return Ok(());
        }
        Command::Client(args) => return Ok(crate::client::run(args).await?),
        Command::Audit(cmd) => return crate::audit::cli::run(&settings, cmd).await,
        Command::Keys(cmd) => return crate::secrets::cli::run(&settings, cmd).await,
        Command::CallprocSim { sim_listen } => {
            let secret = settings.callback_secret()?;
            let listener = tokio::net::TcpListener::bind(sim_listen).await?;
            let shutdown = CancellationToken::new();
            let sim = crate::callproc::sim::spawn(
                listener,
                crate::callproc::sim::SimConfig::with_secret(secret),
                shutdown.clone(),
            )
            .await;
            println!("call processor simulator listening on {}", sim.base_url());
            stop_signal().await;
            shutdown.cancel();
            return Ok(());
        }
        Command::Callproc(carrier) => {
            return crate::carrier::run(&settings, carrier, stop_signal()).await
        }
        Command::Serve => Roles::all(),
        Command::Worker => Roles {
            worker: true,
            ..Default::default()
        },
        Command::Gateway => Roles {
            gateway: true,
            ..Default::default()
        },
        Command::Relay => Roles {
            relay: true,
            ..Default::default()
        },
        Command::Project => Roles {
            projectors: true,
            ..Default::default()
        },
    };
    settings.check_production(roles.worker)?;
    let deps = Deps::connect(&settings).await?;
    let shutdown = CancellationToken::new();
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            stop_signal().await;
            tracing::info!("shutting down");
            shutdown.cancel();
        });
    }
    let started = roles::start(&settings, deps, roles).await?;
    println!("switchboard listening on http://{}", started.addr);
    if roles.gateway && settings.auth.jwks.is_none() && !settings.is_production() {
        let tenant = dev_tenant(&settings)?;
        let token = mint(
            &settings,
            tenant,
            "dev",
            &Scope::ALL,
            Duration::from_secs(24 * 3600),
        )?;
        println!("dev tenant {tenant}; a token with every scope, valid 24 h:");
        println!("export SWITCHBOARD_TOKEN={token}");
        // The token rides in the fragment, which browsers never send.
        println!("console: http://{}/console#token={token}", started.addr);
    }
    // Until SIGTERM or a failing role; either way every role stops in
    // order, and a failure is the process's exit error, naming the role.
    started.roles.run(shutdown).await?;
    Ok(())
}
