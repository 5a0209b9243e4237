//! The originate request on the wire: the one serialization of plaintext
//! credentials, kept private to `callproc` so no other code can turn a
//! request into JSON (for a log line, an event, a response).

use bytes::Bytes;
use events::{CallId, ProviderKind};
use serde::ser::{Serialize, SerializeStruct, Serializer};
use zeroize::Zeroizing;

use uuid::Uuid;

use crate::secrets::{Exposed, PlainCredentials};

/// An originate request as a Call Processor receives it.
#[derive(serde::Deserialize)]
pub struct Incoming {
    pub call_id: String,
    pub session_id: String,
    pub provider: ProviderKind,
    pub credentials: PlainCredentials,
    pub from_number: String,
    pub to_number: String,
    pub agent_id: String,
    pub status_callback_url: String,
}

impl Incoming {
    /// Reads and checks a request as a Call Processor must: a well-formed
    /// body and an `Idempotency-Key` equal to `call_id`. The raw body is
    /// wiped when we own it alone; parse errors get a fixed message because
    /// serde's may quote a credential value.
    pub fn parse(headers: &axum::http::HeaderMap, body: Bytes) -> Result<Self, &'static str> {
        use zeroize::Zeroize;
        let parsed = serde_json::from_slice::<Incoming>(&body);
        if let Ok(mut raw) = body.try_into_mut() {
            raw.as_mut().zeroize();
        }
        let req = parsed.map_err(|_| "invalid originate body")?;
        req.validate(headers)?;
        Ok(req)
    }

    fn validate(&self, headers: &axum::http::HeaderMap) -> Result<(), &'static str> {
        let key = headers
            .get("idempotency-key")
            .ok_or("missing Idempotency-Key")?;
        if key.as_bytes() != self.call_id.as_bytes() {
            return Err("Idempotency-Key must equal call_id");
        }
        let required = [
            &self.call_id,
            &self.session_id,
            &self.agent_id,
            &self.from_number,
            &self.to_number,
        ];
        if required.iter().any(|s| s.trim().is_empty()) {
            return Err("call_id, session_id, agent_id, from_number and to_number are required");
        }
        if self.credentials.is_empty() {
            return Err("credentials must not be empty");
        }
        let url = &self.status_callback_url;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err("status_callback_url must be an http(s) URL");
        }
        Ok(())
    }
}

/// One dial. Borrows the credentials for as long as the call takes; `Debug`
/// is safe because `PlainCredentials` redacts its values.
#[derive(Debug)]
pub struct OriginateRequest<'a> {
    pub call_id: CallId,
    pub session_id: Uuid,
    pub provider: ProviderKind,
    pub credentials: &'a PlainCredentials,
    pub from_number: &'a str,
    pub to_number: &'a str,
    pub agent_id: Uuid,
    pub status_callback_url: &'a str,
}

/// The request body, in a zeroizing buffer sized so it never reallocates
/// (which would leave an unwiped copy): JSON escapes a byte as at most 6.
pub(super) fn encode(req: &OriginateRequest<'_>) -> Bytes {
    let text_len = [req.from_number, req.to_number, req.status_callback_url]
        .iter()
        .map(|s| s.len())
        .sum::<usize>()
        + req
            .credentials
            .iter_exposed()
            .map(|(k, v)| k.len() + v.len() + 6)
            .sum::<usize>();
    let mut json = Zeroizing::new(Vec::with_capacity(512 + 6 * text_len));
    serde_json::to_writer(&mut *json, &Wire(req)).expect("strings and uuids always serialize");
    Bytes::from_owner(json)
}

/// The wire form. Private, so nothing else can serialize a request (and
/// with it the plaintext) into a log or an event.
struct Wire<'r, 'a>(&'r OriginateRequest<'a>);

impl Serialize for Wire<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut s = serializer.serialize_struct("OriginateRequest", 8)?;
        s.serialize_field("call_id", &r.call_id)?;
        s.serialize_field("session_id", &r.session_id)?;
        s.serialize_field("provider", &r.provider)?;
        s.serialize_field("credentials", &Exposed(r.credentials))?;
        s.serialize_field("from_number", r.from_number)?;
        s.serialize_field("to_number", r.to_number)?;
        s.serialize_field("agent_id", &r.agent_id)?;
        s.serialize_field("status_callback_url", r.status_callback_url)?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use events::ProviderKind;
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    #[test]
    fn encodes_the_contract_body() {
        let creds: PlainCredentials = [("auth_id", "MA1"), ("auth_token", "t\"\u{e9}\u{1}")]
            .into_iter()
            .collect();
        let (call_id, session_id, agent_id) = (CallId::new(), Uuid::now_v7(), Uuid::new_v4());
        let req = OriginateRequest {
            call_id,
            session_id,
            provider: ProviderKind::Plivo,
            credentials: &creds,
            from_number: "+14155550100",
            to_number: "+14155550199",
            agent_id,
            status_callback_url: "http://sb.test/callbacks/x",
        };
        let body: serde_json::Value = serde_json::from_slice(&encode(&req)).unwrap();
        let expected = json!({
            "call_id": call_id, "session_id": session_id, "provider": "plivo",
            "credentials": {"auth_id": "MA1", "auth_token": "t\"\u{e9}\u{1}"},
            "from_number": "+14155550100", "to_number": "+14155550199",
            "agent_id": agent_id, "status_callback_url": "http://sb.test/callbacks/x",
        });
        assert_eq!(body, expected);
    }
}
