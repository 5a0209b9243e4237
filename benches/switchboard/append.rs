//! The event store: `Store::append` (group commit, version check, hash
//! chain, ordered positions) of one event to a fresh stream, against a plain
//! autocommit INSERT of the same row into a table shaped like `events` (same
//! columns, same indexes): the PostgreSQL ceiling, at the same client count.

use chrono::Utc;
use events::{CallLimitsUpdated, Event, Hash32, NewEnvelope, StreamType, TenantId};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use switchboard::store::{CommandMeta, ExpectedVersion, Store, StreamAppend};
use uuid::Uuid;

use crate::measure::{concurrent, Row, Stats, Target};

pub const CLIENTS: [usize; 3] = [1, 16, 64];

fn ops_for(clients: usize) -> usize {
    match clients {
        1 => 3_000,
        16 => 10_000,
        _ => 20_000,
    }
}

fn event(i: usize) -> Event {
    Event::CallLimitsUpdated(CallLimitsUpdated {
        concurrent_max: 10 + i as u32,
        calls_per_minute: 60,
        daily_calls_max: 1_000,
        daily_minutes_max: 600,
    })
}

/// Appends `event(i)` as the first event of a new stream.
pub async fn append_one(store: &Store, tenant: TenantId, i: usize) -> anyhow::Result<()> {
    let sa = StreamAppend {
        stream_type: StreamType::CallLimits,
        stream_id: Uuid::now_v7(),
        expected: ExpectedVersion::NoStream,
        events: vec![event(i)],
    };
    store
        .append(CommandMeta::new(tenant, "bench"), &[sa], vec![])
        .await?;
    Ok(())
}

/// The envelope `append_one` would store.
fn envelope(tenant: TenantId, i: usize) -> (NewEnvelope, Hash32) {
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
    let hash = env.compute_hash();
    (env, hash)
}

async fn insert_raw(pool: &PgPool, tenant: TenantId, i: usize) -> anyhow::Result<()> {
    let (env, hash) = envelope(tenant, i);
    sqlx::query(
        "INSERT INTO bench_raw (event_id, event_type, schema_version, stream_type, stream_id, \
         version, tenant_id, recorded_at, command_id, correlation_id, causation_id, actor, data, \
         prev_hash, hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)",
    )
    .bind(env.event_id)
    .bind(&env.event_type)
    .bind(env.schema_version as i32)
    .bind(env.stream_type.as_str())
    .bind(env.stream_id)
    .bind(env.version)
    .bind(env.tenant_id)
    .bind(env.recorded_at)
    .bind(env.command_id)
    .bind(env.correlation_id)
    .bind(env.causation_id)
    .bind(&env.actor)
    .bind(&env.data)
    .bind(&env.prev_hash.0[..])
    .bind(&hash.0[..])
    .execute(pool)
    .await?;
    Ok(())
}

/// A table like `events`, with every index, and a sequence of its own.
async fn raw_table(pool: &PgPool) -> anyhow::Result<()> {
    for sql in [
        "DROP TABLE IF EXISTS bench_raw",
        "CREATE TABLE bench_raw (LIKE events INCLUDING ALL EXCLUDING DEFAULTS)",
        "CREATE SEQUENCE IF NOT EXISTS bench_raw_seq",
        "ALTER TABLE bench_raw ALTER COLUMN global_position SET DEFAULT nextval('bench_raw_seq')",
    ] {
        sqlx::query(sql).execute(pool).await?;
    }
    Ok(())
}

/// The ceiling: autocommit INSERTs from `clients` connections.
pub async fn raw(url: &str, pool: &PgPool, clients: usize, ops: usize) -> anyhow::Result<Stats> {
    raw_table(pool).await?;
    let raw_pool = PgPoolOptions::new()
        .max_connections(clients as u32)
        .min_connections(clients as u32)
        .connect(url)
        .await?;
    let tenant = TenantId::new();
    let p = raw_pool.clone();
    let op = move |_: usize, i: usize| {
        let p = p.clone();
        async move { insert_raw(&p, tenant, i).await }
    };
    concurrent(clients * 20, clients, op.clone()).await?;
    let s = concurrent(ops, clients, op).await?;
    raw_pool.close().await;
    Ok(s)
}

/// `Store::append` from `clients` tasks.
pub async fn store(store: &Store, clients: usize, ops: usize) -> anyhow::Result<Stats> {
    let tenant = TenantId::new();
    let s = store.clone();
    let op = move |_: usize, i: usize| {
        let s = s.clone();
        async move { append_one(&s, tenant, i).await }
    };
    concurrent(clients * 20, clients, op.clone()).await?;
    concurrent(ops, clients, op).await
}

/// The raw INSERT ceiling at 64 clients alone (the HTTP workload's
/// baseline when the append workload does not run).
pub async fn ceiling(url: &str, pool: &PgPool) -> anyhow::Result<f64> {
    Ok(raw(url, pool, 64, ops_for(64)).await?.ops_per_s())
}

/// Both at each client count; returns the rows and the ceiling at 64
/// clients (the HTTP workload's baseline).
pub async fn run(url: &str, pool: &PgPool, st: &Store) -> anyhow::Result<(Vec<Row>, f64, f64)> {
    let mut rows = Vec::new();
    let (mut ceiling64, mut p99_16) = (0.0, 0.0);
    for clients in CLIENTS {
        let ops = ops_for(clients);
        let base = raw(url, pool, clients, ops).await?;
        let s = store(st, clients, ops).await?;
        let w = format!("store append, {clients} appender(s)");
        rows.push(
            Row::new(&w, "events/s", s.ops_per_s(), "/s")
                .against("raw INSERT tx/s", base.ops_per_s())
                .target(Target::RatioAtLeast(0.8)),
        );
        rows.push(Row::new(&w, "p99", s.ms(0.99), "ms").against("raw INSERT p99", base.ms(0.99)));
        if clients == 64 {
            ceiling64 = base.ops_per_s();
        }
        if clients == 16 {
            p99_16 = s.ms(0.99);
        }
    }
    Ok((rows, ceiling64, p99_16))
}
