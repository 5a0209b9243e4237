//! Recomputing the hash chains of every stream (or one tenant's), against
//! each stream's recorded head.
//!
//! The whole check reads one consistent snapshot (a read-only, repeatable
//! read transaction): a command committing meanwhile cannot make a stream's
//! events and its head disagree. Streams are taken a page at a time and
//! each is held in memory only while it is checked.

use events::{Hash32, TenantId};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::store::{self, verify_chain, ChainBreak, StoreError};

const PAGE: i64 = 500;

/// The outcome of a verification.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub streams_checked: u64,
    pub events_checked: u64,
    /// The first break of each broken stream.
    pub breaks: Vec<ChainBreak>,
}

/// What `verify` calls back with as it goes.
pub enum Found<'a> {
    /// A stream's first break.
    Break(&'a ChainBreak),
    /// Progress: streams and events checked so far.
    Checked { streams: u64, events: u64 },
}

type Head = (Uuid, Option<(i64, Hash32)>);

async fn check(
    conn: &mut PgConnection,
    (stream, head): Head,
    report: &mut VerifyReport,
    each: &mut (dyn FnMut(Found<'_>) + Send),
) -> Result<(), StoreError> {
    let events = store::read_stream(&mut *conn, stream, None).await?;
    report.streams_checked += 1;
    report.events_checked += events.len() as u64;
    let result = match head {
        Some(_) => verify_chain(stream, &events, head),
        None => verify_chain(stream, &events, None).and(Err(ChainBreak {
            stream_id: stream,
            event_id: None,
            global_position: None,
            version: events.len() as i64 + 1,
            kind: "missing",
            detail: format!(
                "the stream's head row is missing from `streams` ({} events stored)",
                events.len()
            ),
        })),
    };
    if let Err(brk) = result {
        report.ok = false;
        each(Found::Break(&brk));
    }
    Ok(())
}

/// Checks every stream of `tenant` (all tenants with `None`), calling `each`
/// with each break and with progress; the report's `breaks` stays empty.
pub async fn verify(
    pool: &PgPool,
    tenant: Option<TenantId>,
    each: &mut (dyn FnMut(Found<'_>) + Send),
) -> Result<VerifyReport, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let mut report = VerifyReport {
        ok: true,
        ..Default::default()
    };
    let mut after = Uuid::nil();
    loop {
        let heads: Vec<(Uuid, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT stream_id, version, last_hash FROM streams \
             WHERE ($1::uuid IS NULL OR tenant_id = $1) AND stream_id > $2 \
             ORDER BY stream_id LIMIT $3",
        )
        .bind(tenant)
        .bind(after)
        .bind(PAGE)
        .fetch_all(&mut *tx)
        .await?;
        for (stream, version, hash) in &heads {
            // A head hash of the wrong length matches no chain.
            let hash = Hash32::from_slice(hash).unwrap_or(Hash32([0xff; 32]));
            check(
                &mut tx,
                (*stream, Some((*version, hash))),
                &mut report,
                each,
            )
            .await?;
        }
        each(Found::Checked {
            streams: report.streams_checked,
            events: report.events_checked,
        });
        match heads.last() {
            Some((last, ..)) if heads.len() as i64 == PAGE => after = *last,
            _ => break,
        }
    }
    // Events whose stream has no head at all.
    let orphans: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT stream_id FROM events e WHERE ($1::uuid IS NULL OR tenant_id = $1) \
         AND NOT EXISTS (SELECT 1 FROM streams s WHERE s.stream_id = e.stream_id) ORDER BY 1",
    )
    .bind(tenant)
    .fetch_all(&mut *tx)
    .await?;
    for stream in orphans {
        check(&mut tx, (stream, None), &mut report, each).await?;
    }
    tx.commit().await?;
    Ok(report)
}

/// `verify`, collecting the breaks into the report.
pub async fn verify_collect(
    pool: &PgPool,
    tenant: Option<TenantId>,
) -> Result<VerifyReport, StoreError> {
    let mut breaks = Vec::new();
    let mut report = verify(pool, tenant, &mut |found| {
        if let Found::Break(b) = found {
            breaks.push(b.clone());
        }
    })
    .await?;
    report.breaks = breaks;
    Ok(report)
}
