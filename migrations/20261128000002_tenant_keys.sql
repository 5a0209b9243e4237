-- Per-tenant data keys, wrapped by a master key (SPEC §8; src/secrets).
-- A key is stored only wrapped: nonce || AES-256-GCM-SIV ciphertext under the
-- master key `master_kid`, bound to (tenant_id, key_id, master_kid).
-- Shredding empties `wrapped` and sets `shredded_at`; the row stays as a
-- tombstone so reads can tell "shredded" from "never existed".

CREATE TABLE tenant_keys (
    tenant_id   UUID        NOT NULL,
    key_id      TEXT        NOT NULL,
    master_kid  TEXT        NOT NULL,
    wrapped     BYTEA       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    shredded_at TIMESTAMPTZ NULL,
    PRIMARY KEY (tenant_id, key_id),
    -- A shredded row holds no key material.
    CONSTRAINT tenant_keys_shredded_empty
        CHECK (shredded_at IS NULL OR octet_length(wrapped) = 0)
);

-- At most one live key per tenant: concurrent first uses insert
-- ON CONFLICT against this index, so exactly one key is created.
CREATE UNIQUE INDEX tenant_keys_one_live ON tenant_keys (tenant_id)
    WHERE shredded_at IS NULL;
