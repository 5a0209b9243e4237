//! The read side of read-your-writes (SPEC §4: "a read right after a
//! successful write by the same client sees that write").
//!
//! Writes answer as soon as their events are durable. A read from a read
//! table first asks the store for the tenant's last event that the table's
//! projection reads and has not yet applied, and waits (bounded) until the
//! projection is past it. So a read sees every write of its tenant committed
//! before it began, through any gateway, and a read of a table that is up
//! to date (the usual case) waits for nothing but that one query.
//!
//! Why not wait on the write, as before: a write that waits for its
//! projector pays a projector step on every command, though most writes are
//! never read back at once; the step's cost belongs to the reads that need
//! it. Measured in docs/BENCHMARKS.md ("2026-12-07, eighth session").

use events::TenantId;
use projections::Projection;

use super::{ApiError, Gateway};
use crate::projection::checkpoint_name;
use crate::store::Position;

impl Gateway {
    /// Waits (bounded by the read-your-writes wait) until each of
    /// `projections` has applied every event of `tenant` it reads that was
    /// committed before this call. When one does not get there in time the
    /// read goes on (and a warning is logged): a slow projection delays
    /// reads, it does not fail them. A stopped one (reported by `/readyz`)
    /// delays none, and one that stays where a wait timed out delays one
    /// read per `progress::STALL_HOLD`, not every read.
    pub async fn fresh_for(
        &self,
        tenant: TenantId,
        projections: &[&dyn Projection],
    ) -> Result<(), ApiError> {
        let names: Vec<String> = projections.iter().map(|p| checkpoint_name(*p)).collect();
        let types: Vec<&str> = projections
            .iter()
            .flat_map(|p| p.stream_types())
            .map(|t| t.as_str())
            .collect();
        // The tenant's newest event of each type, kept only if past the
        // laggard's checkpoint (a projection with no checkpoint row yet
        // counts as at 0). Other types than calls: one probe of the partial
        // index `events_tenant_type_position` (the literal `<> 'call'` is
        // its predicate). Calls, left out of that index (the hot path):
        // `events_tenant_position` backwards, which stops at the tenant's
        // newest call event, almost always its newest event. A stopped
        // projection (a poison event) will not get there: the read answers
        // at once from the table as it stands.
        let pending: Option<i64> = sqlx::query_scalar(
            "WITH cp AS ( \
               SELECT CASE WHEN count(*) < cardinality($2::text[]) THEN 0 \
                           ELSE min(position) END AS at, \
                      coalesce(bool_or(status = 'stopped'), false) AS stopped \
               FROM checkpoints WHERE name = ANY($2)) \
             SELECT last.at FROM cp, \
               (SELECT max(x.pos) AS at FROM unnest($3::text[]) AS t(typ) \
                CROSS JOIN LATERAL ( \
                  (SELECT e.global_position AS pos FROM events e \
                   WHERE e.tenant_id = $1 AND e.stream_type = t.typ AND e.stream_type <> 'call' \
                   ORDER BY e.global_position DESC LIMIT 1) \
                  UNION ALL \
                  (SELECT e.global_position FROM events e \
                   WHERE t.typ = 'call' AND e.tenant_id = $1 AND e.stream_type = 'call' \
                   ORDER BY e.global_position DESC LIMIT 1)) x) last \
             WHERE last.at > cp.at AND NOT cp.stopped",
        )
        .bind(tenant)
        .bind(&names)
        .bind(&types)
        .fetch_optional(&self.deps.pool)
        .await?;
        let Some(at) = pending else {
            return Ok(());
        };
        if self.deps.progress.stalled(&names) {
            return Ok(());
        }
        let caught_up = self
            .deps
            .progress
            .wait_for(
                &self.deps.pool,
                &names,
                Position::new(at),
                self.read_your_writes,
            )
            .await;
        if !caught_up {
            self.deps.progress.note_stall(&names);
            tracing::warn!(
                ?names,
                "projections did not catch up in time; this read may lag a write"
            );
        }
        Ok(())
    }
}
