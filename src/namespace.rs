//! The namespace that prefixes NATS subjects, stream names and Redis keys, so
//! several installs (or parallel tests) share one server without meeting.

use std::fmt;

/// Lowercase letters, digits and `_`, starting with a letter, at most 48
/// characters: safe inside a NATS subject token, a stream name and a Redis key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Namespace(String);

impl Namespace {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 48
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(Namespace(s.to_owned()))
        } else {
            Err(format!(
                "namespace {s:?} must be 1-48 of a-z, 0-9 and _, starting with a letter"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The JetStream stream holding every event: `<NAMESPACE>_EVENTS`.
    pub fn events_stream(&self) -> String {
        format!("{}_EVENTS", self.0.to_uppercase())
    }

    /// The subject filter of every event: `<ns>.events.>`.
    pub fn events_subjects(&self) -> String {
        format!("{}.events.>", self.0)
    }

    /// The subject filter of one event type on every call stream:
    /// `<ns>.events.*.call.*.<type>`. Subjects themselves are made by
    /// `events::Envelope::subject` (`<ns>.events.<tenant>.<stream type>.<stream id>.<type>`);
    /// the test below holds the two together.
    pub fn call_events(&self, event_type: &str) -> String {
        format!("{}.events.*.call.*.{event_type}", self.0)
    }

    /// The stream id in an event's subject (see `call_events`).
    pub fn stream_id_in(subject: &str) -> Option<uuid::Uuid> {
        subject
            .rsplit('.')
            .nth(1)
            .and_then(|id| uuid::Uuid::parse_str(id).ok())
    }

    /// A Redis key under this namespace.
    pub fn redis_key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.0)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Namespace {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Namespace::parse(s)
    }
}

#[cfg(test)]
mod subject_tests {
    use super::*;

    #[test]
    fn call_event_filters_match_the_subjects_events_get() {
        let ns = Namespace::parse("sb").unwrap();
        let (tenant, call) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let subject = format!("sb.events.{tenant}.call.{call}.CallEnded");
        let filter = ns.call_events("CallEnded");
        let matches = filter
            .split('.')
            .zip(subject.split('.'))
            .all(|(f, s)| f == "*" || f == s);
        assert!(matches && filter.split('.').count() == subject.split('.').count());
        assert_eq!(Namespace::stream_id_in(&subject), Some(call));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_simple_names_and_rejects_subject_syntax() {
        assert!(Namespace::parse("switchboard").is_ok());
        assert!(Namespace::parse("t_0a1b").is_ok());
        for bad in ["", "a.b", "a*", "a>", "A", "1x", "a b"] {
            assert!(Namespace::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Namespace::parse("sw").unwrap().events_stream(), "SW_EVENTS");
    }
}
