//! The dial: decrypt the provider's credentials, ask the Call Processor.

use events::{CallId, Envelope};

use super::process::fold_stream;
use super::Worker;
use crate::callproc::{DialError, OriginateRequest};
use crate::caps::Admission as CapsAdmission;
use crate::commands::call::{CallState, DialOutcome};
use crate::commands::state::{LimitsState, ProviderState};
use crate::domain::CallLimits;
use crate::secrets::SecretError;

impl Worker {
    /// Dials a claimed call. Every error that is the call's own (unreadable
    /// credentials, a refusal) becomes a `Failed` outcome; only trouble with
    /// our own dependencies is an `Err`, which retries the whole message.
    ///
    /// `live`: callbacks already show the call was placed. Then nothing may
    /// refuse it any more (a refusal would record a live call as failed and
    /// free its slot): the Call Processor is only asked again, same key.
    pub(super) async fn dial(
        &self,
        state: &CallState,
        cause: &Envelope,
        live: bool,
        judged_by: Option<CallLimits>,
    ) -> anyhow::Result<DialOutcome> {
        let (tenant, call_id) = (state.tenant_id, CallId::from(cause.stream_id));
        let Some(req) = &state.request else {
            anyhow::bail!("claimed call {call_id} has no request");
        };
        // The caps (unless admission just read them) and the provider as
        // stored now, read side by side.
        let caps = async {
            match judged_by {
                Some(l) => Ok(l),
                None => fold_stream::<LimitsState>(
                    self,
                    events::call_limits_stream_id(tenant),
                    LimitsState::apply,
                )
                .await
                .map(|l| l.limits.unwrap_or(self.default_limits)),
            }
        };
        let (limits, provider) = tokio::join!(
            caps,
            fold_stream::<ProviderState>(self, req.credentials_id, ProviderState::apply),
        );
        let (limits, provider) = (limits?, provider?);
        // The slot was reserved before the claim was appended; if Redis lost
        // its counters in between, the rebuild could not see the claim.
        // Reserving again (idempotent per call) counts it now, or refuses.
        let again = self.caps.reserve(tenant, call_id, &limits).await?;
        if let (CapsAdmission::Refused(r), false) = (again, live) {
            return Ok(DialOutcome::Failed {
                error: format!("cap_reached: {}", r.dimension.as_str()),
                retryable: true,
            });
        }
        // A kill switch thrown after admission still stops the dial.
        if let Some(stopped) = crate::commands::dial::kill_switch(&limits, live) {
            return Ok(stopped);
        }
        let Some(sealed) = provider
            .credentials
            .as_ref()
            .filter(|_| provider.visible_to(tenant) || (live && provider.tenant_id == tenant))
        else {
            return Ok(DialOutcome::Failed {
                error: "provider_deleted".into(),
                retryable: false,
            });
        };
        let plain = match self
            .secrets
            .open_for_provider(&self.deps.pool, tenant, req.credentials_id, sealed)
            .await
        {
            Ok(p) => p,
            // Our own dependency or configuration, not the call's fault (a
            // process not yet restarted after a key rotation, say): retry.
            Err(
                e @ (SecretError::Db(_)
                | SecretError::UnknownMasterKid(_)
                | SecretError::NoMasterKey),
            ) => return Err(anyhow::anyhow!("credentials of call {call_id}: {e}")),
            Err(e) => {
                // SecretError texts name what failed, never key or secret bytes.
                tracing::warn!(%call_id, error = %e, "sealed provider secrets cannot be opened");
                return Ok(DialOutcome::Failed {
                    error: "credentials_unreadable".into(),
                    retryable: false,
                });
            }
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
        Ok(match result {
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
        })
    }
}
