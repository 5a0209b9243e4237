//! Appends: expected versions under races, idempotent commands, and
//! all-or-nothing multi-stream appends.

use events::{Event, ProviderDeleted, ProviderRelabeled, StreamType, TenantId};
use switchboard::store::{self, AppendOutcome, ExpectedVersion, StoreError, StreamAppend};
use uuid::Uuid;

use crate::support::{meta, TestEnv};

fn relabel(stream: Uuid, expected: ExpectedVersion, label: &str) -> StreamAppend {
    StreamAppend {
        stream_type: StreamType::Provider,
        stream_id: stream,
        expected,
        events: vec![Event::ProviderRelabeled(ProviderRelabeled {
            label: label.into(),
        })],
    }
}

#[tokio::test]
async fn concurrent_appenders_each_version_won_by_exactly_one() {
    let env = TestEnv::new().await;
    let (tenant, stream) = (TenantId::new(), Uuid::new_v4());
    const ROUNDS: i64 = 25;
    const RACERS: usize = 8;
    for round in 0..ROUNDS {
        let mut tasks = Vec::new();
        for racer in 0..RACERS {
            let pool = env.pool.clone();
            tasks.push(tokio::spawn(async move {
                let sa = relabel(
                    stream,
                    ExpectedVersion::from_version(round),
                    &format!("r{round}-{racer}"),
                );
                store::append(&pool, meta(tenant), &[sa]).await
            }));
        }
        let mut won = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(AppendOutcome::Appended(ev)) => {
                    assert_eq!(ev.len(), 1);
                    assert_eq!(ev[0].envelope.version, round + 1);
                    won += 1;
                }
                Err(StoreError::Conflict { .. }) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(won, 1, "round {round}: exactly one racer wins the version");
    }
    let stored = store::read_stream(&env.pool, stream, None).await.unwrap();
    let versions: Vec<i64> = stored.iter().map(|e| e.envelope.version).collect();
    assert_eq!(
        versions,
        (1..=ROUNDS).collect::<Vec<_>>(),
        "no version lost or doubled"
    );
    env.cleanup(None).await;
}

#[tokio::test]
async fn same_command_id_twice_writes_once() {
    let env = TestEnv::new().await;
    let (tenant, stream) = (TenantId::new(), Uuid::new_v4());
    let m = meta(tenant);
    let sa = relabel(stream, ExpectedVersion::NoStream, "a");
    let first = store::append(&env.pool, m.clone(), std::slice::from_ref(&sa))
        .await
        .unwrap();
    assert!(matches!(first, AppendOutcome::Appended(_)));
    // The repeat even carries a now-stale expectation: it is answered from
    // the first result, not decided again.
    let second = store::append(&env.pool, m.clone(), &[sa]).await.unwrap();
    let AppendOutcome::Duplicate(again) = second else {
        panic!("expected duplicate")
    };
    assert_eq!(again, first.events());
    // Racing repeats of one new command: one write.
    let m2 = meta(tenant);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (pool, m2) = (env.pool.clone(), m2.clone());
        tasks.push(tokio::spawn(async move {
            store::append(
                &pool,
                m2,
                &[relabel(stream, ExpectedVersion::Exact(1), "b")],
            )
            .await
        }));
    }
    let mut appended = 0;
    for t in tasks {
        if let AppendOutcome::Appended(_) = t.await.unwrap().unwrap() {
            appended += 1;
        }
    }
    assert_eq!(appended, 1);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(n, 2);
    env.cleanup(None).await;
}

#[tokio::test]
async fn multi_stream_append_with_one_conflict_writes_nothing() {
    let env = TestEnv::new().await;
    let tenant = TenantId::new();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    store::append(
        &env.pool,
        meta(tenant),
        &[relabel(b, ExpectedVersion::NoStream, "b1")],
    )
    .await
    .unwrap();
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    let r = store::append(
        &env.pool,
        meta(tenant),
        &[
            relabel(a, ExpectedVersion::NoStream, "a1"),
            // b is at version 1, not absent.
            relabel(b, ExpectedVersion::NoStream, "b2"),
        ],
    )
    .await;
    match r {
        Err(StoreError::Conflict {
            stream_id, actual, ..
        }) => {
            assert_eq!(stream_id, b);
            assert_eq!(actual, Some(1));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(before, after, "nothing of the failed command was written");
    assert!(store::read_stream(&env.pool, a, None)
        .await
        .unwrap()
        .is_empty());

    // Both streams in one transaction when both expectations hold.
    let ok = store::append(
        &env.pool,
        meta(tenant),
        &[
            relabel(a, ExpectedVersion::NoStream, "a1"),
            StreamAppend {
                stream_type: StreamType::Provider,
                stream_id: b,
                expected: ExpectedVersion::Exact(1),
                events: vec![Event::ProviderDeleted(ProviderDeleted {})],
            },
        ],
    )
    .await
    .unwrap();
    let positions: Vec<i64> = ok
        .events()
        .iter()
        .map(|e| e.position.global_position)
        .collect();
    assert_eq!(positions.len(), 2);
    assert_eq!(
        positions[0] + 1,
        positions[1],
        "one command, consecutive positions"
    );
    env.cleanup(None).await;
}
