//! How `switchboard audit` prints: JSON lines or an aligned table on
//! stdout, and a progress line on stderr when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use events::Envelope;
use serde::Serialize;

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    #[default]
    Json,
    /// A readable, aligned table.
    Table,
}

/// Writes one JSON line.
pub fn json_line(out: &mut impl Write, value: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

#[allow(clippy::too_many_arguments)]
fn columns(
    cursor: &str,
    at: &str,
    tenant: &str,
    stream_type: &str,
    stream: &str,
    version: &str,
    ty: &str,
    actor: &str,
) -> String {
    // Fixed widths, so rows line up while they stream.
    format!("{cursor:<21} {at:<27} {tenant:<36} {stream_type:<11} {stream:<36} {version:>4} {ty:<26} {actor}")
}

/// The header of the events table.
pub fn event_header() -> String {
    columns(
        "CURSOR",
        "RECORDED AT",
        "TENANT",
        "STREAM TYPE",
        "STREAM ID",
        "VER",
        "TYPE",
        "ACTOR",
    )
}

/// One event as a row under `event_header`.
pub fn event_row(cursor: &str, e: &Envelope) -> String {
    columns(
        cursor,
        &e.recorded_at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        &e.tenant_id.to_string(),
        e.stream_type.as_str(),
        &e.stream_id.to_string(),
        &e.version.to_string(),
        &e.event_type,
        &e.actor,
    )
}

/// A `key  value` table of a JSON object's members, nested ones as JSON.
pub fn key_values(out: &mut impl Write, value: &serde_json::Value) -> std::io::Result<()> {
    let Some(map) = value.as_object() else {
        return writeln!(out, "{value}");
    };
    let width = map.keys().map(String::len).max().unwrap_or(0);
    for (k, v) in map {
        let v = match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        writeln!(out, "{k:<width$}  {v}")?;
    }
    Ok(())
}

/// `[#######.............]  35%`: `done` of about `total`.
pub fn bar(done: u64, total: u64) -> String {
    const CELLS: u64 = 20;
    let pct = (done.saturating_mul(100) / total.max(1)).min(100);
    let filled = (pct * CELLS / 100) as usize;
    format!(
        "[{}{}] {pct:>3}%",
        "#".repeat(filled),
        ".".repeat(CELLS as usize - filled)
    )
}

/// A progress line on stderr, redrawn at most a few times a second, and only
/// when stderr is a terminal (never in logs or pipes).
pub struct ProgressLine {
    enabled: bool,
    last: Option<Instant>,
    drawn: bool,
}

impl ProgressLine {
    pub fn new() -> ProgressLine {
        ProgressLine {
            enabled: std::io::stderr().is_terminal(),
            last: None,
            drawn: false,
        }
    }

    /// Redraws the line with `text` unless it was drawn very recently.
    pub fn update(&mut self, text: impl FnOnce() -> String) {
        if !self.enabled
            || self
                .last
                .is_some_and(|t| t.elapsed() < Duration::from_millis(200))
        {
            return;
        }
        self.last = Some(Instant::now());
        self.drawn = true;
        eprint!("\r\x1b[2K{}", text());
    }

    /// Clears the line.
    pub fn finish(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[2K");
            self.drawn = false;
        }
    }
}

impl Default for ProgressLine {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bar_fills_with_the_share_done_and_never_overflows() {
        assert_eq!(super::bar(0, 10), format!("[{}]   0%", ".".repeat(20)));
        assert_eq!(
            super::bar(7, 20),
            format!("[{}{}]  35%", "#".repeat(7), ".".repeat(13))
        );
        assert_eq!(super::bar(30, 20), format!("[{}] 100%", "#".repeat(20)));
        assert_eq!(super::bar(5, 0), format!("[{}] 100%", "#".repeat(20)));
    }
}
