//! Handling one `OriginateRequested`: admit, claim, dial, record.

use events::{call_limits_stream_id, Envelope, Event, OriginateRejected, StreamType};
use uuid::Uuid;

use super::{CrashPoint, Worker};
use crate::caps::Admission as CapsAdmission;
use crate::commands::call::{self, Admission, CallState, DialOutcome, Phase};
use crate::commands::dial;
use crate::commands::state::{At, LimitsState};
use crate::domain::CallLimits;
use crate::store::{CommandMeta, ExpectedVersion, Loaded, StoreError, StreamAppend};

/// What handling a message came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    Rejected,
    Dispatched,
    Failed,
    /// The call already had its outcome (a redelivery, or another worker).
    AlreadyDone,
    /// A crash point fired: the message must not be acknowledged.
    Crashed,
}

/// A stream's state as stored now: the cached fold brought up to date with
/// one query for what is newer (never a fold of the whole history).
pub(super) async fn fold_stream<S>(
    w: &Worker,
    id: Uuid,
    apply: fn(&mut S, At, &Event),
) -> anyhow::Result<S>
where
    S: Clone + Default + Send + Sync + 'static,
{
    Ok(w.deps.store.load_fresh(id, apply).await?.state)
}

impl Worker {
    fn meta(&self, cause: &Envelope, tenant_id: Uuid) -> CommandMeta {
        CommandMeta {
            command_id: Uuid::now_v7(),
            correlation_id: cause.correlation_id,
            causation_id: Some(cause.event_id),
            actor: format!("system:worker:{}", self.worker_id),
            tenant_id,
        }
    }

    /// The call as the store has it (this process's cached fold, or one
    /// read). Never the message: NATS distributes events, the store is the
    /// truth, so a message naming a call the store does not hold moves
    /// nothing, and the tenant whose caps are charged is the stored one.
    async fn initial_state(&self, cause: &Envelope) -> anyhow::Result<Loaded<CallState>> {
        Ok(self
            .deps
            .store
            .load(cause.stream_id, CallState::apply)
            .await?)
    }

    /// Appends `events` to the call stream at `call`'s version and moves
    /// `call` on by them. A conflict means another worker (or a callback)
    /// moved the call on: `call` is reloaded and the caller decides again.
    async fn append_call(
        &self,
        cause: &Envelope,
        call: &mut Loaded<CallState>,
        events: Vec<Event>,
    ) -> Result<bool, StoreError> {
        if events.is_empty() {
            return Ok(true);
        }
        let sa = StreamAppend {
            stream_type: StreamType::Call,
            stream_id: cause.stream_id,
            expected: ExpectedVersion::from_version(call.head.version),
            events,
        };
        let store = &self.deps.store;
        match store
            .append(self.meta(cause, call.state.tenant_id), &[sa], vec![])
            .await
        {
            Ok(out) => {
                let written = out.into_events();
                self.deps
                    .metrics
                    .events_appended
                    .inc_by(written.len() as u64);
                *call = store.advance(
                    cause.stream_id,
                    call.state.clone(),
                    call.head,
                    &written,
                    CallState::apply,
                )?;
                Ok(true)
            }
            Err(StoreError::Conflict { .. }) => {
                *call = store.load_fresh(cause.stream_id, CallState::apply).await?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    pub async fn handle_message(&self, payload: &[u8]) -> anyhow::Result<Handled> {
        let cause: Envelope = serde_json::from_slice(payload)?;
        self.handle_delivery(&cause, false).await
    }

    /// Moves the call as far as it can go, giving up on an unanswered dial
    /// at once (as the last attempt would); idempotent.
    pub async fn handle(&self, cause: &Envelope) -> anyhow::Result<Handled> {
        self.handle_delivery(cause, true).await
    }

    /// Moves the call as far as it can go. An unanswered dial is retried
    /// later (an `Err`, so the message is NAKed) until `give_up` has passed
    /// since the claim, unless `final_attempt`.
    pub async fn handle_delivery(
        &self,
        cause: &Envelope,
        final_attempt: bool,
    ) -> anyhow::Result<Handled> {
        // Set once this handling reserved a slot for the call.
        let mut reserved = false;
        // A dispatch this handling got, kept across a version conflict (a
        // callback may land before the outcome is appended): appended again
        // at the new version, never thrown away for a second dial.
        let mut dispatched_already: Option<DialOutcome> = None;
        // The caps this handling admitted the call by, read from the store a
        // moment ago: the dial right after needs not read them again. A
        // handling that starts at the claim (a redelivery) reads them fresh.
        let mut judged_by: Option<CallLimits> = None;
        let mut call = self.initial_state(cause).await?;
        for _ in 0..8 {
            let state = call.state.clone();
            match state.phase {
                Phase::Requested => {
                    let (admission, limits) = self.admit(state.tenant_id, cause.stream_id).await?;
                    judged_by = Some(limits);
                    let refused = matches!(admission, Admission::Refused(_));
                    reserved |= !refused;
                    if !self
                        .append_call(cause, &mut call, call::admit(&state, admission))
                        .await?
                    {
                        continue;
                    }
                    if refused {
                        self.count("rejected");
                        return Ok(Handled::Rejected);
                    }
                    if self.crash == Some(CrashPoint::AfterClaim) {
                        return Ok(Handled::Crashed);
                    }
                }
                Phase::Claimed => {
                    let live = dial::is_live(&state);
                    let outcome = match dispatched_already.take() {
                        Some(d) => d,
                        None => self.dial(&state, cause, live, judged_by.take()).await?,
                    };
                    if self.crash == Some(CrashPoint::AfterDial) {
                        return Ok(Handled::Crashed);
                    }
                    if matches!(outcome, DialOutcome::Dispatched { .. }) {
                        dispatched_already = Some(outcome.clone());
                    }
                    // An unanswered dial may have placed the call: try again
                    // later with the same key (the rule: `dial::retry_later`).
                    let now = chrono::Utc::now();
                    if dial::retry_later(&state, &outcome, now, self.give_up, final_attempt) {
                        anyhow::bail!(
                            "call {}: the call processor is unavailable",
                            cause.stream_id
                        );
                    }
                    let dispatched = matches!(outcome, DialOutcome::Dispatched { .. });
                    if !self
                        .append_call(cause, &mut call, call::record_dial(&state, outcome))
                        .await?
                    {
                        continue;
                    }
                    if self.crash == Some(CrashPoint::BeforeAck) {
                        return Ok(Handled::Crashed);
                    }
                    self.count(if dispatched { "dispatched" } else { "failed" });
                    return Ok(if dispatched {
                        Handled::Dispatched
                    } else {
                        Handled::Failed
                    });
                }
                Phase::None if call.fresh => {
                    anyhow::bail!("call {} has no OriginateRequested yet", cause.stream_id)
                }
                Phase::None => {
                    call = self
                        .deps
                        .store
                        .load_fresh(cause.stream_id, CallState::apply)
                        .await?;
                }
                Phase::Rejected | Phase::Failed if reserved => {
                    // Another handler recorded the end first; the slot this
                    // one reserved must not be held until its lease lapses.
                    let now = self.deps.clock.now();
                    self.caps
                        .release(state.tenant_id, cause.stream_id, now, 0)
                        .await?;
                    return Ok(Handled::AlreadyDone);
                }
                Phase::Rejected | Phase::Dispatched | Phase::Failed => {
                    return Ok(Handled::AlreadyDone)
                }
            }
        }
        anyhow::bail!("call {} kept changing under this worker", cause.stream_id)
    }

    fn count(&self, outcome: &str) {
        self.deps
            .metrics
            .originations
            .get_or_create(&crate::metrics::OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Reserves a slot in all four caps, against the caps in the store (not a
    /// projection: a 0 must hold from the moment it was accepted).
    /// Returns the caps it judged by too.
    async fn admit(&self, tenant: Uuid, call_id: Uuid) -> anyhow::Result<(Admission, CallLimits)> {
        let limits: LimitsState =
            fold_stream(self, call_limits_stream_id(tenant), LimitsState::apply).await?;
        let limits = limits.limits.unwrap_or(self.default_limits);
        let admission = match self.caps.reserve(tenant, call_id, &limits).await? {
            CapsAdmission::Admitted => Admission::Admitted {
                worker_id: self.worker_id.clone(),
            },
            CapsAdmission::Refused(r) => Admission::Refused(OriginateRejected {
                dimension: r.dimension,
                limit: r.limit,
                current: r.current,
                retry_after_s: r.retry_after_s,
            }),
        };
        Ok((admission, limits))
    }
}
