//! One call of `sb_append` for a batch of prepared commands.

use base64::Engine;
use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use super::append::{ExpectedVersion, Guard, Prepared};
use super::row::{StoredEvent, COLUMNS};
use super::StoreError;

/// What became of one command of a batch.
#[derive(Debug)]
pub(crate) enum Settled {
    Appended(Vec<StoredEvent>),
    /// Its command id wrote events before: they are to be read back.
    Duplicate,
    Failed(StoreError),
}

fn guard_json(cmd: usize, g: &Guard) -> Value {
    match g {
        Guard::ClaimNumber {
            e164,
            tenant_id,
            number_id,
            credentials_id,
        } => json!({"cmd": cmd, "kind": "claim", "e164": e164, "tenant_id": tenant_id,
                    "number_id": number_id, "credentials_id": credentials_id}),
        Guard::ReleaseNumber { number_id } => {
            json!({"cmd": cmd, "kind": "unclaim", "number_id": number_id})
        }
        Guard::Unreferenced { credentials_id } => {
            json!({"cmd": cmd, "kind": "unreferenced", "credentials_id": credentials_id})
        }
        Guard::SettleKey {
            tenant_id,
            key,
            status,
            headers,
            body,
        } => json!({"cmd": cmd, "kind": "settle", "tenant_id": tenant_id, "key": key,
                    "status": status, "headers": headers,
                    "body": base64::engine::general_purpose::STANDARD.encode(body)}),
    }
}

/// Column arrays of a batch, in the order `sb_append` takes them.
#[derive(Default)]
struct Columns {
    c_id: Vec<Uuid>,
    c_tenant: Vec<Uuid>,
    c_corr: Vec<Uuid>,
    c_cause: Vec<Option<Uuid>>,
    c_actor: Vec<String>,
    c_recorded: Vec<chrono::DateTime<chrono::Utc>>,
    s_cmd: Vec<i32>,
    s_id: Vec<Uuid>,
    s_type: Vec<&'static str>,
    s_expected: Vec<i64>,
    s_prev: Vec<Option<Vec<u8>>>,
    s_new_version: Vec<i64>,
    s_new_hash: Vec<Option<Vec<u8>>>,
    e_cmd: Vec<i32>,
    e_stream: Vec<i32>,
    e_id: Vec<Uuid>,
    e_type: Vec<String>,
    e_schema: Vec<i32>,
    e_version: Vec<i64>,
    e_data: Vec<Value>,
    e_prev: Vec<Vec<u8>>,
    e_hash: Vec<Vec<u8>>,
    x: Vec<Value>,
}

impl Columns {
    fn of(batch: &[&Prepared]) -> Columns {
        let mut c = Columns::default();
        for (i, p) in batch.iter().enumerate() {
            let cmd = i as i32 + 1;
            let m = &p.meta;
            c.c_id.push(m.command_id);
            c.c_tenant.push(m.tenant_id.uuid());
            c.c_corr.push(m.correlation_id);
            c.c_cause.push(m.causation_id);
            c.c_actor.push(m.actor.clone());
            c.c_recorded.push(p.recorded_at);
            let first_check = c.s_id.len() as i32 + 1;
            for s in &p.checks {
                c.s_cmd.push(cmd);
                c.s_id.push(s.stream_id);
                c.s_type.push(s.stream_type.as_str());
                c.s_expected.push(s.expected);
                c.s_prev.push(s.prev.map(|h| h.0.to_vec()));
                c.s_new_version.push(s.new_version);
                c.s_new_hash.push(s.new_hash.map(|h| h.0.to_vec()));
            }
            for e in &p.events {
                let env = &e.envelope;
                c.e_cmd.push(cmd);
                c.e_stream.push(first_check + e.check as i32);
                c.e_id.push(env.event_id);
                c.e_type.push(env.event_type.clone());
                c.e_schema.push(env.schema_version as i32);
                c.e_version.push(env.version);
                c.e_data.push(env.data.clone());
                c.e_prev.push(env.prev_hash.0.to_vec());
                c.e_hash.push(e.hash.0.to_vec());
            }
            c.x.extend(p.guards.iter().map(|g| guard_json(i + 1, g)));
        }
        c
    }
}

/// `sb_append`'s answer: outcomes, conflicting streams and their versions
/// (by command), and the first position written.
type BatchReply = (
    Vec<String>,
    Vec<Option<Uuid>>,
    Vec<Option<i64>>,
    Option<i64>,
);

/// Appends `batch` in one call on `conn` (its own transaction when `conn`
/// is in autocommit, or the caller's). Each command settles on its own.
pub(crate) async fn execute(
    conn: &mut PgConnection,
    batch: &[&Prepared],
) -> Result<Vec<Settled>, sqlx::Error> {
    if let [one] = batch {
        if let Some(simple) = Simple::of(one) {
            return Ok(vec![execute_one(conn, one, simple).await?]);
        }
    }
    let c = Columns::of(batch);
    let (outcome, conflict_stream, conflict_actual, base): BatchReply = sqlx::query_as(
        "SELECT * FROM sb_append($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,\
         $14,$15,$16,$17,$18,$19,$20,$21,$22,$23)",
    )
    .bind(&c.c_id)
    .bind(&c.c_tenant)
    .bind(&c.c_corr)
    .bind(&c.c_cause)
    .bind(&c.c_actor)
    .bind(&c.c_recorded)
    .bind(&c.s_cmd)
    .bind(&c.s_id)
    .bind(&c.s_type)
    .bind(&c.s_expected)
    .bind(&c.s_prev)
    .bind(&c.s_new_version)
    .bind(&c.s_new_hash)
    .bind(&c.e_cmd)
    .bind(&c.e_stream)
    .bind(&c.e_id)
    .bind(&c.e_type)
    .bind(&c.e_schema)
    .bind(&c.e_version)
    .bind(&c.e_data)
    .bind(&c.e_prev)
    .bind(&c.e_hash)
    .bind(Value::Array(c.x))
    .fetch_one(conn)
    .await?;
    let mut next = base.unwrap_or(0);
    let mut settled = Vec::with_capacity(batch.len());
    for (i, p) in batch.iter().enumerate() {
        let outcome = outcome.get(i).map(String::as_str).unwrap_or("missing");
        let (cs, ca) = (
            conflict_stream.get(i).copied().flatten(),
            conflict_actual.get(i).copied().flatten(),
        );
        let s = settle(p, outcome, cs, ca, next);
        if let Settled::Appended(events) = &s {
            next += events.len() as i64;
        }
        settled.push(s);
    }
    Ok(settled)
}

/// A command `sb_append_one` can take: one event on one stream, at most one
/// more stream only checked, no guards.
struct Simple<'a> {
    written: &'a super::append::Check,
    checked: Option<&'a super::append::Check>,
}

impl<'a> Simple<'a> {
    fn of(p: &'a Prepared) -> Option<Simple<'a>> {
        if !p.guards.is_empty() || p.events.len() != 1 || p.checks.len() > 2 {
            return None;
        }
        let written = p.checks.get(p.events[0].check)?;
        let mut others = p.checks.iter().filter(|c| c.new_version == c.expected);
        let checked = others.next();
        (others.next().is_none() && written.new_version == written.expected + 1)
            .then_some(Simple { written, checked })
    }
}

async fn execute_one(
    conn: &mut PgConnection,
    p: &Prepared,
    simple: Simple<'_>,
) -> Result<Settled, sqlx::Error> {
    let (m, e, w) = (&p.meta, &p.events[0], simple.written);
    let (outcome, conflict_stream, conflict_actual, base): (
        String,
        Option<Uuid>,
        Option<i64>,
        Option<i64>,
    ) = sqlx::query_as(
        "SELECT * FROM sb_append_one($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)",
    )
    .bind(m.command_id)
    .bind(m.tenant_id)
    .bind(m.correlation_id)
    .bind(m.causation_id)
    .bind(&m.actor)
    .bind(p.recorded_at)
    .bind(w.stream_id)
    .bind(w.stream_type.as_str())
    .bind(w.expected)
    .bind(&e.envelope.prev_hash.0[..])
    .bind(e.envelope.event_id)
    .bind(&e.envelope.event_type)
    .bind(e.envelope.schema_version as i32)
    .bind(&e.envelope.data)
    .bind(&e.hash.0[..])
    .bind(simple.checked.map(|c| c.stream_id))
    .bind(simple.checked.map_or(0, |c| c.expected))
    .fetch_one(conn)
    .await?;
    Ok(settle(
        p,
        &outcome,
        conflict_stream,
        conflict_actual,
        base.unwrap_or(0),
    ))
}

/// What `outcome` (of `sb_append` or `sb_append_one`) means for `p`.
fn settle(
    p: &Prepared,
    outcome: &str,
    conflict_stream: Option<Uuid>,
    conflict_actual: Option<i64>,
    first: i64,
) -> Settled {
    match outcome {
        "ok" => Settled::Appended(p.stored(first)),
        "duplicate" => Settled::Duplicate,
        "conflict" => {
            let stream_id = conflict_stream.unwrap_or_default();
            let expected = p
                .checks
                .iter()
                .find(|c| c.stream_id == stream_id)
                .map(|c| ExpectedVersion::from_version(c.expected))
                .unwrap_or(ExpectedVersion::NoStream);
            Settled::Failed(StoreError::Conflict {
                stream_id,
                expected,
                actual: conflict_actual.filter(|v| *v > 0),
            })
        }
        "claimed" => Settled::Failed(StoreError::Claimed),
        "referenced" => Settled::Failed(StoreError::Referenced),
        other => Settled::Failed(StoreError::Db(sqlx::Error::Protocol(format!(
            "sb_append answered {other:?}"
        )))),
    }
}

/// The events command `command_id` wrote, in order.
pub(crate) async fn command_events(
    conn: &mut PgConnection,
    command_id: Uuid,
) -> Result<Vec<StoredEvent>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM events WHERE command_id = $1 ORDER BY global_position"
    ))
    .bind(command_id)
    .fetch_all(conn)
    .await?;
    Ok(StoredEvent::from_rows(&rows)?)
}

/// The heads (version, last hash) of `streams` as stored now.
/// Each stream's head with the hash of the event at its version (`None`
/// when that event is missing), so a head can be checked before anything
/// chains onto it.
pub(crate) async fn heads(
    conn: &mut PgConnection,
    streams: &[Uuid],
) -> Result<Vec<(Uuid, i64, Vec<u8>, Option<Vec<u8>>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.stream_id, s.version, s.last_hash, e.hash FROM streams s \
         LEFT JOIN LATERAL (SELECT hash FROM events e \
                            WHERE e.stream_id = s.stream_id AND e.version = s.version LIMIT 1) e ON true \
         WHERE s.stream_id = ANY($1)",
    )
    .bind(streams)
    .fetch_all(conn)
    .await
}
