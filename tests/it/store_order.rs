//! The global order: positions follow commit order, so a reader never
//! passes an event that commits late, and delivers each event exactly once
//! in a stable order.

use events::{Event, ProviderRelabeled, StreamType, TenantId};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use switchboard::store::{self, AppendTx, Begin, ExpectedVersion, Position, StreamAppend};
use uuid::Uuid;

use crate::support::{meta, TestEnv};

const WRITERS: usize = 8;
const COMMANDS_PER_WRITER: usize = 250;
const EVENTS_PER_COMMAND: usize = 5;
const TOTAL: usize = WRITERS * COMMANDS_PER_WRITER * EVENTS_PER_COMMAND; // 10,000

fn relabels(stream: Uuid, from: i64, n: usize) -> StreamAppend {
    StreamAppend {
        stream_type: StreamType::Provider,
        stream_id: stream,
        expected: ExpectedVersion::from_version(from),
        events: (0..n)
            .map(|i| {
                Event::ProviderRelabeled(ProviderRelabeled {
                    label: format!("l{i}"),
                })
            })
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_held_append_holds_writers_back_and_readers_see_every_event_once_in_order() {
    let env = TestEnv::new().await;
    let tenant = TenantId::new();

    // A writer that appends and holds its transaction open: it holds the
    // append lock, so every other append waits for it.
    let held_stream = Uuid::new_v4();
    let Begin::Fresh(mut held) = AppendTx::begin(&env.pool, meta(tenant), &[held_stream])
        .await
        .unwrap()
    else {
        panic!("fresh command")
    };
    let held_event = held
        .append(&[relabels(held_stream, 0, 1)])
        .await
        .unwrap()
        .remove(0);

    // The reader follows the global order from the start, as the relay does.
    let delivered = Arc::new(tokio::sync::Mutex::new(Vec::<(Position, Uuid)>::new()));
    let reader = {
        let (pool, delivered) = (env.pool.clone(), delivered.clone());
        tokio::spawn(async move {
            let mut at = Position::START;
            while delivered.lock().await.len() < TOTAL + 1 {
                let batch = store::read_global(&pool, at, 300).await.unwrap();
                if batch.is_empty() {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                let mut d = delivered.lock().await;
                for e in batch {
                    at = e.position;
                    d.push((e.position, e.envelope.event_id));
                }
            }
        })
    };

    // Eight writers, each on streams of its own.
    let written = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        let (pool, written) = (env.pool.clone(), written.clone());
        writers.push(tokio::spawn(async move {
            let streams: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
            let mut versions = [0i64; 5];
            for c in 0..COMMANDS_PER_WRITER {
                let s = c % streams.len();
                store::append(
                    &pool,
                    meta(tenant),
                    &[relabels(streams[s], versions[s], EVENTS_PER_COMMAND)],
                )
                .await
                .unwrap();
                versions[s] += EVENTS_PER_COMMAND as i64;
                written.fetch_add(EVENTS_PER_COMMAND, Ordering::SeqCst);
            }
        }));
    }

    // While the held transaction is open nothing else commits, and no
    // reader sees anything (not even the held event).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        written.load(Ordering::SeqCst),
        0,
        "a writer passed the held append"
    );
    assert!(store::read_global(&env.pool, Position::START, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(delivered.lock().await.is_empty());
    held.commit().await.unwrap();

    for w in writers {
        w.await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("reader delivers everything")
        .unwrap();

    let delivered = delivered.lock().await.clone();
    assert_eq!(delivered.len(), TOTAL + 1);
    assert_eq!(
        delivered[0].1, held_event.envelope.event_id,
        "the held event came first: positions follow commit order"
    );
    assert!(
        delivered.windows(2).all(|w| w[0].0 < w[1].0),
        "delivered in strictly increasing global order"
    );
    // Stable: a fresh full read gives exactly the same sequence.
    let again: Vec<(Position, Uuid)> = store::read_global(&env.pool, Position::START, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.position, e.envelope.event_id))
        .collect();
    assert_eq!(again, delivered);
    env.cleanup(None).await;
}

#[tokio::test]
async fn each_stream_keeps_version_order_in_the_global_order() {
    // Commands racing on a shared stream, each also touching another: the
    // shared stream's versions appear in the global order one after the
    // other, whichever command won each version.
    let env = TestEnv::new().await;
    let tenant = TenantId::new();
    let (a, s) = (Uuid::new_v4(), Uuid::new_v4());
    let mut tasks = Vec::new();
    for i in 0..40 {
        let pool = env.pool.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let current = store::read_stream(&pool, s, None).await.unwrap().len() as i64;
                let other = if i % 2 == 0 { a } else { Uuid::new_v4() };
                let va = store::read_stream(&pool, other, None).await.unwrap().len() as i64;
                let r = store::append(
                    &pool,
                    meta(tenant),
                    &[relabels(other, va, 1), relabels(s, current, 1)],
                )
                .await;
                if r.is_ok() {
                    return;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = crate::support::visible_all(&env.pool).await;
    for stream in [a, s] {
        let versions: Vec<i64> = all
            .iter()
            .filter(|e| e.envelope.stream_id == stream)
            .map(|e| e.envelope.version)
            .collect();
        assert!(
            versions.windows(2).all(|w| w[0] + 1 == w[1]),
            "{versions:?}"
        );
    }
    env.cleanup(None).await;
}

/// Reading ahead (`store::Ahead`, what replay and rebuild read with) hands
/// over every event once, in global order, in chunks of at most its size,
/// across its pages; it stops at `until`, and waits for `until` to commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_ahead_delivers_every_event_once_in_order_and_waits_for_until() {
    let env = TestEnv::new().await;
    let tenant = TenantId::new();
    // More than one of its pages (20,000 events).
    let streams: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    for i in 0..201 {
        let s = streams[i % 3];
        crate::support::append_n(&env.pool, tenant, s, (i / 3 * 100) as i64, 100).await;
    }
    let stored = store::read_global(&env.pool, Position::START, 1_000_000)
        .await
        .unwrap();
    assert_eq!(stored.len(), 20_100);

    let read_all = |until: Option<Position>| {
        let pool = env.pool.clone();
        async move {
            let mut ahead = store::Ahead::start(&pool, Position::START, until, 1_000);
            let mut got = Vec::new();
            while let Some(chunk) = ahead.next().await {
                let chunk = chunk.unwrap();
                assert!(!chunk.is_empty() && chunk.len() <= 1_000);
                got.extend(chunk.into_iter().map(|e| e.position));
            }
            got
        }
    };
    let want: Vec<Position> = stored.iter().map(|e| e.position).collect();
    assert_eq!(read_all(None).await, want, "everything, once, in order");
    let until = want[12_345];
    assert_eq!(read_all(Some(until)).await, want[..=12_345].to_vec());

    // `until` beyond what is stored: the read waits for it to commit.
    let waiting = tokio::spawn(read_all(Some(Position::new(
        want.last().unwrap().global_position + 100,
    ))));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "waits for events still to come");
    crate::support::append_n(&env.pool, tenant, Uuid::new_v4(), 0, 100).await;
    let got = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the read ends once until has committed")
        .unwrap();
    assert_eq!(got.len(), 20_200);
    env.cleanup(None).await;
}
