//! Snapshots of command state on a real database: a long stream is
//! snapshotted as it grows, a process that has not seen it starts from the
//! snapshot (the worker's judged read too), and a snapshot the stream does
//! not vouch for, of a kind this build does not know, or unreadable, is
//! ignored: the stream is folded from its first event.

use std::time::Duration;

use events::TenantId;
use sqlx::PgPool;
use switchboard::commands::state::LimitsState;
use switchboard::commands::update_limits::UpdateLimits;
use switchboard::domain::CallLimits;
use switchboard::store::{self, CommandMeta, Seed, Store, SNAPSHOT_EVERY};
use switchboard::write;
use uuid::Uuid;

use crate::support::TestEnv;

/// `n` PATCHes of `tenant`'s limits through `st`, the last setting
/// `daily_minutes_max` to `n`.
async fn patches(st: &Store, tenant: TenantId, n: u32) {
    for i in 1..=n {
        let cmd = UpdateLimits {
            tenant_id: tenant,
            defaults: CallLimits::SHIPPED_DEFAULTS,
            daily_minutes_max: Some(i),
            ..Default::default()
        };
        write::run(st, &CommandMeta::new(tenant, "t"), &cmd)
            .await
            .unwrap();
    }
}

/// The version of `id`'s limits snapshot, once it reaches `version` (the
/// writer is a task of its own).
async fn snapshot_at(pool: &PgPool, id: Uuid, version: i64) -> i64 {
    for _ in 0..1_500 {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT version FROM stream_snapshots WHERE stream_id = $1 AND kind = 'limits/1'",
        )
        .bind(id)
        .fetch_optional(pool)
        .await
        .unwrap();
        if at >= Some(version) {
            return at.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no snapshot of {id} at version {version}");
}

/// Overwrites the limits in `id`'s snapshot, so a state folded onto it
/// shows where it started.
async fn mark(pool: &PgPool, id: Uuid, daily_minutes_max: u32) {
    sqlx::query(
        "UPDATE stream_snapshots \
         SET state = jsonb_set(state, '{limits,daily_minutes_max}', to_jsonb($2::int)) \
         WHERE stream_id = $1",
    )
    .bind(id)
    .bind(daily_minutes_max as i32)
    .execute(pool)
    .await
    .unwrap();
}

fn minutes(s: &LimitsState) -> u32 {
    s.limits.unwrap().daily_minutes_max
}

#[tokio::test]
async fn a_long_stream_is_snapshotted_and_a_new_process_starts_from_it() {
    let env = TestEnv::new().await;
    let one = Store::new(env.pool.clone());
    let tenant = TenantId::new();
    let id = events::call_limits_stream_id(tenant);
    let n = 2 * SNAPSHOT_EVERY as u32;
    patches(&one, tenant, n - 50).await;
    // Taken as the cached state passed each hundredth version, not after.
    let every = SNAPSHOT_EVERY;
    assert_eq!(snapshot_at(&env.pool, id, every).await, every);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(snapshot_at(&env.pool, id, every).await, every);
    patches(&one, tenant, 50).await;
    assert_eq!(snapshot_at(&env.pool, id, n as i64).await, n as i64);

    // A new process reads the snapshot: the same state as a full fold.
    let two = Store::new(env.pool.clone());
    let loaded = two.load(id, LimitsState::apply).await.unwrap();
    let full: LimitsState = store::load(&env.pool, id, LimitsState::apply)
        .await
        .unwrap();
    assert_eq!(loaded.state, full);
    assert_eq!(loaded.head.version, n as i64);
    assert_eq!(minutes(&loaded.state), 50, "the last PATCH's");

    // It started there and read nothing before: a marked snapshot shows.
    mark(&env.pool, id, 424_242).await;
    let three = Store::new(env.pool.clone());
    let marked = three.load_fresh(id, LimitsState::apply).await.unwrap();
    assert_eq!(minutes(&marked.state), 424_242);
    assert_eq!(marked.head, loaded.head, "the head is the stream's own");

    // And a command decided on it chains onto the stream as stored.
    patches(&three, tenant, 1).await;
    let stored = store::read_stream(&env.pool, id, None).await.unwrap();
    assert_eq!(stored.len(), n as usize + 1);
    store::verify_chain(id, &stored, None).unwrap();
    env.cleanup(None).await;
}

#[tokio::test]
async fn a_snapshot_the_stream_does_not_vouch_for_or_cannot_be_read_is_ignored() {
    let env = TestEnv::new().await;
    let one = Store::new(env.pool.clone());
    let tenant = TenantId::new();
    let id = events::call_limits_stream_id(tenant);
    let n = SNAPSHOT_EVERY as u32;
    patches(&one, tenant, n).await;
    snapshot_at(&env.pool, id, n as i64).await;
    mark(&env.pool, id, 424_242).await;
    // A process folding from the start takes a snapshot of its own, which
    // replaces the one it could not use.
    let from_scratch = |what: &'static str| {
        let pool = env.pool.clone();
        async move {
            let st = Store::new(pool.clone());
            let loaded = st.load(id, LimitsState::apply).await.unwrap();
            assert_eq!(minutes(&loaded.state), n, "{what}: folded from the start");
            assert_eq!(loaded.head.version, n as i64, "{what}");
            mended(&pool, id, n).await;
            mark(&pool, id, 424_242).await;
        }
    };
    let set = |sql: &'static str| {
        let pool = env.pool.clone();
        async move {
            sqlx::query(sql).bind(id).execute(&pool).await.unwrap();
        }
    };

    // Not the hash of the event at its version (another history).
    set(
        "UPDATE stream_snapshots SET hash = set_byte(hash, 0, get_byte(hash, 0) # 255) \
         WHERE stream_id = $1",
    )
    .await;
    from_scratch("a hash the stream does not have").await;
    set("UPDATE stream_snapshots SET hash = e.hash FROM events e \
         WHERE e.stream_id = $1 AND e.version = 1 AND stream_snapshots.stream_id = $1")
    .await;
    from_scratch("the hash of another version").await;

    // Of a revision this build does not know.
    set("UPDATE stream_snapshots SET kind = 'limits/0' WHERE stream_id = $1").await;
    from_scratch("an unknown kind").await;
    set("DELETE FROM stream_snapshots WHERE stream_id = $1 AND kind = 'limits/0'").await;

    // Its kind and readable, but the state says it is another version's.
    set(
        "UPDATE stream_snapshots SET state = jsonb_set(state, '{version}', '99') \
         WHERE stream_id = $1",
    )
    .await;
    from_scratch("a state of another version").await;

    // Its kind, but a value it cannot read.
    set("UPDATE stream_snapshots SET state = '{\"version\": \"x\"}' WHERE stream_id = $1").await;
    from_scratch("an unreadable value").await;
    env.cleanup(None).await;
}

/// Waits until `id`'s limits snapshot is a good one again: vouched for by
/// the stream, unmarked, at version `n`.
async fn mended(pool: &PgPool, id: Uuid, n: u32) {
    for _ in 0..1_500 {
        let good: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM stream_snapshots s \
             JOIN events e ON e.stream_id = s.stream_id AND e.version = s.version \
                          AND e.hash = s.hash \
             WHERE s.stream_id = $1 AND s.kind = 'limits/1' AND s.version = $2 \
               AND (s.state #>> '{limits,daily_minutes_max}')::int = $2",
        )
        .bind(id)
        .bind(n as i64)
        .fetch_one(pool)
        .await
        .unwrap();
        if good == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the snapshot of {id} was not mended");
}

/// The worker's judged read: states not cached are seeded from their
/// snapshots in one query, then brought up to date with the events after.
#[tokio::test]
async fn stale_states_not_cached_are_seeded_from_their_snapshots() {
    let env = TestEnv::new().await;
    let one = Store::new(env.pool.clone());
    let (a, b) = (TenantId::new(), TenantId::new());
    let (ia, ib) = (
        events::call_limits_stream_id(a),
        events::call_limits_stream_id(b),
    );
    let n = SNAPSHOT_EVERY as u32;
    patches(&one, a, n + 3).await;
    patches(&one, b, 2).await;
    snapshot_at(&env.pool, ia, n as i64).await;

    let two = Store::new(env.pool.clone());
    let mut sa = two.stale::<LimitsState>(ia);
    let mut sb = two.stale::<LimitsState>(ib);
    two.seed(&env.pool, &mut [&mut sa as &mut dyn Seed, &mut sb])
        .await
        .unwrap();
    // `a` starts at its snapshot; `b`, short, has none and starts at 0.
    assert_eq!(sa.after(), (ia, n as i64));
    assert_eq!(sb.after(), (ib, 0));
    let newer = store::read_streams_after(&env.pool, &[sa.after(), sb.after()])
        .await
        .unwrap();
    assert_eq!(newer.len(), 3 + 2, "only what the snapshot lacks");
    let fa = two.fresh(sa, &newer, LimitsState::apply).unwrap();
    let fb = two.fresh(sb, &newer, LimitsState::apply).unwrap();
    assert_eq!((fa.head.version, minutes(&fa.state)), (n as i64 + 3, n + 3));
    assert_eq!((fb.head.version, minutes(&fb.state)), (2, 2));
    // Cached now: a second seed asks nothing (it would fail on a closed pool).
    let mut again = two.stale::<LimitsState>(ia);
    env.pool.close().await;
    two.seed(&env.pool, &mut [&mut again as &mut dyn Seed])
        .await
        .unwrap();
    assert_eq!(again.after(), (ia, n as i64 + 3));
    env.cleanup(None).await;
}

/// Snapshots are only a cache: with their table gone (a hand-made
/// failure), a process folds from the start and commands go on.
#[tokio::test]
async fn without_snapshots_a_process_folds_from_the_start() {
    let env = TestEnv::new().await;
    let one = Store::new(env.pool.clone());
    let tenant = TenantId::new();
    let id = events::call_limits_stream_id(tenant);
    let n = SNAPSHOT_EVERY as u32 + 5;
    patches(&one, tenant, n).await;
    snapshot_at(&env.pool, id, SNAPSHOT_EVERY).await;
    sqlx::query("DROP TABLE stream_snapshots")
        .execute(&env.pool)
        .await
        .unwrap();
    let two = Store::new(env.pool.clone());
    let loaded = two.load(id, LimitsState::apply).await.unwrap();
    assert_eq!((loaded.head.version, minutes(&loaded.state)), (n as i64, n));
    patches(&two, tenant, SNAPSHOT_EVERY as u32).await;
    let stored = store::read_stream(&env.pool, id, None).await.unwrap();
    assert_eq!(stored.len(), n as usize + SNAPSHOT_EVERY as usize);
    env.cleanup(None).await;
}
