//! Replaying events in global order, filtered, a page at a time.

use events::TenantId;
use sqlx::PgPool;
use uuid::Uuid;

use crate::store::{self, Position, StoreError, StoredEvent, TenantFilter};

/// Events read per query (two pages are in memory at a time).
pub const PAGE: i64 = 2_000;

/// What to replay: one tenant's history or, with `tenant: None`, everyone's.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub tenant: Option<TenantId>,
    /// Stream, type, time window and the cursor to start after.
    pub filter: TenantFilter,
}

impl EventQuery {
    fn matches(&self, e: &StoredEvent) -> bool {
        let (f, env) = (&self.filter, &e.envelope);
        self.tenant.is_none_or(|t| env.tenant_id == t)
            && f.stream_id.is_none_or(|s| env.stream_id == s)
            && f.event_type.as_ref().is_none_or(|t| &env.event_type == t)
            && f.since.is_none_or(|s| env.recorded_at >= s)
            && f.until.is_none_or(|u| env.recorded_at < u)
    }
}

/// The tenant owning `stream`, when its head says so.
async fn stream_tenant(pool: &PgPool, stream: Uuid) -> Result<Option<TenantId>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT tenant_id FROM streams WHERE stream_id = $1")
            .bind(stream)
            .fetch_optional(pool)
            .await?,
    )
}

/// One page of `tenant`'s events matching `query` after `at`.
async fn read_page(
    pool: &PgPool,
    tenant: TenantId,
    query: &EventQuery,
    at: Position,
) -> Result<Vec<StoredEvent>, StoreError> {
    let filter = TenantFilter {
        after: Some(at),
        ..query.filter.clone()
    };
    store::read_tenant(pool, tenant, &filter, PAGE).await
}

/// Calls `each` with every event matching `query`, in global order, up to
/// the current horizon (events still committing are never passed over: the
/// next replay from the last cursor picks them up). One tenant's history is
/// read `PAGE` events at a time, the next page on another task while `each`
/// goes through this one; everyone's is streamed ahead (`store::Ahead`).
/// Returns how many matched and the position of the last one read.
pub async fn replay<E, F>(
    pool: &PgPool,
    query: &EventQuery,
    mut each: F,
) -> Result<(u64, Position), E>
where
    E: From<StoreError>,
    F: FnMut(&StoredEvent) -> Result<(), E>,
{
    let mut query = query.clone();
    // A stream's history is its tenant's: use the tenant index for it.
    if let (None, Some(stream)) = (query.tenant, query.filter.stream_id) {
        query.tenant = stream_tenant(pool, stream).await?;
    }
    let mut at = query.filter.after.unwrap_or(Position::START);
    let mut matched = 0u64;
    let Some(tenant) = query.tenant else {
        // Everyone's history: streamed ahead of this loop (`store::Ahead`),
        // PostgreSQL sending, the rows decoding and `each` at once.
        let mut ahead = store::Ahead::start(pool, at, None, PAGE as usize);
        while let Some(chunk) = ahead.next().await {
            for e in &chunk? {
                at = e.position;
                if query.matches(e) {
                    matched += 1;
                    each(e)?;
                }
            }
        }
        return Ok((matched, at));
    };
    let read = |at: Position| {
        let (pool, query) = (pool.clone(), query.clone());
        tokio::spawn(async move { read_page(&pool, tenant, &query, at).await })
    };
    let mut next = read(at);
    loop {
        let page = next
            .await
            .map_err(|e| StoreError::Db(sqlx::Error::Protocol(format!("replay read: {e}"))))??;
        let full = page.len() as i64 == PAGE;
        if let Some(last) = page.last() {
            at = last.position;
        }
        let ahead = full.then(|| read(at));
        for e in &page {
            if query.matches(e) {
                matched += 1;
                each(e)?;
            }
        }
        match ahead {
            Some(read) => next = read,
            None => return Ok((matched, at)),
        }
    }
}
