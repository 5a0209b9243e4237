//! Leaders with hot standbys: a second relay and a second projector process
//! wait on the leader locks while the first ones lead. Under steady load the
//! leading relay is SIGKILLed, then the leading projector: each standby
//! takes over within seconds (measured from the kill to its checkpoint
//! passing the head the dead leader left), and afterwards every stored event
//! is on JetStream exactly once, every projection equals a rebuild, and no
//! call was dialed twice.

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard::projection;
use switchboard::store::Position;

use super::checks::{
    assert_projections_equal_rebuild, assert_published_once, checkpoint_of, settled_at_head, Load,
};
use super::{assert_one_outcome_per_call, scale, Cluster, Shape};

/// "Within a few seconds": a standby retries the lock every 500 ms, and the
/// dead leader's session ends as soon as its socket closes.
const TAKEOVER: Duration = Duration::from_secs(10);

/// Waits until `reader`'s checkpoint passes an event stored after the
/// kill at `from`, which only a new leader can have read; how long it took.
async fn caught_up(c: &Cluster, reader: &str, from: Instant) -> Duration {
    let at_kill = crate::support::last_position(&c.pool).await;
    let mut after = at_kill;
    while from.elapsed() < TAKEOVER {
        if after == at_kill {
            after = crate::support::last_position(&c.pool).await;
        } else if checkpoint_of(c, reader).await >= after {
            return from.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "no standby took over {reader} within {TAKEOVER:?}; logs in {}",
        c.dir.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_standbys_take_over_from_killed_leaders() {
    let rate = scale(20, 40) as u64;
    let mut c = Cluster::start(
        Shape {
            gateways: 1,
            workers: 2,
            own_postgres: false,
        },
        json!({"ring_delay_ms": 10, "answer_delay_ms": 10, "call_hold_ms": 100}),
    )
    .await;
    let from = ["+12025550121"];
    let (_, t) = c.tenant(&from, super::checks::no_caps()).await;
    // The first relay and projector have led since the tenant's writes (its
    // reads waited for them); the second copies start now and can only wait.
    let calls = projection::all()
        .into_iter()
        .find(|p| p.name() == "calls")
        .unwrap();
    let calls_reader = projection::checkpoint_name(&*calls);
    assert!(checkpoint_of(&c, "relay").await > Position::START);
    let relay_standby = c.spawn("relay", &[]);
    let projector_standby = c.spawn("project", &[]);
    let load = Load::start(&c, &t, from[0], rate);
    let pause = || tokio::time::sleep(Duration::from_millis(1500));

    pause().await;
    let killed = Instant::now();
    c.relay.take().unwrap().kill();
    let relay_took = caught_up(&c, "relay", killed).await;

    pause().await;
    let killed = Instant::now();
    c.projector.take().unwrap().kill();
    let projector_took = caught_up(&c, &calls_reader, killed).await;

    pause().await;
    let answers = load.stop().await;
    let settled = settled_at_head(&c, Duration::from_secs(90)).await;
    assert!(
        settled,
        "did not settle: {:?}; logs in {}",
        c.statuses().await,
        c.dir.display()
    );
    let stored = assert_published_once(&c).await;
    assert_projections_equal_rebuild(&c).await;
    let record = c.sim_record().await;
    let calls = assert_one_outcome_per_call(&c, &record).await;
    println!(
        "faults/standbys: relay standby caught up {:.2}s after its leader's SIGKILL, \
         projector standby {:.2}s; answers {answers:?}; {stored} events, each on JetStream once; \
         {calls} calls, none dialed twice; projections equal a rebuild",
        relay_took.as_secs_f64(),
        projector_took.as_secs_f64(),
    );
    c.relay = Some(relay_standby);
    c.projector = Some(projector_standby);
    c.stop().await;
}
