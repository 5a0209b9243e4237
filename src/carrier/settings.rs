//! `switchboard callproc` flags (each with its environment variable).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use crate::config::parse_ttl;

/// Where the adapter listens, where carriers are, and how long to wait.
#[derive(Debug, Clone, Args)]
pub struct CarrierSettings {
    /// Where the adapter listens.
    #[arg(
        long = "callproc-listen",
        env = "SWITCHBOARD_CALLPROC_LISTEN",
        default_value = "127.0.0.1:8091"
    )]
    pub listen: SocketAddr,
    /// The base URL carriers reach this adapter at, for their status
    /// callbacks (and the URL their signatures cover). Default: the listen
    /// address over http.
    #[arg(long = "callproc-public-url", env = "SWITCHBOARD_CALLPROC_PUBLIC_URL")]
    pub public_url: Option<String>,
    #[arg(
        long,
        env = "SWITCHBOARD_TWILIO_URL",
        default_value = "https://api.twilio.com"
    )]
    pub twilio_url: String,
    #[arg(
        long,
        env = "SWITCHBOARD_PLIVO_URL",
        default_value = "https://api.plivo.com"
    )]
    pub plivo_url: String,
    #[arg(
        long,
        env = "SWITCHBOARD_VOBIZ_URL",
        default_value = "https://api.vobiz.ai/api"
    )]
    pub vobiz_url: String,
    /// Bound on one carrier request (connect, send, answer).
    #[arg(long, env = "SWITCHBOARD_CARRIER_TIMEOUT", default_value = "10s", value_parser = parse_ttl)]
    pub carrier_timeout: Duration,
    /// After a carrier request's timeout, how long before another request
    /// for the same call may reconcile it (the carrier's call list settles).
    #[arg(long, env = "SWITCHBOARD_CARRIER_RECONCILE_MARGIN", default_value = "5s", value_parser = parse_ttl)]
    pub reconcile_margin: Duration,
    /// Seconds a call rings before the carrier gives up (no-answer).
    #[arg(long, env = "SWITCHBOARD_CARRIER_RING_TIMEOUT", default_value_t = 30)]
    pub ring_timeout_s: u32,
    /// What Twilio runs when the call is answered. The media leg belongs to
    /// the platform (e.g. `<Connect><Stream url="wss://…"/></Connect>`).
    #[arg(
        long,
        env = "SWITCHBOARD_TWIML",
        default_value = "<Response><Pause length=\"3600\"/></Response>"
    )]
    pub twiml: String,
    /// What Plivo and Vobiz run when the call is answered (answer_url's XML).
    #[arg(
        long,
        env = "SWITCHBOARD_PLIVO_XML",
        default_value = "<Response><Wait length=\"3600\"/></Response>"
    )]
    pub plivo_xml: String,
}
