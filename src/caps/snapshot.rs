//! The caps counters as the event store has them: what a rebuild loads.

use std::collections::BTreeMap;

use events::{CallId, NumberId, TenantId};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde_json::{json, Value};
use sqlx::{PgExecutor, PgPool};

use super::keys::{day_start, next_midnight, retention, WINDOW_MS};
use super::CapsError;

/// A call's idempotency state in the caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallState {
    /// Holds (or held, until its lease lapsed) a slot; not ended.
    Admitted,
    /// Ended or failed; its minutes are counted.
    Done,
}

impl CallState {
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Admitted => "admitted",
            CallState::Done => "done",
        }
    }
}

/// A call the caps remember, so reserve and release stay idempotent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownCall {
    pub call_id: CallId,
    pub state: CallState,
    /// Its end, else its admission: when its retention starts.
    pub touched_at: DateTime<Utc>,
}

/// One tenant's counters at `now`, from the event store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The UTC day of `now`, which the daily counters are for.
    pub day: NaiveDate,
    /// Calls holding a slot, with their lease expiry.
    pub active: Vec<(CallId, DateTime<Utc>)>,
    /// Admissions in the 60 s up to `now`, with their time.
    pub recent: Vec<(CallId, DateTime<Utc>)>,
    pub daily_calls: u64,
    pub daily_minutes: u64,
    pub calls: Vec<KnownCall>,
    /// Admissions on `day` per calling number (the numbers' own caps).
    pub number_calls: BTreeMap<NumberId, u64>,
}

impl Snapshot {
    /// The rebuild script's argument; numbers travel as strings, so Lua's
    /// doubles never reformat a millisecond timestamp.
    pub(crate) fn to_json(&self) -> Value {
        let pairs = |v: &[(CallId, DateTime<Utc>)]| -> Vec<Value> {
            v.iter()
                .map(|(id, t)| json!([id.to_string(), t.timestamp_millis().to_string()]))
                .collect()
        };
        let calls: Vec<Value> = self
            .calls
            .iter()
            .map(|c| {
                json!([
                    c.call_id.to_string(),
                    c.state.as_str(),
                    c.touched_at.timestamp_millis().to_string()
                ])
            })
            .collect();
        json!({
            "active": pairs(&self.active),
            "recent": pairs(&self.recent),
            "daily_calls": self.daily_calls.to_string(),
            "daily_minutes": self.daily_minutes.to_string(),
            "calls": calls,
            "numbers": self
                .number_calls
                .iter()
                .map(|(n, c)| json!([n.to_string(), c.to_string()]))
                .collect::<Vec<_>>(),
        })
    }
}

/// Per call stream touched since the horizon: first claim, first end
/// (`CallEnded` or `OriginateFailed`), the billed minutes of a `CallEnded`
/// recorded on the day `[$3, $4)`, and the number it calls from.
const CALLS_SQL: &str = "\
SELECT stream_id,
       MIN(recorded_at) FILTER (WHERE event_type = 'OriginateClaimed') AS admitted_at,
       MIN(recorded_at) FILTER (WHERE event_type IN ('CallEnded', 'OriginateFailed')) AS ended_at,
       COALESCE(MAX((data->>'billed_minutes')::bigint) FILTER (
           WHERE event_type = 'CallEnded' AND recorded_at >= $3 AND recorded_at < $4), 0)
           AS minutes,
       (MAX(data->>'number_id') FILTER (WHERE event_type = 'OriginateRequested'))::uuid
           AS number_id
FROM events
WHERE tenant_id = $1 AND stream_type = 'call' AND recorded_at >= $2
  AND event_type IN ('OriginateRequested', 'OriginateClaimed', 'CallEnded', 'OriginateFailed')
GROUP BY stream_id";

type Row = (
    CallId,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    i64,
    Option<NumberId>,
);

/// The counters of `tenant` at `now`, computed from the `events` table.
///
/// A call is admitted at its `OriginateClaimed`; it is active while it has
/// no `CallEnded`/`OriginateFailed` and its lease has not lapsed. Calls
/// claimed before the retention horizon (lease + 48 h) cannot be active and
/// are left out unless they ended today.
pub async fn snapshot_from_store(
    pool: &PgPool,
    tenant: TenantId,
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<Snapshot, CapsError> {
    Ok(snapshot_with(pool, tenant, now, lease).await?)
}

/// `snapshot_from_store` on any executor (the rebuild's locked transaction).
pub(crate) async fn snapshot_with<'e>(
    db: impl PgExecutor<'e>,
    tenant: TenantId,
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<Snapshot, sqlx::Error> {
    let keep = TimeDelta::from_std(retention(lease)).unwrap_or(TimeDelta::MAX);
    let lease = TimeDelta::from_std(lease).unwrap_or(TimeDelta::MAX);
    let (start, end) = (day_start(now), next_midnight(now));
    let horizon = now
        .checked_sub_signed(keep)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let horizon = horizon.min(start);
    let rows: Vec<Row> = sqlx::query_as(CALLS_SQL)
        .bind(tenant)
        .bind(horizon)
        .bind(start)
        .bind(end)
        .fetch_all(db)
        .await?;

    let window_start = now - TimeDelta::milliseconds(WINDOW_MS);
    let mut snap = Snapshot {
        day: now.date_naive(),
        active: Vec::new(),
        recent: Vec::new(),
        daily_calls: 0,
        daily_minutes: 0,
        calls: Vec::with_capacity(rows.len()),
        number_calls: BTreeMap::new(),
    };
    for (call_id, admitted_at, ended_at, minutes, number_id) in rows {
        snap.daily_minutes += u64::try_from(minutes).unwrap_or(0);
        if let Some(at) = admitted_at {
            if at >= start && at < end {
                snap.daily_calls += 1;
                if let Some(n) = number_id {
                    *snap.number_calls.entry(n).or_default() += 1;
                }
            }
            if at > window_start {
                snap.recent.push((call_id, at));
            }
            let expiry = at
                .checked_add_signed(lease)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            if ended_at.is_none() && expiry > now {
                snap.active.push((call_id, expiry));
            }
        }
        let (state, touched_at) = match (ended_at, admitted_at) {
            (Some(e), _) => (CallState::Done, e),
            (None, Some(a)) => (CallState::Admitted, a),
            (None, None) => continue,
        };
        snap.calls.push(KnownCall {
            call_id,
            state,
            touched_at,
        });
    }
    Ok(snap)
}
