//! DeleteProvider: allowed only while no number references the provider.

use events::{Event, ProviderDeleted};
use uuid::Uuid;

use super::state::ProviderState;
use super::{check_if_match, Rejection};

#[derive(Debug, Clone)]
pub struct DeleteProvider {
    pub tenant_id: Uuid,
    pub if_match: Option<i64>,
}

/// `numbers_attached` is read under the provider's stream lock, which every
/// AttachNumber also takes, so no number can slip in between.
pub fn decide(
    state: &ProviderState,
    cmd: DeleteProvider,
    numbers_attached: i64,
) -> Result<Vec<Event>, Rejection> {
    if !state.visible_to(cmd.tenant_id) {
        return Err(Rejection::NotFound("provider"));
    }
    check_if_match(cmd.if_match, state.version)?;
    if numbers_attached > 0 {
        return Err(Rejection::Conflict(format!(
            "provider has {numbers_attached} phone number(s) attached; release them first"
        )));
    }
    Ok(vec![Event::ProviderDeleted(ProviderDeleted {})])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::create_provider::tests::created;
    use crate::commands::state::{fold, given};
    use events::ProviderKind;

    #[test]
    fn with_numbers_attached_then_conflict_without_then_deleted() {
        let t = Uuid::new_v4();
        let s: ProviderState = fold(
            given(t, vec![created(ProviderKind::Vobiz)]),
            ProviderState::apply,
        );
        let cmd = DeleteProvider {
            tenant_id: t,
            if_match: None,
        };
        assert!(matches!(
            decide(&s, cmd.clone(), 2),
            Err(Rejection::Conflict(_))
        ));
        assert_eq!(
            decide(&s, cmd, 0).unwrap(),
            vec![Event::ProviderDeleted(ProviderDeleted {})]
        );
    }

    #[test]
    fn given_deleted_then_not_found() {
        let t = Uuid::new_v4();
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
            tenant_id: t,
            if_match: None,
        };
        assert_eq!(decide(&s, cmd, 0), Err(Rejection::NotFound("provider")));
    }
}
