//! The dial: decrypt the provider's credentials, ask the Call Processor.
//!
//! Each step returns `Ok(Err(outcome))` when the call's own circumstances
//! (a cap refused again, a kill switch, a deleted provider, unreadable
//! credentials) end it without a dial; the rules are in `commands::dial`.

use events::{CallId, EncryptedCredentials, Envelope, OriginateRequested, TenantId};

use super::judged::{Judged, Reads};
use super::Worker;
use crate::callproc::{DialError, Dialed, OriginateRequest};
use crate::caps::Admission as CapsAdmission;
use crate::commands::call::{CallState, DialOutcome};
use crate::commands::dial as rules;
use crate::secrets::{PlainCredentials, SecretError};

/// A step's result: go on with `T`, or stop with the call's outcome.
type Step<T> = anyhow::Result<Result<T, DialOutcome>>;

impl Worker {
    /// Dials a claimed call. Every error that is the call's own becomes a
    /// `Failed` outcome; only trouble with our own dependencies is an `Err`,
    /// which retries the whole message.
    ///
    /// `live`: callbacks already show the call was placed. Then nothing may
    /// refuse it any more (a refusal would record a live call as failed and
    /// free its slot): the Call Processor is only asked again, same key.
    pub(super) async fn dial(
        &self,
        state: &CallState,
        cause: &Envelope,
        live: bool,
        judged_by: Option<Judged>,
    ) -> anyhow::Result<DialOutcome> {
        let (tenant, call_id) = (state.tenant_id, CallId::from(cause.stream_id));
        let Some(req) = &state.request else {
            anyhow::bail!("claimed call {call_id} has no request");
        };
        let plain = match self.cleared(tenant, call_id, req, live, judged_by).await? {
            Ok(plain) => plain,
            Err(stopped) => return Ok(stopped),
        };
        let request = OriginateRequest {
            call_id,
            session_id: req.session_id,
            provider: req.provider,
            credentials: &plain,
            from_number: &req.from_number,
            to_number: &req.to_number,
            agent_id: req.agent_id,
            status_callback_url: &self.callback_url,
        };
        let result = self.client.originate(&request).await;
        drop(plain);
        Ok(outcome_of(call_id, result))
    }

    /// Everything that must hold just before the dial: the caps still admit
    /// the call and the provider's credentials open. The caps, the provider
    /// and the shredded keys are those admission read a moment before (a
    /// redelivery reads them again); the reservation is made again here.
    async fn cleared(
        &self,
        tenant: TenantId,
        call_id: CallId,
        req: &OriginateRequested,
        live: bool,
        judged_by: Option<Judged>,
    ) -> Step<PlainCredentials> {
        // The caps and the provider: as admission just read them, or (a
        // redelivery that starts at the claim) as stored now.
        let judged = match judged_by {
            Some(j) => j,
            None => {
                let reads = Reads {
                    number: Some(req.number_id),
                    provider: req.credentials_id,
                    destinations: false,
                };
                self.judge(tenant, reads).await?.0
            }
        };
        let Judged {
            limits,
            number,
            provider,
            shredded,
        } = judged;
        // The slot was reserved before the claim was appended; if Redis lost
        // its counters in between, the rebuild could not see the claim.
        // Reserving again (idempotent per call) counts it now, or refuses.
        let again = self.caps.reserve_from(tenant, call_id, &limits, number);
        if let CapsAdmission::Refused(r) = again.await? {
            if let Some(stopped) = rules::refused_again(r.dimension, live) {
                return Ok(Err(stopped));
            }
        }
        // A kill switch thrown after admission still stops the dial.
        if let Some(stopped) = rules::kill_switch(&limits, live) {
            return Ok(Err(stopped));
        }
        let sealed = match rules::credentials_for(&provider, tenant, live) {
            Ok(sealed) => sealed,
            Err(stopped) => return Ok(Err(stopped)),
        };
        self.open(tenant, call_id, req, sealed, &shredded).await
    }

    /// The provider's credentials, opened for this one dial.
    async fn open(
        &self,
        tenant: TenantId,
        call_id: CallId,
        req: &OriginateRequested,
        sealed: &EncryptedCredentials,
        shredded: &[String],
    ) -> Step<PlainCredentials> {
        let opened = self
            .secrets
            .open_for_provider(
                &self.deps.pool,
                tenant,
                req.credentials_id,
                sealed,
                shredded,
            )
            .await;
        match opened {
            Ok(plain) => Ok(Ok(plain)),
            // Our own dependency or configuration, not the call's fault (a
            // process not yet restarted after a key rotation, say): retry.
            Err(
                e @ (SecretError::Db(_)
                | SecretError::UnknownMasterKid(_)
                | SecretError::NoMasterKey),
            ) => Err(anyhow::anyhow!("credentials of call {call_id}: {e}")),
            Err(e) => {
                // SecretError texts name what failed, never key or secret bytes.
                tracing::warn!(%call_id, error = %e, "sealed provider secrets cannot be opened");
                Ok(Err(DialOutcome::Failed {
                    error: "credentials_unreadable".into(),
                    retryable: false,
                }))
            }
        }
    }
}

/// What the Call Processor's answer makes of the call.
fn outcome_of(call_id: CallId, result: Result<Dialed, DialError>) -> DialOutcome {
    match result {
        // PostgreSQL text cannot hold NUL; strip it from what the Call
        // Processor sends, rather than fail the append forever.
        Ok(d) => DialOutcome::Dispatched {
            provider_call_id: d.provider_call_id.replace('\0', ""),
        },
        Err(DialError::Rejected { status, error }) => DialOutcome::Failed {
            // The Call Processor's own words (at most 200 characters).
            error: format!(
                "call_processor_rejected: HTTP {status}: {}",
                error.replace('\0', "")
            ),
            retryable: false,
        },
        Err(e @ DialError::Unavailable { .. }) => {
            tracing::warn!(%call_id, error = %e, "call processor unavailable");
            DialOutcome::Unavailable
        }
    }
}
