-- no-transaction
-- A read of a read table waits until its projection has applied its
-- tenant's last event of the table's stream types (gateway/fresh.rs). This
-- finds that event with one index probe per type, however far the
-- projection lags. Call events, the hot path, are not in it: their reads
-- wait by stream version instead, so appending a call event maintains no
-- extra index. CONCURRENTLY so that an existing store keeps taking appends
-- while it is built; hence the migration runs outside a transaction, and
-- is this one statement.
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_tenant_type_position
    ON events (tenant_id, stream_type, global_position) WHERE stream_type <> 'call';
