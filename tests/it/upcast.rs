//! Upcasting end to end: a CallEnded stored at schema version 1 (before
//! `hangup_cause` existed) is read everywhere as version 2.

use std::sync::Arc;

use chrono::Utc;
use events::*;
use switchboard::metrics::Metrics;
use switchboard::projection::{self, Runner};
use switchboard::store::{self, verify_chain, ExpectedVersion, StreamAppend};
use uuid::Uuid;

use crate::support::{meta, TestEnv};

/// Writes `data` as the next event of `stream`, at `schema_version`, the
/// way an older release of the code would have: hash-chained and all.
async fn store_old_event(
    env: &TestEnv,
    tenant: TenantId,
    stream: Uuid,
    event_type: &str,
    schema_version: u32,
    data: serde_json::Value,
) {
    let head = store::read_stream(&env.pool, stream, None).await.unwrap();
    let last = head.last().unwrap();
    let new = NewEnvelope {
        event_id: Uuid::now_v7(),
        event_type: event_type.into(),
        schema_version,
        stream_type: StreamType::Call,
        stream_id: stream,
        version: last.envelope.version + 1,
        tenant_id: tenant,
        recorded_at: NewEnvelope::storage_time(Utc::now()),
        command_id: Uuid::now_v7(),
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        actor: "system:callproc".into(),
        data,
        prev_hash: last.envelope.hash,
    };
    let hash = new.compute_hash();
    let mut tx = env.pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO events (event_id, event_type, schema_version, stream_type, stream_id, version, tenant_id,
            recorded_at, command_id, correlation_id, causation_id, actor, data, prev_hash, hash)
         VALUES ($1,$2,$3,'call',$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)",
    )
    .bind(new.event_id)
    .bind(&new.event_type)
    .bind(schema_version as i32)
    .bind(stream)
    .bind(new.version)
    .bind(tenant)
    .bind(new.recorded_at)
    .bind(new.command_id)
    .bind(new.correlation_id)
    .bind(new.causation_id)
    .bind(&new.actor)
    .bind(&new.data)
    .bind(&new.prev_hash.0[..])
    .bind(&hash.0[..])
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("UPDATE streams SET version = $2, last_hash = $3 WHERE stream_id = $1")
        .bind(stream)
        .bind(new.version)
        .bind(&hash.0[..])
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_stored_v1_call_ended_reads_as_v2_everywhere() {
    let env = TestEnv::new().await;
    let (tenant, call) = (TenantId::new(), Uuid::now_v7());
    let sa = StreamAppend {
        stream_type: StreamType::Call,
        stream_id: call,
        expected: ExpectedVersion::NoStream,
        events: vec![
            Event::OriginateRequested(OriginateRequested {
                from_number: "+12025550123".into(),
                to_number: "+14155550100".into(),
                agent_id: Uuid::new_v4(),
                number_id: NumberId::new(),
                provider: ProviderKind::Twilio,
                credentials_id: ProviderId::new(),
                session_id: Uuid::now_v7(),
                metadata: serde_json::Value::Null,
            }),
            Event::OriginateClaimed(OriginateClaimed {
                worker_id: "w".into(),
            }),
            Event::OriginateDispatched(OriginateDispatched {
                provider_call_id: "P1".into(),
            }),
        ],
    };
    store::append(&env.pool, meta(tenant), &[sa]).await.unwrap();
    let v1 = serde_json::json!({"status": "busy", "duration_s": 0, "billed_minutes": 0});
    store_old_event(&env, tenant, call, "CallEnded", 1, v1.clone()).await;

    // The store keeps it as written: version 1, no hangup_cause, chain intact.
    let stored = store::read_stream(&env.pool, call, None).await.unwrap();
    let ended = stored.last().unwrap();
    assert_eq!(
        (ended.envelope.schema_version, &ended.envelope.data),
        (1, &v1)
    );
    verify_chain(call, &stored, None).expect("the old event is part of the chain");
    // Every reader decodes it as version 2.
    let Event::CallEnded(e) = ended.event().unwrap() else {
        panic!("not CallEnded")
    };
    assert_eq!(e.hangup_cause, "user_busy");
    assert_eq!(ended.event().unwrap().schema_version(), 2);
    // The projection, too.
    let p = Arc::new(projections::calls::Calls);
    projection::ensure_schema(&env.pool, &*p).await.unwrap();
    let runner = Runner::new(env.pool.clone(), p, Arc::new(Metrics::new()));
    crate::support::visible_all(&env.pool).await;
    while runner.step().await.unwrap() != projection::StepOutcome::Idle {}
    let (status, cause): (String, Option<String>) =
        sqlx::query_as("SELECT status, hangup_cause FROM calls WHERE call_id = $1")
            .bind(call)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        (status.as_str(), cause.as_deref()),
        ("busy", Some("user_busy"))
    );
    // New events are written at version 2 with the field.
    let state = switchboard::commands::state::fold(
        stored.iter().map(|s| {
            (
                switchboard::commands::state::At {
                    tenant_id: tenant,
                    version: s.envelope.version,
                    recorded_at: s.envelope.recorded_at,
                },
                s.event().unwrap(),
            )
        }),
        switchboard::commands::call::CallState::apply,
    );
    assert_eq!(state.ended.as_deref(), Some("busy"));
    env.cleanup(None).await;
}
