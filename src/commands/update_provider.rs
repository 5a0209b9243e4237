//! UpdateProvider (PATCH): relabel, rotate credentials, or both.

use async_trait::async_trait;
use events::{
    EncryptedCredentials, Event, ProviderCredentialsRotated, ProviderRelabeled, StreamType,
};
use events::{ProviderId, TenantId};

use super::state::ProviderState;
use super::{check_if_match, Rejection};
use crate::store::{Loaded, StoreError};
use crate::write::{Command, Decision, Reader};

#[derive(Debug, Clone)]
pub struct UpdateProvider {
    pub provider_id: ProviderId,
    pub tenant_id: TenantId,
    pub label: Option<String>,
    /// Replaced whole, validated and sealed as on create.
    pub credentials: Option<EncryptedCredentials>,
    pub if_match: Option<i64>,
}

#[async_trait]
impl Command for UpdateProvider {
    type State = Loaded<ProviderState>;

    async fn load(&self, r: &Reader<'_>) -> Result<Self::State, StoreError> {
        r.load(self.provider_id, ProviderState::apply).await
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

pub fn decide(state: &ProviderState, cmd: UpdateProvider) -> Result<Vec<Event>, Rejection> {
    if !state.visible_to(cmd.tenant_id) {
        return Err(Rejection::NotFound("provider"));
    }
    check_if_match(cmd.if_match, state.version)?;
    let mut out = Vec::new();
    if let Some(label) = cmd.label.filter(|l| *l != state.label) {
        out.push(Event::ProviderRelabeled(ProviderRelabeled { label }));
    }
    if let Some(credentials) = cmd.credentials {
        out.push(Event::ProviderCredentialsRotated(
            ProviderCredentialsRotated { credentials },
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::create_provider::tests::{created, sealed};
    use crate::commands::state::{fold, given};
    use events::ProviderKind;

    fn existing(tenant: TenantId) -> ProviderState {
        fold(
            given(tenant, vec![created(ProviderKind::Twilio)]),
            ProviderState::apply,
        )
    }

    fn cmd(tenant: TenantId) -> UpdateProvider {
        UpdateProvider {
            provider_id: ProviderId::default(),
            tenant_id: tenant,
            label: Some("Backup".into()),
            credentials: Some(sealed("c2")),
            if_match: None,
        }
    }

    #[test]
    fn relabels_and_rotates() {
        let t = TenantId::new();
        let events = decide(&existing(t), cmd(t)).unwrap();
        assert_eq!(
            events,
            vec![
                Event::ProviderRelabeled(ProviderRelabeled {
                    label: "Backup".into()
                }),
                Event::ProviderCredentialsRotated(ProviderCredentialsRotated {
                    credentials: sealed("c2")
                }),
            ]
        );
    }

    #[test]
    fn the_same_label_appends_nothing() {
        let t = TenantId::new();
        let c = UpdateProvider {
            provider_id: ProviderId::default(),
            label: Some("Production Twilio".into()),
            credentials: None,
            ..cmd(t)
        };
        assert!(decide(&existing(t), c).unwrap().is_empty());
    }

    #[test]
    fn another_tenant_gets_not_found_and_a_stale_version_412() {
        let t = TenantId::new();
        assert_eq!(
            decide(&existing(t), cmd(TenantId::new())),
            Err(Rejection::NotFound("provider"))
        );
        let stale = UpdateProvider {
            provider_id: ProviderId::default(),
            if_match: Some(7),
            ..cmd(t)
        };
        assert_eq!(
            decide(&existing(t), stale),
            Err(Rejection::PreconditionFailed { current: 1 })
        );
    }
}
