//! Projectors and the SQL of their read tables.
//!
//! A projection turns the global event order into read tables. This crate
//! holds what each projection *is* — its tables and how one event changes
//! them; the loop that feeds it (reading the store, checkpoints, leadership)
//! lives in the service (`src/projection/`).
//!
//! # Invariants
//! - `apply` is deterministic: the same events in the same order give the same
//!   tables, which is what makes a rebuild equal the live tables.
//! - `apply` only touches the projection's own tables, through unqualified
//!   names, so the same code can fill a fresh schema during a rebuild.
//! - An event a projection cannot apply is an error, never skipped.
//! - Depends on `events` only, never on the service.

use async_trait::async_trait;
use events::{Envelope, Event, StreamType};
use sqlx::PgConnection;

/// Why a projection could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The event contradicts the table (e.g. an update of a row never created).
    #[error("{0}")]
    Invariant(String),
    #[error("read table: {0}")]
    Db(#[from] sqlx::Error),
}

/// Why a batch could not be applied, and at which of its events when known
/// (`None`: the batch's own statements failed; the runner applies the
/// events one by one to find the culprit).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct BatchError {
    pub at: Option<usize>,
    #[source]
    pub error: ProjectionError,
}

/// One read model.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Stable name; the checkpoint is kept under it.
    fn name(&self) -> &'static str;

    /// The tables this projection owns, in creation order.
    fn tables(&self) -> &'static [&'static str];

    /// The stream types whose events it applies: the runner reads only
    /// those (events of other streams would be no-ops).
    fn stream_types(&self) -> &'static [StreamType];

    /// `CREATE TABLE IF NOT EXISTS …` for its tables, unqualified, with
    /// their primary keys (which the writes rely on) but no other index.
    fn schema_sql(&self) -> &'static str;

    /// `CREATE INDEX IF NOT EXISTS …` for its tables' other indexes,
    /// unqualified. Apart from `schema_sql` so that a rebuild makes them
    /// once its copy is filled: building an index over all the rows at once
    /// costs a fraction of keeping it up to date row by row (for `calls`,
    /// inserting 250,000 rows took 1.2 s with its tenant index, 0.6 s
    /// without and 0.15 s more to build the index after).
    fn index_sql(&self) -> &'static str {
        ""
    }

    /// Changes the tables for one event, inside the runner's transaction.
    async fn apply(
        &self,
        conn: &mut PgConnection,
        envelope: &Envelope,
        event: &Event,
    ) -> Result<(), ProjectionError>;

    /// Changes the tables for a batch of events, in order, exactly as
    /// `apply` on each would. The default does that; the projections here
    /// state their rule once, as a fold (`rows.rs`), and `apply` is a batch
    /// of one.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        batch: &[(&Envelope, &Event)],
    ) -> Result<(), BatchError> {
        one_by_one(self, conn, batch).await
    }
}

/// `apply` on each event of `batch`, in order.
pub async fn one_by_one<P: Projection + ?Sized>(
    p: &P,
    conn: &mut PgConnection,
    batch: &[(&Envelope, &Event)],
) -> Result<(), BatchError> {
    for (i, (envelope, event)) in batch.iter().enumerate() {
        p.apply(conn, envelope, event)
            .await
            .map_err(|error| BatchError { at: Some(i), error })?;
    }
    Ok(())
}

pub mod call_limits;
mod call_row;
pub mod calls;
pub mod numbers;
pub mod providers;
mod rows;
mod timeline;

use std::sync::Arc;

/// Every projection the service runs.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(providers::Providers),
        Arc::new(numbers::Numbers),
        Arc::new(call_limits::CallLimits),
        Arc::new(calls::Calls),
    ]
}

/// The error for an update that finds no row to change.
pub(crate) fn missing_row(what: &str, envelope: &Envelope) -> ProjectionError {
    ProjectionError::Invariant(format!(
        "{} v{} for a {what} the table does not hold (stream {})",
        envelope.event_type, envelope.version, envelope.stream_id
    ))
}
