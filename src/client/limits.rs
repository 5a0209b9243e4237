//! `client limits …` and `client destinations …`: a tenant's caps and
//! where its calls may go.

use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{Map, Value};

use super::api::Api;
use super::failure::Failure;
use super::render::Out;
use super::resources::{put, write};

const LIMITS: &str = "/call-limits";

/// The four caps as flags (each optional for `set`).
#[derive(Debug, Args)]
pub struct CapFlags {
    /// Calls live at once.
    #[arg(long)]
    pub concurrent_max: Option<u32>,
    /// Calls admitted in any 60 s.
    #[arg(long)]
    pub calls_per_minute: Option<u32>,
    /// Calls admitted per UTC day.
    #[arg(long)]
    pub daily_calls_max: Option<u32>,
    /// Billed minutes per UTC day.
    #[arg(long)]
    pub daily_minutes_max: Option<u32>,
}

impl CapFlags {
    fn body(&self) -> Map<String, Value> {
        let mut body = Map::new();
        for (k, v) in [
            ("concurrent_max", self.concurrent_max),
            ("calls_per_minute", self.calls_per_minute),
            ("daily_calls_max", self.daily_calls_max),
            ("daily_minutes_max", self.daily_minutes_max),
        ] {
            put(&mut body, k, v.map(Value::from));
        }
        body
    }
}

/// A cap to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dimension {
    Concurrent,
    PerMinute,
    DailyCalls,
    DailyMinutes,
    /// Every dimension: no call goes out.
    All,
}

impl Dimension {
    fn fields(self) -> &'static [&'static str] {
        match self {
            Dimension::Concurrent => &["concurrent_max"],
            Dimension::PerMinute => &["calls_per_minute"],
            Dimension::DailyCalls => &["daily_calls_max"],
            Dimension::DailyMinutes => &["daily_minutes_max"],
            Dimension::All => &[
                "concurrent_max",
                "calls_per_minute",
                "daily_calls_max",
                "daily_minutes_max",
            ],
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum LimitsCommand {
    /// The caps in force.
    Get,
    /// Live counters beside the caps.
    Usage,
    /// Changes some caps (PATCH); 0 blocks a dimension.
    Set {
        #[command(flatten)]
        caps: CapFlags,
        /// Only if the caps are still at this version.
        #[arg(long)]
        if_match: Option<String>,
    },
    /// Sets all four caps (PUT).
    Replace {
        #[command(flatten)]
        caps: CapFlags,
        #[arg(long)]
        if_match: Option<String>,
    },
    /// The kill switch: sets one dimension (or all) to 0.
    Kill {
        #[arg(value_enum)]
        dimension: Dimension,
        #[arg(long)]
        if_match: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DestinationsCommand {
    /// The destination policy in force.
    Get,
    /// Replaces the whole policy (PUT): what is not allowed here is refused.
    Set {
        /// ISO 3166-1 alpha-2 codes, comma-separated; none: every country.
        #[arg(long, value_delimiter = ',', num_args = 0..)]
        countries: Vec<String>,
        #[arg(long, action = clap::ArgAction::Set, default_value_t = false)]
        allow_premium_rate: bool,
        #[arg(long, action = clap::ArgAction::Set, default_value_t = false)]
        allow_satellite: bool,
        #[arg(long)]
        if_match: Option<String>,
    },
}

pub async fn limits(api: &Api, out: &mut Out, c: LimitsCommand) -> Result<(), Failure> {
    match c {
        LimitsCommand::Get => out.object(&api.get(LIMITS, vec![]).await?.body),
        LimitsCommand::Usage => {
            let body = api.get(&format!("{LIMITS}/usage"), vec![]).await?.body;
            if out.json {
                return out.object(&body);
            }
            usage_table(out, &body)
        }
        LimitsCommand::Set { caps, if_match } => {
            let body = caps.body();
            if body.is_empty() {
                return Err(Failure::Usage("set: give at least one cap".into()));
            }
            write(api, out, Method::PATCH, LIMITS, body, if_match).await
        }
        LimitsCommand::Replace { caps, if_match } => {
            write(api, out, Method::PUT, LIMITS, caps.body(), if_match).await
        }
        LimitsCommand::Kill {
            dimension,
            if_match,
        } => {
            let body: Map<String, Value> = dimension
                .fields()
                .iter()
                .map(|f| (f.to_string(), Value::from(0)))
                .collect();
            write(api, out, Method::PATCH, LIMITS, body, if_match).await
        }
    }
}

/// Usage against each cap, one line a dimension, with a bar.
fn usage_table(out: &mut Out, body: &Value) -> Result<(), Failure> {
    let n = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let limits = body.get("limits").cloned().unwrap_or_default();
    out.note(&format!(
        "{:<16} {:>8} {:>8}  USE",
        "DIMENSION", "USED", "LIMIT"
    ))?;
    for (name, used, cap) in [
        ("concurrent", "concurrent", "concurrent_max"),
        ("per minute", "calls_last_minute", "calls_per_minute"),
        ("daily calls", "daily_calls", "daily_calls_max"),
        ("daily minutes", "daily_minutes", "daily_minutes_max"),
    ] {
        let (used, cap) = (n(body, used), n(&limits, cap));
        out.note(&format!(
            "{name:<16} {used:>8} {cap:>8}  {}",
            bar(used, cap)
        ))?;
    }
    if let Some(day) = body.get("day").and_then(Value::as_str) {
        out.note(&format!("(daily counters for {day} UTC)"))?;
    }
    Ok(())
}

/// A 20-cell bar; a cap of 0 is the kill switch.
fn bar(used: u64, cap: u64) -> String {
    if cap == 0 {
        return "[stopped]".into();
    }
    let filled = ((used.min(cap) * 20) / cap) as usize;
    format!("[{}{}]", "#".repeat(filled), ".".repeat(20 - filled))
}

pub async fn destinations(api: &Api, out: &mut Out, c: DestinationsCommand) -> Result<(), Failure> {
    const PATH: &str = "/destinations";
    match c {
        DestinationsCommand::Get => out.object(&api.get(PATH, vec![]).await?.body),
        DestinationsCommand::Set {
            countries,
            allow_premium_rate,
            allow_satellite,
            if_match,
        } => {
            let mut body = Map::new();
            let countries: Vec<Value> = countries
                .into_iter()
                .filter(|c| !c.is_empty())
                .map(Value::from)
                .collect();
            body.insert("allowed_countries".into(), countries.into());
            body.insert("allow_premium_rate".into(), allow_premium_rate.into());
            body.insert("allow_satellite".into(), allow_satellite.into());
            write(api, out, Method::PUT, PATH, body, if_match).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_fill_to_the_cap_and_a_zero_cap_reads_stopped() {
        assert_eq!(bar(0, 10), format!("[{}]", ".".repeat(20)));
        assert_eq!(
            bar(5, 10),
            format!("[{}{}]", "#".repeat(10), ".".repeat(10))
        );
        assert_eq!(bar(50, 10), format!("[{}]", "#".repeat(20)));
        assert_eq!(bar(3, 0), "[stopped]");
    }
}
