//! `client providers …` and `client numbers …`.

use std::io::Read;
use std::path::PathBuf;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::api::{Api, Request};
use super::failure::Failure;
use super::page::{list, PageArgs};
use super::render::{col, Column, Out};

const PROVIDER_COLUMNS: [Column; 5] = [
    col("ID", "id", 36),
    col("PROVIDER", "provider", 8),
    col("LABEL", "label", 20),
    col("VER", "version", 3),
    col("CREDENTIALS", "credentials", 0),
];

const NUMBER_COLUMNS: [Column; 7] = [
    col("ID", "id", 36),
    col("E164", "e164", 16),
    col("PROVIDER", "provider", 8),
    col("AGENT", "agent_id", 36),
    col("DAILY MAX", "daily_calls_max", 9),
    col("VER", "version", 3),
    col("CREDENTIALS ID", "credentials_id", 0),
];

#[derive(Debug, Subcommand)]
pub enum ProvidersCommand {
    /// The tenant's carrier accounts (credentials masked).
    List(PageArgs),
    /// One carrier account.
    Get { id: Uuid },
    /// Registers a carrier account. Credentials are read from a file or
    /// stdin, never from the command line (where `ps` would show them).
    Create {
        /// twilio, plivo or vobiz.
        #[arg(long)]
        provider: String,
        #[arg(long)]
        label: String,
        /// A JSON object file (`-`: stdin), e.g. {"account_sid": "AC…", "auth_token": "…"}.
        #[arg(long)]
        credentials: PathBuf,
    },
    /// Changes the label and/or rotates the credentials.
    Update {
        id: Uuid,
        #[arg(long)]
        label: Option<String>,
        /// A JSON object file (`-`: stdin) with the new credentials.
        #[arg(long)]
        credentials: Option<PathBuf>,
        /// Only if the account is still at this version (its ETag).
        #[arg(long)]
        if_match: Option<String>,
    },
    /// Deletes a carrier account no number uses.
    Delete {
        id: Uuid,
        #[arg(long)]
        if_match: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum NumbersCommand {
    /// The tenant's numbers and their agent pins.
    List(PageArgs),
    /// One number.
    Get { id: Uuid },
    /// Attaches a number to a carrier account.
    Create {
        /// E.164, e.g. +14155550100.
        #[arg(long)]
        e164: String,
        /// twilio, plivo or vobiz (the account's).
        #[arg(long)]
        provider: String,
        /// The carrier account's id.
        #[arg(long)]
        credentials_id: Uuid,
        /// The agent the number is pinned to.
        #[arg(long)]
        agent: Option<Uuid>,
        #[arg(long, action = clap::ArgAction::Set)]
        inbound: Option<bool>,
        #[arg(long, action = clap::ArgAction::Set)]
        outbound: Option<bool>,
    },
    /// Changes the agent pin, directions or the number's daily call cap.
    Update {
        id: Uuid,
        /// An agent id, or `none` to unpin.
        #[arg(long, value_parser = uuid_or_none)]
        agent: Option<Value>,
        #[arg(long, action = clap::ArgAction::Set)]
        inbound: Option<bool>,
        #[arg(long, action = clap::ArgAction::Set)]
        outbound: Option<bool>,
        /// The number's own daily call cap (0 stops it), or `none` to clear.
        #[arg(long, value_parser = count_or_none)]
        daily_calls_max: Option<Value>,
        #[arg(long)]
        if_match: Option<String>,
    },
    /// Releases a number.
    Delete {
        id: Uuid,
        #[arg(long)]
        if_match: Option<String>,
    },
}

pub async fn providers(api: &Api, out: &mut Out, c: ProvidersCommand) -> Result<(), Failure> {
    const PATH: &str = "/telephony/providers";
    match c {
        ProvidersCommand::List(p) => list(api, out, PATH, vec![], &p, &PROVIDER_COLUMNS).await,
        ProvidersCommand::Get { id } => {
            out.object(&api.get(&format!("{PATH}/{id}"), vec![]).await?.body)
        }
        ProvidersCommand::Create {
            provider,
            label,
            credentials,
        } => {
            let body = json!({"provider": provider, "label": label,
                "credentials": read_object(&credentials)?});
            write(api, out, Method::POST, PATH, body, None).await
        }
        ProvidersCommand::Update {
            id,
            label,
            credentials,
            if_match,
        } => {
            let mut body = Map::new();
            put(&mut body, "label", label.map(Value::from));
            if let Some(path) = credentials {
                body.insert("credentials".into(), read_object(&path)?);
            }
            let path = format!("{PATH}/{id}");
            write(api, out, Method::PATCH, &path, body, if_match).await
        }
        ProvidersCommand::Delete { id, if_match } => {
            delete(api, out, &format!("{PATH}/{id}"), if_match.as_deref()).await
        }
    }
}

pub async fn numbers(api: &Api, out: &mut Out, c: NumbersCommand) -> Result<(), Failure> {
    const PATH: &str = "/telephony/numbers";
    match c {
        NumbersCommand::List(p) => list(api, out, PATH, vec![], &p, &NUMBER_COLUMNS).await,
        NumbersCommand::Get { id } => {
            out.object(&api.get(&format!("{PATH}/{id}"), vec![]).await?.body)
        }
        NumbersCommand::Create {
            e164,
            provider,
            credentials_id,
            agent,
            inbound,
            outbound,
        } => {
            let mut body = Map::new();
            put(&mut body, "e164", Some(e164.into()));
            put(&mut body, "provider", Some(provider.into()));
            put(
                &mut body,
                "credentials_id",
                Some(credentials_id.to_string().into()),
            );
            put(&mut body, "agent_id", agent.map(|a| a.to_string().into()));
            put(&mut body, "inbound_enabled", inbound.map(Value::from));
            put(&mut body, "outbound_enabled", outbound.map(Value::from));
            write(api, out, Method::POST, PATH, body, None).await
        }
        NumbersCommand::Update {
            id,
            agent,
            inbound,
            outbound,
            daily_calls_max,
            if_match,
        } => {
            let mut body = Map::new();
            put(&mut body, "agent_id", agent);
            put(&mut body, "inbound_enabled", inbound.map(Value::from));
            put(&mut body, "outbound_enabled", outbound.map(Value::from));
            put(&mut body, "daily_calls_max", daily_calls_max);
            let path = format!("{PATH}/{id}");
            write(api, out, Method::PATCH, &path, body, if_match).await
        }
        NumbersCommand::Delete { id, if_match } => {
            delete(api, out, &format!("{PATH}/{id}"), if_match.as_deref()).await
        }
    }
}

/// A write whose answer is the resource as it now stands.
pub async fn write(
    api: &Api,
    out: &mut Out,
    method: Method,
    path: &str,
    body: impl Into<Value>,
    if_match: Option<String>,
) -> Result<(), Failure> {
    let body = body.into();
    let r = Request {
        body: Some(&body),
        if_match: if_match.as_deref(),
        ..Default::default()
    };
    out.object(&api.send(method, path, r).await?.body)
}

async fn delete(
    api: &Api,
    out: &mut Out,
    path: &str,
    if_match: Option<&str>,
) -> Result<(), Failure> {
    let r = Request {
        if_match,
        ..Default::default()
    };
    let answer = api.send(Method::DELETE, path, r).await?;
    if answer.body.is_null() {
        out.note("deleted")
    } else {
        out.object(&answer.body)
    }
}

/// Sets `key` when the flag was given.
pub fn put(body: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        body.insert(key.to_owned(), v);
    }
}

/// A JSON object from a file, or from stdin for `-`.
fn read_object(path: &std::path::Path) -> Result<Value, Failure> {
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text))
    };
    // The error names the file, never its contents.
    read.map_err(|e| Failure::Usage(format!("--credentials {}: {e}", path.display())))?;
    match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(Failure::Usage(format!(
            "--credentials {}: must hold a JSON object",
            path.display()
        ))),
    }
}

fn uuid_or_none(s: &str) -> Result<Value, String> {
    if s == "none" {
        return Ok(Value::Null);
    }
    Uuid::parse_str(s)
        .map(|u| u.to_string().into())
        .map_err(|_| "a UUID or `none`".into())
}

fn count_or_none(s: &str) -> Result<Value, String> {
    if s == "none" {
        return Ok(Value::Null);
    }
    s.parse::<u32>()
        .map(Value::from)
        .map_err(|_| "a whole number or `none`".into())
}
