//! Scenario 1: `store::append` of one event to a fresh stream, against a
//! plain autocommit INSERT of the same envelope (the PostgreSQL ceiling).

use chrono::Utc;
use events::{CallLimitsUpdated, Event, Hash32, NewEnvelope, StreamType};
use serde_json::Value;
use sqlx::PgPool;
use switchboard::store::{self, CommandMeta, ExpectedVersion, StreamAppend};
use uuid::Uuid;

use crate::measure::{concurrent, Row};

pub const OPS: usize = 4_000;
pub const TASKS: usize = 8;
const WARMUP: usize = 100;

fn event(i: usize) -> Event {
    Event::CallLimitsUpdated(CallLimitsUpdated {
        concurrent_max: 10 + i as u32,
        calls_per_minute: 60,
        daily_calls_max: 1_000,
        daily_minutes_max: 600,
    })
}

/// Appends `event(i)` as the first event of a new stream.
async fn append_one(pool: PgPool, tenant: Uuid, i: usize) -> anyhow::Result<()> {
    let sa = StreamAppend {
        stream_type: StreamType::CallLimits,
        stream_id: Uuid::now_v7(),
        expected: ExpectedVersion::NoStream,
        events: vec![event(i)],
    };
    store::append(&pool, CommandMeta::new(tenant, "bench"), &[sa]).await?;
    Ok(())
}

/// The envelope `append_one` would store, as JSON.
fn payload(tenant: Uuid, i: usize) -> anyhow::Result<Value> {
    let e = event(i);
    let command_id = Uuid::now_v7();
    let env = NewEnvelope {
        event_id: Uuid::now_v7(),
        event_type: e.event_type().to_owned(),
        schema_version: e.schema_version(),
        stream_type: StreamType::CallLimits,
        stream_id: Uuid::now_v7(),
        version: 1,
        tenant_id: tenant,
        recorded_at: NewEnvelope::storage_time(Utc::now()),
        command_id,
        correlation_id: command_id,
        causation_id: None,
        actor: "bench".to_owned(),
        data: e.to_data(),
        prev_hash: Hash32::ZERO,
    };
    Ok(serde_json::to_value(env)?)
}

async fn insert_raw(pool: PgPool, tenant: Uuid, i: usize) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO bench_raw (id, data) VALUES ($1, $2)")
        .bind(Uuid::now_v7())
        .bind(payload(tenant, i)?)
        .execute(&pool)
        .await?;
    Ok(())
}

/// Appends `n` events from `tasks` tasks, untimed (to fill the store).
pub async fn fill(pool: &PgPool, n: usize, tasks: usize) -> anyhow::Result<()> {
    let (pool, tenant) = (pool.clone(), Uuid::new_v4());
    concurrent("fill", n, tasks, move |_, i| {
        append_one(pool.clone(), tenant, i)
    })
    .await?;
    Ok(())
}

pub async fn run(pool: &PgPool) -> anyhow::Result<Row> {
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_raw (id uuid PRIMARY KEY, data jsonb NOT NULL)")
        .execute(pool)
        .await?;
    let tenant = Uuid::new_v4();
    let p = pool.clone();
    let raw = move |_: usize, i: usize| insert_raw(p.clone(), tenant, i);
    concurrent("warm-up", WARMUP, TASKS, raw.clone()).await?;
    let baseline = concurrent("INSERT jsonb row", OPS, TASKS, raw).await?;

    fill(pool, WARMUP, TASKS).await?;
    let p = pool.clone();
    let scenario = concurrent("store::append 1 event", OPS, TASKS, move |_, i| {
        append_one(p.clone(), tenant, i)
    })
    .await?;
    Ok(Row {
        scenario,
        baseline,
        notes: vec![format!(
            "{TASKS} tasks, each append a new stream (lock, claim command, read head, \
             insert event, upsert stream, notify, commit); baseline: one autocommit \
             INSERT of the same envelope JSON into bench_raw(id uuid PK, data jsonb)"
        )],
    })
}
