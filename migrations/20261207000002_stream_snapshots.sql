-- Snapshots of folded command state, so a process that has not seen a long
-- stream (a restart, a new replica, an evicted cache entry) reads its last
-- snapshot and the events after it, not the whole history.
--
-- A snapshot is a cache, never the truth: dropping every row loses nothing
-- but time. One row per stream and state kind (`<state>/<revision>`, the
-- revision of the fold that made it: a process ignores kinds it does not
-- know). `hash` is the stream's hash at `version`; a reader takes a
-- snapshot only when the event stored at that version has that hash, so a
-- snapshot can never stand for history it was not folded from.
CREATE TABLE stream_snapshots (
    stream_id uuid        NOT NULL,
    kind      text        NOT NULL,
    version   bigint      NOT NULL CHECK (version > 0),
    hash      bytea       NOT NULL,
    state     jsonb       NOT NULL,
    taken_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, kind)
);
