//! The global order: a reader never passes an event whose transaction
//! commits late, and delivers each event exactly once in a stable order.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use events::{Event, ProviderRelabeled, StreamType};
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
async fn reader_waits_for_a_held_transaction_and_delivers_every_event_once() {
    let env = TestEnv::new().await;
    let tenant = Uuid::new_v4();

    // A writer that takes its transaction id first and holds it open.
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

    // While half the writes are committed behind the held transaction, no
    // reader sees past it.
    while written.load(Ordering::SeqCst) < TOTAL / 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let visible = store::read_global(&env.pool, Position::START, 100_000)
        .await
        .unwrap();
    assert!(
        visible.iter().all(|e| e.position < held_event.position),
        "a reader moved past an uncommitted event"
    );
    assert!(delivered
        .lock()
        .await
        .iter()
        .all(|(p, _)| *p < held_event.position));
    tokio::time::sleep(Duration::from_millis(50)).await;
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
    assert!(
        delivered.windows(2).all(|w| w[0].0 < w[1].0),
        "delivered in strictly increasing global order"
    );
    assert!(
        delivered
            .iter()
            .any(|(_, id)| *id == held_event.envelope.event_id),
        "the held event is delivered"
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
    // A command that took its transaction id early (by touching another
    // stream) and then appends to a stream another command wrote meanwhile
    // must still come after it. Stream locks are taken before any write, so
    // the transaction id is assigned only once the locks are held.
    let env = TestEnv::new().await;
    let tenant = Uuid::new_v4();
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
