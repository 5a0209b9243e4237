//! The store's NOTIFY, heard through one listener per process: readers of
//! one process share it, and it survives losing its connection.

use std::time::Duration;

use events::TenantId;
use switchboard::store::{self, Store, Wake};
use uuid::Uuid;

use crate::app::TestApp;
use crate::support::{append_n, TestEnv};

async fn listeners(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND query = 'LISTEN \"switchboard_events\"'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readers_of_a_process_share_one_listener() {
    // Relay, four projectors and the gateway's outcome follower all read
    // the global order in this process.
    let app = TestApp::spawn().await;
    let t = app.admin(TenantId::new());
    app.twilio(&t, "tok").await;
    assert_eq!(listeners(&app.env.pool).await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_still_wakes_for_another_process_after_the_listener_lost_its_connection() {
    let env = TestEnv::new().await;
    let here = Store::new(env.pool.clone());
    let mut wake = Wake::new(&env.pool, Some(&here), None).await.unwrap();
    // The listener is up once its backend shows, then it is cut off.
    assert!(
        crate::support::eventually(Duration::from_secs(5), || async {
            listeners(&env.pool).await == 1
        })
        .await
    );
    let cut: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND query = 'LISTEN \"switchboard_events\"'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(cut, 1);
    // Drain what the start signalled; then another process (not `here`,
    // so no feed) appends.
    let read_to = store::head(&env.pool).await.unwrap();
    while wake.wait(Duration::from_millis(50), read_to).await.unwrap() {}
    append_n(&env.pool, TenantId::new(), Uuid::now_v7(), 0, 1).await;
    let started = tokio::time::Instant::now();
    let woke = wake.wait(Duration::from_secs(10), read_to).await.unwrap();
    assert!(woke, "woken by a signal, not by the idle timer");
    assert!(started.elapsed() < Duration::from_secs(5));
    env.cleanup(None).await;
}
