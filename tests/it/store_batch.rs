//! Group commit: commands appended together are checked one by one, and a
//! `Store` shared by many tasks keeps every guarantee of a lone append.

use events::{Event, NumberId, ProviderId, ProviderRelabeled, StreamType, TenantId};
use std::collections::HashSet;

use switchboard::store::{
    self, append_batch, AppendOutcome, BatchCommand, ExpectedVersion, Guard, Store, StoreError,
    StreamAppend,
};
use uuid::Uuid;

use crate::support::{append_n, meta, TestEnv};

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

fn command(tenant: TenantId, appends: Vec<StreamAppend>, guards: Vec<Guard>) -> BatchCommand {
    BatchCommand {
        meta: meta(tenant),
        appends,
        guards,
    }
}

fn claim(e164: &str, tenant: TenantId) -> Guard {
    Guard::ClaimNumber {
        e164: e164.into(),
        tenant_id: tenant,
        number_id: NumberId::new(),
        credentials_id: ProviderId::new(),
    }
}

#[tokio::test]
async fn one_commands_failure_fails_that_command_only() {
    let env = TestEnv::new().await;
    let tenant = TenantId::new();
    let (a, b, c, d, e) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    append_n(&env.pool, tenant, b, 0, 2).await;
    let results = append_batch(
        &env.pool,
        vec![
            command(
                tenant,
                vec![relabel(a, ExpectedVersion::NoStream, "a")],
                vec![],
            ),
            // b is at 2, not 1.
            command(
                tenant,
                vec![relabel(b, ExpectedVersion::Exact(1), "b")],
                vec![],
            ),
            command(
                tenant,
                vec![relabel(c, ExpectedVersion::NoStream, "c")],
                vec![claim("+12025550100", tenant)],
            ),
            // The same number in the same batch: the first claim holds it.
            command(
                TenantId::new(),
                vec![relabel(d, ExpectedVersion::NoStream, "d")],
                vec![claim("+12025550100", tenant)],
            ),
            command(
                tenant,
                vec![relabel(e, ExpectedVersion::NoStream, "e")],
                vec![],
            ),
        ],
    )
    .await
    .unwrap();
    assert!(matches!(results[0], Ok(AppendOutcome::Appended(_))));
    assert!(matches!(
        results[1],
        Err(StoreError::Conflict { stream_id, actual: Some(2), .. }) if stream_id == b
    ));
    assert!(matches!(results[2], Ok(AppendOutcome::Appended(_))));
    assert!(matches!(results[3], Err(StoreError::Claimed)));
    assert!(matches!(results[4], Ok(AppendOutcome::Appended(_))));
    for (id, written) in [(a, 1), (b, 2), (c, 1), (d, 0), (e, 1)] {
        let n = store::read_stream(&env.pool, id, None).await.unwrap().len();
        assert_eq!(n, written, "stream {id}");
    }
    // The commands that committed got consecutive positions, in order.
    let positions: Vec<i64> = [&results[0], &results[2], &results[4]]
        .iter()
        .map(|r| r.as_ref().unwrap().events()[0].position.global_position)
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] + 1 == w[1]),
        "{positions:?}"
    );
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM number_claims")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(held, 1, "only the committed command's claim stays");
    env.cleanup(None).await;
}

#[tokio::test]
async fn guards_commit_with_their_command() {
    let env = TestEnv::new().await;
    let tenant = TenantId::new();
    let (provider, number) = (ProviderId::new(), NumberId::new());
    let claim = Guard::ClaimNumber {
        e164: "+12025550101".into(),
        tenant_id: tenant,
        number_id: number,
        credentials_id: provider,
    };
    let first = store::append_guarded(
        &env.pool,
        meta(tenant),
        &[relabel(number.uuid(), ExpectedVersion::NoStream, "n")],
        vec![claim.clone()],
    )
    .await;
    assert!(first.is_ok());
    // The provider is referenced: its deletion is refused, nothing written.
    let s = Uuid::new_v4();
    let refused = store::append_guarded(
        &env.pool,
        meta(tenant),
        &[relabel(s, ExpectedVersion::NoStream, "x")],
        vec![Guard::Unreferenced {
            credentials_id: provider,
        }],
    )
    .await;
    assert!(matches!(refused, Err(StoreError::Referenced)));
    assert!(store::read_stream(&env.pool, s, None)
        .await
        .unwrap()
        .is_empty());
    // Released, the number can be claimed again, and the provider deleted.
    store::append_guarded(
        &env.pool,
        meta(tenant),
        &[relabel(
            number.uuid(),
            ExpectedVersion::Exact(1),
            "released",
        )],
        vec![Guard::ReleaseNumber { number_id: number }],
    )
    .await
    .unwrap();
    store::append_guarded(
        &env.pool,
        meta(tenant),
        &[relabel(s, ExpectedVersion::NoStream, "x")],
        vec![Guard::Unreferenced {
            credentials_id: provider,
        }],
    )
    .await
    .unwrap();
    env.cleanup(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shared_store_under_many_tasks_keeps_versions_chains_and_order() {
    let env = TestEnv::new().await;
    let st = Store::new(env.pool.clone());
    let tenant = TenantId::new();
    let shared = Uuid::new_v4();
    let mut tasks = Vec::new();
    for t in 0..64 {
        let st = st.clone();
        tasks.push(tokio::spawn(async move {
            let own = Uuid::new_v4();
            let mut won = 0;
            for i in 0..20 {
                // Its own stream: never conflicts.
                st.append(
                    meta(tenant),
                    &[relabel(own, ExpectedVersion::from_version(i), "own")],
                    vec![],
                )
                .await
                .unwrap();
                // The shared stream: everyone races for the next version.
                let head = st
                    .load_fresh(shared, switchboard::commands::state::ProviderState::apply)
                    .await
                    .unwrap()
                    .head
                    .version;
                match st
                    .append(
                        meta(tenant),
                        &[relabel(
                            shared,
                            ExpectedVersion::from_version(head),
                            &format!("{t}"),
                        )],
                        vec![],
                    )
                    .await
                {
                    Ok(_) => won += 1,
                    Err(StoreError::Conflict { .. }) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            won
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += t.await.unwrap();
    }
    let all = crate::support::visible_all(&env.pool).await;
    assert_eq!(all.len(), 64 * 20 + won);
    let positions: HashSet<i64> = all.iter().map(|e| e.position.global_position).collect();
    assert_eq!(positions.len(), all.len(), "positions are unique");
    let versions: Vec<i64> = all
        .iter()
        .filter(|e| e.envelope.stream_id == shared)
        .map(|e| e.envelope.version)
        .collect();
    assert_eq!(
        versions,
        (1..=won as i64).collect::<Vec<_>>(),
        "one winner per version, in order"
    );
    let report = switchboard::audit::verify::verify_collect(&env.pool, None)
        .await
        .unwrap();
    assert!(report.ok, "{:?}", report.breaks);
    let batches = st
        .batch_stats()
        .batches
        .load(std::sync::atomic::Ordering::Relaxed);
    let commands = st
        .batch_stats()
        .commands
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        batches < commands,
        "commands shared calls ({commands} in {batches})"
    );
    env.cleanup(None).await;
}
