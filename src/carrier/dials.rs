//! `carrier_dials`: the adapter's durable record of each call_id, and the
//! state machine that makes "never post twice" hold across crashes, races
//! between adapter processes and repeats from the worker.
//!
//! Every transition is one conditional UPDATE (or the claiming INSERT), so
//! two processes can never both move a row into `posting`: whoever's
//! statement matched owns the POST (or the reconcile) until `lease_until`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use events::CallId;
use sqlx::PgPool;

/// What the row says when a request for its call_id arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This request owns the POST: nothing was ever sent, or the carrier
    /// proved nothing was created.
    Post,
    /// The carrier created the call earlier: answer with its id.
    Placed(String),
    /// Final earlier: answer the same refusal.
    Failed { status: u16, error: String },
    /// Another request holds the lease (posting or reconciling right now).
    Busy { retry_after: Duration },
    /// A POST was sent and its answer lost (the sender died or timed out):
    /// this request owns reconciling it against the carrier, from `since`.
    Reconcile { since: DateTime<Utc> },
}

/// A new dial's fixed facts.
pub struct NewDial<'a> {
    pub call_id: CallId,
    pub provider: &'a str,
    pub from_number: &'a str,
    pub to_number: &'a str,
    pub callback_url: &'a str,
    pub sealed_auth: &'a [u8],
}

/// What a callback needs of its dial.
#[derive(Debug, Clone)]
pub struct DialRecord {
    pub provider: String,
    pub callback_url: String,
    pub sealed_auth: Vec<u8>,
    pub carrier_call_id: Option<String>,
}

fn lease_interval(lease: Duration) -> f64 {
    lease.as_secs_f64()
}

/// Claims the call_id or reads what an earlier request left. `lease` is how
/// long the owner may take (the carrier timeout plus a margin).
pub async fn claim(pool: &PgPool, dial: &NewDial<'_>, lease: Duration) -> sqlx::Result<Claim> {
    let inserted = sqlx::query(
        "INSERT INTO carrier_dials (call_id, provider, from_number, to_number, callback_url,
                                    sealed_auth, state, lease_until)
         VALUES ($1, $2, $3, $4, $5, $6, 'posting', now() + make_interval(secs => $7))
         ON CONFLICT (call_id) DO NOTHING",
    )
    .bind(dial.call_id)
    .bind(dial.provider)
    .bind(dial.from_number)
    .bind(dial.to_number)
    .bind(dial.callback_url)
    .bind(dial.sealed_auth)
    .bind(lease_interval(lease))
    .execute(pool)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::Post);
    }
    // Post again if the carrier proved nothing was created.
    let retake = sqlx::query(
        "UPDATE carrier_dials
            SET state = 'posting', lease_until = now() + make_interval(secs => $2),
                updated_at = now()
          WHERE call_id = $1 AND state = 'ready'",
    )
    .bind(dial.call_id)
    .bind(lease_interval(lease))
    .execute(pool)
    .await?
    .rows_affected();
    if retake == 1 {
        return Ok(Claim::Post);
    }
    // A lapsed lease: the answer to a POST that may have been sent is lost.
    // The claim itself counts as "may have been sent": the owner could have
    // died with the request on the wire before `posting` recorded the time.
    let lapsed: Option<DateTime<Utc>> = sqlx::query_scalar(
        "UPDATE carrier_dials
            SET lease_until = now() + make_interval(secs => $2), updated_at = now()
          WHERE call_id = $1 AND state = 'posting' AND lease_until <= now()
      RETURNING COALESCE(posted_at, created_at)",
    )
    .bind(dial.call_id)
    .bind(lease_interval(lease))
    .fetch_optional(pool)
    .await?;
    if let Some(since) = lapsed {
        return Ok(Claim::Reconcile { since });
    }
    type Row = (String, Option<String>, Option<String>, Option<i16>, f64);
    let row: Option<Row> = sqlx::query_as(
        "SELECT state, carrier_call_id, error, error_status,
                GREATEST(extract(epoch FROM lease_until - now()), 0)::float8
           FROM carrier_dials WHERE call_id = $1",
    )
    .bind(dial.call_id)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some((state, Some(id), ..)) if state == "placed" => Claim::Placed(id),
        Some((state, _, error, status, _)) if state == "failed" => Claim::Failed {
            status: status.map(|s| s as u16).unwrap_or(422),
            error: error.unwrap_or_default(),
        },
        Some((_, _, _, _, left)) => Claim::Busy {
            retry_after: Duration::from_secs_f64(left.clamp(0.2, 60.0)),
        },
        // Gone between the statements (a row is never deleted; be safe).
        None => Claim::Busy {
            retry_after: Duration::from_secs(1),
        },
    })
}

/// Recorded just before the POST leaves: from here on the call may exist.
pub async fn posting(pool: &PgPool, call_id: CallId) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE carrier_dials SET posted_at = now(), attempts = attempts + 1, updated_at = now()
          WHERE call_id = $1",
    )
    .bind(call_id)
    .execute(pool)
    .await
    .map(drop)
}

/// The carrier created the call. Returns the id on record, which is an
/// earlier one if a callback recorded it first.
pub async fn placed(pool: &PgPool, call_id: CallId, carrier_call_id: &str) -> sqlx::Result<String> {
    sqlx::query_scalar(
        "UPDATE carrier_dials
            SET state = 'placed', carrier_call_id = COALESCE(carrier_call_id, $2),
                error = NULL, error_status = NULL, updated_at = now()
          WHERE call_id = $1
      RETURNING carrier_call_id",
    )
    .bind(call_id)
    .bind(carrier_call_id)
    .fetch_one(pool)
    .await
}

/// Final: answered the same way from now on.
pub async fn failed(pool: &PgPool, call_id: CallId, status: u16, error: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE carrier_dials SET state = 'failed', error = $2, error_status = $3, updated_at = now()
          WHERE call_id = $1 AND state <> 'placed'",
    )
    .bind(call_id)
    .bind(error)
    .bind(status as i16)
    .execute(pool)
    .await
    .map(drop)
}

/// The carrier proved no call was created: it may be posted again.
pub async fn ready(pool: &PgPool, call_id: CallId) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE carrier_dials SET state = 'ready', lease_until = now(), updated_at = now()
          WHERE call_id = $1 AND state = 'posting'",
    )
    .bind(call_id)
    .execute(pool)
    .await
    .map(drop)
}

/// Gives up a lease early without changing the state (a reconcile that
/// could not reach the carrier), so the next request may try at once.
pub async fn release(pool: &PgPool, call_id: CallId) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE carrier_dials SET lease_until = now(), updated_at = now()
          WHERE call_id = $1 AND state = 'posting'",
    )
    .bind(call_id)
    .execute(pool)
    .await
    .map(drop)
}

/// Whether some dial already holds this carrier id (so a reconcile never
/// adopts another call_id's call).
pub async fn carrier_id_taken(pool: &PgPool, carrier_call_id: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM carrier_dials WHERE carrier_call_id = $1)")
        .bind(carrier_call_id)
        .fetch_one(pool)
        .await
}

/// The dial a callback names.
pub async fn record(pool: &PgPool, call_id: CallId) -> sqlx::Result<Option<DialRecord>> {
    let row: Option<(String, String, Vec<u8>, Option<String>)> = sqlx::query_as(
        "SELECT provider, callback_url, sealed_auth, carrier_call_id
           FROM carrier_dials WHERE call_id = $1",
    )
    .bind(call_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(
        |(provider, callback_url, sealed_auth, carrier_call_id)| DialRecord {
            provider,
            callback_url,
            sealed_auth,
            carrier_call_id,
        },
    ))
}
