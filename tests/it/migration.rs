//! The migration to ordered positions renumbers a history written under the
//! old order (transaction id, position) into that order, keeps every hash
//! chain, and turns each checkpoint into the same place in the new order.

use events::TenantId;
use std::borrow::Cow;

use sqlx::migrate::Migrator;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::pg_base;

#[tokio::test]
async fn a_history_in_the_old_order_is_renumbered_into_it() {
    let name = format!("sbtest_{}", &Uuid::new_v4().simple().to_string()[..16]);
    let admin = PgPool::connect(&format!("{}/postgres", pg_base()))
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&admin)
        .await
        .unwrap();
    let pool = PgPool::connect(&format!("{}/{name}", pg_base()))
        .await
        .unwrap();
    let all = &switchboard::db::MIGRATOR;
    let before = Migrator {
        migrations: Cow::Owned(all.migrations.iter().take(3).cloned().collect()),
        ..Migrator::DEFAULT
    };
    before.run(&pool).await.unwrap();
    // Positions 1..4 written by transactions 20, 10, 30, 10: the old order
    // is 2, 4, 1, 3.
    let stream = Uuid::new_v4();
    for (pos, tx, version) in [(1i64, 20i64, 2i64), (2, 10, 1), (3, 30, 4), (4, 10, 3)] {
        sqlx::query(
            "INSERT INTO events (global_position, transaction_id, event_id, event_type, \
             schema_version, stream_type, stream_id, version, tenant_id, recorded_at, \
             command_id, correlation_id, actor, data, prev_hash, hash) \
             VALUES ($1, $2, $3, 'ProviderDeleted', 1, 'provider', $4, $5, $6, now(), $3, $3, \
             't', '{}', '\\x00', $7)",
        )
        .bind(pos)
        .bind(tx)
        .bind(Uuid::new_v4())
        .bind(stream)
        .bind(version)
        .bind(Uuid::nil())
        .bind(vec![version as u8])
        .execute(&pool)
        .await
        .unwrap();
    }
    // A reader that had got to (10, 4), i.e. past the first two in the old order.
    sqlx::query("INSERT INTO checkpoints (name, transaction_id, position) VALUES ('relay', 10, 4)")
        .execute(&pool)
        .await
        .unwrap();
    all.run(&pool).await.unwrap();
    let order: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT global_position, hash FROM events ORDER BY global_position")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        order,
        vec![(1, vec![1]), (2, vec![3]), (3, vec![2]), (4, vec![4])],
        "renumbered in (transaction, position) order; rows (and hashes) unchanged"
    );
    let at: i64 = sqlx::query_scalar("SELECT position FROM checkpoints WHERE name = 'relay'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(at, 2, "the checkpoint is the same place in the new order");
    // New appends continue after the history.
    let out = switchboard::store::append(
        &pool,
        switchboard::store::CommandMeta::new(TenantId::new(), "t"),
        &[switchboard::store::StreamAppend {
            stream_type: events::StreamType::Provider,
            stream_id: Uuid::new_v4(),
            expected: switchboard::store::ExpectedVersion::NoStream,
            events: vec![events::Event::ProviderDeleted(events::ProviderDeleted {})],
        }],
    )
    .await
    .unwrap();
    assert_eq!(out.events()[0].position.global_position, 5);
    pool.close().await;
    let _ = sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&admin)
        .await;
}
