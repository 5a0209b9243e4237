//! `switchboard audit …`: a thin shell over the audit library functions.

use std::io::{BufWriter, Write};

use ::events::TenantId;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use uuid::Uuid;

use super::output::{self, Format, ProgressLine};
use super::state::At;
use super::verify::Found;
use super::{events, rebuild, state, verify};
use crate::config::Settings;
use crate::store::{Position, TenantFilter};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Replay events in global order, filtered, as JSON lines or a table.
    Events(EventsArgs),
    /// Fold a stream to a past moment: its state and the events that made it.
    State {
        #[arg(long)]
        stream: Uuid,
        /// An RFC 3339 time or a stream version (default: now).
        #[arg(long, value_parser = At::parse)]
        at: Option<At>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Recompute every stream's hash chain; exits non-zero on any break.
    Verify {
        /// Only this tenant's streams (default: every tenant).
        #[arg(long)]
        tenant: Option<TenantId>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Rebuild a projection from the store while the service runs, then swap
    /// it in atomically.
    Rebuild {
        /// providers, numbers, call_limits or calls.
        projection: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only this tenant (default: every tenant).
    #[arg(long)]
    tenant: Option<TenantId>,
    /// Only this stream.
    #[arg(long)]
    stream: Option<Uuid>,
    /// An event type, e.g. ProviderCreated.
    #[arg(long = "type")]
    event_type: Option<String>,
    /// Recorded at or after this RFC 3339 time.
    #[arg(long)]
    since: Option<DateTime<Utc>>,
    /// Recorded before this RFC 3339 time.
    #[arg(long)]
    until: Option<DateTime<Utc>>,
    /// Start after this cursor (the CURSOR column of an earlier replay).
    #[arg(long, value_parser = parse_cursor)]
    after: Option<Position>,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

fn parse_cursor(s: &str) -> Result<Position, String> {
    Position::from_cursor(s).ok_or_else(|| format!("bad cursor {s:?}"))
}

pub async fn run(settings: &Settings, cmd: AuditCommand) -> anyhow::Result<()> {
    let pool = crate::db::connect(&settings.db.url, 4).await?;
    let mut out = BufWriter::new(std::io::stdout());
    let result = match cmd {
        AuditCommand::Events(args) => events_cmd(&pool, args, &mut out).await,
        AuditCommand::State { stream, at, format } => {
            state_cmd(&pool, stream, at, format, &mut out).await
        }
        AuditCommand::Verify { tenant, format } => {
            verify_cmd(&pool, tenant, format, &mut out).await
        }
        AuditCommand::Rebuild { projection, format } => {
            let mut line = ProgressLine::new();
            let report = rebuild::rebuild(&pool, &projection, &mut |p| {
                line.update(|| rebuild::describe(&projection, p))
            })
            .await?;
            line.finish();
            match format {
                Format::Json => output::json_line(&mut out, &report)?,
                Format::Table => writeln!(
                    out,
                    "rebuilt {}: {} events replayed, {} more inside the swap; live at {}; \
                     projector held {} ms",
                    report.projection,
                    report.copied,
                    report.applied_in_swap,
                    report.position.to_cursor(),
                    report.held_ms
                )?,
            }
            Ok(())
        }
    };
    let flushed = out.flush().map_err(anyhow::Error::from);
    match result.and(flushed) {
        // `| head` closed the pipe: not an error.
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

async fn events_cmd(
    pool: &sqlx::PgPool,
    a: EventsArgs,
    out: &mut (impl Write + Send),
) -> anyhow::Result<()> {
    let query = events::EventQuery {
        tenant: a.tenant,
        filter: TenantFilter {
            stream_id: a.stream,
            event_type: a.event_type,
            since: a.since,
            until: a.until,
            after: a.after,
        },
    };
    if a.format == Format::Table {
        writeln!(out, "{}", output::event_header())?;
    }
    let mut line = ProgressLine::new();
    // The head when the replay starts: how far along the history it is.
    let head = crate::store::head(pool).await?.global_position.max(0) as u64;
    let (n, _) = events::replay::<anyhow::Error, _>(pool, &query, |e| {
        let cursor = e.position.to_cursor();
        match a.format {
            Format::Json => output::json_line(out, &e.envelope)?,
            Format::Table => writeln!(out, "{}", output::event_row(&cursor, &e.envelope))?,
        }
        let at = e.position.global_position.max(0) as u64;
        line.update(|| format!("replaying {} at {cursor}", output::bar(at, head)));
        Ok(())
    })
    .await?;
    line.finish();
    if a.format == Format::Table {
        writeln!(out, "({n} events)")?;
    }
    Ok(())
}

async fn state_cmd(
    pool: &sqlx::PgPool,
    stream: Uuid,
    at: Option<At>,
    format: Format,
    out: &mut (impl Write + Send),
) -> anyhow::Result<()> {
    let audit = state::state_at(pool, stream, at.unwrap_or(At::Latest))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no stream {stream}"))?;
    if format == Format::Json {
        output::json_line(out, &audit)?;
        return Ok(());
    }
    let head = serde_json::json!({
        "stream_id": audit.stream_id, "stream_type": audit.stream_type,
        "tenant_id": audit.tenant_id, "version": audit.version,
    });
    output::key_values(out, &head)?;
    writeln!(out, "\nSTATE")?;
    output::key_values(out, &audit.state)?;
    writeln!(out, "\n{}", output::event_header())?;
    for e in &audit.events {
        let cursor = format!("#{}", e.global_position);
        writeln!(out, "{}", output::event_row(&cursor, e))?;
    }
    Ok(())
}

async fn verify_cmd(
    pool: &sqlx::PgPool,
    tenant: Option<TenantId>,
    format: Format,
    out: &mut (impl Write + Send),
) -> anyhow::Result<()> {
    if format == Format::Table {
        writeln!(
            out,
            "{:<36} {:>7} {:<9} {:<36} DETAIL",
            "STREAM ID", "VERSION", "KIND", "EVENT ID"
        )?;
    }
    let mut line = ProgressLine::new();
    let mut written = Ok(());
    let mut breaks = 0u64;
    let report = verify::verify(pool, tenant, &mut |found| match found {
        Found::Break(b) if written.is_ok() => {
            breaks += 1;
            written = match format {
                Format::Json => output::json_line(out, b),
                Format::Table => writeln!(
                    out,
                    "{:<36} {:>7} {:<9} {:<36} {}",
                    b.stream_id.to_string(),
                    b.version,
                    b.kind,
                    b.event_id
                        .map(|id| id.to_string())
                        .unwrap_or_else(|| "-".into()),
                    b.detail
                ),
            }
        }
        Found::Break(_) => breaks += 1,
        Found::Checked { streams, events } => {
            line.update(|| format!("verifying: {streams} streams, {events} events"))
        }
    })
    .await?;
    line.finish();
    written?;
    let (streams, events) = (report.streams_checked, report.events_checked);
    match format {
        Format::Json => output::json_line(
            out,
            &serde_json::json!({
                "ok": report.ok, "streams_checked": streams, "events_checked": events, "breaks": breaks,
            }),
        )?,
        Format::Table => writeln!(
            out,
            "checked {streams} streams, {events} events: {}",
            if report.ok {
                "every chain holds".to_owned()
            } else {
                format!("{breaks} broken")
            }
        )?,
    }
    out.flush()?;
    anyhow::ensure!(report.ok, "{breaks} hash chain break(s) found");
    Ok(())
}
