-- Command-side tables the gateway writes in the same transaction as the
-- events they guard. They are not read models: they enforce invariants
-- across streams that no single stream can.

-- Who holds each E.164 number. The primary key is what makes "one holder
-- across all tenants" hold under races; releasing a number deletes its row.
CREATE TABLE number_claims (
    e164           TEXT PRIMARY KEY,
    tenant_id      UUID NOT NULL,
    number_id      UUID NOT NULL UNIQUE,
    credentials_id UUID NOT NULL
);
CREATE INDEX number_claims_provider ON number_claims (credentials_id);

-- Responses to writes sent with an Idempotency-Key, kept 24 hours. A row
-- with a NULL status is a request still in progress.
CREATE TABLE idempotency_keys (
    tenant_id    UUID        NOT NULL,
    key          TEXT        NOT NULL,
    request_hash BYTEA       NOT NULL,
    status       SMALLINT,
    headers      JSONB,
    body         BYTEA,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);
