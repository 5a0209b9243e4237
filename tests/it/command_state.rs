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

/// Several cached states brought up to date by one query: each gets its
/// own stream's newer events, in version order, whatever else was read.
#[tokio::test]
async fn several_stale_states_are_brought_up_to_date_by_one_read() {
    let env = TestEnv::new().await;
    let (st, other) = (Store::new(env.pool.clone()), Store::new(env.pool.clone()));
    let (a, b, c) = (TenantId::new(), TenantId::new(), TenantId::new());
    let run = |s: &Store, t: TenantId, v: u32| {
        let s = s.clone();
        async move {
            write::run(&s, &CommandMeta::new(t, "t"), &patch(t, v, None))
                .await
                .unwrap()
        }
    };
    // `st` caches a at 2 and b at 1; `other` moves a to 4 and b to 2; c is
    // cached nowhere and has 3 versions.
    for v in 1..=2 {
        run(&st, a, v).await;
    }
    run(&st, b, 10).await;
    for v in 3..=4 {
        run(&other, a, v).await;
    }
    run(&other, b, 20).await;
    for v in 100..=102 {
        run(&other, c, v).await;
    }
    let ids = [a, b, c].map(events::call_limits_stream_id);
    let stale = ids.map(|id| st.stale::<LimitsState>(id));
    assert_eq!(
        stale.iter().map(|s| s.after().1).collect::<Vec<_>>(),
        [2, 1, 0]
    );
    let after: Vec<_> = stale.iter().map(|s| s.after()).collect();
    let newer = switchboard::store::read_streams_after(&env.pool, &after)
        .await
        .unwrap();
    let read: Vec<(uuid::Uuid, i64)> = newer
        .iter()
        .map(|e| (e.envelope.stream_id, e.envelope.version))
        .collect();
    assert_eq!(
        read,
        [
            (ids[0], 3),
            (ids[0], 4),
            (ids[1], 2),
            (ids[2], 1),
            (ids[2], 2),
            (ids[2], 3)
        ]
    );
    let [sa, sb, sc] = stale;
    let fresh = |s| st.fresh(s, &newer, LimitsState::apply).unwrap();
    let (fa, fb, fc) = (fresh(sa), fresh(sb), fresh(sc));
    assert_eq!(
        (fa.head.version, fb.head.version, fc.head.version),
        (4, 2, 3)
    );
    let max =
        |l: &switchboard::store::Loaded<LimitsState>| l.state.limits.unwrap().daily_minutes_max;
    assert_eq!((max(&fa), max(&fb), max(&fc)), (4, 20, 102));
    // And the cache now holds them: the next stale read starts there.
    assert_eq!(st.stale::<LimitsState>(ids[2]).after().1, 3);
    env.cleanup(None).await;
}
