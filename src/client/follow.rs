//! `client events follow`: the live feed, resumed across drops with
//! `Last-Event-ID` so no event is missed or shown twice.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;
use uuid::Uuid;

use super::api::{Api, Request};
use super::failure::Failure;
use super::render::{col, Column, Out};
use super::sse::{SseEvent, SseParser};

const FEED_COLUMNS: [Column; 7] = [
    col("POSITION", "global_position", 10),
    col("RECORDED AT", "recorded_at", 32),
    col("STREAM TYPE", "stream_type", 12),
    col("STREAM ID", "stream_id", 36),
    col("VER", "version", 4),
    col("TYPE", "type", 24),
    col("DATA", "data", 0),
];

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Prints the tenant's events as they happen, until interrupted (with
    /// `--call`: until that call is over).
    Follow(FollowArgs),
}

#[derive(Debug, Args)]
pub struct FollowArgs {
    /// One call: its events from the start, ending when it is over.
    #[arg(long, conflicts_with_all = ["stream_type", "stream_id"])]
    call: Option<Uuid>,
    /// call, provider, number, call_limits, destinations, tenant.
    #[arg(long)]
    stream_type: Option<String>,
    #[arg(long)]
    stream_id: Option<Uuid>,
    /// Only this event type.
    #[arg(long = "type")]
    event_type: Option<String>,
    /// Resume after this position (0: the whole history first).
    #[arg(long)]
    after: Option<String>,
}

pub async fn run(api: &Api, out: &mut Out, c: EventsCommand) -> Result<(), Failure> {
    let EventsCommand::Follow(args) = c;
    let mut query = Vec::new();
    if let Some(call) = args.call {
        query.push(("stream_type", "call".to_owned()));
        query.push(("stream_id", call.to_string()));
    }
    for (k, v) in [
        ("stream_type", args.stream_type),
        ("stream_id", args.stream_id.map(|s| s.to_string())),
        ("type", args.event_type),
    ] {
        if let Some(v) = v {
            query.push((k, v));
        }
    }
    let mut resume = args.after.or(args.call.map(|_| "0".to_owned()));
    let mut call = args.call.map(|_| CallEnd::default());
    let mut connected_once = false;
    let mut backoff = Duration::from_millis(500);
    loop {
        let mut q = query.clone();
        // `after=` for the first connection (a header would do as well);
        // `Last-Event-ID` for every resume, as a browser does.
        let header = if connected_once { resume.clone() } else { None };
        if !connected_once {
            if let Some(a) = &resume {
                q.push(("after", a.clone()));
            }
        }
        let r = Request {
            query: q,
            last_event_id: header.as_deref(),
            ..Default::default()
        };
        let mut resp = match api.open("/events/stream", r).await {
            Ok(resp) => resp,
            // A refusal is final; a gateway that went away is waited for.
            Err(e @ Failure::Problem { status, .. }) if status != 503 => return Err(e),
            Err(e) if !connected_once => return Err(e),
            Err(e) => {
                eprintln!("{e}; reconnecting in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        connected_once = true;
        backoff = Duration::from_millis(500);
        let mut parser = SseParser::default();
        'stream: loop {
            let chunk = match resp.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) | Err(_) => break 'stream,
            };
            for e in parser.push(&chunk) {
                match on_event(out, e, &mut resume, call.as_mut())? {
                    Next::Go => {}
                    Next::Reconnect => break 'stream,
                    Next::Done => return Ok(()),
                }
            }
        }
        eprintln!(
            "the feed closed; resuming after {}",
            resume.as_deref().unwrap_or("the start")
        );
        tokio::time::sleep(backoff).await;
    }
}

enum Next {
    Go,
    Reconnect,
    Done,
}

fn on_event(
    out: &mut Out,
    e: SseEvent,
    resume: &mut Option<String>,
    call: Option<&mut CallEnd>,
) -> Result<Next, Failure> {
    if matches!(e.event.as_str(), "overflow" | "closing") {
        // The server names where to resume; we were too slow or it stops.
        let data: Value = serde_json::from_str(&e.data).unwrap_or_default();
        if let Some(at) = data.get("resume_after").and_then(Value::as_str) {
            *resume = Some(at.to_owned());
        }
        return Ok(Next::Reconnect);
    }
    let envelope: Value = serde_json::from_str(&e.data).map_err(|_| {
        Failure::Other(format!(
            "the feed sent {} with a body that is not JSON",
            e.event
        ))
    })?;
    if let Some(id) = e.id {
        *resume = Some(id);
    }
    out.rows(&FEED_COLUMNS, std::slice::from_ref(&envelope))?;
    let over = call.is_some_and(|c| c.seen(&e.event));
    Ok(if over { Next::Done } else { Next::Go })
}

/// When a followed call is over: refused or failed at the dial, or ended
/// after its dispatch was recorded (a hang-up callback can be stored before
/// the dispatch, so both are waited for).
#[derive(Default)]
struct CallEnd {
    dispatched: bool,
    ended: bool,
}

impl CallEnd {
    fn seen(&mut self, event_type: &str) -> bool {
        match event_type {
            "OriginateRejected" | "OriginateFailed" => return true,
            "OriginateDispatched" => self.dispatched = true,
            "CallEnded" => self.ended = true,
            _ => {}
        }
        self.dispatched && self.ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_over_when_refused_failed_or_ended_after_dispatch() {
        let over = |types: &[&str]| {
            let mut c = CallEnd::default();
            types.iter().any(|t| c.seen(t))
        };
        assert!(over(&["OriginateRequested", "OriginateRejected"]));
        assert!(over(&["OriginateClaimed", "OriginateFailed"]));
        assert!(over(&["OriginateDispatched", "CallRinging", "CallEnded"]));
        assert!(over(&["CallEnded", "OriginateDispatched"]));
        assert!(!over(&["OriginateDispatched", "CallAnswered"]));
    }
}
