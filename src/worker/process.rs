//! Handling one `OriginateRequested`: admit, claim, dial, record.

use events::{
    CallId, Envelope, Event, OriginateRejected, OriginateRequested, StreamType, TenantId,
};
use uuid::Uuid;

use super::judged::{Judged, Reads};
use super::{CrashPoint, Worker};
use crate::caps::{Admission as CapsAdmission, CountedNumber};
use crate::commands::call::{self, Admission, CallState, DialOutcome, Phase};
use crate::commands::dial;
use crate::commands::set_destinations;
use crate::domain::E164;
use crate::store::{CommandMeta, ExpectedVersion, Loaded, StoreError, StreamAppend};

/// What handling a message came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    Rejected,
    Dispatched,
    Failed,
    /// The call already had its outcome (a redelivery, or another worker).
    AlreadyDone,
    /// Another worker claimed the call a moment ago and is most likely
    /// dialing it: look again after this long (`dial::held_elsewhere`).
    HeldElsewhere(std::time::Duration),
    /// A crash point fired: the message must not be acknowledged.
    Crashed,
}

/// How far a handling may go.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    /// The last one: an unanswered dial is recorded as failed, not retried.
    pub last: bool,
    /// A call another worker claimed a moment ago may be left to it
    /// (`Handled::HeldElsewhere`). The consumer allows it for a bounded
    /// number of deliveries, so a claimer that died holds a call up for
    /// about one ack wait at most, whatever the hosts' clocks say.
    pub may_defer: bool,
}

/// What one handling of a message remembers between its steps.
struct Handling<'a> {
    cause: &'a Envelope,
    attempt: Attempt,
    call: Loaded<CallState>,
    /// Set once this handling reserved a slot for the call.
    reserved: bool,
    /// A dispatch this handling got, kept across a version conflict (a
    /// callback may land before the outcome is appended): appended again at
    /// the new version, never thrown away for a second dial.
    dispatched_already: Option<DialOutcome>,
    /// The caps this handling admitted the call by, read from the store a
    /// moment ago: the dial right after needs not read them again. A
    /// handling that starts at the claim (a redelivery) reads them fresh.
    judged_by: Option<Judged>,
}

/// What a step of a handling came to.
enum Step {
    /// Look at the call again (it moved on, or this step moved it).
    Again,
    Done(Handled),
}

impl Worker {
    fn meta(&self, cause: &Envelope, tenant_id: TenantId) -> CommandMeta {
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

    /// Moves the call as far as it can go, giving up on an unanswered dial
    /// at once (as the last attempt would); idempotent.
    pub async fn handle(&self, cause: &Envelope) -> anyhow::Result<Handled> {
        let attempt = Attempt {
            last: true,
            may_defer: true,
        };
        self.handle_delivery(cause, attempt).await
    }

    /// Moves the call as far as it can go. An unanswered dial is retried
    /// later (an `Err`, so the message is NAKed) until `give_up` has passed
    /// since the claim, unless it is the last attempt. Each phase is one step;
    /// a step that lost a version race says `Again` and the next step sees
    /// the call as it is now.
    #[tracing::instrument(
        name = "originate",
        skip_all,
        fields(call_id = %cause.stream_id, tenant_id = tracing::field::Empty,
               correlation_id = %cause.correlation_id, worker = %self.worker_id)
    )]
    pub async fn handle_delivery(
        &self,
        cause: &Envelope,
        attempt: Attempt,
    ) -> anyhow::Result<Handled> {
        let call = self.initial_state(cause).await?;
        // The stored tenant, never the message's.
        tracing::Span::current().record("tenant_id", tracing::field::display(call.state.tenant_id));
        let mut h = Handling {
            cause,
            attempt,
            call,
            reserved: false,
            dispatched_already: None,
            judged_by: None,
        };
        for _ in 0..8 {
            let step = match h.call.state.phase {
                Phase::Requested => self.on_requested(&mut h).await?,
                Phase::Claimed => self.on_claimed(&mut h).await?,
                Phase::None => self.on_unknown(&mut h).await?,
                Phase::Rejected | Phase::Dispatched | Phase::Failed => self.on_ended(&h).await?,
            };
            if let Step::Done(handled) = step {
                return Ok(handled);
            }
        }
        anyhow::bail!("call {} kept changing under this worker", cause.stream_id)
    }

    /// Admission: reserve in all four caps and the number's own, then claim
    /// or refuse.
    async fn on_requested(&self, h: &mut Handling<'_>) -> anyhow::Result<Step> {
        let state = h.call.state.clone();
        let Some(req) = state.request.as_ref() else {
            anyhow::bail!("requested call {} has no request", h.cause.stream_id);
        };
        let (admission, judged) = self
            .admit(state.tenant_id, CallId::from(h.cause.stream_id), req)
            .await?;
        h.judged_by = Some(judged);
        let refused = matches!(admission, Admission::Refused(_));
        h.reserved |= !refused;
        if !self
            .append_call(h.cause, &mut h.call, call::admit(&state, admission))
            .await?
        {
            return Ok(Step::Again);
        }
        if refused {
            self.count("rejected");
            return Ok(Step::Done(Handled::Rejected));
        }
        if self.crash == Some(CrashPoint::AfterClaim) {
            return Ok(Step::Done(Handled::Crashed));
        }
        Ok(Step::Again)
    }

    /// The dial, and its outcome recorded (or retried later, per
    /// `dial::retry_later`: an unanswered dial may have placed the call).
    async fn on_claimed(&self, h: &mut Handling<'_>) -> anyhow::Result<Step> {
        if h.dispatched_already.is_none() {
            if let Some(step) = self.claimed_elsewhere(h).await? {
                return Ok(step);
            }
        }
        let state = h.call.state.clone();
        let live = dial::is_live(&state);
        let outcome = match h.dispatched_already.take() {
            Some(d) => d,
            None => self.dial(&state, h.cause, live, h.judged_by.take()).await?,
        };
        if self.crash == Some(CrashPoint::AfterDial) {
            return Ok(Step::Done(Handled::Crashed));
        }
        let dispatched = matches!(outcome, DialOutcome::Dispatched { .. });
        if dispatched {
            h.dispatched_already = Some(outcome.clone());
        }
        let now = chrono::Utc::now();
        if dial::retry_later(&state, &outcome, now, self.give_up, h.attempt.last) {
            anyhow::bail!(
                "call {}: the call processor is unavailable",
                h.cause.stream_id
            );
        }
        if !self
            .append_call(h.cause, &mut h.call, call::record_dial(&state, outcome))
            .await?
        {
            return Ok(Step::Again);
        }
        if self.crash == Some(CrashPoint::BeforeAck) {
            return Ok(Step::Done(Handled::Crashed));
        }
        self.count(if dispatched { "dispatched" } else { "failed" });
        Ok(Step::Done(if dispatched {
            Handled::Dispatched
        } else {
            Handled::Failed
        }))
    }

    /// Another worker's claim: read fresh first if it came from this
    /// process's cache (the call may well be done by now), then left to
    /// that worker while it is young, when this attempt may defer.
    async fn claimed_elsewhere(&self, h: &mut Handling<'_>) -> anyhow::Result<Option<Step>> {
        if h.call.state.claimed_by.as_deref() == Some(self.worker_id.as_str()) {
            return Ok(None);
        }
        if !h.call.fresh {
            h.call = self
                .deps
                .store
                .load_fresh(h.cause.stream_id, CallState::apply)
                .await?;
            return Ok(Some(Step::Again));
        }
        if !h.attempt.may_defer {
            return Ok(None);
        }
        let now = chrono::Utc::now();
        Ok(
            dial::held_elsewhere(&h.call.state, &self.worker_id, now, self.ack_wait)
                .map(|left| Step::Done(Handled::HeldElsewhere(left))),
        )
    }

    /// A call the store does not hold (yet): read it fresh once, then give
    /// the message back for later.
    async fn on_unknown(&self, h: &mut Handling<'_>) -> anyhow::Result<Step> {
        if h.call.fresh {
            anyhow::bail!("call {} has no OriginateRequested yet", h.cause.stream_id)
        }
        h.call = self
            .deps
            .store
            .load_fresh(h.cause.stream_id, CallState::apply)
            .await?;
        Ok(Step::Again)
    }

    /// The call has its outcome. If another handler recorded an end first,
    /// what this handling reserved is given back now, not when its lease
    /// lapses: the slot of a failed call (a call, counted), the whole
    /// reservation of a rejected one (never a call, so it counts against no
    /// minute or day). A reservation an earlier, failed handling left is
    /// taken back by `caps-release-rejected` on the published rejection (a
    /// reserve after that counts nothing), so a delivery that reserved
    /// nothing itself does no Redis work here.
    async fn on_ended(&self, h: &Handling<'_>) -> anyhow::Result<Step> {
        if !h.reserved {
            return Ok(Step::Done(Handled::AlreadyDone));
        }
        let (tenant, call) = (h.call.state.tenant_id, CallId::from(h.cause.stream_id));
        match h.call.state.phase {
            Phase::Rejected => {
                let number = h.call.state.request.as_ref().map(|r| r.number_id);
                self.caps
                    .withdraw(tenant, call, CountedNumber::Known(number))
                    .await?;
            }
            Phase::Failed => {
                let now = self.deps.clock.now();
                self.caps.release(tenant, call, now, 0).await?;
            }
            _ => {}
        }
        Ok(Step::Done(Handled::AlreadyDone))
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

    /// Reserves a slot in all four caps and the calling number's own,
    /// against the caps in the store (not a projection: a 0 must hold from
    /// the moment it was accepted). Returns what it judged by too.
    async fn admit(
        &self,
        tenant: TenantId,
        call_id: CallId,
        req: &OriginateRequested,
    ) -> anyhow::Result<(Admission, Judged)> {
        let reads = Reads {
            number: Some(req.number_id),
            provider: req.credentials_id,
            destinations: true,
        };
        let (judged, places) = self.judge(tenant, reads).await?;
        // The destination policy before any cap: a refused destination
        // counts against nothing. A stored number that no longer parses is
        // judged by no destination rule (it was checked when the call was
        // requested).
        let policy = places.unwrap_or_default().in_force();
        let to = E164::parse(&req.to_number).ok();
        if let Some(blocked) = to.and_then(|to| set_destinations::blocked(&policy, &to)) {
            return Ok((
                Admission::Refused(OriginateRejected::destination(blocked)),
                judged,
            ));
        }
        let reserved = self
            .caps
            .reserve_from(tenant, call_id, &judged.limits, judged.number);
        let admission = match reserved.await? {
            CapsAdmission::Admitted => Admission::Admitted {
                worker_id: self.worker_id.clone(),
            },
            CapsAdmission::Refused(r) => Admission::Refused(OriginateRejected {
                dimension: r.dimension,
                limit: r.limit,
                current: r.current,
                retry_after_s: r.retry_after_s,
                blocked: None,
            }),
        };
        Ok((admission, judged))
    }
}
