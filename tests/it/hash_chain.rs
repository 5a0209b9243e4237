//! Hash chains: recomputed chains match, and tampering in the table is found.

use events::{Hash32, TenantId};
use switchboard::store::{self, verify_chain};
use uuid::Uuid;

use crate::support::{append_n, TestEnv};

async fn head(env: &TestEnv, stream: Uuid) -> Option<(i64, Hash32)> {
    let row: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, last_hash FROM streams WHERE stream_id = $1")
            .bind(stream)
            .fetch_optional(&env.pool)
            .await
            .unwrap();
    row.map(|(v, h)| (v, Hash32::from_slice(&h).unwrap()))
}

async fn check(env: &TestEnv, stream: Uuid) -> Result<(), store::ChainBreak> {
    let events = store::read_stream(&env.pool, stream, None).await.unwrap();
    verify_chain(stream, &events, head(env, stream).await)
}

#[tokio::test]
async fn chains_verify_and_tampering_is_named() {
    let env = TestEnv::new().await;
    let tenant = TenantId::new();
    let streams: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    for s in &streams {
        append_n(&env.pool, tenant, *s, 0, 3).await;
        append_n(&env.pool, tenant, *s, 3, 2).await;
    }
    for s in &streams {
        check(&env, *s).await.expect("untouched chain verifies");
    }
    let events = store::read_stream(&env.pool, streams[0], None)
        .await
        .unwrap();
    assert_eq!(events[0].envelope.prev_hash, Hash32::ZERO);

    // A payload altered in place.
    let victim = &store::read_stream(&env.pool, streams[0], None)
        .await
        .unwrap()[2];
    sqlx::query("UPDATE events SET data = '{\"tampered\": true}' WHERE event_id = $1")
        .bind(victim.envelope.event_id)
        .execute(&env.pool)
        .await
        .unwrap();
    let brk = check(&env, streams[0]).await.unwrap_err();
    assert_eq!(
        (brk.kind, brk.event_id),
        ("altered", Some(victim.envelope.event_id))
    );

    // An event deleted from the middle.
    let gone = &store::read_stream(&env.pool, streams[1], None)
        .await
        .unwrap()[1];
    sqlx::query("DELETE FROM events WHERE event_id = $1")
        .bind(gone.envelope.event_id)
        .execute(&env.pool)
        .await
        .unwrap();
    let brk = check(&env, streams[1]).await.unwrap_err();
    assert_eq!((brk.kind, brk.version), ("missing", 2));

    // The last event deleted: the stream head no longer matches.
    let last = store::read_stream(&env.pool, streams[2], None)
        .await
        .unwrap()
        .pop()
        .unwrap();
    sqlx::query("DELETE FROM events WHERE event_id = $1")
        .bind(last.envelope.event_id)
        .execute(&env.pool)
        .await
        .unwrap();
    let brk = check(&env, streams[2]).await.unwrap_err();
    assert_eq!((brk.kind, brk.version), ("missing", 5));

    // Two events swapped.
    let evs = store::read_stream(&env.pool, streams[3], None)
        .await
        .unwrap();
    let (x, y) = (&evs[1], &evs[2]);
    // Swap the version numbers through a temporary value.
    let mut tx = env.pool.begin().await.unwrap();
    sqlx::query("UPDATE events SET version = 1000 WHERE event_id = $1")
        .bind(x.envelope.event_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE events SET version = 2 WHERE event_id = $1")
        .bind(y.envelope.event_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE events SET version = 3 WHERE event_id = $1")
        .bind(x.envelope.event_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let brk = check(&env, streams[3]).await.unwrap_err();
    assert_eq!(
        (brk.kind, brk.event_id),
        ("reordered", Some(y.envelope.event_id))
    );
    env.cleanup(None).await;
}

/// A head hash that is malformed, or is not the hash of the stream's last
/// event, stops the write: nothing chains onto it (an empty or zero hash
/// would break the chain for good). A wrong stream type stops it too, in
/// release builds as in debug ones.
#[tokio::test]
async fn a_corrupt_head_or_a_wrong_stream_type_refuses_the_append() {
    use events::{Event, ProviderDeleted, StreamType};
    use switchboard::store::{ExpectedVersion, StoreError, StreamAppend};
    let env = TestEnv::new().await;
    let tenant = TenantId::new();
    let append = |stream: Uuid, stream_type: StreamType| {
        let pool = env.pool.clone();
        async move {
            let sa = StreamAppend {
                stream_type,
                stream_id: stream,
                expected: ExpectedVersion::from_version(2),
                events: vec![Event::ProviderDeleted(ProviderDeleted {})],
            };
            store::append(&pool, crate::support::meta(tenant), &[sa]).await
        }
    };
    for corrupt in [vec![1u8; 16], vec![7u8; 32], vec![]] {
        let stream = Uuid::new_v4();
        append_n(&env.pool, tenant, stream, 0, 2).await;
        sqlx::query("UPDATE streams SET last_hash = $2 WHERE stream_id = $1")
            .bind(stream)
            .bind(&corrupt)
            .execute(&env.pool)
            .await
            .unwrap();
        let err = append(stream, StreamType::Provider).await.unwrap_err();
        assert!(
            matches!(err, StoreError::CorruptHead { stream_id } if stream_id == stream),
            "{err}"
        );
        let events = store::read_stream(&env.pool, stream, None).await.unwrap();
        assert_eq!(events.len(), 2, "nothing appended onto {corrupt:?}");
    }
    let stream = Uuid::new_v4();
    append_n(&env.pool, tenant, stream, 0, 2).await;
    let err = append(stream, StreamType::Call).await.unwrap_err();
    assert!(matches!(err, StoreError::WrongStreamType { .. }), "{err}");
    append(stream, StreamType::Provider)
        .await
        .expect("a sound head takes appends");
}
