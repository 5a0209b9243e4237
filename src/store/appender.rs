//! Group commit: the commands a process appends at the same moment share one
//! `sb_append` call, one transaction and one WAL flush.
//!
//! # What a batch promises
//! - Each command is checked on its own (versions, guards, its command id):
//!   one command's conflict fails that command only; the others commit.
//! - A command's events commit together or not at all, exactly as alone.
//! - No two commands of one batch touch the same stream; a command that would
//!   waits for the next batch. So each command is checked against the heads
//!   as they stood before its batch.
//! - Nothing is answered before its batch committed.
//! - Should the batch itself fail (the database, not a check), its commands
//!   are tried again one at a time, so no command fails for another's fault.
//!
//! Batches form by themselves: while up to `IN_FLIGHT` batches are being
//! written, new commands queue, and the next batch takes all that queued (up
//! to `MAX_BATCH`). A lone command waits for nothing.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{broadcast, mpsc, oneshot, Semaphore};
use uuid::Uuid;

use super::append::{AppendOutcome, CommandMeta, Guard, Head, Prepared, StreamAppend};
use super::batch::{self, Settled};
use super::heads::Heads;
use super::kept::{self, Kept};
use super::notices::{Notice, Notices};
use super::row::StoredEvent;
use super::snapshot::Snapshots;
use super::states::States;
use super::StoreError;

/// Connections kept for the judged reads of hot paths (`Store::kept`).
const KEPT_FOR_READS: usize = 4;

/// Commands in one `sb_append` call at most.
const MAX_BATCH: usize = 256;
/// Batches being written at once: the second is sent while the first
/// commits, and waits for the append lock on the server.
const IN_FLIGHT: usize = 2;

struct Job {
    prepared: Prepared,
    reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
}

/// The event store as a process uses it: group commit, the heads it has
/// seen, and a feed of what it committed. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    heads: Arc<Heads>,
    states: Arc<States>,
    jobs: mpsc::UnboundedSender<Job>,
    feed: broadcast::Sender<Arc<[StoredEvent]>>,
    stats: Arc<BatchStats>,
    notices: Arc<Notices>,
    /// The group-commit task's connections (one per batch in flight).
    writers: Kept,
    /// Those of `Store::kept`.
    reads: Kept,
    /// Where states due for a snapshot go to be written.
    snapshots: Snapshots,
}

/// How group commit has gone in this process (for metrics and benchmarks).
#[derive(Debug, Default)]
pub struct BatchStats {
    /// `sb_append` / `sb_append_one` calls made.
    pub batches: std::sync::atomic::AtomicU64,
    /// Commands in them.
    pub commands: std::sync::atomic::AtomicU64,
    /// Time spent in those calls, in microseconds (overlapping calls add up).
    pub busy_us: std::sync::atomic::AtomicU64,
}

impl Store {
    /// Starts the group-commit task on the current runtime. It ends when the
    /// last clone of the store is dropped.
    pub fn new(pool: PgPool) -> Store {
        let (jobs, rx) = mpsc::unbounded_channel();
        let (feed, _) = broadcast::channel(1024);
        let notices = Arc::new(Notices::new(pool.clone()));
        let store = Store {
            pool: pool.clone(),
            heads: Arc::new(Heads::default()),
            states: Arc::new(States::default()),
            jobs,
            feed,
            stats: Arc::default(),
            notices,
            writers: Kept::new(pool.clone(), IN_FLIGHT),
            reads: Kept::new(pool.clone(), KEPT_FOR_READS),
            snapshots: Snapshots::new(pool.clone()),
        };
        tokio::spawn(run(store.worker_half(), rx));
        store
    }

    /// The parts the group-commit task needs (not the job sender, so the
    /// task does not keep itself alive).
    fn worker_half(&self) -> Worker {
        Worker {
            pool: self.pool.clone(),
            heads: self.heads.clone(),
            feed: self.feed.clone(),
            stats: self.stats.clone(),
            writers: self.writers.clone(),
        }
    }

    /// Group commit so far.
    pub fn batch_stats(&self) -> &BatchStats {
        &self.stats
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn heads(&self) -> &Heads {
        &self.heads
    }

    pub fn states(&self) -> &States {
        &self.states
    }

    pub(crate) fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    /// A connection for a short read on a hot path, without the pool's two
    /// pings (`kept`). Give it back with `Lease::give_back`.
    pub async fn kept(&self) -> Result<kept::Lease, sqlx::Error> {
        self.reads.get().await
    }

    /// Appends one command's events (and guards) atomically, sharing the
    /// transaction with whatever else this process appends meanwhile.
    pub async fn append(
        &self,
        meta: CommandMeta,
        appends: &[StreamAppend],
        guards: Vec<Guard>,
    ) -> Result<AppendOutcome, StoreError> {
        let mut conn = None;
        if appends.iter().any(|a| {
            !a.events.is_empty()
                && self
                    .heads
                    .hash_at(a.stream_id, a.expected.as_version())
                    .is_none()
        }) {
            let c = conn.insert(self.pool.acquire().await?);
            self.heads.fill(c, appends).await?;
        }
        drop(conn);
        let prepared = Prepared::new(meta, appends, guards, |sa| self.heads.chain_onto(sa))?;
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { prepared, reply })
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Every batch of events this process commits, as it commits. A receiver
    /// that falls behind misses batches (`Lagged`): it is a fast path beside
    /// the store and NATS, never the only way to learn of an event.
    pub fn feed(&self) -> broadcast::Receiver<Arc<[StoredEvent]>> {
        self.feed.subscribe()
    }

    /// Every NOTIFY of the store's channel, from any process, through this
    /// process's one listener (started on the first call).
    pub fn notices(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }
}

fn closed() -> StoreError {
    StoreError::Db(sqlx::Error::PoolClosed)
}

#[derive(Clone)]
struct Worker {
    pool: PgPool,
    heads: Arc<Heads>,
    feed: broadcast::Sender<Arc<[StoredEvent]>>,
    stats: Arc<BatchStats>,
    writers: Kept,
}

async fn run(w: Worker, mut rx: mpsc::UnboundedReceiver<Job>) {
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut waiting: VecDeque<Job> = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match rx.recv().await {
                Some(job) => waiting.push_back(job),
                None => return,
            }
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        while let Ok(job) = rx.try_recv() {
            waiting.push_back(job);
        }
        let batch = take_batch(&mut waiting);
        let w = w.clone();
        tokio::spawn(async move {
            w.write(batch).await;
            drop(permit);
        });
    }
}

/// Takes up to `MAX_BATCH` jobs, oldest first, no two on the same stream.
fn take_batch(waiting: &mut VecDeque<Job>) -> Vec<Job> {
    let mut batch = Vec::new();
    let mut touched = HashSet::new();
    let mut rest = VecDeque::new();
    while let Some(job) = waiting.pop_front() {
        if batch.len() == MAX_BATCH {
            rest.push_back(job);
            continue;
        }
        let streams: Vec<Uuid> = job.prepared.streams().collect();
        if streams.iter().any(|s| touched.contains(s)) {
            rest.push_back(job);
        } else {
            touched.extend(streams);
            batch.push(job);
        }
    }
    *waiting = rest;
    batch
}

impl Worker {
    async fn write(&self, batch: Vec<Job>) {
        let prepared: Vec<&Prepared> = batch.iter().map(|j| &j.prepared).collect();
        let settled = match self.execute(&prepared).await {
            // The connection died (with the server, perhaps): once more on
            // another. A batch that did commit answers `duplicate` for each
            // command, and each gets the events it wrote.
            Err(e) if kept::is_lost(&e) => self.execute(&prepared).await,
            r => r,
        };
        let settled = match settled {
            Ok(s) => s,
            Err(e) if batch.len() == 1 => vec![Settled::Failed(StoreError::Db(e))],
            Err(e) => {
                tracing::warn!(error = %e, commands = batch.len(), "batch append failed; appending its commands one by one");
                let mut one_by_one = Vec::with_capacity(batch.len());
                for p in &prepared {
                    one_by_one.push(match self.execute(&[*p]).await {
                        Ok(mut s) => s.pop().unwrap_or(Settled::Failed(closed())),
                        Err(e) => Settled::Failed(StoreError::Db(e)),
                    });
                }
                one_by_one
            }
        };
        let mut all = Vec::new();
        let mut answers = Vec::with_capacity(batch.len());
        for (job, s) in batch.into_iter().zip(settled) {
            let answer = match s {
                Settled::Appended(events) => {
                    self.note_heads(&job.prepared, &events);
                    all.extend(events.iter().cloned());
                    Ok(AppendOutcome::Appended(events))
                }
                Settled::Duplicate => self.duplicate(job.prepared.meta.command_id).await,
                Settled::Failed(e) => {
                    if let StoreError::Conflict { stream_id, .. } = &e {
                        self.heads.forget(*stream_id);
                    }
                    Err(e)
                }
            };
            answers.push((job.reply, answer));
        }
        if !all.is_empty() {
            let _ = self.feed.send(all.into());
        }
        for (reply, answer) in answers {
            let _ = reply.send(answer);
        }
    }

    async fn execute(&self, batch: &[&Prepared]) -> Result<Vec<Settled>, sqlx::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut conn = self.writers.get().await?;
        let start = std::time::Instant::now();
        let r = batch::execute(&mut conn, batch).await;
        conn.give_back(r.as_ref().err());
        self.stats.batches.fetch_add(1, Relaxed);
        self.stats.commands.fetch_add(batch.len() as u64, Relaxed);
        self.stats
            .busy_us
            .fetch_add(start.elapsed().as_micros() as u64, Relaxed);
        r
    }

    fn note_heads(&self, p: &Prepared, events: &[StoredEvent]) {
        for check in &p.checks {
            if let Some(last) = events
                .iter()
                .rev()
                .find(|e| e.envelope.stream_id == check.stream_id)
            {
                self.heads.remember(
                    check.stream_id,
                    Head {
                        version: last.envelope.version,
                        hash: last.envelope.hash,
                    },
                );
            }
        }
    }

    async fn duplicate(&self, command_id: Uuid) -> Result<AppendOutcome, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(AppendOutcome::Duplicate(
            batch::command_events(&mut conn, command_id).await?,
        ))
    }
}
