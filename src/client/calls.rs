//! `client calls …`: place a call, list and read calls.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::api::{Api, Request};
use super::failure::Failure;
use super::page::{list, PageArgs};
use super::render::{col, Column, Out};
use super::resources::put;

const CALL_COLUMNS: [Column; 7] = [
    col("CALL ID", "call_id", 36),
    col("STATUS", "status", 10),
    col("FROM", "from_number", 16),
    col("TO", "to_number", 16),
    col("CREATED AT", "created_at", 32),
    col("SECS", "duration_s", 4),
    col("PROVIDER CALL ID", "provider_call_id", 0),
];

#[derive(Debug, Subcommand)]
pub enum CallsCommand {
    /// Places a call; answers when it is dispatched, refused or failed (or
    /// `pending` if the worker took longer than the gateway waits).
    Originate {
        /// The caller id: one of the tenant's numbers, E.164.
        #[arg(long)]
        from: String,
        /// The callee, E.164.
        #[arg(long)]
        to: String,
        /// The agent; may be left out when the number is pinned to one.
        #[arg(long)]
        agent: Option<Uuid>,
        /// A JSON object passed through to the call.
        #[arg(long)]
        metadata: Option<String>,
        /// Makes a retry safe: the same key never places a second call.
        /// A fresh one is drawn when absent (and printed if the answer is lost).
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// The tenant's calls, newest first.
    List {
        /// Only calls in this status (e.g. completed, failed, rejected).
        #[arg(long)]
        status: Option<String>,
        /// Only calls created at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        #[command(flatten)]
        paging: PageArgs,
    },
    /// One call, with its timeline.
    Get { call_id: Uuid },
}

pub async fn run(api: &Api, out: &mut Out, c: CallsCommand) -> Result<(), Failure> {
    match c {
        CallsCommand::Originate {
            from,
            to,
            agent,
            metadata,
            idempotency_key,
        } => {
            let mut body = Map::new();
            put(&mut body, "from_number", Some(from.into()));
            put(&mut body, "to_number", Some(to.into()));
            put(&mut body, "agent_id", agent.map(|a| a.to_string().into()));
            if let Some(m) = metadata {
                let m: Value = serde_json::from_str(&m)
                    .map_err(|_| Failure::Usage("--metadata must be a JSON object".into()))?;
                body.insert("metadata".into(), m);
            }
            let key = idempotency_key.unwrap_or_else(|| Uuid::new_v4().to_string());
            let body = Value::from(body);
            let r = Request {
                body: Some(&body),
                idempotency_key: Some(&key),
                ..Default::default()
            };
            match api.send(Method::POST, "/calls/originate", r).await {
                Ok(answer) => out.object(&answer.body),
                Err(e @ Failure::Unreachable(_)) => {
                    // The call may have been placed: the same key makes a
                    // retry answer it instead of dialing again.
                    eprintln!("the answer was lost; retry safely with --idempotency-key {key}");
                    Err(e)
                }
                Err(e) => Err(e),
            }
        }
        CallsCommand::List {
            status,
            since,
            paging,
        } => {
            let mut filters = Vec::new();
            if let Some(s) = status {
                filters.push(("status", s));
            }
            if let Some(s) = since {
                filters.push(("since", s));
            }
            list(api, out, "/calls", filters, &paging, &CALL_COLUMNS).await
        }
        CallsCommand::Get { call_id } => {
            let call = api.get(&format!("/calls/{call_id}"), vec![]).await?.body;
            if out.json {
                return out.object(&call);
            }
            let mut shown = call.clone();
            let timeline = shown.as_object_mut().and_then(|m| m.remove("timeline"));
            out.object(&shown)?;
            if let Some(Value::Array(steps)) = timeline {
                out.note("timeline:")?;
                for s in steps {
                    let at = s.get("at").and_then(Value::as_str).unwrap_or("-");
                    let ty = s.get("type").and_then(Value::as_str).unwrap_or("-");
                    out.note(&format!("  {at}  {ty}"))?;
                }
            }
            Ok(())
        }
    }
}
