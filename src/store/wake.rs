//! Waking the readers of the global order (relay, projectors) when there is
//! something for them, and only then.
//!
//! Two signals, one wait: the NOTIFY `sb_append` sends at commit (its
//! payload names the stream types written, so a projector of providers
//! sleeps through a storm of call events), heard through the process's one
//! shared listener (`notices.rs`), and the feed of the store of this
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

use super::notices::Notice;
use super::{Position, Store, StoredEvent, NOTIFY_CHANNEL};

/// What a reader waits on.
pub struct Wake {
    notices: Source,
    local: Option<broadcast::Receiver<Arc<[StoredEvent]>>>,
    /// The stream types the reader cares about (`None`: all).
    types: Option<Vec<StreamType>>,
}

/// Where the NOTIFY payloads come from.
enum Source {
    /// The process's shared listener (`Store::notices`).
    Shared(broadcast::Receiver<Notice>),
    /// A listener of this reader's own (a reader without a store).
    Own(PgListener),
}

impl Wake {
    /// Wakes on `local`'s commits and on its process's shared listener when
    /// a store is given; otherwise listens on `pool`'s database itself.
    pub async fn new(
        pool: &PgPool,
        local: Option<&Store>,
        types: Option<Vec<StreamType>>,
    ) -> Result<Wake, sqlx::Error> {
        let notices = match local {
            Some(store) => Source::Shared(store.notices()),
            None => {
                let mut listener = PgListener::connect_with(pool).await?;
                listener.listen(NOTIFY_CHANNEL).await?;
                Source::Own(listener)
            }
        };
        Ok(Wake {
            notices,
            local: local.map(Store::feed),
            types,
        })
    }

    /// Waits for a relevant commit (or `idle`), then takes every signal
    /// already queued. Returns whether a commit woke it (`false`: `idle`
    /// passed). An error is the listener's connection: the caller starts
    /// over.
    ///
    /// A commit is relevant when it wrote a stream type the reader reads
    /// and ended after what the reader has read (`read_to`). The second is what keeps a commit from waking a reader
    /// twice: this process's feed tells of it first, the reader reads it,
    /// and the NOTIFY that follows names a position already read.
    pub async fn wait(&mut self, idle: Duration, read_to: Position) -> Result<bool, sqlx::Error> {
        let deadline = tokio::time::Instant::now() + idle;
        let Wake {
            notices,
            local,
            types,
        } = self;
        let signalled = loop {
            tokio::select! {
                n = notices.next(types, read_to) => if n? { break true },
                r = next_local(local, types, read_to) => if r { break true },
                _ = tokio::time::sleep_until(deadline) => break false,
            }
        };
        notices.drain();
        if let Some(rx) = local {
            while rx.try_recv().is_ok() {}
        }
        Ok(signalled)
    }
}

/// Whether a NOTIFY payload (`<type>[,<type>…][,@<position>]`, see
/// migrations/20261207000001_notify_position.sql) is news to this reader.
fn wants_payload(types: &Option<Vec<StreamType>>, read_to: Position, payload: &str) -> bool {
    let (names, last) = match payload.rsplit_once(",@") {
        Some((names, at)) => (names, at.parse::<i64>().ok().map(Position::new)),
        // An older writer names no position; a bare '@…' none either.
        None => (payload, None),
    };
    if last.is_some_and(|last| last <= read_to) {
        return false;
    }
    match types {
        None => true,
        // An empty list (an older writer) names nothing: wake.
        Some(types) => {
            names.is_empty()
                || names
                    .split(',')
                    .any(|t| types.iter().any(|w| w.as_str() == t))
        }
    }
}

impl Source {
    /// Whether the next notice is news to the reader. A shared listener's
    /// missed notices (this reader lagged) or reconnection might be
    /// anything: news.
    async fn next(
        &mut self,
        types: &Option<Vec<StreamType>>,
        read_to: Position,
    ) -> Result<bool, sqlx::Error> {
        match self {
            Source::Own(listener) => Ok(wants_payload(
                types,
                read_to,
                listener.recv().await?.payload(),
            )),
            Source::Shared(rx) => Ok(match rx.recv().await {
                Ok(p) => p.is_empty() || wants_payload(types, read_to, &p),
                Err(broadcast::error::RecvError::Lagged(_)) => true,
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            }),
        }
    }

    /// Drops the notices already queued.
    fn drain(&mut self) {
        match self {
            Source::Own(listener) => while listener.next_buffered().is_some() {},
            Source::Shared(rx) => {
                while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = rx.try_recv() {}
            }
        }
    }
}

async fn next_local(
    local: &mut Option<broadcast::Receiver<Arc<[StoredEvent]>>>,
    types: &Option<Vec<StreamType>>,
    read_to: Position,
) -> bool {
    let Some(rx) = local else {
        return std::future::pending().await;
    };
    match rx.recv().await {
        Ok(events) => {
            let unread = |e: &StoredEvent| e.position > read_to;
            match types {
                None => events.iter().any(unread),
                Some(t) => events
                    .iter()
                    .any(|e| unread(e) && t.contains(&e.envelope.stream_type)),
            }
        }
        // Missed some: there may be anything among them.
        Err(broadcast::error::RecvError::Lagged(_)) => true,
        Err(broadcast::error::RecvError::Closed) => {
            *local = None;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls() -> Option<Vec<StreamType>> {
        Some(vec![StreamType::Call])
    }

    #[test]
    fn a_payload_wakes_a_reader_of_its_types_that_has_not_read_it() {
        let p = Position::new(10);
        assert!(wants_payload(&calls(), p, "call,@11"));
        assert!(wants_payload(&calls(), p, "number,call,@11"));
        assert!(!wants_payload(&calls(), p, "number,@11"));
        // Read already: the second signal of a commit.
        assert!(!wants_payload(&calls(), p, "call,@10"));
        assert!(!wants_payload(&None, p, "call,@9"));
        // A reader at the start wakes for anything.
        assert!(wants_payload(&calls(), Position::START, "call,@9"));
    }

    #[test]
    fn an_older_writers_payload_still_wakes() {
        let p = Position::new(10);
        assert!(wants_payload(&calls(), p, "call"));
        assert!(wants_payload(&calls(), p, ""));
        assert!(!wants_payload(&calls(), p, "number"));
        // A position that does not parse is no position.
        assert!(wants_payload(&calls(), p, "call,@x"));
    }
}
