//! The projector frame: tables and checkpoint commit together, a poison
//! event stops the projector and is reported, and a rebuild equals the live
//! tables.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use events::*;
use projections::{Projection, ProjectionError};
use sqlx::PgConnection;
use switchboard::checkpoint;
use switchboard::metrics::Metrics;
use switchboard::projection::{self, Runner, StepError, StepOutcome};
use switchboard::store::{self, ExpectedVersion, StreamAppend};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use uuid::Uuid;

use crate::support::{append_n, eventually, meta, TestEnv};

/// Records every event it sees; fails on one chosen event while told to.
struct Recording {
    fail_on: Arc<Mutex<Option<Uuid>>>,
}

#[async_trait]
impl Projection for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["seen"]
    }
    fn stream_types(&self) -> &'static [events::StreamType] {
        use events::StreamType::*;
        &[Provider, Number, CallLimits, Call, Tenant]
    }
    fn schema_sql(&self) -> &'static str {
        "CREATE TABLE IF NOT EXISTS seen (event_id UUID PRIMARY KEY, global_position BIGINT NOT NULL)"
    }
    async fn apply(
        &self,
        conn: &mut PgConnection,
        env: &Envelope,
        _: &Event,
    ) -> Result<(), ProjectionError> {
        sqlx::query("INSERT INTO seen VALUES ($1, $2)")
            .bind(env.event_id)
            .bind(env.global_position)
            .execute(&mut *conn)
            .await?;
        if *self.fail_on.lock().unwrap() == Some(env.event_id) {
            return Err(ProjectionError::Invariant("told to fail".into()));
        }
        Ok(())
    }
}

#[tokio::test]
async fn tables_and_checkpoint_commit_together() {
    let env = TestEnv::new().await;
    let tenant = TenantId::new();
    for _ in 0..10 {
        append_n(&env.pool, tenant, Uuid::new_v4(), 0, 4).await;
    }
    let all = crate::support::visible_all(&env.pool).await;
    let fail_on = Arc::new(Mutex::new(Some(all[25].envelope.event_id)));
    let p = Arc::new(Recording {
        fail_on: fail_on.clone(),
    });
    projection::ensure_schema(&env.pool, &*p).await.unwrap();
    let runner = Runner::new(env.pool.clone(), p.clone(), Arc::new(Metrics::new()));
    // The batch fails at its 26th event: none of it may stick, and the
    // checkpoint stays where it was.
    assert!(matches!(runner.step().await, Err(StepError::Poison { .. })));
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM seen")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(seen, 0);
    let cp = checkpoint::load(&env.pool, "projection:recording")
        .await
        .unwrap();
    assert_eq!(cp, store::Position::START);

    // Once the event can be applied, every event is applied exactly once
    // (the primary key would refuse a second application).
    *fail_on.lock().unwrap() = None;
    assert_eq!(runner.step().await.unwrap(), StepOutcome::Applied(40));
    assert_eq!(runner.step().await.unwrap(), StepOutcome::Idle);
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM seen")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(seen, 40);
    let cp = checkpoint::load(&env.pool, "projection:recording")
        .await
        .unwrap();
    assert_eq!(cp, all.last().unwrap().position);
    env.cleanup(None).await;
}

/// Runs the providers projector until it records that it stopped (up to
/// 10 s): its stop token, its task, and whether it stopped.
async fn run_providers_until_stopped(
    env: &TestEnv,
    metrics: &Arc<Metrics>,
) -> (CancellationToken, tokio::task::JoinHandle<()>, bool) {
    let stop = CancellationToken::new();
    let runner = Runner::new(
        env.pool.clone(),
        Arc::new(projections::providers::Providers),
        metrics.clone(),
    );
    let task = tokio::spawn(runner.run(stop.clone()));
    let stopped = eventually(Duration::from_secs(10), || async {
        checkpoint::all(&env.pool)
            .await
            .unwrap()
            .iter()
            .any(|c| c.name == "projection:providers" && c.status == "stopped")
    })
    .await;
    (stop, task, stopped)
}

#[tokio::test]
async fn a_poison_event_stops_the_projector_and_is_reported() {
    let env = TestEnv::new().await;
    let deps = env.deps().await;
    let tenant = TenantId::new();
    // A ProviderCreated whose payload does not match the schema.
    let poison = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO events (event_id, event_type, schema_version, stream_type, stream_id, version, tenant_id,
            recorded_at, command_id, correlation_id, actor, data, prev_hash, hash)
         VALUES ($1, 'ProviderCreated', 1, 'provider', $2, 1, $3, now(), $1, $1, 'test', '{\"label\": 5}', $4, $4)",
    )
    .bind(poison)
    .bind(Uuid::new_v4())
    .bind(tenant)
    .bind(vec![0u8; 32])
    .execute(&env.pool)
    .await
    .unwrap();
    let (stop, task, stopped) = run_providers_until_stopped(&env, &deps.metrics).await;
    assert!(stopped, "the projector records that it stopped");
    let row = checkpoint::all(&env.pool)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == "projection:providers")
        .unwrap();
    assert_eq!(row.position, 0, "the poison event was not skipped");
    assert!(row.error.unwrap().contains("ProviderCreated"));
    assert!(deps
        .metrics
        .encode()
        .contains("switchboard_projector_stopped{projector=\"providers\"} 1"));
    let resp = switchboard::http::ops_router(deps.clone())
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body["checks"]["projections"]["stopped"][0]["name"],
        "projection:providers"
    );
    stop.cancel();
    task.await.unwrap();
    env.cleanup(None).await;
}

/// A stream's first events are inserted without reading the table first
/// (no row can exist before them); a row that is there anyway (written by
/// hand, or by a table that drifted) stops the projector as a poison event
/// does, and is not overwritten.
#[tokio::test]
async fn a_first_event_never_overwrites_a_row_the_table_holds() {
    let env = TestEnv::new().await;
    let deps = env.deps().await;
    projection::ensure_schema(&env.pool, &projections::providers::Providers)
        .await
        .unwrap();
    let tenant = TenantId::new();
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO providers (id, tenant_id, provider, label, key_id, ciphertext, masked, \
         created_at, updated_at, version) \
         VALUES ($1, $2, 'twilio', 'by hand', 'k0', 'ct-0', '{}', now(), now(), 7)",
    )
    .bind(id)
    .bind(tenant)
    .execute(&env.pool)
    .await
    .unwrap();
    put(
        &env,
        tenant,
        StreamType::Provider,
        id,
        0,
        vec![Event::ProviderCreated(ProviderCreated {
            provider: ProviderKind::Twilio,
            label: "from the store".into(),
            credentials: creds("a"),
        })],
    )
    .await;
    let (stop, task, stopped) = run_providers_until_stopped(&env, &deps.metrics).await;
    assert!(stopped, "the projector stops at the event");
    let label: String = sqlx::query_scalar("SELECT label FROM providers WHERE id = $1")
        .bind(id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(label, "by hand", "the row was not overwritten");
    stop.cancel();
    task.await.unwrap();
    env.cleanup(None).await;
}

fn creds(tag: &str) -> EncryptedCredentials {
    EncryptedCredentials {
        key_id: "k1".into(),
        ciphertext: format!("ct-{tag}"),
        masked: BTreeMap::from([("auth_token".to_owned(), "********".to_owned())]),
    }
}

async fn put(
    env: &TestEnv,
    tenant: TenantId,
    ty: StreamType,
    id: Uuid,
    from: i64,
    events: Vec<Event>,
) {
    let sa = StreamAppend {
        stream_type: ty,
        stream_id: id,
        expected: ExpectedVersion::from_version(from),
        events,
    };
    store::append(&env.pool, meta(tenant), &[sa]).await.unwrap();
}

#[tokio::test]
async fn a_rebuild_equals_the_live_tables() {
    let env = TestEnv::new().await;
    for t in 0..3 {
        let tenant = TenantId::new();
        let mut providers = Vec::new();
        for p in 0..4 {
            let id = Uuid::now_v7();
            providers.push(ProviderId::from(id));
            put(
                &env,
                tenant,
                StreamType::Provider,
                id,
                0,
                vec![Event::ProviderCreated(ProviderCreated {
                    provider: ProviderKind::ALL[p % 3],
                    label: format!("t{t}p{p}"),
                    credentials: creds("a"),
                })],
            )
            .await;
            put(
                &env,
                tenant,
                StreamType::Provider,
                id,
                1,
                vec![
                    Event::ProviderRelabeled(ProviderRelabeled {
                        label: "renamed".into(),
                    }),
                    Event::ProviderCredentialsRotated(ProviderCredentialsRotated {
                        credentials: creds("b"),
                    }),
                ],
            )
            .await;
        }
        for n in 0..6 {
            let id = Uuid::now_v7();
            put(
                &env,
                tenant,
                StreamType::Number,
                id,
                0,
                vec![Event::NumberAttached(NumberAttached {
                    e164: format!("+1202555{t}{n:03}"),
                    provider: ProviderKind::Twilio,
                    credentials_id: providers[n % 4],
                    agent_id: Some(Uuid::new_v4()),
                    inbound_enabled: true,
                    outbound_enabled: true,
                })],
            )
            .await;
            put(
                &env,
                tenant,
                StreamType::Number,
                id,
                1,
                vec![
                    Event::NumberAgentAssigned(NumberAgentAssigned { agent_id: None }),
                    Event::NumberDirectionsChanged(NumberDirectionsChanged {
                        inbound_enabled: false,
                        outbound_enabled: true,
                    }),
                ],
            )
            .await;
            if n % 3 == 0 {
                put(
                    &env,
                    tenant,
                    StreamType::Number,
                    id,
                    3,
                    vec![Event::NumberReleased(NumberReleased {})],
                )
                .await;
            }
        }
        put(
            &env,
            tenant,
            StreamType::Provider,
            providers[3].uuid(),
            3,
            vec![Event::ProviderDeleted(ProviderDeleted {})],
        )
        .await;
        for c in 0..4u64 {
            let call = Uuid::now_v7();
            let requested = Event::OriginateRequested(OriginateRequested {
                from_number: format!("+1202555{t}{c:03}"),
                to_number: "+14155550100".into(),
                agent_id: Uuid::new_v4(),
                number_id: NumberId::new(),
                provider: ProviderKind::Twilio,
                credentials_id: providers[0],
                session_id: Uuid::now_v7(),
                metadata: serde_json::json!({"c": c}),
            });
            put(&env, tenant, StreamType::Call, call, 0, vec![requested]).await;
            let rest = if c == 0 {
                vec![Event::OriginateRejected(OriginateRejected {
                    dimension: events::Dimension::Concurrent,
                    limit: 1,
                    current: 1,
                    retry_after_s: 1,
                    blocked: None,
                })]
            } else {
                vec![
                    Event::OriginateClaimed(OriginateClaimed {
                        worker_id: "w".into(),
                    }),
                    Event::OriginateDispatched(OriginateDispatched {
                        provider_call_id: format!("P{c}"),
                    }),
                    Event::CallAnswered(CallAnswered {}),
                    Event::CallRinging(CallRinging {}),
                    Event::CallEnded(CallEnded {
                        status: "completed".into(),
                        duration_s: 61 * c,
                        billed_minutes: 2 * c,
                        hangup_cause: "normal_clearing".into(),
                    }),
                ]
            };
            put(&env, tenant, StreamType::Call, call, 1, rest).await;
        }
        for v in 0..3 {
            put(
                &env,
                tenant,
                StreamType::CallLimits,
                tenant.uuid(),
                v,
                vec![Event::CallLimitsUpdated(CallLimitsUpdated {
                    concurrent_max: v as u32,
                    calls_per_minute: 10,
                    daily_calls_max: 100,
                    daily_minutes_max: 600,
                })],
            )
            .await;
        }
    }
    let metrics = Arc::new(Metrics::new());
    for p in projection::all() {
        projection::ensure_schema(&env.pool, &*p).await.unwrap();
        let runner = Runner::new(env.pool.clone(), p.clone(), metrics.clone());
        // Idle may only mean the checkpoint row was just made: step to the end.
        let end = crate::support::last_position(&env.pool).await;
        while checkpoint::load(&env.pool, &projection::checkpoint_name(&*p))
            .await
            .unwrap()
            < end
        {
            if runner.step().await.unwrap() == StepOutcome::Idle {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let schema = format!("rebuild_{}", p.name());
        projection::rebuild_to_schema(&env.pool, &*p, &schema, Some(end))
            .await
            .unwrap();
        // And once more one event at a time through `apply`, the rule the
        // batch forms (`apply_batch`) must agree with.
        let one = format!("one_by_one_{}", p.name());
        let mut conn = env.pool.acquire().await.unwrap().detach();
        for sql in [
            format!("CREATE SCHEMA {one}"),
            format!("SET search_path TO {one}"),
        ] {
            sqlx::query(&sql).execute(&mut conn).await.unwrap();
        }
        sqlx::raw_sql(p.schema_sql())
            .execute(&mut conn)
            .await
            .unwrap();
        for stored in switchboard::store::read_global(
            &env.pool,
            switchboard::store::Position::START,
            1_000_000,
        )
        .await
        .unwrap()
        .into_iter()
        .filter(|e| p.stream_types().contains(&e.envelope.stream_type))
        {
            p.apply(&mut conn, &stored.envelope, &stored.event().unwrap())
                .await
                .unwrap();
        }
        for table in p.tables() {
            let q = |s: &str| {
                format!("SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]') FROM {s}.{table} t")
            };
            let live: serde_json::Value = sqlx::query_scalar(&q("public"))
                .fetch_one(&env.pool)
                .await
                .unwrap();
            let rebuilt: serde_json::Value = sqlx::query_scalar(&q(&schema))
                .fetch_one(&env.pool)
                .await
                .unwrap();
            let alone: serde_json::Value = sqlx::query_scalar(&q(&one))
                .fetch_one(&env.pool)
                .await
                .unwrap();
            assert!(live.as_array().unwrap().len() >= 3, "{table} has rows");
            assert_eq!(live, rebuilt, "{table}");
            assert_eq!(live, alone, "{table}: batches and single events agree");
        }
    }
    env.cleanup(None).await;
}
