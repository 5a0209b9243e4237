//! Waking the readers of the global order (relay, projectors) when there is
//! something for them, and only then.
//!
//! Two signals, one wait: the NOTIFY `sb_append` sends at commit (its
//! payload names the stream types written, so a projector of providers
//! sleeps through a storm of call events), and the feed of the store of this
//! process (the same commits, sooner). After waking, every signal already
//! queued is taken too: a reader steps once for a burst of commits, not once
//! per commit and per signal. And it wakes on its own after `idle`, since a
//! notification can be lost with its connection.

use std::sync::Arc;
use std::time::Duration;

use events::StreamType;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::broadcast;

use super::{StoredEvent, NOTIFY_CHANNEL};

/// What a reader waits on.
pub struct Wake {
    listener: PgListener,
    local: Option<broadcast::Receiver<Arc<[StoredEvent]>>>,
    /// The stream types the reader cares about (`None`: all).
    types: Option<Vec<StreamType>>,
}

impl Wake {
    /// Listens on `pool`'s database, and on `local` (this process's
    /// commits) when given.
    pub async fn new(
        pool: &PgPool,
        local: Option<broadcast::Receiver<Arc<[StoredEvent]>>>,
        types: Option<Vec<StreamType>>,
    ) -> Result<Wake, sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        Ok(Wake {
            listener,
            local,
            types,
        })
    }

    /// Waits for a relevant commit (or `idle`), then takes every signal
    /// already queued. An error is the listener's connection: the caller
    /// starts over.
    pub async fn wait(&mut self, idle: Duration) -> Result<(), sqlx::Error> {
        let deadline = tokio::time::Instant::now() + idle;
        let Wake {
            listener,
            local,
            types,
        } = self;
        loop {
            let relevant = tokio::select! {
                n = listener.recv() => wants_payload(types, n?.payload()),
                r = next_local(local, types) => r,
                _ = tokio::time::sleep_until(deadline) => true,
            };
            if relevant {
                break;
            }
        }
        while listener.next_buffered().is_some() {}
        if let Some(rx) = local {
            while rx.try_recv().is_ok() {}
        }
        Ok(())
    }
}

fn wants_payload(types: &Option<Vec<StreamType>>, payload: &str) -> bool {
    match types {
        None => true,
        // An empty payload (an older writer) names nothing: wake.
        Some(types) => {
            payload.is_empty()
                || payload
                    .split(',')
                    .any(|t| types.iter().any(|w| w.as_str() == t))
        }
    }
}

async fn next_local(
    local: &mut Option<broadcast::Receiver<Arc<[StoredEvent]>>>,
    types: &Option<Vec<StreamType>>,
) -> bool {
    let Some(rx) = local else {
        return std::future::pending().await;
    };
    match rx.recv().await {
        Ok(events) => match types {
            None => !events.is_empty(),
            Some(t) => events.iter().any(|e| t.contains(&e.envelope.stream_type)),
        },
        // Missed some: there may be anything among them.
        Err(broadcast::error::RecvError::Lagged(_)) => true,
        Err(broadcast::error::RecvError::Closed) => {
            *local = None;
            false
        }
    }
}
