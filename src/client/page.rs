//! Lists: `{items, next_cursor}` pages, one or all of them.

use clap::Args;
use serde_json::Value;

use super::api::Api;
use super::failure::Failure;
use super::render::{Column, Out};
use crate::audit::output::ProgressLine;

/// Paging flags every list takes.
#[derive(Debug, Args)]
pub struct PageArgs {
    /// Items per page (1–500; the gateway's default is 50).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Start after this cursor (a `next_cursor` printed before).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Follow `next_cursor` to the end instead of printing one page.
    #[arg(long)]
    pub all: bool,
}

/// Prints the pages of `path` as rows. Without `--all` the next cursor, if
/// any, goes to stderr, so stdout stays rows (or JSON lines) only. With
/// `--all` a progress line counts rows on a terminal's stderr.
pub async fn list(
    api: &Api,
    out: &mut Out,
    path: &str,
    filters: Vec<(&'static str, String)>,
    paging: &PageArgs,
    columns: &[Column],
) -> Result<(), Failure> {
    let mut cursor = paging.cursor.clone();
    let mut progress = ProgressLine::new();
    let mut shown = 0usize;
    loop {
        let mut query = filters.clone();
        if let Some(l) = paging.limit {
            query.push(("limit", l.to_string()));
        }
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let page = api.get(path, query).await?.body;
        let items = page
            .get("items")
            .and_then(Value::as_array)
            .ok_or_else(|| Failure::Other("the gateway answered a list without items".into()))?;
        progress.finish();
        out.rows(columns, items)?;
        shown += items.len();
        cursor = page
            .get("next_cursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        match &cursor {
            None => break,
            Some(c) if !paging.all => {
                eprintln!("more: --cursor {c}");
                break;
            }
            Some(_) => progress.update(|| format!("{shown} so far…")),
        }
    }
    if shown == 0 {
        out.note("(none)")?;
    }
    Ok(())
}
