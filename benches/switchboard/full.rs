//! The full form's workloads (`scripts/bench --full`): the store at
//! 10,000,000 events, and replaying 1,000,000.

use std::process::Command;
use std::time::Instant;

use futures::StreamExt;
use sqlx::PgPool;

use crate::env::BenchEnv;
use crate::measure::{Row, Target};

const GROWTH: i64 = 10_000_000;
const REPLAY: i64 = 1_000_000;

/// Stores events of `calls` calls (four each: requested, claimed,
/// dispatched, ended), written straight into `events` by SQL: the shape of
/// real history at the speed of a bulk load. Ids are shaped as Switchboard
/// mints them, UUIDv7 (a millisecond time prefix, then random bits), with
/// time moving forward call by call, so the indexes grow as a live store's
/// do; tenants (whose ids come from tokens, not from us) are random, 1,000
/// of them. Hashes are not chained (no verify runs over them).
async fn bulk_calls(pool: &PgPool, calls: i64) -> anyhow::Result<()> {
    let chunk = 250_000;
    let tenants: Vec<uuid::Uuid> = (0..1_000).map(|_| uuid::Uuid::new_v4()).collect();
    // History ends now: the first call is `calls` milliseconds ago.
    let start_ms = chrono::Utc::now().timestamp_millis() - calls;
    let mut done = 0;
    while done < calls {
        let n = chunk.min(calls - done);
        sqlx::query(
            "WITH c AS (
                SELECT sb_v7($2 + g) AS call, ($3::uuid[])[1 + (($2 + g) % 1000)] AS tenant,
                       $2 + g AS ms, g
                FROM generate_series(1, $1) g),
             e AS (
                SELECT c.call, c.tenant, c.ms, v.version, v.typ, v.data FROM c,
                LATERAL (VALUES
                  (1, 'OriginateRequested', jsonb_build_object('from_number', '+12025550100',
                      'to_number', '+14155550100', 'agent_id', gen_random_uuid(),
                      'number_id', gen_random_uuid(), 'provider', 'twilio',
                      'credentials_id', gen_random_uuid(), 'session_id', gen_random_uuid(),
                      'metadata', NULL)),
                  (2, 'OriginateClaimed', jsonb_build_object('worker_id', 'bench')),
                  (3, 'OriginateDispatched', jsonb_build_object('provider_call_id', 'CA' || c.g)),
                  (4, 'CallEnded', jsonb_build_object('status', 'completed', 'duration_s', 61,
                      'billed_minutes', 2, 'hangup_cause', 'normal_clearing'))
                ) AS v(version, typ, data))
             INSERT INTO events (event_id, event_type, schema_version, stream_type, stream_id,
                 version, tenant_id, recorded_at, command_id, correlation_id, actor, data,
                 prev_hash, hash)
             SELECT sb_v7(ms), typ, CASE typ WHEN 'CallEnded' THEN 2 ELSE 1 END, 'call',
                 call, version, tenant, now(), sb_v7(ms), call, 'bench', data,
                 decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex')
             FROM e ORDER BY call, version",
        )
        .bind(n)
        .bind(start_ms + done)
        .bind(&tenants)
        .execute(pool)
        .await?;
        done += n;
        eprintln!("bench: {} events stored", done * 4);
    }
    Ok(())
}

/// `sb_v7(ms)`: a UUIDv7-shaped id at Unix millisecond `ms` (version 7,
/// RFC 4122 variant, random tail), for the bulk history.
async fn define_v7(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query(
        "CREATE OR REPLACE FUNCTION sb_v7(ms bigint) RETURNS uuid LANGUAGE sql AS $$
           SELECT (lpad(to_hex(ms), 12, '0') || '7' || substr(r, 1, 3) || '8' || substr(r, 4, 15))::uuid
           FROM (SELECT md5(random()::text) AS r) x $$",
    )
    .execute(pool)
    .await?;
    Ok(())
}

async fn count(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await?)
}

/// Append p99 at 16 appenders with 10,000,000 events stored, against the
/// same on the empty store (from the append workload).
pub async fn growth(env: &BenchEnv, empty_p99: Option<f64>) -> anyhow::Result<Vec<Row>> {
    let pool = &env.deps.pool;
    let have = count(pool).await?;
    if have < GROWTH {
        define_v7(pool).await?;
        bulk_calls(pool, (GROWTH - have) / 4).await?;
    }
    sqlx::query("VACUUM ANALYZE events").execute(pool).await?;
    // The bulk load's dirty pages are written out now, not by a checkpoint
    // that lands in the middle of the measurement.
    sqlx::query("CHECKPOINT").execute(pool).await?;
    let s = crate::append::store(&env.deps.store, 16, 20_000).await?;
    let mut row = Row::new(
        "store append at 10,000,000 events",
        "p99, 16 appenders",
        s.ms(0.99),
        "ms",
    );
    if let Some(e) = empty_p99 {
        row = row
            .against("empty store", e)
            .target(Target::RatioAtMost(1.2));
    }
    Ok(vec![row])
}

/// Wall seconds and peak RSS (MB) of `switchboard args…` on the benchmark's
/// database, its output thrown away.
fn timed(env: &BenchEnv, args: &[&str]) -> anyhow::Result<(f64, f64)> {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%e %M", env!("CARGO_BIN_EXE_switchboard")])
        .args(args)
        .env("DATABASE_URL", env.db_url())
        .env("SWITCHBOARD_NAMESPACE", env.deps.ns.as_str())
        .env(
            "SWITCHBOARD_DATA_DIR",
            std::env::temp_dir().join("sbbench-replay"),
        )
        .stdout(std::process::Stdio::null())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "switchboard {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    let mut it = last.split_whitespace();
    let secs: f64 = it.next().unwrap_or("0").parse()?;
    let kb: f64 = it.next().unwrap_or("0").parse()?;
    Ok((secs, kb / 1024.0))
}

/// Audit replay and a projection rebuild over 1,000,000 events, against a
/// COPY of the same rows out of PostgreSQL.
pub async fn replay(env: &BenchEnv) -> anyhow::Result<Vec<Row>> {
    let pool = &env.deps.pool;
    let have = count(pool).await?;
    if have < REPLAY {
        define_v7(pool).await?;
        bulk_calls(pool, (REPLAY - have) / 4).await?;
    }
    // As growth does: a live store's table has long been vacuumed and its
    // pages written out. Without this, autovacuum of the fresh million rows
    // and the checkpoint writing them ran inside the measurement (the
    // first rebuild after a load measured 110,000 events/s, later ones on
    // the same data 180,000).
    sqlx::query("VACUUM ANALYZE events").execute(pool).await?;
    sqlx::query("CHECKPOINT").execute(pool).await?;
    let n = count(pool).await? as f64;
    let mut conn = pool.acquire().await?;
    let start = Instant::now();
    let mut copy = conn
        .copy_out_raw("COPY (SELECT * FROM events ORDER BY global_position) TO STDOUT")
        .await?;
    while let Some(chunk) = copy.next().await {
        chunk?;
    }
    let copy_rate = n / start.elapsed().as_secs_f64();
    drop(copy);
    drop(conn);
    let (replay_s, replay_mb) = timed(env, &["audit", "events", "--format", "json"])?;
    let (rebuild_s, rebuild_mb) = timed(env, &["audit", "rebuild", "calls"])?;
    let w = format!("replay of {n:.0} events");
    Ok(vec![
        Row::new(&w, "audit replay events/s", n / replay_s, "/s")
            .against("COPY TO STDOUT", copy_rate)
            .target(Target::AtLeast(200_000.0)),
        Row::new(&w, "audit replay peak RSS", replay_mb, "MB").target(Target::AtMost(100.0)),
        Row::new(&w, "rebuild calls events/s", n / rebuild_s, "/s")
            .against("COPY TO STDOUT", copy_rate)
            .target(Target::AtLeast(200_000.0)),
        Row::new(&w, "rebuild peak RSS", rebuild_mb, "MB").target(Target::AtMost(100.0)),
    ])
}
