//! One `LISTEN` per process, shared by its readers.
//!
//! PostgreSQL signals every backend that listens on a channel at every
//! commit that notifies it, and each of them wakes, reads the queue and
//! writes the payload to its client. With a listener of its own per reader
//! (relay, four projectors, every event tail) that was six backends and six
//! socket reads in this process for each `sb_append`, almost all for
//! readers that had learnt of the commit from the store's feed already.
//! Here one connection listens and hands each payload to the readers that
//! subscribed (`Wake`); it runs while any does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::broadcast;

use super::NOTIFY_CHANNEL;

/// What a reader hears: a NOTIFY payload. An empty payload means "anything
/// may have been written": the listener (re)connected, and what was
/// notified meanwhile is lost.
pub type Notice = Arc<str>;

/// The process's listener on the store's channel.
pub struct Notices {
    pool: PgPool,
    tx: broadcast::Sender<Notice>,
    running: Mutex<bool>,
}

impl Notices {
    pub fn new(pool: PgPool) -> Notices {
        let (tx, _) = broadcast::channel(4096);
        Notices {
            pool,
            tx,
            running: Mutex::new(false),
        }
    }

    /// The payloads from now on; starts the listener if it is not running.
    pub fn subscribe(self: &Arc<Self>) -> broadcast::Receiver<Notice> {
        let rx = self.tx.subscribe();
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if !*running {
            *running = true;
            tokio::spawn(self.clone().listen());
        }
        rx
    }

    /// Stops once nobody subscribes (checked under the lock `subscribe`
    /// takes, so a new subscriber either sees it running or starts it).
    fn nobody_listens(&self) -> bool {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if self.tx.receiver_count() == 0 {
            *running = false;
            return true;
        }
        false
    }

    async fn listen(self: Arc<Self>) {
        let mut listener: Option<PgListener> = None;
        loop {
            if self.nobody_listens() {
                return;
            }
            let Some(l) = listener.as_mut() else {
                match connect(&self.pool).await {
                    Ok(l) => {
                        listener = Some(l);
                        // Whatever was notified before: read it.
                        let _ = self.tx.send(Arc::from(""));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "store listener: connect failed; retrying");
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
                continue;
            };
            // Bounded, so a listener nobody needs any more notices it.
            let next = tokio::time::timeout(Duration::from_secs(1), l.try_recv()).await;
            match next {
                Err(_elapsed) => {}
                Ok(Ok(Some(n))) => {
                    let _ = self.tx.send(Arc::from(n.payload()));
                }
                // The connection was lost: connect again (above), which
                // wakes everyone once it listens, since what was notified
                // meanwhile is gone.
                Ok(Ok(None)) => listener = None,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "store listener failed; reconnecting");
                    listener = None;
                    let _ = self.tx.send(Arc::from(""));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut l = PgListener::connect_with(pool).await?;
    // Reconnecting is ours to do (`listen`), so that every reconnection
    // is followed by the wake-up: sqlx's own, inside a `try_recv` the
    // timeout above may cancel, could happen silently.
    l.eager_reconnect(false);
    l.listen(NOTIFY_CHANNEL).await?;
    Ok(l)
}
