-- The append's NOTIFY names the last position it wrote.
--
-- A reader in the process that appended hears of a commit twice: from that
-- process's feed, and from this NOTIFY a moment later. With the position in
-- the payload it can tell that it has already read past the second and
-- sleep on, instead of running a read that finds nothing (half of all the
-- projector and relay reads under load, before this). The payload is
-- '<type>[,<type>…],@<position>': a reader that predates this ignores the
-- '@' element (it names no stream type), so old and new processes can run
-- side by side during a rolling upgrade.
--
-- The two functions below are those of 20261203000001_ordered_append.sql,
-- unchanged but for their pg_notify.

CREATE OR REPLACE FUNCTION sb_append(
    c_id uuid[], c_tenant uuid[], c_corr uuid[], c_cause uuid[], c_actor text[],
    c_recorded timestamptz[],
    s_cmd int[], s_id uuid[], s_type text[], s_expected bigint[], s_prev bytea[],
    s_new_version bigint[], s_new_hash bytea[],
    e_cmd int[], e_stream int[], e_id uuid[], e_type text[], e_schema int[],
    e_version bigint[], e_data jsonb[], e_prev bytea[], e_hash bytea[],
    x jsonb,
    OUT outcome text[], OUT conflict_stream uuid[], OUT conflict_actual bigint[],
    OUT base bigint)
LANGUAGE plpgsql AS $$
DECLARE
    n int := coalesce(array_length(c_id, 1), 0);
    r record;
    kept int;
BEGIN
    outcome := array_fill('ok'::text, ARRAY[n]);
    conflict_stream := array_fill(NULL::uuid, ARRAY[n]);
    conflict_actual := array_fill(NULL::bigint, ARRAY[n]);
    base := NULL;
    -- The append lock: held to commit, so positions follow commit order.
    PERFORM pg_advisory_xact_lock(6584412087353911296);

    -- Every lookup below is a LATERAL … LIMIT 1, so it stays one index probe
    -- per row: a join the planner may turn into a scan of the whole table.
    FOR r IN SELECT t.i FROM unnest(c_id) WITH ORDINALITY AS t(id, i)
             CROSS JOIN LATERAL (SELECT 1 FROM events e WHERE e.command_id = t.id LIMIT 1) d LOOP
        outcome[r.i] := 'duplicate';
    END LOOP;

    -- A head must be at the expected version, and (when the caller chained
    -- hashes onto it) end in the hash it chained onto.
    FOR r IN SELECT u.cmd, u.sid, coalesce(h.version, 0) AS actual
             FROM unnest(s_cmd, s_id, s_expected, s_prev) AS u(cmd, sid, expected, prev)
             LEFT JOIN LATERAL (SELECT s.version, s.last_hash FROM streams s
                                WHERE s.stream_id = u.sid LIMIT 1) h ON true
             WHERE coalesce(h.version, 0) <> u.expected
                OR (u.prev IS NOT NULL AND u.expected > 0 AND h.last_hash <> u.prev) LOOP
        IF outcome[r.cmd] = 'ok' THEN
            outcome[r.cmd] := 'conflict';
            conflict_stream[r.cmd] := r.sid;
            conflict_actual[r.cmd] := r.actual;
        END IF;
    END LOOP;

    IF jsonb_array_length(x) > 0 THEN
        FOR r IN SELECT g.cmd FROM jsonb_to_recordset(x) AS g(cmd int, kind text, credentials_id uuid)
                 CROSS JOIN LATERAL (SELECT 1 FROM number_claims c
                                     WHERE c.credentials_id = g.credentials_id LIMIT 1) held
                 WHERE g.kind = 'unreferenced' LOOP
            IF outcome[r.cmd] = 'ok' THEN outcome[r.cmd] := 'referenced'; END IF;
        END LOOP;

        DELETE FROM number_claims c
        WHERE c.number_id = ANY (ARRAY(
            SELECT g.number_id FROM jsonb_to_recordset(x) AS g(cmd int, kind text, number_id uuid)
            WHERE g.kind = 'unclaim' AND outcome[g.cmd] = 'ok'));

        -- A command claims at most one number; one whose claim did not go in
        -- (held already, or by an earlier command of this batch) fails.
        FOR r IN WITH wanted AS (
                     SELECT g.* FROM jsonb_to_recordset(x)
                         AS g(cmd int, kind text, e164 text, tenant_id uuid, number_id uuid, credentials_id uuid)
                     WHERE g.kind = 'claim' AND outcome[g.cmd] = 'ok'),
                 ins AS (
                     INSERT INTO number_claims (e164, tenant_id, number_id, credentials_id)
                     SELECT e164, tenant_id, number_id, credentials_id FROM wanted
                     ON CONFLICT DO NOTHING RETURNING number_id)
                 SELECT w.cmd FROM wanted w WHERE w.number_id NOT IN (SELECT number_id FROM ins) LOOP
            outcome[r.cmd] := 'claimed';
        END LOOP;

        FOR r IN SELECT g.* FROM jsonb_to_recordset(x) AS g(cmd int, kind text, tenant_id uuid,
                                  key text, status smallint, headers jsonb, body text)
                 WHERE g.kind = 'settle' AND outcome[g.cmd] = 'ok' LOOP
            UPDATE idempotency_keys k
            SET status = r.status, headers = r.headers, body = decode(r.body, 'base64')
            WHERE k.tenant_id = r.tenant_id AND k.key = r.key AND k.status IS NULL;
        END LOOP;
    END IF;

    SELECT count(*) INTO kept FROM unnest(e_cmd) AS u(cmd) WHERE outcome[u.cmd] = 'ok';
    IF kept > 0 THEN
        -- Positions for this batch, handed out under the append lock.
        base := nextval(pg_get_serial_sequence('events', 'global_position'));
        IF kept > 1 THEN
            PERFORM setval(pg_get_serial_sequence('events', 'global_position'), base + kept - 1);
        END IF;
        INSERT INTO events (global_position, event_id, event_type, schema_version, stream_type,
                            stream_id, version, tenant_id, recorded_at, command_id,
                            correlation_id, causation_id, actor, data, prev_hash, hash)
        SELECT base + row_number() OVER (ORDER BY u.ord) - 1, u.id, u.typ, u.schema,
               s_type[u.stream], s_id[u.stream], u.version, c_tenant[u.cmd], c_recorded[u.cmd],
               c_id[u.cmd], c_corr[u.cmd], c_cause[u.cmd], c_actor[u.cmd], u.data, u.prev, u.hash
        FROM unnest(e_cmd, e_stream, e_id, e_type, e_schema, e_version, e_data, e_prev, e_hash)
             WITH ORDINALITY AS u(cmd, stream, id, typ, schema, version, data, prev, hash, ord)
        WHERE outcome[u.cmd] = 'ok';

        INSERT INTO streams (stream_id, stream_type, tenant_id, version, last_hash)
        SELECT u.sid, u.typ, c_tenant[u.cmd], u.new_version, u.new_hash
        FROM unnest(s_cmd, s_id, s_type, s_expected, s_new_version, s_new_hash)
             AS u(cmd, sid, typ, expected, new_version, new_hash)
        WHERE outcome[u.cmd] = 'ok' AND u.new_version > u.expected
        ON CONFLICT (stream_id) DO UPDATE
            SET version = EXCLUDED.version, last_hash = EXCLUDED.last_hash;

        -- Readers wake on this. It names the stream types written, so one
        -- that reads none of them sleeps on, and ends in '@' and the last
        -- position written, so one that has read past it sleeps on too.
        PERFORM pg_notify('switchboard_events',
            (SELECT string_agg(DISTINCT s_type[u.stream], ',')
             FROM unnest(e_cmd, e_stream) AS u(cmd, stream) WHERE outcome[u.cmd] = 'ok')
            || ',@' || (base + kept - 1)::text);
    END IF;
END
$$;

-- The common case alone, without arrays: one command, one event on one
-- stream, at most one more stream only checked, no guards. It does what
-- sb_append does for such a command (same lock, same checks, same rows)
-- and answers the same way, in about two thirds of the time: what a lone
-- command (no concurrent ones to batch with) waits for.
CREATE OR REPLACE FUNCTION sb_append_one(
    c_id uuid, c_tenant uuid, c_corr uuid, c_cause uuid, c_actor text, c_recorded timestamptz,
    s_id uuid, s_type text, s_expected bigint, s_prev bytea,
    e_id uuid, e_type text, e_schema int, e_data jsonb, e_hash bytea,
    k_id uuid, k_expected bigint,
    OUT outcome text, OUT conflict_stream uuid, OUT conflict_actual bigint, OUT base bigint)
LANGUAGE plpgsql AS $$
DECLARE
    head streams%ROWTYPE;
    checked bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(6584412087353911296);
    IF EXISTS (SELECT 1 FROM events e WHERE e.command_id = c_id) THEN
        outcome := 'duplicate';
        RETURN;
    END IF;
    SELECT * INTO head FROM streams s WHERE s.stream_id = s_id;
    IF coalesce(head.version, 0) <> s_expected
       OR (s_expected > 0 AND head.last_hash <> s_prev) THEN
        outcome := 'conflict';
        conflict_stream := s_id;
        conflict_actual := coalesce(head.version, 0);
        RETURN;
    END IF;
    IF k_id IS NOT NULL THEN
        checked := coalesce((SELECT s.version FROM streams s WHERE s.stream_id = k_id), 0);
        IF checked <> k_expected THEN
            outcome := 'conflict';
            conflict_stream := k_id;
            conflict_actual := checked;
            RETURN;
        END IF;
    END IF;
    base := nextval(pg_get_serial_sequence('events', 'global_position'));
    INSERT INTO events (global_position, event_id, event_type, schema_version, stream_type,
                        stream_id, version, tenant_id, recorded_at, command_id,
                        correlation_id, causation_id, actor, data, prev_hash, hash)
    VALUES (base, e_id, e_type, e_schema, s_type, s_id, s_expected + 1, c_tenant, c_recorded,
            c_id, c_corr, c_cause, c_actor, e_data, s_prev, e_hash);
    INSERT INTO streams (stream_id, stream_type, tenant_id, version, last_hash)
    VALUES (s_id, s_type, c_tenant, s_expected + 1, e_hash)
    ON CONFLICT (stream_id) DO UPDATE
        SET version = EXCLUDED.version, last_hash = EXCLUDED.last_hash;
    PERFORM pg_notify('switchboard_events', s_type || ',@' || base::text);
    outcome := 'ok';
END
$$;
