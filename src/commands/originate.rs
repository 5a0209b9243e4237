//! Originate: a tenant's agent asks for an outbound call.

use async_trait::async_trait;
use events::{CallId, Event, NumberId, OriginateRequested, StreamType, TenantId};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::call::CallState;
use super::state::NumberState;
use super::Rejection;
use crate::domain::{FieldError, Fields, E164};
use crate::store::{Guard, Loaded, StoreError};
use crate::write::{Command, Decision, Reader};

#[derive(Debug, Clone)]
pub struct Originate {
    /// The new call's id (its stream), drawn by the caller.
    pub call_id: CallId,
    /// The number `from_number` resolves to for this tenant, if any.
    pub number_id: Option<NumberId>,
    /// The provisional answer of the request's Idempotency-Key, committed
    /// with the call so a retry after a crash never places a second one.
    pub settle: Option<Guard>,
    pub tenant_id: TenantId,
    pub from_number: E164,
    pub to_number: E164,
    pub agent_id: Option<Uuid>,
    pub metadata: Value,
    /// Minted by the caller (UUIDv7), so the decision stays pure.
    pub session_id: Uuid,
}

/// What a client asks for (`POST /calls/originate`), checked field by
/// field: every bad field named at once.
#[derive(Debug, Clone)]
pub struct OriginateInput {
    pub from_number: E164,
    pub to_number: E164,
    pub agent_id: Option<Uuid>,
    /// A JSON object (without NUL characters) or null.
    pub metadata: Value,
}

impl OriginateInput {
    pub fn parse(body: &Map<String, Value>) -> Result<OriginateInput, Vec<FieldError>> {
        let mut f = Fields::new(body);
        f.deny_unknown(&["from_number", "to_number", "agent_id", "metadata"]);
        let from = f.e164("from_number");
        let to = f.e164("to_number");
        let agent_id = f.opt_nullable_uuid("agent_id").flatten();
        let metadata = match f.raw("metadata") {
            None | Some(Value::Null) => Value::Null,
            Some(v @ Value::Object(_)) if crate::domain::fields::has_nul(v) => {
                f.error("metadata", "must not contain NUL characters");
                Value::Null
            }
            Some(Value::Object(m)) => Value::Object(m.clone()),
            Some(_) => {
                f.error("metadata", "must be an object");
                Value::Null
            }
        };
        f.finish()?;
        match (from, to) {
            (Some(from_number), Some(to_number)) => Ok(OriginateInput {
                from_number,
                to_number,
                agent_id,
                metadata,
            }),
            _ => Err(vec![FieldError::new("body", "is incomplete")]),
        }
    }
}

/// Why an originate is refused before anything is appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginateRefusal {
    /// The tenant does not hold `from_number` with outbound enabled. The
    /// same answer whoever else holds it, so it reveals nothing.
    CallerIdNotAllowed,
    Rejected(Rejection),
}

#[async_trait]
impl Command for Originate {
    type State = (Option<Loaded<NumberState>>, Loaded<CallState>);

    async fn load(&self, r: &Reader<'_>) -> Result<Self::State, StoreError> {
        let number = match self.number_id {
            Some(id) => Some(r.load(id, NumberState::apply).await?),
            None => None,
        };
        Ok((number, r.new_stream(self.call_id, CallState::apply)))
    }

    /// The call's request; the number only checked (released or turned
    /// outbound-off meanwhile fails the append).
    fn decide(&self, (number, _): &Self::State) -> Result<Decision, Rejection> {
        let (Some(number_id), Some(n)) = (self.number_id, number) else {
            return Err(Rejection::CallerIdNotAllowed);
        };
        let events = decide(Some((number_id, &n.state)), self.clone()).map_err(|r| match r {
            OriginateRefusal::CallerIdNotAllowed => Rejection::CallerIdNotAllowed,
            OriginateRefusal::Rejected(r) => r,
        })?;
        let mut d = Decision::one(StreamType::Call, self.call_id, 0, events).and(
            StreamType::Number,
            number_id,
            n.head.version,
            vec![],
        );
        if let Some(settle) = &self.settle {
            d = d.guard(settle.clone());
        }
        Ok(d)
    }
}

/// `number` is the folded stream of the number `from_number` resolves to for
/// this tenant, if any; `number_id` its id.
pub fn decide(
    number: Option<(NumberId, &NumberState)>,
    cmd: Originate,
) -> Result<Vec<Event>, OriginateRefusal> {
    let Some((number_id, n)) = number.filter(|(_, n)| {
        n.visible_to(cmd.tenant_id) && n.outbound_enabled && n.e164 == cmd.from_number.as_str()
    }) else {
        return Err(OriginateRefusal::CallerIdNotAllowed);
    };
    let agent_id = match (cmd.agent_id, n.agent_id) {
        (Some(asked), Some(pinned)) if asked != pinned => {
            return Err(OriginateRefusal::Rejected(Rejection::Conflict(
                "from_number is pinned to a different agent".into(),
            )))
        }
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => {
            return Err(OriginateRefusal::Rejected(Rejection::invalid(
                "agent_id",
                "is required: from_number has no pinned agent",
            )))
        }
    };
    let provider = n.provider.ok_or(OriginateRefusal::CallerIdNotAllowed)?;
    Ok(vec![Event::OriginateRequested(OriginateRequested {
        from_number: cmd.from_number.to_string(),
        to_number: cmd.to_number.to_string(),
        agent_id,
        number_id,
        provider,
        credentials_id: n.credentials_id,
        session_id: cmd.session_id,
        metadata: cmd.metadata,
    })])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::state::{fold, given};
    use events::NumberDirectionsChanged;

    use crate::commands::state::number_attached as attached;

    fn parse(body: serde_json::Value) -> Result<OriginateInput, Vec<String>> {
        OriginateInput::parse(body.as_object().unwrap())
            .map_err(|e| e.into_iter().map(|f| f.field).collect())
    }

    fn bad_fields(body: serde_json::Value) -> Vec<String> {
        parse(body).err().unwrap_or_default()
    }

    #[test]
    fn a_request_is_parsed_field_by_field_and_every_bad_field_is_named() {
        let ok = parse(
            serde_json::json!({"from_number": "+12025550123", "to_number": "+14155550100",
                                          "metadata": {"crm": 7}}),
        )
        .unwrap();
        assert_eq!(ok.to_number.as_str(), "+14155550100");
        assert_eq!(ok.metadata["crm"], 7);
        assert_eq!(
            bad_fields(
                serde_json::json!({"from_number": "12", "to_number": 5, "agent_id": "x",
                                          "metadata": [], "extra": 1})
            ),
            ["extra", "from_number", "to_number", "agent_id", "metadata"]
        );
        assert_eq!(
            bad_fields(
                serde_json::json!({"from_number": "+12025550123", "to_number": "+14155550100",
                                          "metadata": {"k": "a\u{0}b"}})
            ),
            ["metadata"]
        );
    }

    fn cmd(t: TenantId, agent: Option<Uuid>) -> Originate {
        Originate {
            call_id: CallId::default(),
            number_id: Some(NumberId::default()),
            settle: None,
            tenant_id: t,
            from_number: E164::parse("+12025550123").unwrap(),
            to_number: E164::parse("+14155550100").unwrap(),
            agent_id: agent,
            metadata: Value::Null,
            session_id: Uuid::nil(),
        }
    }

    #[test]
    fn the_pinned_agent_is_the_default() {
        let (t, a) = (TenantId::new(), Uuid::new_v4());
        let n: NumberState = fold(given(t, vec![attached(Some(a))]), NumberState::apply);
        let events = decide(Some((NumberId::default(), &n)), cmd(t, None)).unwrap();
        assert!(matches!(&events[..], [Event::OriginateRequested(r)] if r.agent_id == a));
    }

    #[test]
    fn another_agent_on_a_pinned_number_conflicts_and_no_agent_is_invalid() {
        let t = TenantId::new();
        let n: NumberState = fold(
            given(t, vec![attached(Some(Uuid::new_v4()))]),
            NumberState::apply,
        );
        let r = decide(
            Some((NumberId::default(), &n)),
            cmd(t, Some(Uuid::new_v4())),
        );
        assert!(matches!(
            r,
            Err(OriginateRefusal::Rejected(Rejection::Conflict(_)))
        ));
        let n: NumberState = fold(given(t, vec![attached(None)]), NumberState::apply);
        let r = decide(Some((NumberId::default(), &n)), cmd(t, None));
        assert!(matches!(
            r,
            Err(OriginateRefusal::Rejected(Rejection::Invalid(_)))
        ));
    }

    #[test]
    fn unknown_foreign_or_outbound_disabled_numbers_get_the_same_answer() {
        let t = TenantId::new();
        let a = Some(Uuid::new_v4());
        assert_eq!(
            decide(None, cmd(t, a)),
            Err(OriginateRefusal::CallerIdNotAllowed)
        );
        let foreign: NumberState = fold(
            given(TenantId::new(), vec![attached(a)]),
            NumberState::apply,
        );
        assert_eq!(
            decide(Some((NumberId::default(), &foreign)), cmd(t, a)),
            Err(OriginateRefusal::CallerIdNotAllowed)
        );
        let off: NumberState = fold(
            given(
                t,
                vec![
                    attached(a),
                    Event::NumberDirectionsChanged(NumberDirectionsChanged {
                        inbound_enabled: true,
                        outbound_enabled: false,
                    }),
                ],
            ),
            NumberState::apply,
        );
        assert_eq!(
            decide(Some((NumberId::default(), &off)), cmd(t, a)),
            Err(OriginateRefusal::CallerIdNotAllowed)
        );
    }
}
