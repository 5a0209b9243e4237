//! The swap of a live rebuild, deterministically: the copy behind the live
//! projector (events applied inside the swap), ahead of it (the checkpoint
//! moves forward), and a runner whose checkpoint moved under it.

use std::sync::{mpsc, Arc};
use std::time::Duration;

use events::*;
use projections::providers::Providers;
use projections::Projection;
use switchboard::checkpoint;
use switchboard::metrics::Metrics;
use switchboard::projection::swap::Phase;
use switchboard::projection::{self, Runner, StepOutcome};
use switchboard::store::{self, ExpectedVersion, Position, StreamAppend};
use uuid::Uuid;

use crate::support::{last_position, meta, TestEnv};

async fn create_providers(pool: &sqlx::PgPool, n: usize) {
    let tenant = TenantId::new();
    for i in 0..n {
        let created = Event::ProviderCreated(ProviderCreated {
            provider: ProviderKind::Twilio,
            label: format!("p{i}"),
            credentials: EncryptedCredentials {
                key_id: "k1".into(),
                ciphertext: "ct".into(),
                masked: Default::default(),
            },
        });
        let sa = StreamAppend {
            stream_type: StreamType::Provider,
            stream_id: Uuid::now_v7(),
            expected: ExpectedVersion::NoStream,
            events: vec![created],
        };
        store::append(pool, meta(tenant), &[sa]).await.unwrap();
    }
}

fn runner(env: &TestEnv) -> Runner {
    Runner::new(
        env.pool.clone(),
        Arc::new(Providers),
        Arc::new(Metrics::new()),
    )
}

/// Steps `runner` until it has applied everything written so far.
async fn drive(runner: &Runner) -> Position {
    let end = last_position(&runner.pool).await;
    let name = projection::checkpoint_name(&*runner.projection);
    for _ in 0..1000 {
        let at = checkpoint::load(&runner.pool, &name).await.unwrap();
        if at >= end {
            return at;
        }
        if runner.step().await.unwrap() == StepOutcome::Idle {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    panic!("the runner did not catch up");
}

/// The live table equals a rebuild from nothing, and has `rows` rows.
async fn assert_equals_rebuild(env: &TestEnv, rows: usize) {
    let q = |s: &str| {
        format!("SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]') FROM {s}.providers t")
    };
    let schema = format!("fresh_{}", &Uuid::new_v4().simple().to_string()[..8]);
    let end = last_position(&env.pool).await;
    projection::rebuild_to_schema(&env.pool, &Providers, &schema, Some(end))
        .await
        .unwrap();
    let live: serde_json::Value = sqlx::query_scalar(&q("public"))
        .fetch_one(&env.pool)
        .await
        .unwrap();
    let fresh: serde_json::Value = sqlx::query_scalar(&q(&schema))
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(live, fresh);
    assert_eq!(live.as_array().unwrap().len(), rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_swap_applies_what_the_live_projector_committed_meanwhile() {
    let env = TestEnv::new().await;
    projection::ensure_schema(&env.pool, &Providers)
        .await
        .unwrap();
    create_providers(&env.pool, 5).await;
    let live = runner(&env);
    drive(&live).await;
    // Just before the swap, three more events arrive and the live projector
    // applies them: the copy is behind the live checkpoint.
    let (go, wait_go) = mpsc::channel::<()>();
    let (done, wait_done) = mpsc::channel::<Position>();
    let helper = {
        let (pool, live) = (env.pool.clone(), live.clone());
        tokio::spawn(async move {
            tokio::task::spawn_blocking(move || wait_go.recv().unwrap())
                .await
                .unwrap();
            create_providers(&pool, 3).await;
            done.send(drive(&live).await).unwrap();
        })
    };
    let mut live_at = None;
    let report = projection::rebuild_and_swap(&env.pool, &Providers, &mut move |p| {
        if p.phase == Phase::Swap && live_at.is_none() {
            go.send(()).unwrap();
            live_at = Some(wait_done.recv().unwrap());
        }
    })
    .await
    .unwrap();
    helper.await.unwrap();
    assert_eq!((report.copied, report.applied_in_swap), (5, 3));
    assert_equals_rebuild(&env, 8).await;
    // The copy was indexed once filled; the swapped-in table has the
    // indexes the live one had.
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public' \
         AND tablename = 'providers' ORDER BY 1",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(indexes, ["providers_pkey", "providers_tenant"]);
    // The live projector carries on from there.
    assert_eq!(live.step().await.unwrap(), StepOutcome::Idle);
    create_providers(&env.pool, 1).await;
    drive(&live).await;
    assert_equals_rebuild(&env, 9).await;
    env.cleanup(None).await;
}

#[tokio::test]
async fn audit_swap_ahead_of_a_lagging_projector_moves_its_checkpoint() {
    let env = TestEnv::new().await;
    projection::ensure_schema(&env.pool, &Providers)
        .await
        .unwrap();
    create_providers(&env.pool, 4).await;
    // The live projector has applied nothing yet, and all four are visible.
    crate::support::visible_all(&env.pool).await;
    let report = projection::rebuild_and_swap(&env.pool, &Providers, &mut |_| {})
        .await
        .unwrap();
    assert_eq!((report.copied, report.applied_in_swap), (4, 0));
    let name = projection::checkpoint_name(&Providers);
    assert_eq!(
        checkpoint::load(&env.pool, &name).await.unwrap(),
        report.position
    );
    let live = runner(&env);
    create_providers(&env.pool, 2).await;
    // A second application of any event would violate the primary key and
    // stop the projector.
    drive(&live).await;
    assert_equals_rebuild(&env, 6).await;
    env.cleanup(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_runner_starts_over_when_a_swap_moved_its_checkpoint() {
    let env = TestEnv::new().await;
    projection::ensure_schema(&env.pool, &Providers)
        .await
        .unwrap();
    create_providers(&env.pool, 3).await;
    let all = crate::support::visible_all(&env.pool).await;
    let name = projection::checkpoint_name(&Providers);
    checkpoint::load(&env.pool, &name).await.unwrap();
    // Play a swap: hold the checkpoint row, let the runner read its batch
    // and block, then install tables already holding those events.
    let mut swap = env.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM checkpoints WHERE name = $1 FOR UPDATE")
        .bind(&name)
        .execute(&mut *swap)
        .await
        .unwrap();
    let live = runner(&env);
    let step = tokio::spawn(async move { live.step().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!step.is_finished(), "the runner waits for the swap");
    for stored in &all {
        let event = stored.event().unwrap();
        Providers
            .apply(&mut swap, &stored.envelope, &event)
            .await
            .unwrap();
    }
    let at = all.last().unwrap().position;
    checkpoint::save(&mut *swap, &name, at).await.unwrap();
    swap.commit().await.unwrap();
    assert_eq!(step.await.unwrap().unwrap(), StepOutcome::Idle);
    assert_eq!(checkpoint::load(&env.pool, &name).await.unwrap(), at);
    assert_equals_rebuild(&env, 3).await;
    env.cleanup(None).await;
}
