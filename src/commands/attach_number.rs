//! AttachNumber: a tenant registers an E.164 number on one of its providers.

use async_trait::async_trait;
use events::{Event, NumberAttached, NumberId, ProviderId, ProviderKind, StreamType, TenantId};
use uuid::Uuid;

use super::state::{NumberState, ProviderState};
use super::Rejection;
use crate::domain::{FieldError, Fields, E164};
use crate::store::{Guard, Loaded, StoreError};
use crate::write::{Command, Decision, Reader};

#[derive(Debug, Clone)]
pub struct AttachNumber {
    /// The new number's id (its stream), drawn by the caller.
    pub number_id: NumberId,
    pub tenant_id: TenantId,
    pub e164: E164,
    pub provider: ProviderKind,
    pub credentials_id: ProviderId,
    pub agent_id: Option<Uuid>,
    pub inbound_enabled: bool,
    pub outbound_enabled: bool,
}

impl AttachNumber {
    /// `POST /telephony/numbers`, checked field by field, as number
    /// `number_id` of `tenant_id`.
    pub fn parse(
        body: &serde_json::Map<String, serde_json::Value>,
        number_id: NumberId,
        tenant_id: TenantId,
    ) -> Result<Self, Vec<FieldError>> {
        let mut f = Fields::new(body);
        f.deny_unknown(&[
            "e164",
            "provider",
            "credentials_id",
            "agent_id",
            "inbound_enabled",
            "outbound_enabled",
        ]);
        let e164 = f.e164("e164");
        let provider = f.provider_kind("provider");
        let credentials_id = f.uuid("credentials_id");
        let agent_id = f.opt_nullable_uuid("agent_id").flatten();
        let inbound_enabled = f.opt_bool("inbound_enabled").unwrap_or(true);
        let outbound_enabled = f.opt_bool("outbound_enabled").unwrap_or(true);
        f.finish()?;
        let (Some(e164), Some(provider), Some(credentials_id)) = (e164, provider, credentials_id)
        else {
            return Err(vec![FieldError::new("body", "is incomplete")]);
        };
        Ok(AttachNumber {
            number_id,
            tenant_id,
            e164,
            provider,
            credentials_id,
            agent_id,
            inbound_enabled,
            outbound_enabled,
        })
    }
}

#[async_trait]
impl Command for AttachNumber {
    /// The new number, and the provider it goes on.
    type State = (Loaded<NumberState>, Loaded<ProviderState>);

    async fn load(&self, r: &Reader<'_>) -> Result<Self::State, StoreError> {
        let number = r.new_stream(self.number_id, NumberState::apply);
        Ok((
            number,
            r.load(self.credentials_id, ProviderState::apply).await?,
        ))
    }

    /// The number's events; the provider only checked (a DeleteProvider
    /// meanwhile fails one of the two); the e164 claimed in the same append.
    fn decide(&self, (number, provider): &Self::State) -> Result<Decision, Rejection> {
        let events = decide(&number.state, &provider.state, self.clone())?;
        Ok(Decision::one(StreamType::Number, self.number_id, 0, events)
            .and(
                StreamType::Provider,
                self.credentials_id,
                provider.head.version,
                vec![],
            )
            .guard(Guard::ClaimNumber {
                e164: self.e164.to_string(),
                tenant_id: self.tenant_id,
                number_id: self.number_id,
                credentials_id: self.credentials_id,
            }))
    }
}

/// `provider` is the folded stream of `credentials_id`. That the e164 is
/// held by nobody else is checked by the claim the append makes
/// (`Guard::ClaimNumber`), not here.
pub fn decide(
    number: &NumberState,
    provider: &ProviderState,
    cmd: AttachNumber,
) -> Result<Vec<Event>, Rejection> {
    if number.version != 0 {
        return Err(Rejection::Conflict("number id already in use".into()));
    }
    if !provider.visible_to(cmd.tenant_id) {
        return Err(Rejection::NotFound("credentials_id"));
    }
    if provider.kind != Some(cmd.provider) {
        return Err(Rejection::invalid(
            "provider",
            "does not match the provider of credentials_id",
        ));
    }
    Ok(vec![Event::NumberAttached(NumberAttached {
        e164: cmd.e164.to_string(),
        provider: cmd.provider,
        credentials_id: cmd.credentials_id,
        agent_id: cmd.agent_id,
        inbound_enabled: cmd.inbound_enabled,
        outbound_enabled: cmd.outbound_enabled,
    })])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::create_provider::tests::created;
    use crate::commands::state::{fold, given};
    use events::ProviderDeleted;

    fn cmd(tenant: TenantId, provider: ProviderKind) -> AttachNumber {
        AttachNumber {
            number_id: NumberId::default(),
            tenant_id: tenant,
            e164: E164::parse("+12025550123").unwrap(),
            provider,
            credentials_id: ProviderId::default(),
            agent_id: None,
            inbound_enabled: true,
            outbound_enabled: true,
        }
    }

    #[test]
    fn given_a_provider_of_the_tenant_then_attached() {
        let t = TenantId::new();
        let p: ProviderState = fold(
            given(t, vec![created(ProviderKind::Twilio)]),
            ProviderState::apply,
        );
        let events = decide(&NumberState::default(), &p, cmd(t, ProviderKind::Twilio)).unwrap();
        assert!(matches!(&events[..], [Event::NumberAttached(n)] if n.e164 == "+12025550123"));
    }

    #[test]
    fn another_tenants_or_a_deleted_provider_is_not_found() {
        let t = TenantId::new();
        let p: ProviderState = fold(
            given(t, vec![created(ProviderKind::Twilio)]),
            ProviderState::apply,
        );
        let other = decide(
            &NumberState::default(),
            &p,
            cmd(TenantId::new(), ProviderKind::Twilio),
        );
        assert_eq!(other, Err(Rejection::NotFound("credentials_id")));
        let deleted: ProviderState = fold(
            given(
                t,
                vec![
                    created(ProviderKind::Twilio),
                    Event::ProviderDeleted(ProviderDeleted {}),
                ],
            ),
            ProviderState::apply,
        );
        let gone = decide(
            &NumberState::default(),
            &deleted,
            cmd(t, ProviderKind::Twilio),
        );
        assert_eq!(gone, Err(Rejection::NotFound("credentials_id")));
    }

    #[test]
    fn a_provider_of_another_kind_is_invalid() {
        let t = TenantId::new();
        let p: ProviderState = fold(
            given(t, vec![created(ProviderKind::Plivo)]),
            ProviderState::apply,
        );
        let r = decide(&NumberState::default(), &p, cmd(t, ProviderKind::Twilio));
        assert!(matches!(r, Err(Rejection::Invalid(f)) if f[0].field == "provider"));
    }
}
