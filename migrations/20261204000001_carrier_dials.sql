-- The carrier adapter's own record of each dial (`switchboard callproc`).
-- Carriers take no idempotency key on call creation, so this row is what
-- stops a second POST for one call_id: it is written, durably, before the
-- carrier is asked, and a call_id whose row exists is never posted again
-- unless the carrier's answer proved no call was created (state 'ready').
--
-- state:
--   posting  a POST is (or may have been) sent; lease_until bounds how long
--            its sender may still be waiting for the answer. Past the lease
--            the answer is lost and the dial is reconciled against the
--            carrier's call list, never re-posted.
--   ready    the carrier refused before creating a call (rate limit,
--            connection refused): safe to post again.
--   placed   the carrier created the call; carrier_call_id is its id.
--   failed   final: the carrier refused, or reconciling found no call.
CREATE TABLE carrier_dials (
    call_id         UUID        PRIMARY KEY,
    provider        TEXT        NOT NULL,
    from_number     TEXT        NOT NULL,
    to_number       TEXT        NOT NULL,
    callback_url    TEXT        NOT NULL,
    -- The carrier credential that signs its callbacks, sealed under a key
    -- derived from the callback secret: callbacks after a restart still
    -- verify, and the table holds no plaintext.
    sealed_auth     BYTEA       NOT NULL,
    state           TEXT        NOT NULL CHECK (state IN ('posting', 'ready', 'placed', 'failed')),
    carrier_call_id TEXT        UNIQUE,
    error           TEXT,
    error_status    SMALLINT,
    attempts        INT         NOT NULL DEFAULT 0,
    lease_until     TIMESTAMPTZ NOT NULL,
    posted_at       TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
