//! Command state from the per-process cache: a state another process moved
//! on costs a retry from fresh state, never a wrong write or a wrong refusal,
//! and reading it never folds the whole history.

use events::TenantId;
use switchboard::commands::state::LimitsState;
use switchboard::commands::update_limits::UpdateLimits;
use switchboard::domain::CallLimits;
use switchboard::store::{CommandMeta, Store};
use switchboard::write::{self, RunError};

use crate::support::TestEnv;

fn patch(tenant: TenantId, daily_minutes_max: u32, if_match: Option<i64>) -> UpdateLimits {
    UpdateLimits {
        tenant_id: tenant,
        defaults: CallLimits::SHIPPED_DEFAULTS,
        daily_minutes_max: Some(daily_minutes_max),
        if_match,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_state_cached_by_one_process_and_moved_on_by_another_is_decided_again() {
    let env = TestEnv::new().await;
    // Two processes: two stores over one database, each with its cache.
    let (one, two) = (Store::new(env.pool.clone()), Store::new(env.pool.clone()));
    let tenant = TenantId::new();
    let run = |st: &Store, cmd: UpdateLimits| {
        let st = st.clone();
        async move { write::run(&st, &CommandMeta::new(tenant, "test"), &cmd).await }
    };
    run(&one, patch(tenant, 1, None)).await.unwrap();
    // `two` moves the stream on; `one`'s cache still says version 1.
    run(&two, patch(tenant, 2, Some(1))).await.unwrap();
    // `one` is asked with the current version: its stale cache would say 412;
    // it decides again on fresh state and writes version 3.
    let ran = run(&one, patch(tenant, 3, Some(2))).await.unwrap();
    assert_eq!(ran.written.len(), 1);
    assert_eq!(ran.written[0].envelope.version, 3);
    // A stale If-Match is refused on fresh state, naming the current version.
    match run(&two, patch(tenant, 4, Some(2))).await {
        Err(RunError::Rejected(switchboard::commands::Rejection::PreconditionFailed {
            current: 3,
        })) => {}
        other => panic!("expected 412 at version 3, got {other:?}"),
    }
    // Setting what is set appends nothing, even from a stale cache.
    let id = events::call_limits_stream_id(tenant);
    let noop = run(&two, patch(tenant, 3, None)).await.unwrap();
    assert!(noop.written.is_empty());
    assert_eq!(noop.state.head.version, 3);
    let stored = switchboard::store::read_stream(&env.pool, id, None)
        .await
        .unwrap();
    assert_eq!(stored.len(), 3);
    env.cleanup(None).await;
}

#[tokio::test]
async fn a_fresh_read_reads_only_what_is_newer() {
    let env = TestEnv::new().await;
    let st = Store::new(env.pool.clone());
    let tenant = TenantId::new();
    let id = events::call_limits_stream_id(tenant);
    for i in 0..50 {
        write::run(
            &st,
            &CommandMeta::new(tenant, "t"),
            &patch(tenant, i + 1, None),
        )
        .await
        .unwrap();
    }
    let cached = st
        .load::<LimitsState>(id, LimitsState::apply)
        .await
        .unwrap();
    assert!(!cached.fresh, "served from the cache");
    assert_eq!(cached.head.version, 50);
    // Another process appends one more; a fresh load catches up with it alone.
    let other = Store::new(env.pool.clone());
    write::run(
        &other,
        &CommandMeta::new(tenant, "t"),
        &patch(tenant, 999, None),
    )
    .await
    .unwrap();
    let fresh = st
        .load_fresh::<LimitsState>(id, LimitsState::apply)
        .await
        .unwrap();
    assert_eq!(fresh.head.version, 51);
    assert_eq!(fresh.state.limits.unwrap().daily_minutes_max, 999);
    let after = switchboard::store::read_stream_after(&env.pool, id, 50)
        .await
        .unwrap();
    assert_eq!(after.len(), 1, "what a fresh load of a cached state reads");
    env.cleanup(None).await;
}
