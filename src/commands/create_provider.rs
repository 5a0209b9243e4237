//! CreateProvider: a tenant registers a carrier account.

use async_trait::async_trait;
use events::{EncryptedCredentials, Event, ProviderCreated, ProviderId, ProviderKind, StreamType};

use super::state::ProviderState;
use super::Rejection;
use crate::store::{Loaded, StoreError};
use crate::write::{Command, Decision, Reader};

/// The command, with credentials already validated and sealed.
#[derive(Debug, Clone)]
pub struct CreateProvider {
    /// The new provider's id (its stream), drawn by the caller.
    pub provider_id: ProviderId,
    pub provider: ProviderKind,
    pub label: String,
    pub credentials: EncryptedCredentials,
}

#[async_trait]
impl Command for CreateProvider {
    type State = Loaded<ProviderState>;

    async fn load(&self, r: &Reader<'_>) -> Result<Self::State, StoreError> {
        Ok(r.new_stream(self.provider_id, ProviderState::apply))
    }

    fn decide(&self, s: &Self::State) -> Result<Decision, Rejection> {
        let events = decide(&s.state, self.clone())?;
        Ok(Decision::one(
            StreamType::Provider,
            self.provider_id,
            s.head.version,
            events,
        ))
    }
}

pub fn decide(state: &ProviderState, cmd: CreateProvider) -> Result<Vec<Event>, Rejection> {
    if state.version != 0 {
        return Err(Rejection::Conflict("provider id already in use".into()));
    }
    Ok(vec![Event::ProviderCreated(ProviderCreated {
        provider: cmd.provider,
        label: cmd.label,
        credentials: cmd.credentials,
    })])
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::commands::state::{fold, given};
    use events::TenantId;

    pub(crate) fn sealed(tag: &str) -> EncryptedCredentials {
        EncryptedCredentials {
            key_id: "dk1".into(),
            ciphertext: tag.into(),
            masked: BTreeMap::new(),
        }
    }

    pub(crate) fn created(kind: ProviderKind) -> Event {
        Event::ProviderCreated(ProviderCreated {
            provider: kind,
            label: "Production Twilio".into(),
            credentials: sealed("c1"),
        })
    }

    #[test]
    fn given_nothing_when_created_then_provider_created() {
        let state = ProviderState::default();
        let cmd = CreateProvider {
            provider_id: ProviderId::default(),
            provider: ProviderKind::Twilio,
            label: "Production Twilio".into(),
            credentials: sealed("c1"),
        };
        assert_eq!(
            decide(&state, cmd).unwrap(),
            vec![created(ProviderKind::Twilio)]
        );
    }

    #[test]
    fn given_existing_when_created_again_then_conflict() {
        let state: ProviderState = fold(
            given(TenantId::default(), vec![created(ProviderKind::Plivo)]),
            ProviderState::apply,
        );
        let cmd = CreateProvider {
            provider_id: ProviderId::default(),
            provider: ProviderKind::Plivo,
            label: "x".into(),
            credentials: sealed("c2"),
        };
        assert!(matches!(decide(&state, cmd), Err(Rejection::Conflict(_))));
    }
}
