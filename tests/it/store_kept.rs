//! Connections kept out of the pool (`store::Kept`): reused without the
//! pool's pings, and never reused once lost. The store's writer retries a
//! batch whose connection died, so a server that dropped its connections
//! costs no command an error.

use std::time::Duration;

use events::{Event, ProviderDeleted, TenantId};
use switchboard::store::{ExpectedVersion, Kept, Store, StreamAppend};
use uuid::Uuid;

use crate::support::{eventually, meta, TestEnv};

async fn backend(conn: &mut sqlx::PgConnection) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(conn)
        .await
}

/// Ends backend `pid` and waits until it is gone (the signal is not the
/// end: a statement sent at once could still be answered).
async fn terminate(pool: &sqlx::PgPool, pid: i32) {
    let done: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(done);
    let gone = eventually(Duration::from_secs(10), || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = $1")
            .bind(pid)
            .fetch_one(pool)
            .await
            .unwrap();
        n == 0
    })
    .await;
    assert!(gone, "backend {pid} still there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_given_back_is_handed_out_again_and_one_dropped_is_not() {
    let env = TestEnv::new().await;
    let kept = Kept::new(env.pool.clone(), 2);
    let mut a = kept.get().await.unwrap();
    let first = backend(&mut a).await.unwrap();
    a.give_back(None);
    let mut b = kept.get().await.unwrap();
    assert_eq!(backend(&mut b).await.unwrap(), first, "the same connection");
    // Dropped without give_back (a cancelled statement, say): closed.
    drop(b);
    let mut c = kept.get().await.unwrap();
    assert_ne!(backend(&mut c).await.unwrap(), first);
    // An error the server answered leaves the connection good.
    let second = backend(&mut c).await.unwrap();
    let err = sqlx::query("SELECT 1/0")
        .execute(&mut *c)
        .await
        .unwrap_err();
    c.give_back(Some(&err));
    let mut d = kept.get().await.unwrap();
    assert_eq!(backend(&mut d).await.unwrap(), second);
    d.give_back(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_retires_the_idle_ones_with_it() {
    let env = TestEnv::new().await;
    let kept = Kept::new(env.pool.clone(), 2);
    let (mut a, mut b) = (kept.get().await.unwrap(), kept.get().await.unwrap());
    let (pa, pb) = (
        backend(&mut a).await.unwrap(),
        backend(&mut b).await.unwrap(),
    );
    b.give_back(None);
    // The server goes away under both (as in a restart).
    terminate(&env.pool, pa).await;
    terminate(&env.pool, pb).await;
    let err = backend(&mut a).await.unwrap_err();
    assert!(switchboard::store::is_lost(&err), "{err:?}");
    a.give_back(Some(&err));
    // b, idle and just as dead, is not handed out: a fresh one is.
    let mut c = kept.get().await.unwrap();
    let pc = backend(&mut c).await.expect("a live connection");
    assert!(pc != pa && pc != pb);
    c.give_back(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_died_while_idle_is_found_before_a_statement_is() {
    let env = TestEnv::new().await;
    let kept = Kept::new(env.pool.clone(), 1);
    let mut a = kept.get().await.unwrap();
    let pa = backend(&mut a).await.unwrap();
    a.give_back(None);
    terminate(&env.pool, pa).await;
    // Idle past the check: pinged, found dead, replaced.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let mut b = kept.get().await.unwrap();
    let pb = backend(&mut b).await.expect("a live connection");
    assert_ne!(pb, pa);
    b.give_back(None);
}

fn one_event(stream: Uuid, version: i64) -> StreamAppend {
    StreamAppend {
        stream_type: events::StreamType::Provider,
        stream_id: stream,
        expected: ExpectedVersion::from_version(version),
        events: vec![Event::ProviderDeleted(ProviderDeleted {})],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_appends_through_a_connection_the_server_dropped() {
    let env = TestEnv::new().await;
    let store = Store::new(env.pool.clone());
    let tenant = TenantId::new();
    let stream = Uuid::now_v7();
    store
        .append(meta(tenant), &[one_event(stream, 0)], vec![])
        .await
        .unwrap();
    // Every backend of this database but the one asking: the writer's too.
    let pids: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert!(!pids.is_empty());
    for pid in pids {
        terminate(&env.pool, pid).await;
    }
    let out = store
        .append(meta(tenant), &[one_event(stream, 1)], vec![])
        .await
        .expect("appended on a new connection");
    assert_eq!(out.events()[0].envelope.version, 2);
}

/// A connection past its lifetime is closed when given back, or when it is
/// found aged in the idle list, and the next one is new, so its statements
/// are planned again (`Kept::replanning`, the projectors' connections).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_past_its_lifetime_is_closed_and_replaced() {
    let env = TestEnv::new().await;
    let kept = Kept::with_lifetime(env.pool.clone(), 1, Duration::from_millis(300));
    let mut a = kept.get().await.unwrap();
    let first = backend(&mut a).await.unwrap();
    a.give_back(None);
    let mut b = kept.get().await.unwrap();
    assert_eq!(backend(&mut b).await.unwrap(), first, "young: kept");
    tokio::time::sleep(Duration::from_millis(400)).await;
    b.give_back(None);
    let gone = eventually(Duration::from_secs(10), || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = $1")
            .bind(first)
            .fetch_one(&env.pool)
            .await
            .unwrap();
        n == 0
    })
    .await;
    assert!(gone, "the old backend ended");
    let mut c = kept.get().await.unwrap();
    let second = backend(&mut c).await.unwrap();
    assert_ne!(second, first, "a new connection");
    c.give_back(None);
    // One that aged while idle (a runner that stopped leading) is not
    // handed out again either.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut d = kept.get().await.unwrap();
    assert_ne!(backend(&mut d).await.unwrap(), second, "aged while idle");
    d.give_back(None);
    env.cleanup(None).await;
}
