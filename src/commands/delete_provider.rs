//! DeleteProvider: allowed only while no number references the provider.

use async_trait::async_trait;
use events::{Event, ProviderDeleted, ProviderId, StreamType, TenantId};

use super::state::ProviderState;
use super::{check_if_match, Rejection};
use crate::store::{Guard, Loaded, StoreError};
use crate::write::{Command, Decision, Reader};

/// What a client is told when a number still uses the provider.
pub const REFERENCED: &str = "provider has phone numbers attached; release them first";

#[derive(Debug, Clone)]
pub struct DeleteProvider {
    pub provider_id: ProviderId,
    pub tenant_id: TenantId,
    pub if_match: Option<i64>,
}

/// That no number references the provider is not a fact of its stream: the
/// decision asks for it as a guard (`Guard::Unreferenced`), checked in the
/// append itself. AttachNumber checks the provider's version in its own
/// append, so a number attached meanwhile makes one of the two fail.
pub fn decide(state: &ProviderState, cmd: DeleteProvider) -> Result<Decision, Rejection> {
    if !state.visible_to(cmd.tenant_id) {
        return Err(Rejection::NotFound("provider"));
    }
    check_if_match(cmd.if_match, state.version)?;
    Ok(Decision::one(
        StreamType::Provider,
        cmd.provider_id,
        state.version,
        vec![Event::ProviderDeleted(ProviderDeleted {})],
    )
    .guard(Guard::Unreferenced {
        credentials_id: cmd.provider_id,
    }))
}

#[async_trait]
impl Command for DeleteProvider {
    type State = Loaded<ProviderState>;

    async fn load(&self, r: &Reader<'_>) -> Result<Self::State, StoreError> {
        r.load(self.provider_id, ProviderState::apply).await
    }

    fn decide(&self, s: &Self::State) -> Result<Decision, Rejection> {
        decide(&s.state, self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::create_provider::tests::created;
    use crate::commands::state::{fold, given};
    use events::ProviderKind;

    #[test]
    fn deleted_only_while_no_number_references_it() {
        let t = TenantId::new();
        let s: ProviderState = fold(
            given(t, vec![created(ProviderKind::Vobiz)]),
            ProviderState::apply,
        );
        let p = ProviderId::new();
        let cmd = DeleteProvider {
            provider_id: p,
            tenant_id: t,
            if_match: None,
        };
        let d = decide(&s, cmd).unwrap();
        assert_eq!(
            d.appends[0].events,
            vec![Event::ProviderDeleted(ProviderDeleted {})]
        );
        assert_eq!(d.guards, vec![Guard::Unreferenced { credentials_id: p }]);
    }

    #[test]
    fn given_deleted_then_not_found() {
        let t = TenantId::new();
        let s: ProviderState = fold(
            given(
                t,
                vec![
                    created(ProviderKind::Vobiz),
                    Event::ProviderDeleted(ProviderDeleted {}),
                ],
            ),
            ProviderState::apply,
        );
        let cmd = DeleteProvider {
            provider_id: ProviderId::new(),
            tenant_id: t,
            if_match: None,
        };
        assert_eq!(decide(&s, cmd), Err(Rejection::NotFound("provider")));
    }
}
