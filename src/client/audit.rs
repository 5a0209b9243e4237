//! `client audit …`: the tenant's history, a stream's state at a time, and
//! the hash-chain check.

use std::time::{Duration, Instant};

use clap::Subcommand;
use uuid::Uuid;

use super::api::Api;
use super::failure::Failure;
use super::page::{list, PageArgs};
use super::render::{col, Column, Out};
use crate::audit::output::ProgressLine;

pub const EVENT_COLUMNS: [Column; 6] = [
    col("RECORDED AT", "recorded_at", 32),
    col("STREAM TYPE", "stream_type", 12),
    col("STREAM ID", "stream_id", 36),
    col("VER", "version", 4),
    col("TYPE", "type", 24),
    col("ACTOR", "actor", 0),
];

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The tenant's events in global order (a page, or `--all` of them).
    Events {
        #[arg(long)]
        stream_id: Option<Uuid>,
        /// An event type, e.g. CallLimitsUpdated.
        #[arg(long = "type")]
        event_type: Option<String>,
        /// RFC 3339, inclusive.
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339, exclusive.
        #[arg(long)]
        until: Option<String>,
        #[command(flatten)]
        paging: PageArgs,
    },
    /// A stream's state and events, now or at a time or version.
    Stream {
        stream_id: Uuid,
        /// An RFC 3339 time or a stream version.
        #[arg(long)]
        at: Option<String>,
    },
    /// Checks every hash chain of the tenant; exits 1 on a break.
    Verify,
}

pub async fn run(api: &Api, out: &mut Out, c: AuditCommand) -> Result<(), Failure> {
    match c {
        AuditCommand::Events {
            stream_id,
            event_type,
            since,
            until,
            paging,
        } => {
            let mut filters = Vec::new();
            for (k, v) in [
                ("stream_id", stream_id.map(|s| s.to_string())),
                ("type", event_type),
                ("since", since),
                ("until", until),
            ] {
                if let Some(v) = v {
                    filters.push((k, v));
                }
            }
            list(api, out, "/audit/events", filters, &paging, &EVENT_COLUMNS).await
        }
        AuditCommand::Stream { stream_id, at } => {
            let query = at.map(|a| vec![("at", a)]).unwrap_or_default();
            let body = api
                .get(&format!("/audit/streams/{stream_id}"), query)
                .await?
                .body;
            out.object(&body)
        }
        AuditCommand::Verify => verify(api, out).await,
    }
}

/// One request that may take a while on a long history: a progress line
/// with the time spent, on a terminal only.
async fn verify(api: &Api, out: &mut Out) -> Result<(), Failure> {
    let started = Instant::now();
    let mut progress = ProgressLine::new();
    let request = api.get("/audit/verify", vec![]);
    tokio::pin!(request);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let report = loop {
        tokio::select! {
            r = &mut request => break r?.body,
            _ = tick.tick() => progress.update(|| {
                format!("verifying hash chains… {:.0}s", started.elapsed().as_secs_f64())
            }),
        }
    };
    progress.finish();
    out.object(&report)?;
    if report.get("ok").and_then(serde_json::Value::as_bool) == Some(false) {
        return Err(Failure::Other(
            "the hash chain is broken (see breaks)".into(),
        ));
    }
    Ok(())
}
