-- The event store. See ARCHITECTURE.md "Global order" for why each event
-- carries the id of the transaction that wrote it.

CREATE TABLE events (
    -- Unique, assigned at insert. Readers order by (transaction_id,
    -- global_position), never by this column alone.
    global_position BIGSERIAL PRIMARY KEY,
    -- pg_current_xact_id() of the writing transaction (xid8 as bigint).
    transaction_id  BIGINT      NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    event_id        UUID        NOT NULL UNIQUE,
    event_type      TEXT        NOT NULL,
    schema_version  INTEGER     NOT NULL,
    stream_type     TEXT        NOT NULL,
    stream_id       UUID        NOT NULL,
    version         BIGINT      NOT NULL CHECK (version >= 1),
    tenant_id       UUID        NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    command_id      UUID        NOT NULL,
    correlation_id  UUID        NOT NULL,
    causation_id    UUID,
    actor           TEXT        NOT NULL,
    data            JSONB       NOT NULL,
    prev_hash       BYTEA       NOT NULL,
    hash            BYTEA       NOT NULL,
    UNIQUE (stream_id, version)
);

CREATE INDEX events_global_order ON events (transaction_id, global_position);
CREATE INDEX events_tenant_order ON events (tenant_id, transaction_id, global_position);
CREATE INDEX events_command ON events (command_id);

-- The head of every stream: its version and last hash. Appends lock the
-- stream (advisory lock) and then check and move this row.
CREATE TABLE streams (
    stream_id   UUID   PRIMARY KEY,
    stream_type TEXT   NOT NULL,
    tenant_id   UUID   NOT NULL,
    version     BIGINT NOT NULL,
    last_hash   BYTEA  NOT NULL
);

-- One row per command ever appended: appending the same command_id again
-- returns the first result and writes nothing.
CREATE TABLE commands (
    command_id  UUID        PRIMARY KEY,
    tenant_id   UUID        NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Where each reader of the global order (relay, projectors) has got to.
CREATE TABLE checkpoints (
    name           TEXT        PRIMARY KEY,
    transaction_id BIGINT      NOT NULL DEFAULT 0,
    position       BIGINT      NOT NULL DEFAULT 0,
    -- 'running', or 'stopped' with the reason in error.
    status         TEXT        NOT NULL DEFAULT 'running',
    error          TEXT,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
