//! `switchboard client`: every route of the HTTP API from a shell, against
//! a remote gateway. Tables for people, `--json` for scripts, problem
//! bodies shown readably, exit codes by class of failure (`failure::exit`).
//!
//! It speaks only HTTP: no database, NATS or Redis, so it runs anywhere a
//! token and the gateway's URL are at hand.

mod api;
mod audit;
mod calls;
pub mod failure;
mod follow;
mod limits;
mod page;
mod render;
mod resources;
pub mod sse;

use std::time::Duration;

use clap::{Parser, Subcommand};

pub use api::Api;
pub use failure::Failure;
use render::Out;

/// `switchboard client …`. Parsed on its own (`cli::parse`), so its help
/// lists its own flags only, not the service's settings.
#[derive(Debug, Parser)]
#[command(
    name = "switchboard client",
    version,
    about = "Every API route from a shell, against a remote gateway: tables, or --json.",
    after_help = "Exit codes: 0 ok, 1 other failure, 2 usage, 3 token refused or scope missing, \
4 not found, 5 conflict (stale If-Match), 6 invalid request, 7 refused by policy \
(cap exceeded, destination blocked), 8 server or Call Processor failure, 9 gateway unreachable."
)]
pub struct ClientArgs {
    /// The gateway's URL (its root or its `/api/v1`).
    #[arg(long, env = "SWITCHBOARD_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// A bearer token (what `serve` prints, or `switchboard token`).
    #[arg(long, env = "SWITCHBOARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print JSON (an object, or one object per line for lists and
    /// events) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Give up on a request after this long (e.g. 30s, 2m); the live feed
    /// has no limit.
    #[arg(long, default_value = "60s", value_parser = crate::config::parse_ttl)]
    pub timeout: Duration,
    #[command(subcommand)]
    pub command: ClientCommand,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Carrier accounts: list, get, create, update, delete.
    #[command(subcommand)]
    Providers(resources::ProvidersCommand),
    /// Phone numbers: list, get, create (attach), update, delete (release).
    #[command(subcommand)]
    Numbers(resources::NumbersCommand),
    /// Cost caps: get, usage, set (PATCH), replace (PUT), kill (set to 0).
    #[command(subcommand)]
    Limits(limits::LimitsCommand),
    /// Where calls may go: get, set.
    #[command(subcommand)]
    Destinations(limits::DestinationsCommand),
    /// Calls: originate, list, get.
    #[command(subcommand)]
    Calls(calls::CallsCommand),
    /// The audit trail: events, a stream's state at a time, hash-chain verify.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// The live event feed.
    #[command(subcommand)]
    Events(follow::EventsCommand),
    /// The OpenAPI document of the gateway.
    Openapi,
}

/// Runs a client command; a failure carries its exit code.
pub async fn run(args: ClientArgs) -> Result<(), Failure> {
    let token = args.token.unwrap_or_default().into();
    // The live feed never ends by itself: no request timeout for it.
    let timeout = match args.command {
        ClientCommand::Events(_) => None,
        _ => Some(args.timeout),
    };
    let api = Api::new(&args.url, token, timeout)?;
    let mut out = Out::new(args.json);
    match args.command {
        ClientCommand::Providers(c) => resources::providers(&api, &mut out, c).await,
        ClientCommand::Numbers(c) => resources::numbers(&api, &mut out, c).await,
        ClientCommand::Limits(c) => limits::limits(&api, &mut out, c).await,
        ClientCommand::Destinations(c) => limits::destinations(&api, &mut out, c).await,
        ClientCommand::Calls(c) => calls::run(&api, &mut out, c).await,
        ClientCommand::Audit(c) => audit::run(&api, &mut out, c).await,
        ClientCommand::Events(c) => follow::run(&api, &mut out, c).await,
        ClientCommand::Openapi => {
            let doc = api.get("/openapi.json", vec![]).await?;
            out.json = true;
            out.object(&doc.body)
        }
    }
}
